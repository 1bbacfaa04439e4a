"""One stack operation as the latency model shows it: what clients see at each moment.

moto does a stack operation at once; a `Run` remembers when it started, when each resource
starts and ends in the modelled schedule (`tsm_infra.durations`), and the resources before and
after. From those it answers, for any moment, the stack's status, its resources' statuses and
which of the operation's events have happened. The moments are seconds since the run started.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from tsm_infra import durations, resource_graph

Operation = Literal["CREATE", "UPDATE", "DELETE"]
Schedule = dict[str, tuple[float, float]]


@dataclass
class Before:
    """A stack's resources and outputs when an operation starts."""

    resources: dict[str, Any]  # logical id -> moto object
    statuses: dict[str, str]
    outputs: Any


@dataclass
class Row:
    """One resource as DescribeStackResource(s) shows it at a moment."""

    logical_id: str
    resource: Any
    status: str  # "" keeps the status the emulator recorded
    when: datetime


@dataclass
class Run:
    """One modelled stack operation (create, update or delete)."""

    operation: Operation
    started: float  # the clock's reading when it started
    started_at: datetime  # the same moment, for timestamps
    schedule: Schedule
    before: Before
    added: set[str] = field(default_factory=set)  # created by an update (shown as CREATE_*)
    end: float = 0.0
    final_status: str = ""
    # id(event) -> seconds after the start, for the events this operation wrote
    event_offsets: dict[int, float] = field(default_factory=dict)

    def elapsed(self, now: float) -> float:
        """Seconds since the run started."""
        return now - self.started

    def in_progress(self, now: float) -> bool:
        """True until the modelled operation ends."""
        return self.elapsed(now) < self.end

    def status(self, now: float) -> str:
        """The stack's status at `now`."""
        return f"{self.operation}_IN_PROGRESS" if self.in_progress(now) else self.final_status

    def at(self, seconds: float) -> datetime:
        """The timestamp `seconds` after the start."""
        return self.started_at + timedelta(seconds=seconds)

    def phase(self, logical_id: str) -> tuple[float, float] | None:
        """When the resource starts and ends in this run (capped at its end); None: untouched."""
        found = self.schedule.get(logical_id)
        if found is None:
            return None
        return min(found[0], self.end), min(found[1], self.end)


def create_schedule(
    template: Mapping[str, Any], parameters: Mapping[str, str], scale: float
) -> Schedule:
    """Each resource's (start, end) when a stack is created from `template`."""
    return durations.schedule(template, scale, parameters=parameters)


def delete_schedule(
    template: Mapping[str, Any], parameters: Mapping[str, str], scale: float
) -> Schedule:
    """Each resource's (start, end) when the stack is deleted."""
    return durations.schedule(template, scale, parameters=parameters, operation="delete")


def update_schedule(
    template: Mapping[str, Any], parameters: Mapping[str, str], scale: float, changed: set[str]
) -> Schedule:
    """(start, end) of the resources an update adds or modifies, in dependency order.

    A changed resource takes its typical creation time (an in-place change is often quicker:
    the model errs on the slow side); the others take none, so a changed resource waits only for
    changed resources it needs.
    """
    present = resource_graph.resources(template, parameters)
    needs = resource_graph.dependencies(template, parameters)
    values = resource_graph.parameter_values(template, parameters)
    seconds = {
        name: durations.resource_seconds(body, "create", values) * scale if name in changed else 0.0
        for name, body in present.items()
    }
    ends = durations.earliest_ends(seconds, needs)
    return {name: (ends[name] - seconds[name], ends[name]) for name in present if name in changed}


def rows_at(
    run: Run, now: float, after: Mapping[str, Any], recorded: Mapping[str, str]
) -> list[Row]:
    """The stack's resources at `now`: those started, with the status each has then.

    `after` holds the resources that exist once moto is done, `recorded` their statuses.
    """
    elapsed = run.elapsed(now)
    rows: list[Row] = []
    for logical_id in [*after, *(n for n in run.before.resources if n not in after)]:
        row = _row(run, elapsed, logical_id, after, recorded)
        if row is not None:
            rows.append(row)
    return rows


