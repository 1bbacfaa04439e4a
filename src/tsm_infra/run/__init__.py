"""Carry out a plan across accounts: the executor, the handlers of its steps, the results.

`execute(plan, connector)` runs a deploy or a destroy plan alike. Each step starts as soon as
the steps it depends on are done; a failed step blocks only what depends on it; a change set
that would delete or replace a stateful resource is refused unless the operator named it; the
prompt is asked once per stage where it waits for an answer. Running `deploy` again resumes:
complete stacks are left alone or updated, nothing is generated again. Nothing here prints:
progress goes to a callback, results come back as values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tsm_infra.aws import Connector
from tsm_infra.plan import Plan, ShareStep, Step
from tsm_infra.run.executor import Executor, Handler
from tsm_infra.run.guards import check_destroy, retained
from tsm_infra.run.results import (
    OK_RESULTS,
    RESUME_ADVICE,
    DeployError,
    Event,
    Options,
    Outcome,
    OutcomeKind,
    Prompt,
    RunResult,
    always_yes,
)
from tsm_infra.run.sharing import ShareSteps
from tsm_infra.run.stack_steps import StackRun, StackSteps
from tsm_infra.stacks import Interrupted, StackError


def execute(
    plan: Plan,
    connector: Connector,
    *,
    prompt: Prompt = always_yes,
    report: Callable[[Event], None] | None = None,
    options: Options | None = None,
    template_body: Callable[[str], str] | None = None,
) -> RunResult:
    """Run every step of the plan; the result says how each stack ended, in the plan's order."""
    options = options or Options()
    if template_body is None:
        from tsm_infra.templates import template_body as rendered  # noqa: PLC0415

        template_body = rendered
    stop = threading.Event()
    started = time.monotonic()
    stacks = StackSteps(
        StackRun(
            cluster=plan.cluster,
            connector=connector,
            template_body=template_body,
            options=options,
            report=report or (lambda event: None),
            stop=stop,
            started=started,
        )
    )
    shares = ShareSteps(connector=connector, options=options, stop=stop)

    def handler_for(step: Step) -> Handler:
        return shares if isinstance(step, ShareStep) else stacks

    executor = Executor(handler_for, prompt, stop, question=_question)
    try:
        ended = executor.run(plan)
    except KeyboardInterrupt:  # outside the executor's own handling of it
        stop.set()
        raise Interrupted(RESUME_ADVICE.format(busy="")) from None
    result = RunResult(plan.command, plan.cluster)
    for step in plan.graph:
        done = ended.get(step.id)
        if done is None:
            continue
        if done.outcome is not None:
            result.outcomes.append(done.outcome)
        result.actions += done.actions
    if plan.command == "destroy":
        result.retained = retained(plan, stacks.deleted)
    result.seconds = time.monotonic() - started
    return result


def _question(stage: str, count: int) -> str:
    return f"Execute the {stage} phase's changes to {count} stack{'s' if count != 1 else ''}?"


__all__ = [
    "OK_RESULTS",
    "DeployError",
    "Event",
    "Options",
    "Outcome",
    "OutcomeKind",
    "Prompt",
    "RunResult",
    "StackError",
    "always_yes",
    "check_destroy",
    "execute",
]
