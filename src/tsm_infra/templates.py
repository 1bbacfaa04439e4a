"""The CloudFormation templates: where they are, and what cfn-lint says of them.

cfn-lint is driven through its Python API with the repository's `.cfnlintrc` named explicitly,
so the result does not depend on the current directory or on a `.cfnlintrc` in the user's home.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tsm_infra.errors import BadInputError

# One template per stack kind; the plan and the deployer name templates only through this.
TEMPLATE_FILES = {"kms": "kms.yaml", "core": "core.yaml"}

_REPO_ROOT = Path(__file__).resolve().parents[2]


def templates_dir() -> Path:
    """The templates folder: $TSM_INFRA_TEMPLATES, else the checkout's templates/."""
    override = os.environ.get("TSM_INFRA_TEMPLATES")
    return Path(override) if override else _REPO_ROOT / "templates"


def template_path(kind: str) -> Path:
    """The template file of one stack kind ('kms' or 'core')."""
    return templates_dir() / TEMPLATE_FILES[kind]


def lint_config_path() -> Path:
    """The `.cfnlintrc` that holds the project's cfn-lint settings."""
    return _REPO_ROOT / ".cfnlintrc"


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
