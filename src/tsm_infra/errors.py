"""The project's error types: every failure a user can act on is one of these.

Nothing below the CLI prints; modules raise these with a message that names the spec field or
file:line and says what to do. The CLI maps them to exit codes and prints them without a
traceback unless `--debug` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class TsmInfraError(Exception):
    """Base of every error the tool reports to the user as one or more plain lines."""

    exit_code: int = EXIT_FAILED

    def lines(self) -> list[str]:
        """The message, one problem a line, as the CLI prints it."""
        return str(self).splitlines() or [type(self).__name__]


class BadInputError(TsmInfraError):
    """The user's input (a file, an option) is wrong; nothing was attempted."""

    exit_code = EXIT_BAD_INPUT


def describe_error(exc: BaseException) -> str:
    """`Code: message` of an AWS error (or `Type: text` of another), on one line.

    AWS error messages name resources and actions, never request bodies, so they are safe to
    show; anything else is named by its type and text.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        text = f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()).rstrip(": ")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (e.g. `NoSuchHostedZone`), or ""."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code", ""))
    return ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where it is and what is wrong with it."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        """`source:line path: message`, leaving out what is not known."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(BadInputError):
    """The deployment spec cannot be read or does not describe a valid cluster."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))
