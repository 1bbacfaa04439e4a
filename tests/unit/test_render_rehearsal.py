"""The demo's report: phases as headings, a short emulated block, next steps for real AWS."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tsm_infra.cli import cli
from tsm_infra.rehearsal import Rehearsal, RenderedNode
from tsm_infra.render import rehearsal_text
from tsm_infra.run import Outcome, RunResult
from tsm_infra.status import NodeState, StatusReport

EMULATED = [
    "Everything is emulated in memory by moto on 127.0.0.1; nothing reaches AWS.",
    "The licensed TSM container does not run, and EC2 instances do not boot.",
    *[f"Provider {i} emulates something." for i in range(20)],
    "Not enforced: IAM policies are stored, not evaluated.",
    "Not checked: hosted zone delegation.",
]


def _rehearsal(destroy: bool = True) -> Rehearsal:
    deploy = RunResult("deploy", "demo")
    deploy.outcomes.append(
        Outcome("tsm-demo-node0-kms", "kms", 0, "1" * 12, "eu-west-1", "created")
    )
    node = NodeState(0, "1" * 12, "eu-west-1", "n0.example.com", {"tsm-demo-node0-kms": "OK"})
    status = StatusReport("demo", 1, (node,), ("wiring agrees",), ())
    rendered = [RenderedNode(0, Path("configs/node0/config.toml"), {}, {1: "k"})]
    done = RunResult("destroy", "demo") if destroy else None
    return Rehearsal(deploy, EMULATED, rendered, status, [], {"s": 3}, {"deploy": 1.0}, done)


def test_the_phases_are_headings_in_order() -> None:
    text = rehearsal_text(_rehearsal(), "examples/three-nodes.yaml")
    headings = [line for line in text.splitlines() if line.startswith("== ")]
    assert headings == [
        "== 1. Deploy ==",
        "== 2. Node boot, played up to config.toml ==",
        "== 3. Checks ==",
        "== 4. Destroy ==",
        "== Emulated ==",
        "== Next: a real deployment ==",
    ]


def _block(text: str) -> list[str]:
    return text.split("== Emulated ==\n", 1)[1].split("\n\n", 1)[0].splitlines()


def test_the_emulated_block_is_short_and_verbose_lists_everything() -> None:
    short = _block(rehearsal_text(_rehearsal(), "s.yaml"))
    assert len(short) == 3
    assert "The licensed TSM container does not run" in short[1]
    assert "20 emulated behaviours and 2 things AWS checks that the emulator does not" in short[2]
    assert "--verbose" in short[2]
    full = _block(rehearsal_text(_rehearsal(), "s.yaml", verbose=True))
    assert full == [f"  - {line}" for line in EMULATED]


def test_next_steps_lead_to_a_real_deployment() -> None:
    text = rehearsal_text(_rehearsal(destroy=False), "examples/three-nodes.yaml")
    steps = text.split("== Next: a real deployment ==\n", 1)[1].splitlines()
    commands = [line.split()[1] for line in steps]
    assert commands == ["preflight", "deploy", "status", "destroy"]
    assert all("examples/three-nodes.yaml" in line for line in steps)
    assert "--endpoint-url" in steps[1]


def test_deploy_has_a_verbose_option() -> None:
    result = CliRunner().invoke(cli, ["deploy", "--help"])
    assert "--verbose" in result.output
