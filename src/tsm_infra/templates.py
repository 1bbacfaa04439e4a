"""The CloudFormation templates: where they are, and what cfn-lint says of them.

cfn-lint is driven through its Python API with the repository's `.cfnlintrc` named explicitly,
so the result does not depend on the current directory or on a `.cfnlintrc` in the user's home.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from tsm_infra.errors import BadInputError

# One template per stack kind; the plan and the deployer name templates only through this.
TEMPLATE_FILES = {"kms": "kms.yaml", "core": "core.yaml"}

# The templates and their cfn-lint settings are package data of tsm_infra, so an installed
# wheel has them; they are plain files on disk in both a checkout and an installed wheel.
_PACKAGE_DATA = Path(str(files("tsm_infra") / "cfn"))
_PACKAGE_ROOT = Path(str(files("tsm_infra")))


def templates_dir() -> Path:
    """The templates folder: $TSM_INFRA_TEMPLATES, else the package's own (tsm_infra/cfn)."""
    override = os.environ.get("TSM_INFRA_TEMPLATES")
    return Path(override) if override else _PACKAGE_DATA


def template_path(kind: str) -> Path:
    """The template file of one stack kind ('kms' or 'core')."""
    return templates_dir() / TEMPLATE_FILES[kind]


def lint_config_path() -> Path:
    """The `.cfnlintrc` that holds the project's cfn-lint settings."""
    return _PACKAGE_DATA / ".cfnlintrc"


@dataclass(frozen=True)
class Finding:
    """One cfn-lint match."""

    rule: str
    level: str
    line: int
    message: str

    def render(self, file: str) -> str:
        """`file:line rule level: message`."""
        return f"{file}:{self.line} {self.rule} {self.level}: {self.message}"


@dataclass(frozen=True)
class LintResult:
    """What cfn-lint found in one template, or that the template does not exist yet."""

    kind: str
    path: Path
    exists: bool
    findings: tuple[Finding, ...] = ()

    @property
    def clean(self) -> bool:
        """True when the template exists and cfn-lint found nothing at all."""
        return self.exists and not self.findings


def lint_template(path: Path, regions: Iterable[str] = ()) -> list[Finding]:
    """Run cfn-lint on one template with the project's settings (and extra regions)."""
    # cfn-lint takes ~0.6 s to import; only commands that lint pay for it
    from cfnlint.config import ConfigMixIn  # noqa: PLC0415
    from cfnlint.decode.decode import decode_str  # noqa: PLC0415
    from cfnlint.runner import Runner  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read it: {exc.strerror}") from None
    args = ["--config-file", str(lint_config_path())]
    if regions:
        # --regions replaces the rc's list, so keep those and add the spec's
        args += ["--regions", *sorted(set(regions) | set(_rc_regions()))]
    config = ConfigMixIn(cli_args=args)
    template, errors = decode_str(text)
    matches = list(errors) if errors else list(Runner(config).validate_template(template or {}))
    return [
        Finding(
            rule=match.rule.id,
            level=match.rule.severity,
            line=match.linenumber,
            message=match.message,
        )
        for match in matches
    ]


def _rc_regions() -> list[str]:
    import yaml  # noqa: PLC0415

    loaded = yaml.safe_load(lint_config_path().read_text(encoding="utf-8")) or {}
    return [str(region) for region in loaded.get("regions", [])]


def lint_all(regions: Iterable[str] = ()) -> list[LintResult]:
    """Lint every stack kind's template; a template not written yet is reported as missing."""
    results = []
    for kind in TEMPLATE_FILES:
        path = template_path(kind)
        if path.is_file():
            results.append(LintResult(kind, path, True, tuple(lint_template(path, regions))))
        else:
            results.append(LintResult(kind, path, False))
    return results


# --------------------------------------------------------------------------- interface


@dataclass(frozen=True)
class TemplateInterface:
    """What a template takes and gives: parameters (with defaults; None when required), outputs."""

    parameters: dict[str, str | None]
    outputs: tuple[str, ...]


def _read_template_yaml(text: str) -> Any:
    import yaml  # noqa: PLC0415

    class Loader(yaml.SafeLoader):
        """Reads CloudFormation YAML; intrinsic functions (!Ref, !Sub ...) become None."""

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def template_interface(kind: str) -> TemplateInterface | None:
    """The parameters and outputs of one stack kind's template; None if it is not written yet."""
    path = template_path(kind)
    if not path.is_file():
        return None
    data = _read_template_yaml(path.read_text(encoding="utf-8"))
    parameters = {
        name: None if "Default" not in spec else str(spec["Default"])
        for name, spec in (data.get("Parameters") or {}).items()
    }
    return TemplateInterface(parameters, tuple(data.get("Outputs") or ()))


# --------------------------------------------------------------------------- what deploy sends

# CloudFormation refuses a TemplateBody over this many bytes (TemplateURL allows 1 MB).
TEMPLATE_BODY_LIMIT = 51_200


