"""What clients observe of a stack while the latency model has it in progress.

The CloudFormation responses below answer from moto's objects through views: a stack shows its
modelled status and, until the end, no new outputs; its resources and events show only what has
happened by now. A stack that rests answers exactly as without the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest import mock

from tsm_infra.emulator.engine import timeline
from tsm_infra.emulator.engine.state import created, stack_state
from tsm_infra.emulator.registry import Installed

if TYPE_CHECKING:
    from tsm_infra.emulator.engine.latency import Model
    from tsm_infra.emulator.engine.timeline import Run

_PAGE = 50  # stacks per DescribeStacks page, as moto answers


class Stack:
    """A stack as DescribeStacks shows it at a moment of its run (moto reads it by attribute).

    Named like moto's class: moto's serializer finds `StackStatus` as `status` by that name.
    """

    def __init__(self, stack: Any, run: Run, now: float) -> None:
        self._stack, self._run, self._now = stack, run, now
        self.Meta = stack.Meta

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack, name)

    @property
    def status(self) -> str:
        """The modelled status."""
        return self._run.status(self._now)

    @property
    def status_reason(self) -> str | None:
        """No reason while in progress."""
        return None

    @property
    def outputs(self) -> Any:
        """The outputs before the operation (none for a creation) until it ends."""
        return self._run.before.outputs


def _find(model: Model, backend: Any, name: str) -> Any:
    """The stack `name` (or id) names, a stack still being deleted included; None if none."""
    everything = [*backend.stacks.values(), *backend.deleted_stacks.values()]
    for stack in everything:
        if stack.stack_id == name or (stack.name == name and stack.stack_id in backend.stacks):
            return stack
    for stack in backend.deleted_stacks.values():
        if stack.name == name and model.run_of(stack) is not None:
            return stack
    return None


def _rows(model: Model, stack: Any, run: Run) -> list[Any]:
    from moto.cloudformation import responses  # noqa: PLC0415

    rmap = stack.resource_map
    rows = timeline.rows_at(run, model.clock(), created(rmap), stack_state(rmap).status)
    shown = []
    for row in rows:
        dto: Any = responses.StackResourceDTO(stack, row.resource)
        dto.stack_status = run.status(model.clock())
        if row.status:
            dto.resource_status = row.status
            dto.timestamp = row.when
            if hasattr(dto, "last_updated_timestamp"):
                dto.last_updated_timestamp = row.when
        shown.append(dto)
    return shown


def views(model: Model) -> Installed:
    """The patched CloudFormation responses that show stacks as the model has them."""
    from moto.cloudformation.exceptions import ValidationError  # noqa: PLC0415
    from moto.cloudformation.responses import CloudFormationResponse as Response  # noqa: PLC0415
    from moto.core.responses import ActionResult  # noqa: PLC0415

    original = {
        name: getattr(Response, name)
        for name in (
            "describe_stacks",
            "describe_stack_resource",
            "describe_stack_resources",
            "describe_stack_events",
            "describe_change_set",
        )
    }

    def modelled(self: Any) -> tuple[Any, Run] | None:
        name = self._get_param("StackName")
        stack = _find(model, self.cloudformation_backend, name) if name else None
        run = model.run_of(stack) if stack is not None else None
        return (stack, run) if run is not None else None

    def describe_stacks(self: Any) -> Any:
        name, backend = self._get_param("StackName"), self.cloudformation_backend
        stack = _find(model, backend, name) if name else None
        if name and stack is None:
            raise ValidationError(name)
        stacks = [stack] if name else list(backend.stacks.values())
        now = model.clock()
        shown: list[Any] = []
        for each in stacks:
            run = model.run_of(each)
            shown.append(Stack(each, run, now) if run is not None else each)
        token = self._get_param("NextToken")
        ids = [s.stack_id for s in shown]
        start = ids.index(token) + 1 if token in ids else 0
        page = shown[start : start + _PAGE]
        more = len(shown) > start + _PAGE
        return ActionResult({"Stacks": page, "NextToken": page[-1].stack_id if more else None})

    def describe_stack_resources(self: Any) -> Any:
        found = modelled(self)
        if found is None:
            return original["describe_stack_resources"](self)
        rows = _rows(model, *found)
        logical = self._get_param("LogicalResourceId")
        if logical is not None:
            rows = [r for r in rows if r.logical_resource_id == logical]
        return ActionResult({"StackResources": rows})

    def describe_stack_resource(self: Any) -> Any:
        found = modelled(self)
        if found is None:
            return original["describe_stack_resource"](self)
        stack, logical = found[0], self._get_param("LogicalResourceId")
        for row in _rows(model, *found):
            if row.logical_resource_id == logical:
                return ActionResult({"StackResourceDetail": row})
        raise ValidationError(
            stack.name, f"Resource {logical} does not exist for stack {stack.name}"
        )

    def describe_stack_events(self: Any) -> Any:
        found = modelled(self)
        if found is None:
            return original["describe_stack_events"](self)
        return ActionResult({"StackEvents": model.events(found[0])[::-1]})

    def describe_change_set(self: Any) -> Any:
        backend = self.cloudformation_backend
        change_set = backend.describe_change_set(change_set_name=self._get_param("ChangeSetName"))
        stack = backend.stacks.get(change_set.stack_id)
        if model.change_set_pending(change_set):
            shown = ChangeSet(change_set, "CREATE_IN_PROGRESS", "UNAVAILABLE")
        elif (
            stack is not None
            and model.run_of(stack) is not None
            and change_set.execution_status == "EXECUTE_COMPLETE"
        ):
            shown = ChangeSet(change_set, change_set.status, "EXECUTE_IN_PROGRESS")
        else:
            return original["describe_change_set"](self)
        return ActionResult(shown)

    patched = {
        "describe_stacks": describe_stacks,
        "describe_stack_resource": describe_stack_resource,
        "describe_stack_resources": describe_stack_resources,
        "describe_stack_events": describe_stack_events,
        "describe_change_set": describe_change_set,
    }
    return [mock.patch.object(Response, name, handler) for name, handler in patched.items()]


class ChangeSet:
    """A change set as DescribeChangeSet shows it while being created or executed."""

    def __init__(self, change_set: Any, status: str | None, execution_status: str) -> None:
        self._change_set = change_set
        self.status, self.execution_status = status, execution_status
        self.status_reason = None if status == "CREATE_IN_PROGRESS" else change_set.status_reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self._change_set, name)
