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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node0", "node1", "node2"]
    assert not list(tmp_path.rglob("*.env"))