def template_body(kind: str) -> str:
    """The template as deploy sends it: compact JSON with every intrinsic in long form.

    JSON keeps the inline handler free of YAML indentation (the body stays under
    TEMPLATE_BODY_LIMIT without an S3 upload) and long forms are what every consumer,
    emulators included, reads the same way.
    """
    import json  # noqa: PLC0415

    from cfnlint.decode.decode import decode_str  # noqa: PLC0415

    path = template_path(kind)
    template, errors = decode_str(path.read_text(encoding="utf-8"))
    if errors or template is None:
        first = errors[0] if errors else None
        where = f"{path}:{first.linenumber}" if first else str(path)
        raise BadInputError(f"{where}: not a readable template: {first.message if first else ''}")
    body = json.dumps(template, separators=(",", ":"))
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise BadInputError(
            f"{path}: {len(body.encode())} bytes as JSON, over CloudFormation's "
            f"{TEMPLATE_BODY_LIMIT}-byte TemplateBody limit; shorten the inline handler"
        )
    return body


# --------------------------------------------------------------------------- packaging
# A template carries a Lambda handler inline (Code.ZipFile) so that one file is the whole
# stack. The handler's single source is a module under src/; `package` copies it into the
# template after a marker line naming that module, and a test proves the copies are identical.

_INLINE_MARKER = re.compile(
    r"^(?P<indent> *)# tsm-infra: (?P<mode>inline|inline-gzip) (?P<module>\S+\.py)\b.*$"
)
# Lambda's Code.ZipFile, or a cfn-init file's content, as a literal block ...
_BLOCK = re.compile(r"^(?P<indent> *)(?:ZipFile|content): \|$")
# ... or, gzip-compressed, as one base64 line (cfn-init `encoding: base64`)
_GZIP_LINE = re.compile(r'^(?P<indent> *)content: (?P<data>""|[A-Za-z0-9+/=]+)$')


@dataclass(frozen=True)
class InlineCode:
    """One inline copy of a module in a template: which module, where, and how it is stored."""

    module: str
    start: int  # index of the first line holding the code
    end: int  # index one past the last such line
    indent: str
    compressed: bool


def find_inline_code(text: str) -> list[InlineCode]:
    """Every inline copy announced by a `# tsm-infra: inline[-gzip] <module>` marker."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        marker = _INLINE_MARKER.match(line)
        if not marker:
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if marker["mode"] == "inline-gzip":
            gzip_line = _GZIP_LINE.match(following)
            if gzip_line is None:
                raise BadInputError(f"line {i + 2}: `content: <base64>` must follow the marker")
            found.append(InlineCode(marker["module"], i + 1, i + 2, gzip_line["indent"], True))
            continue
        block = _BLOCK.match(following)
        if block is None:
            raise BadInputError(
                f"line {i + 2}: `ZipFile: |` or `content: |` must follow the inline marker"
            )
        indent = block["indent"] + "  "
        end = i + 2
        while end < len(lines) and (lines[end].startswith(indent) or not lines[end].strip()):
            end += 1
        while end > i + 2 and not lines[end - 1].strip():
            end -= 1  # trailing blank lines belong to the YAML, not the code
        found.append(InlineCode(marker["module"], i + 2, end, indent, False))
    return found


def inline_source(code: InlineCode, text: str) -> str:
    """The module source an inline copy holds, as the instance or Lambda will see it."""
    lines = text.split("\n")[code.start : code.end]
    if code.compressed:
        data = lines[0].strip().removeprefix("content:").strip()
        try:
            return gzip.decompress(base64.b64decode(data, validate=True)).decode("utf-8")
        except (ValueError, OSError, EOFError):
            return ""  # not packaged yet, or damaged: either way stale
    return "\n".join(line[len(code.indent) :] for line in lines) + "\n"


def _encode(code: InlineCode, source: str) -> list[str]:
    if code.compressed:
        # mtime=0 keeps the bytes the same from one packaging run to the next
        data = base64.b64encode(gzip.compress(source.encode("utf-8"), 9, mtime=0)).decode()
        return [f"{code.indent}content: {data}"]
    return [code.indent + line if line else "" for line in source.rstrip("\n").split("\n")]


def _module_file(module: str) -> Path:
    """The file a marker names as `src/tsm_infra/<path>.py`, inside the installed package."""
    return _PACKAGE_ROOT / module.removeprefix("src/tsm_infra/")


def package(text: str) -> str:
    """The template text with every stale inline copy replaced by its module's current source."""
    lines = text.split("\n")
    for code in reversed(find_inline_code(text)):
        source = _module_file(code.module).read_text(encoding="utf-8")
        if inline_source(code, text) != source:
            lines[code.start : code.end] = _encode(code, source)
    return "\n".join(lines)


def package_all(*, write: bool) -> list[Path]:
    """Templates whose inline code differs from the source; rewritten when `write`."""
    stale = []
    for kind in TEMPLATE_FILES:
        path = template_path(kind)
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        packaged = package(text)
        if packaged != text:
            stale.append(path)
            if write:
                path.write_text(packaged, encoding="utf-8")
    return stale
