"""cfn-lint over every rendered template, with the project's .cfnlintrc: zero findings of any
level; and the lint cache that lets a repeated `plan` skip cfn-lint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tsm_infra import linting
from tsm_infra.cli import cli
from tsm_infra.templates import (
    TEMPLATE_FILES,
    lint_all,
    lint_config_path,
    lint_template,
    template_body,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def lint_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder of this module's own, filled by linting every template once."""
    home = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        lint_all()
    return home


@pytest.fixture
def cache_home(lint_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(lint_cache))
    return lint_cache


def test_the_gate_reports_errors_and_warnings_with_lines(cache_home: Path) -> None:
    text = (FIXTURES / "bad.yaml").read_text()
    findings = {(f.rule, f.line) for f in linting.lint_text(text, lint_config_path())}
    assert ("E3002", 10) in findings  # unknown property TopicNam
    assert ("W2001", 4) in findings  # parameter never used


@pytest.mark.parametrize("kind", sorted(TEMPLATE_FILES))
def test_template_is_lint_clean(kind: str, cache_home: Path) -> None:
    findings = lint_template(kind)
    assert [f.render(TEMPLATE_FILES[kind]) for f in findings] == []


def test_lint_all_lists_every_kind(cache_home: Path) -> None:
    assert [r.kind for r in lint_all()] == list(TEMPLATE_FILES)


def test_a_repeated_lint_reads_the_cache_without_importing_cfnlint(cache_home: Path) -> None:
    script = (
        "import sys\n"
        "from tsm_infra.templates import lint_all\n"
        "results = lint_all()\n"
        "assert all(r.clean for r in results), results\n"
        "print('cfnlint' in sys.modules, len(results))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "2"]


def test_the_cache_keys_on_the_regions(cache_home: Path) -> None:
    entries = set((cache_home / "tsm-infra" / "lint").iterdir())
    text = (FIXTURES / "bad.yaml").read_text()
    linting.lint_text(text, lint_config_path())
    known = set((cache_home / "tsm-infra" / "lint").iterdir())
    # regions the settings already lint against are the settings' own entry ...
    linting.lint_text(text, lint_config_path(), ["eu-west-1", "us-east-1"])
    assert set((cache_home / "tsm-infra" / "lint").iterdir()) == known
    # ... and one more region is an entry of its own
    linting.lint_text(text, lint_config_path(), ["sa-east-1"])
    assert len(set((cache_home / "tsm-infra" / "lint").iterdir()) - known) == 1
    assert entries <= known


def test_a_damaged_cache_entry_is_linted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = (FIXTURES / "bad.yaml").read_text()
    first = linting.lint_text(text, lint_config_path())
    [entry] = (tmp_path / "tsm-infra" / "lint").iterdir()
    for damage in ("{not json", '[{"rule": "E1"}]', "{}"):
        entry.write_text(damage)
        assert linting.lint_text(text, lint_config_path()) == first
        assert json.loads(entry.read_text())[0].keys() == {"rule", "level", "line", "message"}


def test_lint_says_which_template_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSM_INFRA_TEMPLATES", str(tmp_path))
    result = CliRunner().invoke(cli, ["lint"])
    assert result.exit_code == 2
    assert f"{tmp_path / 'kms.yaml'}, {tmp_path / 'core.yaml'}: no such template" in result.output


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
    template = json.loads(template_body(kind))
    used = _references({k: v for k, v in template.items() if k != "Parameters"})
    assert sorted(set(template["Parameters"]) - used) == []


def test_the_unused_parameter_check_notices_one() -> None:
    template = {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"A": {"Ref": "P"}}}}}
    assert _references(template) == {"P"}
    assert _references({"Fn::Sub": ["x${Q}y${AWS::Region}", {}]}) == {"Q", "AWS"}


@pytest.mark.parametrize(("kind", "parameter"), [("core", "DnsName"), ("kms", "NodeDnsName")])
def test_the_templates_take_dns_names_up_to_acms_limit(kind: str, parameter: str) -> None:
    from tsm_infra.limits import ACM_DOMAIN_LENGTH

    template = json.loads(template_body(kind))
    pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
    longest = "n" * (ACM_DOMAIN_LENGTH - len(".example.com")) + ".example.com"
    assert pattern.fullmatch(longest)
    assert not pattern.fullmatch("n" + longest)


def test_a_finding_after_inlined_code_names_the_source_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_home: Path
) -> None:
    bad = (FIXTURES / "bad.yaml").read_text().split("\n")
    # the fixture with a Lambda function carrying inline code put first among its resources
    at = bad.index("Resources:") + 1
    function = [
        "  Fn:",
        "    Type: AWS::Lambda::Function",
        "    Properties:",
        "      Runtime: python3.12",
        "      Handler: index.handler",
        "      Role: arn:aws:iam::123456789012:role/r",
        "      Code:",
        "        # tsm-infra: inline tsm_infra.functions.keygen",
        '        ZipFile: ""',
    ]
    (tmp_path / "kms.yaml").write_text("\n".join(bad[:at] + function + bad[at:]))
    monkeypatch.setenv("TSM_INFRA_TEMPLATES", str(tmp_path))
    findings = {(f.rule, f.line) for f in lint_template("kms")}
    assert ("E3002", 10 + len(function)) in findings  # TopicNam, at its line in the file
