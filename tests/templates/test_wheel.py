"""The package as a user installs it: a wheel, in a virtualenv outside the checkout, runs
`lint`, `plan` and `deploy --local`; without the `local` extra, `--local` names it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import REPO
from tsm_infra import localmode
from tsm_infra.cli import cli

EXAMPLE = REPO / "examples" / "three-nodes.yaml"
TEMPLATES = ("tsm_infra/cfn/kms.yaml", "tsm_infra/cfn/core.yaml", "tsm_infra/cfn/.cfnlintrc")


def _run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: int = 120
) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(work: Path) -> Path:
    """A wheel of the working tree's sources, built from a copy (no build/ left in the checkout)."""
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    dist = work / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run(*pip, "wheel", "--quiet", "--no-deps", "-w", dist, source, cwd=work, timeout=300)
    [wheel] = dist.glob("tsm_infra-*.whl")
    return wheel


def _venv_with(wheel: Path, work: Path) -> Path:
    """A virtualenv holding the wheel, and this one's libraries as its dependencies."""
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    _run(*pip, "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=work)
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work)
    # a plain path line: this venv's packages (moto, boto3, cfn-lint ...) become importable,
    # while the .pth files there, the checkout's editable install among them, are not read
    Path(purelib.strip(), "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


@pytest.mark.slow
def test_an_installed_wheel_lints_plans_and_deploys_locally(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(TEMPLATES) <= names
        kms = archive.read("tsm_infra/cfn/kms.yaml").decode()
        core = archive.read("tsm_infra/cfn/core.yaml").decode()
    # the templates ship their markers, not copies of the code
    handler_first_line = (REPO / "src/tsm_infra/functions/keygen.py").read_text().split("\n")[0]
    assert handler_first_line not in kms
    assert max(len(line) for line in (kms + core).split("\n")) < 400

    venv = _venv_with(wheel, tmp_path)
    run_dir = tmp_path / "elsewhere"
    (run_dir / "examples").mkdir(parents=True)
    shutil.copy(EXAMPLE, run_dir / "examples" / EXAMPLE.name)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "TSM_INFRA_TEMPLATES", "VIRTUAL_ENV")
    }
    tool = venv / "bin" / "tsm-infra"
    where = _run(
        venv / "bin" / "python",
        "-c",
        "import tsm_infra; print(tsm_infra.__file__)",
        cwd=run_dir,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(venv)

    linted = _run(tool, "lint", cwd=run_dir, env=env, timeout=300)
    assert linted.count(": clean") == 2
    assert str(venv) in linted  # the installed templates, not the checkout's
    planned = _run(tool, "plan", "examples/three-nodes.yaml", cwd=run_dir, env=env)
    assert "tsm-acme-vault-node2-core" in planned
    _run(
        tool,
        "deploy",
        "examples/three-nodes.yaml",
        "--local",
        "--yes",
        cwd=run_dir,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("command", [["deploy", str(EXAMPLE), "--local", "--yes"], ["emulator"]])
def test_local_mode_names_the_extra_when_moto_is_missing(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localmode, "LOCAL_MODULES", ("moto", "tsm_no_such_module"))
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2, result.output
    assert localmode.MISSING_LOCAL_EXTRA in result.output
    assert "tsm_no_such_module" in result.output
    assert "moto," not in result.output  # only what is missing


def test_the_local_modules_are_there_in_development() -> None:
    assert localmode.missing_local_modules() == []
    localmode.require_local_extra()
