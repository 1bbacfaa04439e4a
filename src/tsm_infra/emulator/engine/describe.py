"""What DescribeStacks and DescribeStackResource(s) show that moto does not."""

from __future__ import annotations

import copy
import json
from typing import Any
from unittest import mock

from tsm_infra.emulator import hooks
from tsm_infra.emulator.engine.resolve import Resolver, Unresolvable, resolve
from tsm_infra.emulator.engine.state import created, stack_state
from tsm_infra.emulator.hooks import Handler
from tsm_infra.emulator.registry import Context, Installed, provider


def _status_tracked(operation: str) -> Handler:
    """A parse_and_<operation>_resource handler recording the resource's status as it ends.

    `operation`_COMPLETE records the template entry it now has too; `operation`_FAILED not.
    """

    def parse_and_apply_resource(
        following: Handler,
        logical_id: str,
        resource_json: dict[str, Any],
        resources_map: Any,
        *args: Any,
        **kw: Any,
    ) -> Any:
        entry = copy.deepcopy(resource_json)
        try:
            made = following(logical_id, resource_json, resources_map, *args, **kw)
        except Exception:
            stack_state(resources_map).mark(logical_id, f"{operation}_FAILED")
            raise
        if made is not None:
            stack_state(resources_map).mark(logical_id, f"{operation}_COMPLETE", entry)
        return made

    return parse_and_apply_resource


def _detail_class() -> type:
    """moto's resource DTO with the resource's own status and its resolved Metadata."""
    from moto.cloudformation import responses  # noqa: PLC0415

    class Detail(responses.StackResourceDTO):
        """moto's resource DTO with the resource's own status and its resolved Metadata."""

        def __init__(self, stack: Any, resource: Any) -> None:
            super().__init__(stack, resource)
            rmap = stack.resource_map
            logical = str(getattr(resource, "logical_resource_id", ""))
            state = stack_state(rmap)
            self.resource_status = state.status.get(logical, stack.status)
            when = state.changed.get(logical, stack.creation_time)
            self.timestamp = self.last_updated_timestamp = when
            entry = rmap._resource_json_map.get(logical) or state.applied.get(logical) or {}
            self.metadata = None
            if "Metadata" in entry:
                # cfn-init reads the metadata with every intrinsic resolved, as a JSON string
                try:
                    self.metadata = json.dumps(resolve(entry["Metadata"], Resolver(rmap)))
                except Unresolvable:  # it names a resource a failed operation did not make
                    self.metadata = json.dumps(entry["Metadata"])

    return Detail


def resources_of(stack: Any) -> list[Any]:
    """The stack's resources that exist (moto lists None for those it did not create)."""
    return list(created(stack.resource_map).values())


def _describe_stack_resource(self: Any, stack_name: str, logical_resource_id: str) -> Any:
    from moto.cloudformation.exceptions import ValidationError  # noqa: PLC0415

    stack = self.get_stack(stack_name)
    for resource in resources_of(stack):
        if resource.logical_resource_id == logical_resource_id:
            return stack, resource
    raise ValidationError(
        stack_name, f"Resource {logical_resource_id} does not exist for stack {stack_name}"
    )


def _describe_stack_resources(self: Any, stack_name: str, logical_resource_id: str) -> Any:
    stack = self.get_stack(stack_name)
    found = resources_of(stack)
    if logical_resource_id is not None:
        found = [r for r in found if r.logical_resource_id == logical_resource_id]
    return stack, found


def _list_stack_resources(self: Any, stack_name_or_id: str) -> Any:
    stack = self.get_stack(stack_name_or_id)
    return stack, resources_of(stack)


@provider(
    "stack-resource-detail",
    emulates="DescribeStackResource(s) give each resource's own status and its Metadata with "
    "intrinsics resolved (as cfn-init reads it).",
)
def stack_resource_detail(ctx: Context) -> Installed:
    """DescribeStackResource(s) give each resource's own status and resolved Metadata."""
    from moto.cloudformation import responses  # noqa: PLC0415
    from moto.cloudformation.models import CloudFormationBackend as Backend  # noqa: PLC0415

    return [
        hooks.PARSE_AND_CREATE.layer(_status_tracked("CREATE")),
        hooks.PARSE_AND_UPDATE.layer(_status_tracked("UPDATE")),
        mock.patch.object(responses, "StackResourceDTO", _detail_class()),
        mock.patch.object(Backend, "describe_stack_resource", _describe_stack_resource),
        mock.patch.object(Backend, "describe_stack_resources", _describe_stack_resources),
        mock.patch.object(Backend, "list_stack_resources", _list_stack_resources),
    ]


def _parameter_list(self: Any) -> list[dict[str, Any]]:
    rmap = self.resource_map
    hidden = set(getattr(rmap, "no_echo_parameter_keys", []))
    slots = (self.template_dict or {}).get("Parameters") or {}
    given = dict(self.parameters or {})
    listed = []
    for key, value in rmap.resolved_parameters.items():
        # DescribeStacks gives a value as it was given: a list parameter comma-joined
        # (moto prints the Python list), a NoEcho one masked
        shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        slot = slots.get(key) or {}
        if key in hidden or slot.get("NoEcho") in (True, "true", "True"):
            shown = "****"
        entry = {"ParameterKey": key, "ParameterValue": shown}
        if str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::Value<"):
            # an SSM-typed parameter shows the parameter's name, its value apart (moto gives
            # the value, which an update passing the previous values back cannot look up)
            entry["ParameterValue"] = str(given.get(key, slot.get("Default", "")))
            entry["ResolvedValue"] = shown
        listed.append(entry)
    return listed


@provider(
    "stack-parameter-values",
    emulates="DescribeStacks shows parameters as they were given: lists comma-joined, SSM-typed "
    "ones by parameter name, NoEcho ones masked.",
)
def stack_parameter_values(ctx: Context) -> Installed:
    """DescribeStacks shows parameter values as they were given."""
    from moto.cloudformation.models import Stack  # noqa: PLC0415

    return [mock.patch.object(Stack, "parameter_list", property(_parameter_list))]
