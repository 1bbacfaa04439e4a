"""Deploying and deleting one stack, for the executor: observe, decide, change set, execute.

The decisions themselves are `decide` and `judge` (pure, table-tested); this module does the
AWS side of each: describe the stack, wait while it is busy, run the guards the step carries,
make and review the change set, execute or delete it, and report progress as it goes.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from tsm_infra import durations
from tsm_infra.aws import Connector
from tsm_infra.contract import TAG_TEMPLATE
from tsm_infra.plan import (
    LEFTOVER_SECRETS,
    LIFT_DELETION_PROTECTION,
    STATEFUL_REPLACEMENT,
    ParamValue,
    StackStep,
    Step,
    references,
)
from tsm_infra.run.decide import (
    DONE,
    ChangeSet,
    Delete,
    Execute,
    Finish,
    Observed,
    Wait,
    Wanted,
    decide,
    judge,
)
from tsm_infra.run.executor import Done, Prepared
from tsm_infra.run.results import DeployError, Event, Options, Outcome, OutcomeKind
from tsm_infra.stacks import Interrupted, Progress, Review, StackInfo, StackOps


class StackRun:
    """What the stack steps of one run share: sessions, rendered templates, progress, clocks."""

    def __init__(
        self,
        *,
        cluster: str,
        connector: Connector,
        template_body: Callable[[str], str],
        options: Options,
        report: Callable[[Event], None],
        stop: threading.Event,
        started: float,
    ) -> None:
        self.cluster = cluster
        self.connector = connector
        self._template_body = template_body
        self.options = options
        self._report = report
        self._stop = stop
        self._run_started = started
        self._lock = threading.Lock()
        self._bodies: dict[str, tuple[str, str]] = {}
        self._ops: dict[tuple[str, str], StackOps] = {}
        self.step_started: dict[str, float] = {}

    def ops_for(self, step: StackStep) -> StackOps:
        """The account's stack operations, opening its session on first use.

        Called in the step's own thread, so that an account that cannot be reached fails its
        stacks only, not the run.
        """
        key = (step.account, step.region)
        with self._lock:
            found = self._ops.get(key)
        if found is not None:
            return found
        session = self.connector.for_node(step.node)
        ops = StackOps(
            session.client("cloudformation"),
            poll_interval=self.options.poll_interval,
            timeout=self.options.timeout,
            sleep=self.sleep,
        )
        with self._lock:
            return self._ops.setdefault(key, ops)

    def body(self, kind: str) -> tuple[str, str]:
        """The template body of a kind, rendered once per run, and its SHA-256."""
        with self._lock:
            if kind not in self._bodies:
                body = self._template_body(kind)
                self._bodies[kind] = (body, hashlib.sha256(body.encode()).hexdigest())
            return self._bodies[kind]

    def expected(
        self, kind: str, parameters: Mapping[str, str], operation: durations.Operation
    ) -> float | None:
        """How long creating or deleting a stack of this kind typically takes here, if known."""
        scale = self.options.durations_scale
        if scale <= 0:
            return None
        body, _ = self.body(kind)
        try:
            timeline = durations.schedule(
                json.loads(body), scale, parameters=parameters, operation=operation
            )
        except ValueError:  # an estimate only: without it the polls simply back off
            return None
        return max((end for _, end in timeline.values()), default=0.0) or None

    def sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Interrupted("interrupted")

    def progress(self, step: StackStep) -> Callable[[Progress], None]:
        return lambda update: self.emit(step, update.status, update)

    def emit(self, step: StackStep, status: str, progress: Progress | None = None) -> None:
        started = self.step_started.get(step.id)
        self._report(
            Event(
                stack=step.stack_name,
                node=step.node_index,
                account=step.account,
                region=step.region,
                status=status,
                done=progress.done if progress else 0,
                total=progress.total if progress else 0,
                elapsed=time.monotonic() - started if started else 0.0,
            )
        )

    def done(
        self,
        step: StackStep,
        result: OutcomeKind,
        reason: str = "",
        *,
        info: StackInfo | None = None,
        review: Review | None = None,
    ) -> Done:
        now = time.monotonic()
        started = self.step_started.get(step.id, now)
        outcome = Outcome(
            stack=step.stack_name,
            kind=step.kind,
            node=step.node_index,
            account=step.account,
            region=step.region,
            result=result,
            reason=" ".join(reason.split()),
            changes=tuple(change.describe() for change in review.changes) if review else (),
            seconds=now - started,
            started=started - self._run_started,
            ended=now - self._run_started,
        )
        self.emit(step, result)
        return Done(
            ok=outcome.ok,
            outcome=outcome,
            outputs=dict(info.outputs) if info is not None and outcome.ok else {},
        )


class StackSteps:
    """The handler of stack steps: deploy or delete, one handler per run, shared by its threads."""

    def __init__(self, run: StackRun) -> None:
        self._run = run
        self.deleted: dict[str, StackInfo] = {}  # what each deleted stack was, for the report

    # ------------------------------------------------------------------ the handler protocol

    def prepare(self, step: Step, inputs: Mapping[str, Mapping[str, str]]) -> Prepared:
        """Observe the stack and decide; prepare (and review) the change set it needs."""
        assert isinstance(step, StackStep)  # noqa: S101 - the executor routes by kind
        self._run.step_started[step.id] = time.monotonic()
        self._run.emit(step, "checking")
        ops = self._run.ops_for(step)
        if step.action == "delete":
            return self._prepare_delete(step, ops)
        parameters = {name: _resolve(value, inputs) for name, value in step.parameters.items()}
        body, digest = self._run.body(step.kind)
        wanted = Wanted(parameters, {**step.tags, TAG_TEMPLATE: digest}, step.template_defaults)
        info, decision = self._observe(step, ops, wanted)
        if isinstance(decision, Finish):
            return Prepared(done=self._run.done(step, decision.result, decision.reason, info=info))
        assert isinstance(decision, ChangeSet)  # noqa: S101 - deploy decisions end so
        if decision.verb == "create" and LEFTOVER_SECRETS in step.guards:
            left = self._leftover_secrets(step)
            if left:
                return Prepared(done=self._run.done(step, "failed", left))
        if decision.verb == "replace":
            return self._prepare_replace(step, ops, body, wanted)
        if decision.discard_empty_stack and info is not None:
            ops.delete(info.name)
        resume = decision.verb == "resume"
        self._run.emit(step, "resuming: creating change set" if resume else "creating change set")
        review = ops.prepare(step.stack_name, body, parameters, wanted.tags, create=decision.create)
        refused = (
            review.refused(self._run.options.allow_replace)
            if STATEFUL_REPLACEMENT in step.guards
            else []
        )
        first_failure = ""
        if review.empty and resume and info is not None:
            first_failure = ops.first_failure(info.name, info.stack_id)
        verdict = judge(
            decision,
            None if review.empty else review.changes,
            refused=refused,
            observed=_observed(info),
            first_failure=first_failure,
        )
        if isinstance(verdict, Finish):
            if refused:
                ops.discard(review)
            return Prepared(
                done=self._run.done(step, verdict.result, verdict.reason, review=review)
            )
        self._run.emit(step, "change set ready")
        return Prepared(
            details=_review_lines(step, verdict, review),
            review=True,
            run=lambda: self._execute(step, ops, review, verdict, parameters),
            decline=lambda: self._decline(step, ops, review),
        )

    def failed(self, step: Step, reason: str) -> Done:
        """The step raised: a failed outcome with the reason (less the stack's own name)."""
        assert isinstance(step, StackStep)  # noqa: S101
        return self._run.done(step, "failed", reason.removeprefix(f"{step.stack_name}: "))

    def blocked(self, step: Step, causes: Sequence[Step], why: Sequence[str]) -> Done:
        """Skipped: the steps it needs did not complete (for a delete: were not deleted)."""
        assert isinstance(step, StackStep)  # noqa: S101
        names = [cause.id for cause in causes if isinstance(cause, StackStep)]
        if step.action == "delete":
            reason = f"{', '.join(names)} must be deleted first"
        else:
            parts = [f"needs {', '.join(names)}, which did not complete"] if names else []
            reason = "; ".join([*parts, *why])
        return self._run.done(step, "skipped", reason)

    # ------------------------------------------------------------------ deploy

    def _observe(
        self, step: StackStep, ops: StackOps, wanted: Wanted | None
    ) -> tuple[StackInfo | None, Finish | ChangeSet | Delete]:
        """The stack's state and what to do with it, waiting first while it is busy."""
        info = ops.describe(step.stack_name)
        while True:
            decision = decide(
                step.action,
                _observed(info),
                wanted,
                lift_protection=LIFT_DELETION_PROTECTION in step.guards,
            )
            if not isinstance(decision, Wait):
                return info, decision
            assert info is not None  # noqa: S101 - only an existing stack is busy
            self._run.emit(step, f"waiting for {info.status}")
            info = ops.settle(step.stack_name, lambda p: self._run.emit(step, p.status, p))

    def _prepare_replace(
        self, step: StackStep, ops: StackOps, body: str, wanted: Wanted
    ) -> Prepared:
        """A failed first create left ROLLBACK_COMPLETE: delete it and create it again."""
        self._run.emit(step, "needs replacing")
        where = _where(step)

        def replace() -> Done:
            progress = self._run.progress(step)
            ops.delete(
                step.stack_name,
                progress,
                expected=self._run.expected(step.kind, wanted.parameters, "delete"),
            )
            review = ops.prepare(
                step.stack_name, body, dict(wanted.parameters), wanted.tags, create=True
            )
            info = ops.execute(
                review,
                progress,
                expected=self._run.expected(step.kind, wanted.parameters, "create"),
            )
            return self._run.done(step, "replaced", info=info, review=review)

        return Prepared(
            details=(
                f"{where}: delete the stack left in ROLLBACK_COMPLETE by a failed first create, "
                "and create it again",
            ),
            review=True,
            run=replace,
            decline=lambda: self._run.done(step, "declined", "not confirmed; nothing was changed"),
        )

    def _execute(
        self,
        step: StackStep,
        ops: StackOps,
        review: Review,
        verdict: Execute,
        parameters: Mapping[str, str],
    ) -> Done:
        # an update takes what its changes take: only a create is paced by the typical duration
        expected = (
            self._run.expected(step.kind, parameters, "create")
            if verdict.verb == "create"
            else None
        )
        info = ops.execute(review, self._run.progress(step), expected=expected)
        return self._run.done(step, DONE[verdict.verb], info=info, review=review)

    def _decline(self, step: StackStep, ops: StackOps, review: Review) -> Done:
        ops.discard(review)
        return self._run.done(step, "declined", "not confirmed; nothing was changed", review=review)

    def _leftover_secrets(self, step: StackStep) -> str:
        """Why a new KMS stack would fail on secrets an earlier deployment kept, or ""."""
        from tsm_infra.preflight import leftover_advice, leftover_secrets  # noqa: PLC0415

        try:
            taken = leftover_secrets(
                self._run.connector.for_node(step.node), self._run.cluster, step.node
            )
        except Exception:
            return ""
        return "; ".join(leftover_advice(taken)) if taken else ""

    # ------------------------------------------------------------------ delete

    def _prepare_delete(self, step: StackStep, ops: StackOps) -> Prepared:
        info, decision = self._observe(step, ops, None)
        if isinstance(decision, Finish):
            return Prepared(done=self._run.done(step, decision.result, decision.reason))
        assert isinstance(decision, Delete) and info is not None  # noqa: S101
        self.deleted[step.id] = info
        return Prepared(run=lambda: self._delete(step, ops, info, decision))

    def _delete(self, step: StackStep, ops: StackOps, info: StackInfo, decision: Delete) -> Done:
        from tsm_infra.protection import lift_deletion_protection  # noqa: PLC0415

        lifted: list[str] = []
        if decision.lift_protection:
            # on the resources themselves, whatever state the stack is in, never through an
            # update (which would re-resolve the AMI parameter and replace the node)
            self._run.emit(step, "lifting deletion protection")
            lifted = lift_deletion_protection(
                self._run.connector.for_node(step.node),
                info.name,
                self._run.sleep,
                self._run.options.poll_interval,
            )
        expected = self._run.expected(step.kind, info.parameters, "delete")
        ops.delete(step.stack_name, self._run.progress(step), expected=expected)
        done = self._run.done(step, "deleted")
        return Done(ok=True, outcome=done.outcome, actions=tuple(lifted))


def _observed(info: StackInfo | None) -> Observed:
    if info is None:
        return Observed("absent")
    return Observed(info.state, info.status, info.reason, info.parameters, info.tags)


def _where(step: StackStep) -> str:
    return f"{step.stack_name} (account {step.account}, {step.region})"


def _review_lines(step: StackStep, verdict: Execute, review: Review) -> tuple[str, ...]:
    verb = {"create": "create", "update": "update", "resume": "resume the failed operation"}
    head = (
        f"{_where(step)}: {verb.get(verdict.verb, verdict.verb)}, {len(review.changes)} change(s)"
    )
    return (head, *(f"    {change.describe()}" for change in review.changes))


def _resolve(value: ParamValue, outputs: Mapping[str, Mapping[str, str]]) -> str:
    """A parameter value with every output reference replaced by the deployed output."""
    if isinstance(value, str):
        return value
    found = []
    for ref in references(value):
        stack_outputs = outputs.get(ref.stack)
        if stack_outputs is None or ref.output not in stack_outputs:
            raise DeployError(
                f"{ref.stack} has no output {ref.output}; deploy it first (it may have failed)"
            )
        found.append(stack_outputs[ref.output])
    return ",".join(found)
