"""cfn-lint over one rendered template, through its Python API, with results cached on disk.

Importing cfn-lint and running its rules takes seconds, while the answer depends only on the
template's text, the cfn-lint version, the settings and the regions linted against. So each
answer is kept under the user's cache folder ($XDG_CACHE_HOME/tsm-infra, else
~/.cache/tsm-infra) keyed by those four, and a repeated `plan` or `lint` reads it back without
importing cfn-lint at all. An entry that cannot be read is linted afresh and written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from tsm_infra.errors import BadInputError


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


def cache_dir() -> Path:
    """Where lint results are kept: $XDG_CACHE_HOME/tsm-infra/lint, else ~/.cache/tsm-infra/lint."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tsm-infra" / "lint"


def _cfnlint_version() -> str:
    try:
        return version("cfn-lint")
    except PackageNotFoundError:
        raise BadInputError(
            "cfn-lint is not installed: pip install tsm-infra (it is a dependency), "
            "or pass --no-lint"
        ) from None


def _regions(config: str, extra: Iterable[str]) -> list[str]:
    """The regions to lint against, for --regions: none when the settings' own list has them all.

    --regions replaces the settings' list, so when the spec adds one it names both.
    """
    loaded = yaml.safe_load(config) or {}
    own = {str(region) for region in loaded.get("regions", [])}
    wanted = set(extra)
    return [] if wanted <= own else sorted(wanted | own)


def _key(digest: str, config: str, regions: list[str]) -> str:
    parts = {
        "template": digest,
        "config": hashlib.sha256(config.encode("utf-8")).hexdigest(),
        "cfn-lint": _cfnlint_version(),
        "regions": regions,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path) -> list[Finding] | None:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        findings = [Finding(**entry) for entry in entries] if isinstance(entries, list) else None
    except (OSError, ValueError, TypeError):
        return None  # absent, or damaged: lint again
    if findings is None or not all(_well_formed(finding) for finding in findings):
        return None
    return findings


def _well_formed(finding: Finding) -> bool:
    texts = (finding.rule, finding.level, finding.message)
    return all(isinstance(t, str) for t in texts) and type(finding.line) is int


def _write_cache(path: Path, findings: list[Finding]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # written aside and renamed, so a reader never sees half an entry
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8"
        ) as out:
            json.dump([asdict(finding) for finding in findings], out)
        Path(out.name).replace(path)
    except OSError:
        pass  # a read-only home only costs the next run its speed


def run_cfnlint(text: str, config_path: Path, regions: list[str]) -> list[Finding]:
    """cfn-lint's findings in a template's text, uncached; `regions` replace the settings'."""
    # cfn-lint takes ~0.6 s to import; only a lint that misses the cache pays for it
    from cfnlint.config import ConfigMixIn  # noqa: PLC0415
    from cfnlint.decode.decode import decode_str  # noqa: PLC0415
    from cfnlint.runner import Runner as CfnLintRunner  # noqa: PLC0415

    args = ["--config-file", str(config_path)]
    if regions:
        args += ["--regions", *regions]  # --regions replaces the settings' list: it holds both
    template, errors = decode_str(text)
    if errors:
        matches = list(errors)
    else:
        matches = list(CfnLintRunner(ConfigMixIn(cli_args=args)).validate_template(template or {}))
    return [
        Finding(match.rule.id, match.rule.severity, match.linenumber, match.message)
        for match in matches
    ]


# What a cache miss runs: (settings file, regions) -> findings.
Linter = Callable[[Path, list[str]], list[Finding]]


def lint_cached(
    digest: str, config_path: Path, regions: Iterable[str], linter: Linter
) -> list[Finding]:
    """The findings for the template that `digest` identifies: from the cache, else `linter`'s.

    `digest` must change whenever the linted text could: the sha256 of that text, or of all
    it is made from (tsm_infra.inlining.inputs_digest).
    """
    config = config_path.read_text(encoding="utf-8")
    wanted = _regions(config, regions)
    entry = cache_dir() / f"{_key(digest, config, wanted)}.json"
    cached = _read_cache(entry)
    if cached is not None:
        return cached
    findings = linter(config_path, wanted)
    _write_cache(entry, findings)
    return findings


def lint_text(text: str, config_path: Path, regions: Iterable[str] = ()) -> list[Finding]:
    """cfn-lint's findings in a template's text (lines are the text's), from the cache if known."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return lint_cached(
        digest, config_path, regions, lambda config, wanted: run_cfnlint(text, config, wanted)
    )
