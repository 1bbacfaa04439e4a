"""The latency model: stack operations take the time they take on AWS, scaled down.

moto creates, updates and deletes a stack's resources at once. With the model on, what clients
observe follows `tsm_infra.durations` instead: a change set takes `CHANGE_SET_SECONDS` times the
scale to become ready (ExecuteChangeSet refuses it before, as AWS does); an executed change set
or a deletion keeps the stack *_IN_PROGRESS while DescribeStackResource(s) and
DescribeStackEvents show each resource starting and completing at its modelled time, in
dependency order; the outputs and the final status appear only at the end. A failure shows at
the failing resource's modelled end. The work itself is moto's, done when it is asked for: the
model is an overlay on what DescribeStacks, DescribeStackResource(s), DescribeStackEvents and
DescribeChangeSet answer, and on the refusals of work on a stack that is still in progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from tsm_infra import durations
from tsm_infra.emulator import hooks
from tsm_infra.emulator.engine import timeline
from tsm_infra.emulator.engine.observed import views
from tsm_infra.emulator.engine.state import created, stack_state
from tsm_infra.emulator.engine.timeline import Before, Operation, Run
from tsm_infra.emulator.hooks import Handler
from tsm_infra.emulator.registry import Context, Installed, Provider, provider
from tsm_infra.emulator.resources import LOG

NAME = "latency-model"
Clock = Callable[[], float]


def _refused(code: str, message: str) -> Exception:
    from moto.cloudformation.exceptions import CloudFormationError  # noqa: PLC0415

    error = CloudFormationError(message)
    error.code = code
    return error


class Model:
    """The runs and change-set readiness of every stack while the emulator runs."""

    def __init__(self, scale: float, clock: Clock = time.monotonic) -> None:
        self.scale, self.clock = scale, clock
        self.lock = threading.Lock()
        self.runs: dict[str, Run] = {}  # stack id -> its latest run
        self.ready: dict[str, float] = {}  # change set id -> when it is ready

    def run_of(self, stack: Any) -> Run | None:
        """The stack's latest run while it is in progress, else None (moto's view holds)."""
        with self.lock:
            run = self.runs.get(stack.stack_id)
        return run if run is not None and run.in_progress(self.clock()) else None

    def busy(self, stack: Any) -> str | None:
        """The stack's modelled in-progress status, or None when it rests."""
        run = self.run_of(stack)
        return run.status(self.clock()) if run is not None else None

    def change_set_pending(self, change_set: Any) -> bool:
        """True while a change set is still being created."""
        with self.lock:
            ready = self.ready.get(change_set.change_set_id)
        return ready is not None and self.clock() < ready

    # ------------------------------------------------------------ recording an operation

    def schedule(self, make: Callable[[], timeline.Schedule]) -> timeline.Schedule:
        """The schedule `make` gives; none (the operation is instant) when the template's
        dependencies cannot be ordered, which moto then reports in its own way."""
        try:
            return make()
        except ValueError:
            LOG.debug("no modelled schedule", exc_info=True)
            return {}

    def begin(self, stack: Any, operation: Operation, schedule: timeline.Schedule) -> Run:
        """A run of `operation` starting now, with what the stack holds before it."""
        rmap = stack.resource_map
        before = Before(
            resources=dict(created(rmap)),
            statuses=dict(stack_state(rmap).status),
            outputs=timeline.snapshot(stack.outputs) if operation != "CREATE" else None,
        )
        return Run(operation, self.clock(), datetime.now(UTC), schedule, before)

    def finish(self, run: Run, stack: Any, first_event: int) -> None:
        """Place the run's events and end after moto did the work; the run is then observed."""
        written = stack.events[first_event:]
        run.final_status = str(stack.status)
        failed = run.final_status.endswith("_FAILED")
        run.end = (
            timeline.failure_end(run, written, run.operation)
            if failed
            else max((end for _, end in run.schedule.values()), default=0.0)
        )
        if run.operation != "DELETE":
            after = created(stack.resource_map)
            kinds = {
                name: str(entry.get("Type", ""))
                for name, entry in stack.resource_map._resource_json_map.items()
            }
            written = [*written, *timeline.resource_events(run, stack, after, kinds)]
            # once the run is over, each resource's timestamp is its modelled completion too
            changed = stack_state(stack.resource_map).changed
            for name in after:
                phase = run.phase(name)
                if phase is not None:
                    changed[name] = run.at(phase[1])
        stack.events[first_event:] = timeline.place_events(run, written)
        with self.lock:
            self.runs[stack.stack_id] = run

    def events(self, stack: Any) -> list[Any]:
        """The stack's events that have happened by now."""
        run = self.run_of(stack)
        if run is None:
            return list(stack.events)
        elapsed = run.elapsed(self.clock())
        return [e for e in stack.events if run.event_offsets.get(id(e), 0.0) <= elapsed]