def _row(
    run: Run, elapsed: float, logical_id: str, after: Mapping[str, Any], recorded: Mapping[str, str]
) -> Row | None:
    phase = run.phase(logical_id)
    start, end = phase if phase is not None else (0.0, 0.0)
    before = run.before.resources.get(logical_id)
    if elapsed < start:  # not reached yet: as it was, or not there
        if before is None:
            return None
        return Row(logical_id, before, run.before.statuses.get(logical_id, ""), run.started_at)
    if elapsed < end:
        kind = "CREATE" if logical_id in run.added or before is None else run.operation
        return Row(logical_id, after.get(logical_id, before), f"{kind}_IN_PROGRESS", run.at(start))
    if logical_id in after:
        return Row(logical_id, after[logical_id], recorded.get(logical_id, ""), run.at(end))
    if run.operation == "UPDATE" and elapsed < run.end:  # removed in the clean-up at the end
        return Row(logical_id, before, run.before.statuses.get(logical_id, ""), run.started_at)
    return None


def resource_events(
    run: Run, stack: Any, after: Mapping[str, Any], kinds: Mapping[str, str]
) -> list[Any]:
    """The per-resource events moto does not write: each created or updated resource's
    *_IN_PROGRESS at its start and *_COMPLETE at its end (deletions write their own)."""
    from moto.cloudformation.models import Event  # noqa: PLC0415

    made: list[Any] = []
    for logical_id in run.schedule:
        resource = after.get(logical_id)
        if resource is None:
            continue
        kind = "CREATE" if logical_id in run.added or run.operation == "CREATE" else "UPDATE"
        start, end = run.phase(logical_id) or (0.0, 0.0)
        for status, offset in ((f"{kind}_IN_PROGRESS", start), (f"{kind}_COMPLETE", end)):
            event = Event(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_resource_id=logical_id,
                physical_resource_id=str(getattr(resource, "physical_resource_id", "") or ""),
                resource_type=kinds.get(logical_id, ""),
                resource_status=status,
                resource_status_reason=None,
                resource_properties=None,
            )
            run.event_offsets[id(event)] = offset
            made.append(event)
    return made


def place_events(run: Run, written: list[Any]) -> list[Any]:
    """The operation's events in modelled order, each stamped with its modelled time.

    Stack events take the start (the first) and the end (the others); a resource's event takes
    its start when it is *_IN_PROGRESS, else its end.
    """
    stack_events = [e for e in written if e.resource_type == "AWS::CloudFormation::Stack"]
    for event in written:
        if id(event) in run.event_offsets:
            continue
        if event.resource_type == "AWS::CloudFormation::Stack":
            offset = 0.0 if event is stack_events[0] else run.end
        else:
            start, end = run.phase(event.logical_resource_id) or (run.end, run.end)
            offset = start if event.resource_status.endswith("_IN_PROGRESS") else end
        run.event_offsets[id(event)] = offset
    ordered = sorted(written, key=lambda e: run.event_offsets[id(e)])
    for event in ordered:
        event.timestamp = run.at(run.event_offsets[id(event)])
    return ordered


def failure_end(run: Run, written: list[Any], operation: str) -> float:
    """When a failed operation ends: the latest end of the resources whose events say failed."""
    failed = [
        e.logical_resource_id
        for e in written
        if e.resource_type != "AWS::CloudFormation::Stack"
        and e.resource_status == f"{operation}_FAILED"
    ]
    ends = [run.schedule[name][1] for name in failed if name in run.schedule]
    return max(ends, default=max((end for _, end in run.schedule.values()), default=0.0))


def snapshot(outputs: Any) -> Any:
    """A copy of a stack's outputs as they are now."""
    return copy.deepcopy(outputs)
