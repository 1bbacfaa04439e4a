"""Pydantic's validation errors, told as problems a spec's author can act on.

Each error becomes one `Problem` with the field's YAML path, its line, and a message that says
what was found and what to write instead (the unquoted text YAML turned into a number, the
known key closest to an unknown one).
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import ValidationError

from tsm_infra.errors import Problem
from tsm_infra.spec.models import Access, NodeSettings, NodeSpec, Spec, TsmSettings
from tsm_infra.spec.reader import LineMap, format_path, show

_TYPE_NAMES = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing",
}


# the error kinds whose message is only what the field takes, followed by what it got
_EXPECTED = {
    "int_type": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "a mapping of keys to values",
    "dict_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}


def type_name(value: object) -> str:
    """What a value read from YAML is, in the words of the messages ("a number", "text")."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _got(value: object) -> str:
    return "nothing" if value is None else f"{show(value)} ({type_name(value)})"


def _all_field_names() -> list[str]:
    names: set[str] = set()
    for model in (Spec, TsmSettings, NodeSpec, NodeSettings, Access):
        names.update(model.model_fields)
    return sorted(names)


def _unquoted(field: object, value: object, raw: str) -> str:
    """What YAML made of an unquoted scalar where text was expected, and how to quote it."""
    if field == "account" and isinstance(value, int) and raw != str(value):
        return (
            f"must be 12 digits in quotes, got {raw} unquoted, which YAML reads as the number "
            f'{value} (a leading 0 makes it octal); write "{raw}"'
        )
    if isinstance(value, bool):
        return (
            f"must be text, got {raw} unquoted, which YAML reads as "
            f'{str(value).lower()}; quote it: "{raw}"'
        )
    return f'must be text, got {raw} unquoted, which YAML reads as a number; quote it: "{raw}"'


def _message(error: dict[str, Any], raw: str | None = None) -> str:
    kind = error["type"]
    value = error.get("input")
    loc = error["loc"]
    field = loc[-1] if loc else ""
    if kind == "string_type" and raw is not None and (field != "account" or raw != str(value)):
        return _unquoted(field, value, raw)
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(field), _all_field_names(), n=1)
        return "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type":
        if field == "account" and isinstance(value, int):
            return (
                f"must be 12 digits in quotes, got {value} unquoted "
                "(YAML reads it as a number and drops leading zeros)"
            )
        return f"must be text, got {_got(value)}"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}, got {_got(value)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']}, got {_got(value)}"
    return str(error["msg"])


def pydantic_problems(exc: ValidationError, lines: LineMap) -> list[Problem]:
    """One problem per distinct error, with its path and line, in the order of the file."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        # unions of X | None report one error per branch; the None branch says nothing useful
        loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
        if error["type"] == "none_required":
            continue
        path = format_path(loc)
        message = _message(dict(error), lines.raw.get(loc))
        problems.append(Problem(path, message, lines.line_of(loc)))
    seen: set[tuple[str, str]] = set()
    unique = []
    for problem in problems:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            unique.append(problem)
    return sorted(unique, key=lambda p: p.line or 0)
