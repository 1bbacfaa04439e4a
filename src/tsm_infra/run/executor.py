"""Runs any plan: every step as soon as the steps it depends on are done, in parallel.

The executor knows nothing of KMS or Core stacks. It asks a handler to prepare each step once
the step's dependencies have succeeded (a step behind a failed one is blocked, and only it),
holds prepared steps at their stage's review point when the prompt waits for an answer, runs
them, and collects what each step ended as. Ctrl-C stops the waiting: the handlers' sleeps wake
up, every thread returns, and `Interrupted` says how to resume. Nothing here prints or calls AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from tsm_infra.errors import TsmInfraError
from tsm_infra.plan import Plan, Step
from tsm_infra.run.results import RESUME_ADVICE, Outcome, Prompt, waits_for_answer
from tsm_infra.stacks import Interrupted


@dataclass(frozen=True)
class Done:
    """How a step ended: its outcome (stack steps), outputs for the steps after it, actions."""

    ok: bool
    outcome: Outcome | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    # for a step without an outcome that did not succeed: what the steps behind it are told
    why: str = ""
    # the steps that failed themselves and so kept this one from running
    causes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """A step ready to run, or already ended (`done`) while it was being prepared.

    `details` say what running it will do, shown at its stage's review point when `review`;
    `decline` is called instead of `run` when the operator says no.
    """

    done: Done | None = None
    details: tuple[str, ...] = ()
    review: bool = False
    run: Callable[[], Done] | None = None
    decline: Callable[[], Done] | None = None


class Handler(Protocol):
    """Carries out the steps of one kind for the executor."""

    def prepare(self, step: Step, inputs: Mapping[str, Mapping[str, str]]) -> Prepared:
        """Look at the step's target and get it ready; `inputs` are finished steps' outputs."""
        ...

    def failed(self, step: Step, reason: str) -> Done:
        """The step's work raised `reason` (or was interrupted)."""
        ...

    def blocked(self, step: Step, causes: Sequence[Step], why: Sequence[str]) -> Done:
        """The step will not run: the `causes` failed (`why` adds what they said)."""
        ...


@dataclass
class _Slot:
    step: Step
    state: str = "waiting"  # waiting | preparing | prepared | running | done
    prepared: Prepared | None = None
    done: Done | None = None


