"""What executing a change set or deleting a stack leaves: the stack's status and outputs."""

from __future__ import annotations

from typing import Any

from tsm_infra.emulator import hooks
from tsm_infra.emulator.engine.delete import resource_event
from tsm_infra.emulator.hooks import Handler
from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.resources import LOG, ResourceFailed


class _FrozenOutputs(dict[str, Any]):
    """A stack's outputs as they were, standing in for moto's OutputMap."""

    exports: list[Any] = []  # noqa: RUF012 - read-only, as the (export-less) stacks here


def fail(stack: Any, exc: Exception, operation: str) -> None:
    """Put the stack in `operation`_FAILED with the reason of `exc`, as CloudFormation does."""
    LOG.debug(
        "%s of %s failed", operation, stack.name, exc_info=not isinstance(exc, ResourceFailed)
    )
    if isinstance(exc, ResourceFailed):
        logical, reason = exc.logical_id, exc.reason
        # stack deletion writes each failed resource's event itself (several may fail)
        if logical and not exc.recorded:
            kind = stack.resource_map._resource_json_map.get(logical, {}).get("Type", "")
            resource_event(stack, logical, None, str(kind), f"{operation}_FAILED", reason=reason)
    else:
        logical, reason = "", f"{type(exc).__name__}: {exc}"[:400]
    summary = (
        f"The following resource(s) failed to {operation.lower()}: [{logical}]."
        if logical
        else reason
    )
    stack._add_stack_event(f"{operation}_FAILED", resource_status_reason=summary)
    stack.status = f"{operation}_FAILED"
    stack.status_reason = summary


def _failed_execution(
    following: Handler, self: Any, change_set_name: str, stack_name: str | None = None
) -> None:
    try:
        following(self, change_set_name, stack_name)
    except Exception as exc:
        change_set = self.describe_change_set(change_set_name)
        change_set.execution_status = "EXECUTE_FAILED"
        fail(self.stacks[change_set.stack_id], exc, change_set.change_set_type)


@provider(
    "stack-failure-status",
    emulates="A resource that fails puts its stack in *_FAILED with the resource's reason; "
    "nothing is rolled back, so created resources stay.",
)
def stack_failure_status(ctx: Context) -> Installed:
    """A failing resource leaves its stack *_FAILED (rollback off) instead of raising."""

    def delete_stack(following: Handler, self: Any, name_or_stack_id: str) -> None:
        stacks = [s for s in self.stacks.values() if name_or_stack_id in (s.name, s.stack_id)]
        # outputs are computed from the resources, some of which a failed delete removes
        frozen = {
            s.stack_id: _FrozenOutputs((k, s.output_map[k]) for k in s.output_map) for s in stacks
        }
        try:
            following(self, name_or_stack_id)
        except Exception as exc:
            for stack in stacks:
                self.stacks[stack.stack_id] = stack  # moto popped it before deleting
                self.deleted_stacks.pop(stack.stack_id, None)
                stack.output_map = frozen[stack.stack_id]
                fail(stack, exc, "DELETE")

    return [
        hooks.EXECUTE_CHANGE_SET.layer(_failed_execution),
        hooks.DELETE_STACK.layer(delete_stack),
    ]


def _outputs_after(
    following: Handler, self: Any, change_set_name: str, stack_name: str | None = None
) -> None:
    following(self, change_set_name, stack_name)
    change_set = self.describe_change_set(change_set_name)
    stack = self.stacks.get(change_set.stack_id)
    if stack is None or change_set.execution_status != "EXECUTE_COMPLETE":
        return
    # moto keeps the stack's pre-change-set template, parameters and (so) outputs
    stack.template_dict = change_set.template_dict
    stack.description = change_set.template_dict.get("Description")
    stack.parameters = dict(change_set.parameters)
    stack.output_map = stack._create_output_map()


@provider(
    "change-set-outputs",
    emulates="Executing a change set gives the stack its new template, parameters and outputs.",
)
def change_set_outputs(ctx: Context) -> Installed:
    """An executed change set gives the stack its new template, parameters and outputs."""
    return [hooks.EXECUTE_CHANGE_SET.layer(_outputs_after)]
