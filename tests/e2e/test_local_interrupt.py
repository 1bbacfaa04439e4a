"""Ctrl-C during `deploy --local`: the emulator went with the process, so nothing resumes."""

from __future__ import annotations

import _thread
import time
from pathlib import Path

import pytest

from tests.helpers import REPO
from tsm_infra.rehearsal import rehearse
from tsm_infra.run import Event
from tsm_infra.spec import load_spec
from tsm_infra.stacks import Interrupted

THREE_NODES = REPO / "examples" / "three-nodes.yaml"


def test_ctrl_c_says_the_emulator_is_gone_not_resume(tmp_path: Path) -> None:
    pressed: list[str] = []

    def report(event: Event) -> None:
        if event.status == "checking" and not pressed:  # while the KMS phase prepares
            pressed.append(event.stack)
            _thread.interrupt_main()
            time.sleep(0.5)  # keep the phase busy until the main thread has seen it

    with pytest.raises(Interrupted) as caught:
        rehearse(load_spec(THREE_NODES), out_dir=tmp_path, report=report)
    message = str(caught.value)
    assert pressed
    assert "the in-memory emulator stopped with it" in message
    assert "start from scratch" in message
    assert "nothing to resume" in message
    assert "run the same command again to resume" not in message
