"""cfn-lint over every template, with the project's .cfnlintrc: zero findings of any level."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsm_infra.templates import TEMPLATE_FILES, lint_all, lint_template, templates_dir

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_gate_reports_errors_and_warnings_with_lines() -> None:
    findings = {(f.rule, f.line) for f in lint_template(FIXTURES / "bad.yaml")}
    assert ("E3002", 10) in findings  # unknown property TopicNam
    assert ("W2001", 4) in findings  # parameter never used


@pytest.mark.parametrize("kind", sorted(TEMPLATE_FILES))
def test_template_is_lint_clean(kind: str) -> None:
    path = templates_dir() / TEMPLATE_FILES[kind]
    if not path.exists():
        pytest.skip(f"{path.name} is not written yet")
    findings = lint_template(path)
    assert [f.render(path.name) for f in findings] == []


def test_lint_all_lists_every_kind() -> None:
    assert [r.kind for r in lint_all()] == list(TEMPLATE_FILES)
