"""The CloudFormation templates: where they are, how they are rendered, and what cfn-lint says.

The templates and their cfn-lint settings are package data (tsm_infra/cfn/), so an installed
wheel has them. The committed files hold only marker lines where a stack carries code; rendering
fills in the current code (tsm_infra.inlining), and everything that leaves this module is
rendered: the body deploy sends, the files `tsm-infra package` writes, what cfn-lint checks.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tsm_infra import cfnyaml
from tsm_infra.errors import BadInputError
from tsm_infra.inlining import Rendered, inputs_digest, render
from tsm_infra.linting import Finding, lint_cached, run_cfnlint

__all__ = [
    "TEMPLATE_BODY_LIMIT",
    "TEMPLATE_FILES",
    "Finding",
    "LintResult",
    "TemplateInterface",
    "lint_all",
    "lint_config_path",
    "rendered",
    "template_body",
    "template_interface",
    "template_path",
    "templates_dir",
    "write_rendered",
]

# One template per stack kind; the plan and the deployer name templates only through this.
TEMPLATE_FILES = {"kms": "kms.yaml", "core": "core.yaml"}

# CloudFormation refuses a TemplateBody over this many bytes (TemplateURL allows 1 MB).
TEMPLATE_BODY_LIMIT = 51_200


def templates_dir() -> Path:
    """The templates folder: $TSM_INFRA_TEMPLATES, else the package's own (tsm_infra/cfn)."""
    override = os.environ.get("TSM_INFRA_TEMPLATES")
    # a regular install, wheel or editable, keeps package data as plain files
    return Path(override) if override else Path(str(files("tsm_infra") / "cfn"))


def template_path(kind: str) -> Path:
    """The source template of one stack kind ('kms' or 'core'), markers and all."""
    return templates_dir() / TEMPLATE_FILES[kind]


def lint_config_path() -> Path:
    """The `.cfnlintrc` that holds the project's cfn-lint settings."""
    return Path(str(files("tsm_infra") / "cfn" / ".cfnlintrc"))


# --------------------------------------------------------------------------- rendering

_T = TypeVar("_T")
_LOCK = threading.RLock()  # re-entered: the body is made from the cached rendering
_RENDERED: dict[tuple[str, str, int, int], object] = {}


def _once(what: str, kind: str, make: Callable[[Path], _T]) -> _T:
    """`make(path)` for kind's template, computed once per process while the file is unchanged."""
    path = template_path(kind)
    try:
        stat = path.stat()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read it: {exc.strerror}") from None
    key = (what, str(path), stat.st_mtime_ns, stat.st_size)
    # held while computing, so parallel deploy steps wait for one rendering rather than each
    # making their own
    with _LOCK:
        if key not in _RENDERED:
            _RENDERED[key] = make(path)
        value: _T = _RENDERED[key]  # type: ignore[assignment]
        return value


def _render(path: Path) -> Rendered:
    return render(path.read_text(encoding="utf-8"), str(path))


def rendered(kind: str) -> Rendered:
    """One kind's template as YAML with its inline code filled in: a standalone template."""
    return _once("yaml", kind, _render)


def _load(path: Path, text: str, line_of: Callable[[int], int] = lambda line: line) -> Any:
    """The template's data; a YAML error names the source file's line (`line_of` maps to it)."""
    try:
        return cfnyaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{line_of(mark.line + 1)}" if mark is not None else str(path)
        raise BadInputError(f"{where}: not a readable template: {exc}") from None


def _body(path: Path, text: Rendered) -> str:
    data = _load(path, text.text, text.source_line)
    body = json.dumps(data, separators=(",", ":"))
    size = len(body.encode())
    if size > TEMPLATE_BODY_LIMIT:
        raise BadInputError(
            f"{path}: {size} bytes as JSON, over CloudFormation's {TEMPLATE_BODY_LIMIT}-byte "
            "TemplateBody limit; shorten the inline code"
        )
    return body


def template_body(kind: str) -> str:
    """The template as deploy sends it: rendered, as compact JSON, every intrinsic in long form.

    JSON keeps the inline code free of YAML indentation (the body stays under
    TEMPLATE_BODY_LIMIT without an S3 upload), and long forms are what every consumer,
    emulators included, reads the same way.
    """
    return _once("json", kind, lambda path: _body(path, rendered(kind)))


def write_rendered(out: Path) -> list[Path]:
    """Write every kind's rendered template into folder `out` (made if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name in TEMPLATE_FILES.items():
        target = out / name
        target.write_text(rendered(kind).text, encoding="utf-8")
        written.append(target)
    return written


# --------------------------------------------------------------------------- interface


@dataclass(frozen=True)
class TemplateInterface:
    """What a template takes and gives: parameters (with defaults; None when required), outputs."""

    parameters: dict[str, str | None]
    outputs: tuple[str, ...]


def template_interface(kind: str) -> TemplateInterface | None:
    """The parameters and outputs of one stack kind's template; None if it is not written yet."""
    path = template_path(kind)
    if not path.is_file():
        return None
    # the source suffices (no code to fill in): parameters and outputs are not inlined
    data = _once("interface", kind, lambda source: _load(source, source.read_text("utf-8")))
    parameters = {
        name: None if "Default" not in spec else str(spec["Default"])
        for name, spec in (data.get("Parameters") or {}).items()
    }
    return TemplateInterface(parameters, tuple(data.get("Outputs") or ()))


# --------------------------------------------------------------------------- lint


@dataclass(frozen=True)
class LintResult:
    """What cfn-lint found in one template (lines are the source file's), or that it is missing."""

    kind: str
    path: Path
    exists: bool
    findings: tuple[Finding, ...] = ()

    @property
    def clean(self) -> bool:
        """True when the template exists and cfn-lint found nothing at all."""
        return self.exists and not self.findings


def lint_template(kind: str, regions: Iterable[str] = ()) -> list[Finding]:
    """cfn-lint on one kind's rendered template, with the project's settings (and more regions).

    A finding inside inlined code is reported at the marker line that asked for it. The result
    is cached by what the rendering is made from, so a repeated lint neither renders (building
    the boot zipapp takes most of a second) nor imports cfn-lint.
    """
    path = template_path(kind)
    digest = inputs_digest(path.read_text(encoding="utf-8"))

    def linter(config: Path, wanted: list[str]) -> list[Finding]:
        text = rendered(kind)
        return [
            Finding(found.rule, found.level, text.source_line(found.line), found.message)
            for found in run_cfnlint(text.text, config, wanted)
        ]

    return lint_cached(digest, lint_config_path(), regions, linter)


def lint_all(regions: Iterable[str] = ()) -> list[LintResult]:
    """Lint every stack kind's template; a template not there (a bad override) is missing."""
    wanted = tuple(regions)
    results = []
    for kind in TEMPLATE_FILES:
        path = template_path(kind)
        if path.is_file():
            results.append(LintResult(kind, path, True, tuple(lint_template(kind, wanted))))
        else:
            results.append(LintResult(kind, path, False))
    return results