class Executor:
    """Runs one plan with the handler of each step kind and one prompt."""

    def __init__(
        self,
        handler_for: Callable[[Step], Handler],
        prompt: Prompt,
        stop: threading.Event,
        *,
        question: Callable[[str, int], str],
    ) -> None:
        self._handler_for = handler_for
        self._prompt = prompt
        self._stop = stop
        self._question = question
        self._declined = False

    def run(self, plan: Plan) -> dict[str, Done]:
        """Every step's ending, by step id; steps never reached (after a "no") are absent."""
        slots = {step.id: _Slot(step) for step in plan.graph}
        workers = max(1, len(slots))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tsm-step") as pool:
            running: dict[Future[Prepared | Done], _Slot] = {}
            try:
                while True:
                    self._schedule(plan, slots, pool, running)
                    if not running:
                        break
                    finished, _ = wait(list(running), timeout=0.05, return_when=FIRST_COMPLETED)
                    for future in finished:
                        self._finish(running.pop(future), future.result())
            except KeyboardInterrupt:
                self._stop.set()
                for future, slot in running.items():
                    self._finish(slot, future.result())
                raise Interrupted(RESUME_ADVICE.format(busy=_busy(slots))) from None
        return {step_id: slot.done for step_id, slot in slots.items() if slot.done is not None}

    # ------------------------------------------------------------------ scheduling

    def _schedule(
        self,
        plan: Plan,
        slots: Mapping[str, _Slot],
        pool: ThreadPoolExecutor,
        running: dict[Future[Prepared | Done], _Slot],
    ) -> None:
        """Start what can start; block what cannot; ask at the review points that are ready."""
        if self._declined:
            # a step whose preparation ended after the "no" is undone as well
            late = [
                slot
                for slot in slots.values()
                if slot.state == "prepared" and slot.prepared is not None and slot.prepared.review
            ]
            if late:
                self._decline(late, pool, running)
            return
        changed = True
        while changed and not self._declined:
            changed = False
            for slot in slots.values():
                if slot.state != "waiting":
                    continue
                needs = [slots[need] for need in slot.step.depends_on if need in slots]
                if any(need.done is not None and not need.done.ok for need in needs):
                    slot.done = self._blocked(slot, needs, slots)
                    slot.state, changed = "done", True
                elif all(need.done is not None for need in needs):
                    inputs = _outputs(slots)
                    slot.state, changed = "preparing", True
                    running[pool.submit(self._prepare, slot, inputs)] = slot
            changed |= self._review(plan, slots, pool, running)

    def _review(
        self,
        plan: Plan,
        slots: Mapping[str, _Slot],
        pool: ThreadPoolExecutor,
        running: dict[Future[Prepared | Done], _Slot],
    ) -> bool:
        """Run prepared steps, asking first where they need it; True when something started."""
        ready = [slot for slot in slots.values() if slot.state == "prepared"]
        started = False
        for stage in plan.stages:
            in_stage = [slot for slot in slots.values() if slot.step.stage == stage.name]
            batch = [slot for slot in ready if slot.step.stage == stage.name]
            asked = [slot for slot in batch if slot.prepared and slot.prepared.review]
            if asked and waits_for_answer(self._prompt):
                if any(slot.state in ("waiting", "preparing") for slot in in_stage):
                    batch = [slot for slot in batch if slot not in asked]  # the stage is not ready
                elif not self._ask(stage.name, asked):
                    # every change set prepared so far is undone, in this stage or another
                    held = [s for s in ready if s.prepared is not None and s.prepared.review]
                    self._decline(held, pool, running)
                    return True
            elif asked:
                for slot in asked:  # nobody to wait for: show each as it is ready
                    self._prompt(self._question(stage.name, 1), _details(slot))
            for slot in batch:
                assert slot.prepared is not None and slot.prepared.run is not None  # noqa: S101
                slot.state, started = "running", True
                running[pool.submit(self._work, slot, slot.prepared.run)] = slot
        return started

    def _ask(self, stage: str, slots: Sequence[_Slot]) -> bool:
        details = [line for slot in slots for line in _details(slot)]
        return self._prompt(self._question(stage, len(slots)), details)

    def _decline(
        self,
        slots: Sequence[_Slot],
        pool: ThreadPoolExecutor,
        running: dict[Future[Prepared | Done], _Slot],
    ) -> None:
        """The operator said no: undo what the stage prepared, and start nothing more."""
        self._declined = True
        for slot in slots:
            assert slot.prepared is not None and slot.prepared.decline is not None  # noqa: S101
            slot.state = "running"
            running[pool.submit(self._work, slot, slot.prepared.decline)] = slot

    def _blocked(self, slot: _Slot, needs: Sequence[_Slot], slots: Mapping[str, _Slot]) -> Done:
        failed = [need for need in needs if need.done is not None and not need.done.ok]
        causes: list[str] = []
        for need in failed:
            assert need.done is not None  # noqa: S101 - filtered above
            for cause in need.done.causes or (need.step.id,):
                if cause not in causes:
                    causes.append(cause)
        why = [need.done.why for need in failed if need.done is not None and need.done.why]
        cause_steps = [slots[cause].step for cause in causes if slots[cause].done is not None]
        done = self._handler_for(slot.step).blocked(slot.step, cause_steps, why)
        return Done(
            ok=False,
            outcome=done.outcome,
            why=done.why,
            causes=tuple(c for c in causes if slots[c].done is not None),
        )

    # ------------------------------------------------------------------ in the worker threads

    def _prepare(self, slot: _Slot, inputs: Mapping[str, Mapping[str, str]]) -> Prepared | Done:
        handler = self._handler_for(slot.step)
        try:
            return handler.prepare(slot.step, inputs)
        except Interrupted:
            return handler.failed(slot.step, "interrupted while waiting")
        except TsmInfraError as exc:
            return handler.failed(slot.step, str(exc))

    def _work(self, slot: _Slot, work: Callable[[], Done]) -> Done:
        handler = self._handler_for(slot.step)
        try:
            return work()
        except Interrupted:
            return handler.failed(slot.step, "interrupted while waiting")
        except TsmInfraError as exc:
            return handler.failed(slot.step, str(exc))

    @staticmethod
    def _finish(slot: _Slot, result: Prepared | Done) -> None:
        if isinstance(result, Done):
            slot.done, slot.state = result, "done"
        elif result.done is not None:
            slot.done, slot.state = result.done, "done"
        else:
            slot.prepared, slot.state = result, "prepared"


def _details(slot: _Slot) -> tuple[str, ...]:
    return slot.prepared.details if slot.prepared is not None else ()


def _outputs(slots: Mapping[str, _Slot]) -> dict[str, Mapping[str, str]]:
    return {
        step_id: slot.done.outputs
        for step_id, slot in slots.items()
        if slot.done is not None and slot.done.ok
    }


def _busy(slots: Mapping[str, _Slot]) -> str:
    busy = [
        slot.done.outcome.stack
        for slot in slots.values()
        if slot.done is not None
        and slot.done.outcome is not None
        and "interrupt" in slot.done.outcome.reason
    ]
    return f" ({', '.join(busy)})" if busy else ""
