"""`tsm-infra deploy --local` as a user runs it: its own emulator, started and stopped."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.helpers import REPO
from tsm_infra.cli import cli

THREE_NODES = REPO / "examples" / "three-nodes.yaml"


def test_local_deploy_says_what_is_emulated_and_writes_no_env_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            str(THREE_NODES),
            "--local",
            "--then-destroy",
            "--configs-dir",
            str(tmp_path),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "Local rehearsal: nothing here touched AWS." in result.stdout
    assert "licensed TSM container does not run" in result.stdout
    assert "Rehearsal passed." in result.stdout
    # the demo reads by phase, keeps the emulated list short, and says what comes next
    headings = [line for line in result.stdout.splitlines() if line.startswith("== ")]
    assert headings[0] == "== 1. Deploy ==" and headings[-1] == "== Next: a real deployment =="
    emulated = result.stdout.split("== Emulated ==\n", 1)[1].split("\n\n", 1)[0]
    assert len(emulated.splitlines()) == 3
    assert f"tsm-infra preflight {THREE_NODES}" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node0", "node1", "node2"]
    assert not list(tmp_path.rglob("*.env"))