def _parameters(values: Any) -> dict[str, str]:
    return {
        str(k): ",".join(map(str, v)) if isinstance(v, list) else str(v)
        for k, v in (values or {}).items()
    }


# ------------------------------------------------------------------ handlers of the shared hooks


def _handlers(model: Model) -> Installed:
    def create_change_set(following: Handler, self: Any, *args: Any, **kwargs: Any) -> Any:
        name = str(kwargs.get("stack_name") or (args[0] if args else ""))
        for stack in self.stacks.values():
            status = model.busy(stack) if stack.name == name else None
            if status is not None:
                raise _refused(
                    "ValidationError",
                    f"Stack:{stack.stack_id} is in {status} state and can not be updated.",
                )
        change_set_id, stack_id = following(self, *args, **kwargs)
        with model.lock:
            model.ready[change_set_id] = model.clock() + durations.CHANGE_SET_SECONDS * model.scale
        return change_set_id, stack_id

    def execute_change_set(
        following: Handler, self: Any, change_set_name: str, stack_name: str | None = None
    ) -> None:
        change_set = self.describe_change_set(change_set_name)
        if model.change_set_pending(change_set):
            raise _refused(
                "InvalidChangeSetStatus",
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current "
                "status of [CREATE_IN_PROGRESS]",
            )
        stack = self.stacks[change_set.stack_id]
        template, given = change_set.template_dict, _parameters(change_set.parameters)
        operation: Operation = "CREATE" if change_set.change_set_type == "CREATE" else "UPDATE"
        changes = list(change_set.changes or [])
        touched = {c.logical_resource_id for c in changes if c.action in ("Add", "Modify")}
        schedule = model.schedule(
            lambda: (
                timeline.create_schedule(template, given, model.scale)
                if operation == "CREATE"
                else timeline.update_schedule(template, given, model.scale, touched)
            )
        )
        run = model.begin(stack, operation, schedule)
        run.added = {c.logical_resource_id for c in changes if c.action == "Add"}
        first_event = len(stack.events)
        try:
            following(self, change_set_name, stack_name)
        finally:
            model.finish(run, stack, first_event)

    def delete_stack(following: Handler, self: Any, name_or_stack_id: str) -> None:
        stacks = [s for s in self.stacks.values() if name_or_stack_id in (s.name, s.stack_id)]
        for stack in stacks:
            status = model.busy(stack)
            if status is not None:
                raise _refused(
                    "ValidationError",
                    f"Stack [{stack.name}] cannot be deleted while in status {status}",
                )
        runs = []
        for stack in stacks:
            template, given = stack.template_dict, _parameters(stack.parameters)
            schedule = model.schedule(
                partial(timeline.delete_schedule, template, given, model.scale)
            )
            runs.append((stack, model.begin(stack, "DELETE", schedule), len(stack.events)))
        try:
            following(self, name_or_stack_id)
        finally:
            for stack, run, first_event in runs:
                model.finish(run, stack, first_event)

    return [
        hooks.CREATE_CHANGE_SET.layer(create_change_set),
        hooks.EXECUTE_CHANGE_SET.layer(execute_change_set),
        hooks.DELETE_STACK.layer(delete_stack),
    ]


def latency_model(scale: float, clock: Clock = time.monotonic) -> Provider:
    """The latency model as a provider, its durations multiplied by `scale`."""

    @provider(
        NAME,
        emulates=f"Stack operations take AWS's typical time per resource type, times {scale:g}: "
        "stacks stay *_IN_PROGRESS and resources complete in dependency order.",
    )
    def install(ctx: Context) -> Installed:
        model = Model(scale, clock)
        return [*_handlers(model), *views(model)]

    return install
