"""The executor on its own: fake handlers, a hand-made plan, no AWS."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from tests.helpers import VALID_SPEC
from tsm_infra.plan import Plan, StackStep, Stage, Step
from tsm_infra.run.executor import Done, Executor, Prepared
from tsm_infra.run.results import Outcome, always_yes
from tsm_infra.spec import load_spec_text
from tsm_infra.stacks import Interrupted

NODE = load_spec_text(VALID_SPEC).nodes[0]


def step(name: str, after: Sequence[str] = (), stage: str = "a") -> StackStep:
    return StackStep(
        kind="kms",
        node=NODE,
        access="",
        stack_name=name,
        template="",
        parameters={},
        depends_on=tuple(after),
        stage=stage,
    )


def plan(*steps: StackStep) -> Plan:
    stages = tuple(Stage(name, name) for name in dict.fromkeys(s.stage for s in steps))
    return Plan("deploy", "c", 1, "spec", steps, stages)


@dataclass
class Fake:
    """A handler whose steps take `delay` seconds, fail when listed, and record what ran."""

    delay: float = 0.0
    failing: set[str] = field(default_factory=set)
    review: bool = True
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(self, step: Step, inputs: Mapping[str, Mapping[str, str]]) -> Prepared:
        self.inputs[step.id] = dict(inputs)
        return Prepared(
            details=(f"{step.id}: change",),
            review=self.review,
            run=lambda: self._run(step),
            decline=lambda: Done(ok=False, outcome=self._outcome(step, "declined")),
        )

    def _run(self, step: Step) -> Done:
        with self.lock:
            self.started[step.id] = time.monotonic()
        time.sleep(self.delay)
        with self.lock:
            self.ended[step.id] = time.monotonic()
        if step.id in self.failing:
            return Done(ok=False, outcome=self._outcome(step, "failed"))
        return Done(ok=True, outcome=self._outcome(step, "created"), outputs={"Out": step.id})

    def failed(self, step: Step, reason: str) -> Done:
        return Done(ok=False, outcome=self._outcome(step, "failed", reason))

    def blocked(self, step: Step, causes: Sequence[Step], why: Sequence[str]) -> Done:
        names = ", ".join(cause.id for cause in causes)
        return Done(ok=False, outcome=self._outcome(step, "skipped", f"needs {names}"))

    @staticmethod
    def _outcome(step: Step, result: str, reason: str = "") -> Outcome:
        return Outcome(step.id, "kms", 0, "", "", result, reason)  # type: ignore[arg-type]


def run(p: Plan, handler: Fake, prompt: object = always_yes) -> dict[str, Done]:
    executor = Executor(
        lambda s: handler,
        prompt,  # type: ignore[arg-type]
        threading.Event(),
        question=lambda stage, n: f"{stage}: {n}?",
    )
    return executor.run(p)


def result(done: Mapping[str, Done]) -> dict[str, str]:
    return {k: v.outcome.result for k, v in done.items() if v.outcome is not None}


def test_independent_steps_run_at_the_same_time() -> None:
    handler = Fake(delay=0.3)
    started = time.monotonic()
    done = run(plan(step("a"), step("b"), step("c")), handler)
    assert time.monotonic() - started < 0.8  # three 0.3 s steps, not 0.9 s
    assert result(done) == {"a": "created", "b": "created", "c": "created"}


def test_a_step_starts_when_its_own_dependencies_are_done_not_a_whole_stage() -> None:
    class Uneven(Fake):
        def _run(self, step: Step) -> Done:
            self.delay = 0.5 if step.id == "slow" else 0.05
            return super()._run(step)

    handler = Uneven()
    run(plan(step("fast"), step("slow"), step("next", ["fast"], stage="b")), handler)
    assert handler.started["next"] < handler.ended["slow"]


def test_a_step_receives_the_outputs_of_the_steps_before_it() -> None:
    handler = Fake()
    run(plan(step("a"), step("b", ["a"])), handler)
    assert handler.inputs["b"] == {"a": {"Out": "a"}}


def test_a_failure_blocks_only_what_depends_on_it() -> None:
    handler = Fake(failing={"a"})
    done = run(
        plan(step("a"), step("b"), step("a2", ["a"]), step("b2", ["b"]), step("a3", ["a2"])),
        handler,
    )
    assert result(done) == {
        "a": "failed",
        "b": "created",
        "a2": "skipped",
        "b2": "created",
        "a3": "skipped",
    }
    # the cause named is the step that failed itself, not the one it blocked in turn
    assert done["a3"].outcome is not None
    assert done["a3"].outcome.reason == "needs a"


def test_an_asking_prompt_is_asked_once_per_stage_when_the_whole_stage_is_ready() -> None:
    asked: list[tuple[str, list[str]]] = []

    def prompt(question: str, details: Sequence[str]) -> bool:
        asked.append((question, list(details)))
        return True

    handler = Fake()
    p = plan(step("a1"), step("a2"), step("b1", ["a1", "a2"], "b"), step("b2", ["a1"], "b"))
    done = run(p, handler, prompt)
    assert [q for q, _ in asked] == ["a: 2?", "b: 2?"]
    assert asked[0][1] == ["a1: change", "a2: change"]
    assert set(result(done).values()) == {"created"}


def test_a_no_declines_the_stage_and_starts_nothing_after_it() -> None:
    handler = Fake()
    done = run(plan(step("a1"), step("a2"), step("b", ["a1"], "b")), handler, lambda q, d: False)
    assert result(done) == {"a1": "declined", "a2": "declined"}
    assert handler.started == {}


def test_a_prompt_that_never_asks_lets_each_step_go_as_soon_as_it_is_ready() -> None:
    shown: list[str] = []

    class Yes:
        asks = False

        def __call__(self, question: str, details: Sequence[str]) -> bool:
            shown.extend(details)
            return True

    class Uneven(Fake):
        def prepare(self, step: Step, inputs: Mapping[str, Mapping[str, str]]) -> Prepared:
            if step.id == "slow":
                time.sleep(0.4)
            return super().prepare(step, inputs)

    handler = Uneven()
    run(plan(step("fast"), step("slow")), handler, Yes())
    assert handler.started["fast"] < handler.started["slow"] - 0.2
    assert sorted(shown) == ["fast: change", "slow: change"]


def test_ctrl_c_stops_the_waiting_and_says_how_to_resume() -> None:
    stop = threading.Event()

    class Waiting(Fake):
        def _run(self, step: Step) -> Done:
            if stop.wait(5):
                return self.failed(step, "interrupted while waiting")
            return super()._run(step)

    import _thread

    threading.Timer(0.3, _thread.interrupt_main).start()
    executor = Executor(lambda s: Waiting(), always_yes, stop, question=lambda s, n: "")
    started = time.monotonic()
    with pytest.raises(Interrupted) as caught:
        executor.run(plan(step("a"), step("b", ["a"])))
    assert time.monotonic() - started < 3
    assert "run the same command again to resume" in str(caught.value)
    assert "(a)" in str(caught.value)  # the stack it was waiting for


def test_a_no_also_undoes_what_another_stage_has_prepared_meanwhile() -> None:
    handler = Fake()
    done = run(plan(step("a1"), step("b1", stage="b")), handler, lambda q, d: False)
    assert result(done) == {"a1": "declined", "b1": "declined"}
    assert handler.started == {}
