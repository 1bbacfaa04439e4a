"""cfn-lint over every template, with the project's .cfnlintrc: zero findings of any level."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tsm_infra.templates import (
    TEMPLATE_FILES,
    lint_all,
    lint_template,
    template_path,
    templates_dir,
)

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


def _references(node: object) -> set[str]:
    """Every name a template section refers to through Ref, GetAtt, Sub or ForEach collections."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(re.findall(r"\$\{([A-Za-z0-9]+)", str(text)))
            found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


@pytest.mark.parametrize("kind", sorted(TEMPLATE_FILES))
def test_every_parameter_is_used(kind: str) -> None:
    # cfn-lint's W2001 (unused parameter) is off for templates with a Transform; this is it
    from cfnlint.decode.decode import decode_str

    path = templates_dir() / TEMPLATE_FILES[kind]
    if not path.exists():
        pytest.skip(f"{path.name} is not written yet")
    template, errors = decode_str(path.read_text())
    assert not errors
    used = _references({k: v for k, v in template.items() if k != "Parameters"})
    assert sorted(set(template["Parameters"]) - used) == []


def test_the_unused_parameter_check_notices_one() -> None:
    template = {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"A": {"Ref": "P"}}}}}
    assert _references(template) == {"P"}
    assert _references({"Fn::Sub": ["x${Q}y${AWS::Region}", {}]}) == {"Q", "AWS"}


@pytest.mark.parametrize(("kind", "parameter"), [("core", "DnsName"), ("kms", "NodeDnsName")])
def test_the_templates_take_dns_names_up_to_acms_limit(kind: str, parameter: str) -> None:
    from cfnlint.decode.decode import decode_str

    from tsm_infra.limits import ACM_DOMAIN_LENGTH

    template, errors = decode_str(template_path(kind).read_text())
    assert not errors
    pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
    longest = "n" * (ACM_DOMAIN_LENGTH - len(".example.com")) + ".example.com"
    assert pattern.fullmatch(longest)
    assert not pattern.fullmatch("n" + longest)
