"""How long the stack steps expect an operation to take, which paces their polls."""

from __future__ import annotations

import json
import threading

from tsm_infra import durations
from tsm_infra.aws import Connector
from tsm_infra.run.results import Options
from tsm_infra.run.stack_steps import StackRun
from tsm_infra.templates import template_body


def _run(scale: float) -> StackRun:
    return StackRun(
        cluster="c",
        connector=Connector(),
        template_body=template_body,
        options=Options(durations_scale=scale),
        report=lambda event: None,
        stop=threading.Event(),
        started=0.0,
    )


def test_nothing_is_expected_where_durations_are_unknown() -> None:
    assert _run(0.0).expected("kms", {}, "create") is None


def test_a_create_is_expected_to_take_its_templates_longest_chain_scaled() -> None:
    timeline = durations.schedule(json.loads(template_body("kms")), 1.0)
    longest = max(end for _, end in timeline.values())
    assert _run(1.0).expected("kms", {}, "create") == longest
    assert _run(0.05).expected("kms", {}, "create") == longest * 0.05
    deleting = _run(1.0).expected("kms", {}, "delete")
    assert deleting is not None
    assert deleting > 0
