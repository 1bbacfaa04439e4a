"""The command line itself: start-up time, schema, error mapping."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from tsm_infra.cli import cli


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    # a fresh interpreter, as a user's shell would start it
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from tsm_infra.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('pydantic', 'boto3', 'botocore', 'cfnlint', 'yaml') "
        "if m in sys.modules)\n"
        "print(repr(heavy), time.perf_counter() - t, file=sys.stderr)\n"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    heavy, _ = result.stderr.strip().rsplit(" ", 1)
    assert heavy == "[]"
    assert "Usage: " in result.stdout
    # the bound, with the interpreter's own start-up included
    assert elapsed < 1.0


def test_schema_is_a_json_schema_that_accepts_the_examples(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for example in (repo / "examples").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(example.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"cluster": "x", "threshold": 1, "nodes": [], "bogus": 1}, schema)


def test_validate_json_output(repo: Path) -> None:
    result = CliRunner().invoke(
        cli, ["validate", str(repo / "examples/dev-single-account.yaml"), "--output", "json"]
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["valid"] is True
    assert any("allow_shared_account" in w for w in data["warnings"])


def test_unexpected_errors_name_no_details_without_debug(
    monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    def boom(*_: object) -> None:
        raise KeyError("a value that could be anything")

    monkeypatch.setattr("tsm_infra.plan.deploy_plan", boom)
    spec = str(repo / "examples/three-nodes.yaml")
    result = CliRunner().invoke(cli, ["plan", spec, "--no-lint"])
    assert result.exit_code == 1
    assert result.stderr == (
        "internal error (KeyError); run again with --debug for the traceback and report it\n"
    )
    debug = CliRunner().invoke(cli, ["--debug", "plan", spec, "--no-lint"])
    assert isinstance(debug.exception, KeyError)


def test_installed_console_script_runs(repo: Path) -> None:
    script = Path(sys.executable).parent / "tsm-infra"
    if not script.exists():
        pytest.skip("the console script is installed by `make setup`; not in this interpreter")
    result = subprocess.run(
        [str(script), "validate", str(repo / "examples/three-nodes.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "valid: cluster acme-vault" in result.stdout
