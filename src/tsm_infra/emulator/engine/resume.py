"""Resuming a stack left *_FAILED with rollback off: plans start from the resources that exist.

The bookkeeping handlers record what each resource was made from (for the next diff) and which
ones were deleted; the planning handlers replace moto's template diff with `plan_changes`.
"""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

from tsm_infra.emulator import hooks
from tsm_infra.emulator.engine.changes import plan_changes, planned_changes
from tsm_infra.emulator.engine.resolve import Resolver, Unresolvable, resolve
from tsm_infra.emulator.engine.state import stack_state
from tsm_infra.emulator.hooks import Handler
from tsm_infra.emulator.registry import Context, Installed, provider

FAILED = ("CREATE_FAILED", "UPDATE_FAILED")


def _record(resources_map: Any, logical_id: str, entry: Any) -> None:
    state = stack_state(resources_map)
    state.applied[logical_id] = entry
    try:
        state.resolved[logical_id] = resolve(entry.get("Properties") or {}, Resolver(resources_map))
    except Unresolvable:
        state.resolved[logical_id] = None
    state.deleted.discard(logical_id)


def _recorded_create(
    following: Handler,
    logical_id: str,
    resource_json: dict[str, Any],
    resources_map: Any,
    *args: Any,
    **kw: Any,
) -> Any:
    entry = copy.deepcopy(resource_json)
    made = following(logical_id, resource_json, resources_map, *args, **kw)
    if made is not None:
        _record(resources_map, logical_id, entry)
    return made


def _recorded_update(
    following: Handler,
    logical_id: str,
    resource_json: dict[str, Any],
    resources_map: Any,
    *args: Any,
    **kw: Any,
) -> Any:
    entry = copy.deepcopy(resource_json)
    made = following(logical_id, resource_json, resources_map, *args, **kw)
    if made is not None:
        # the map holds the old object until update() stores this one: resolve against it
        resources_map._parsed_resources[logical_id] = made
        _record(resources_map, logical_id, entry)
    return made


def _recorded_delete(following: Handler, self: Any, parsed: Any, resource_json: Any) -> None:
    following(self, parsed, resource_json)
    logical = getattr(parsed, "logical_resource_id", None)
    if logical:
        stack_state(self).deleted.add(str(logical))


def _build_resource_diff(
    self: Any, other_template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    return plan_changes(self, other_template, parameters).by_action()


def _create_change_set(following: Handler, self: Any, *args: Any, **kwargs: Any) -> Any:
    change_set_id, stack_id = following(self, *args, **kwargs)
    change_set = self.change_sets[change_set_id]
    if change_set.stack.status in FAILED and change_set.changes:
        # what failed or was never reached is still to do, whatever the template says
        change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"
        change_set.status_reason = None
    return change_set_id, stack_id


def _execute_change_set(
    following: Handler, self: Any, change_set_name: str, stack_name: str | None = None
) -> None:
    try:
        following(self, change_set_name, stack_name)
    finally:
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks.get(change_set.stack_id)
        if stack is not None and stack.status in FAILED:
            # the stack now has the template it failed with, as AWS's GetTemplate shows
            stack.template = change_set.template
            stack.template_dict = change_set.template_dict
            stack.parameters = dict(change_set.parameters)


def _validate_different_update(
    following: Handler, self: Any, incoming: Any, stack_body: str, old_stack: Any
) -> None:
    if old_stack.status in FAILED and self._get_action() == "CreateChangeSet":
        return  # a failed stack has work left even with the same template and parameters
    following(self, incoming, stack_body, old_stack)


def _diff(following: Handler, change_set: Any) -> list[Any]:
    # instead of moto's template diff: the changes to the resources that exist
    return planned_changes(change_set)


@provider(
    "resume-failed-stack",
    emulates="Change sets diff against the resources that exist, so that one on a stack left "
    "*_FAILED (rollback off) adds what failed or was never reached, and nothing else.",
)
def resume_failed_stack(ctx: Context) -> Installed:
    """Plans (change sets, updates) start from the resources that exist."""
    from moto.cloudformation import parsing  # noqa: PLC0415

    original_rmap_update = parsing.ResourceMap.update

    def rmap_update(self: Any, template: dict[str, Any], parameters: Any = None) -> None:
        try:
            original_rmap_update(self, template, parameters)
        finally:
            # moto leaves the objects of resources it deleted in the map; a later Add of the
            # same logical id must create a new one
            for name in stack_state(self).deleted:
                self._parsed_resources.pop(name, None)

    return [
        hooks.PARSE_AND_CREATE.layer(_recorded_create),
        hooks.PARSE_AND_UPDATE.layer(_recorded_update),
        hooks.DELETE_RESOURCE.layer(_recorded_delete),
        mock.patch.object(parsing.ResourceMap, "build_resource_diff", _build_resource_diff),
        mock.patch.object(parsing.ResourceMap, "update", rmap_update),
        hooks.CHANGE_SET_DIFF.layer(_diff),
        hooks.CREATE_CHANGE_SET.layer(_create_change_set),
        hooks.EXECUTE_CHANGE_SET.layer(_execute_change_set),
        hooks.VALIDATE_DIFFERENT_UPDATE.layer(_validate_different_update),
    ]
