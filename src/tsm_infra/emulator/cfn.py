"""CloudFormation engine behaviour that moto 5.2 lacks, one provider function per gap.

The functions here are installed through `providers.PROVIDER_LIST` like every other provider;
they live apart because they change how moto's CloudFormation itself works (how it resolves,
diffs, resumes and deletes), not what one resource type does.

Per-stack bookkeeping the providers need (which resources exist, with what template, in what
status) hangs off moto's `ResourceMap` as one `StackState` object.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from unittest import mock

from tsm_infra.emulator.resources import ResourceFailed

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from tsm_infra.emulator.providers import Context

    Patch = AbstractContextManager[Any]

# moto's pseudo parameters sit in the same map as the resources
_PSEUDO = frozenset(
    {
        "AWS::AccountId",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
        "AWS::NoValue",
        "AWS::Partition",
    }
)


@dataclass
class StackState:
    """What the emulator knows of one stack's resources beyond what moto keeps."""

    # logical id -> the resource's template entry when it was last created or updated
    applied: dict[str, Any] = field(default_factory=dict)
    # logical id -> the resource's own status (CREATE_COMPLETE, UPDATE_COMPLETE, ...)
    status: dict[str, str] = field(default_factory=dict)
    # logical id -> when its status last changed
    changed: dict[str, datetime] = field(default_factory=dict)
    # logical id -> its properties as resolved when last created or updated (None: unknown)
    resolved: dict[str, Any] = field(default_factory=dict)
    # logical ids deleted while moto still holds their (dead) objects
    deleted: set[str] = field(default_factory=set)

    def mark(self, logical_id: str, status: str, entry: Any = None) -> None:
        """Record a resource's new status (and, on success, the template entry it now has)."""
        self.status[logical_id] = status
        self.changed[logical_id] = datetime.now(UTC)
        if entry is not None:
            self.applied[logical_id] = copy.deepcopy(entry)
        if status.endswith("_COMPLETE") and not status.startswith("DELETE"):
            self.deleted.discard(logical_id)


def state_of(resource_map: Any) -> StackState:
    """The emulator's bookkeeping of a moto ResourceMap, made on first use."""
    found = resource_map.__dict__.get("_tsm_emulator")
    if found is None:
        found = resource_map.__dict__["_tsm_emulator"] = StackState()
    return found  # type: ignore[no-any-return]


def created(resource_map: Any) -> dict[str, Any]:
    """The stack's resources that exist now, by logical id."""
    parsed: dict[str, Any] = resource_map._parsed_resources
    template: Mapping[str, Any] = resource_map._resource_json_map
    deleted = state_of(resource_map).deleted
    return {
        name: value
        for name, value in parsed.items()
        if name in template
        and name not in _PSEUDO
        and name not in deleted
        and value is not None
        and hasattr(value, "logical_resource_id")
    }


class Unresolvable(KeyError):
    """An intrinsic needs a resource that does not exist (yet): its value is not known."""


class Resolver(Mapping[str, Any]):
    """A read-only view of a ResourceMap for moto's `clean_json` that never creates resources.

    moto's ResourceMap creates a resource when a Ref or GetAtt first names it; reading metadata
    or diffing a change set must not, so names that are not there raise Unresolvable instead.
    """

    def __init__(
        self,
        resource_map: Any,
        values: Mapping[str, Any] | None = None,
        conditions: Any = None,
    ) -> None:
        self._map = resource_map
        # parameters, mappings and pseudo parameters (new ones when diffing) override the map's
        self._values = dict(values if values is not None else resource_map._parsed_resources)
        self._resources = created(resource_map)
        self.lazy_condition_map = (
            conditions if conditions is not None else resource_map.lazy_condition_map
        )
        self.cross_stack_resources = resource_map.cross_stack_resources
        self.stack_id = resource_map.stack_id

    def __getitem__(self, key: str) -> Any:
        if key in self._resources:
            return self._resources[key]
        if key in self._values and key not in self._map._resource_json_map:
            return self._values[key]
        raise Unresolvable(key)

    def get(self, key: str, default: Any = None) -> Any:
        """As __getitem__: a missing resource is unresolvable, not None."""
        return self[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)


def resolve(value: Any, resolver: Resolver) -> Any:
    """`value` with every intrinsic resolved as moto resolves resource properties."""
    from moto.cloudformation import parsing  # noqa: PLC0415

    # clean_json only reads the map through the Mapping interface the Resolver has
    view: Any = resolver
    return parsing.clean_json(copy.deepcopy(value), view)


# ------------------------------------------------------------------ resource status and detail


def _status_tracked(original: Callable[..., Any], operation: str) -> Callable[..., Any]:
    """moto's parse_and_<operation>_resource, recording the resource's status as it ends.

    `operation`_COMPLETE records the template entry it now has too; `operation`_FAILED not.
    """

    def parse_and_apply_resource(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kw: Any
    ) -> Any:
        entry = copy.deepcopy(resource_json)
        try:
            made = original(logical_id, resource_json, resources_map, *args, **kw)
        except Exception:
            state_of(resources_map).mark(logical_id, f"{operation}_FAILED")
            raise
        if made is not None:
            state_of(resources_map).mark(logical_id, f"{operation}_COMPLETE", entry)
        return made

    return parse_and_apply_resource


def stack_resource_detail(ctx: Context) -> list[Patch]:
    """Provider: DescribeStackResource(s) give each resource's own status and resolved Metadata."""
    from moto.cloudformation import parsing, responses  # noqa: PLC0415
    from moto.cloudformation.models import CloudFormationBackend  # noqa: PLC0415

    create = _status_tracked(parsing.parse_and_create_resource, "CREATE")
    update = _status_tracked(parsing.parse_and_update_resource, "UPDATE")

    class Detail(responses.StackResourceDTO):
        """moto's resource DTO with the resource's own status and its resolved Metadata."""

        def __init__(self, stack: Any, resource: Any) -> None:
            super().__init__(stack, resource)
            rmap = stack.resource_map
            logical = str(getattr(resource, "logical_resource_id", ""))
            state = state_of(rmap)
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

    def resources_of(stack: Any) -> list[Any]:
        # moto lists None for every resource it did not create (false condition, failure)
        return list(created(stack.resource_map).values())

    def describe_stack_resource(self: Any, stack_name: str, logical_resource_id: str) -> Any:
        from moto.cloudformation.exceptions import ValidationError  # noqa: PLC0415

        stack = self.get_stack(stack_name)
        for resource in resources_of(stack):
            if resource.logical_resource_id == logical_resource_id:
                return stack, resource
        raise ValidationError(
            stack_name, f"Resource {logical_resource_id} does not exist for stack {stack_name}"
        )

    def describe_stack_resources(self: Any, stack_name: str, logical_resource_id: str) -> Any:
        stack = self.get_stack(stack_name)
        found = resources_of(stack)
        if logical_resource_id is not None:
            found = [r for r in found if r.logical_resource_id == logical_resource_id]
        return stack, found

    def list_stack_resources(self: Any, stack_name_or_id: str) -> Any:
        stack = self.get_stack(stack_name_or_id)
        return stack, resources_of(stack)

    return [
        mock.patch.object(parsing, "parse_and_create_resource", create),
        mock.patch.object(parsing, "parse_and_update_resource", update),
        mock.patch.object(responses, "StackResourceDTO", Detail),
        mock.patch.object(
            CloudFormationBackend, "describe_stack_resource", describe_stack_resource
        ),
        mock.patch.object(
            CloudFormationBackend, "describe_stack_resources", describe_stack_resources
        ),
        mock.patch.object(CloudFormationBackend, "list_stack_resources", list_stack_resources),
    ]


# ------------------------------------------------------------------------- AWS::NoValue in lists


def no_value_in_lists(ctx: Context) -> list[Patch]:
    """Provider: a list element that resolves to AWS::NoValue is dropped."""
    from moto.cloudformation import parsing  # noqa: PLC0415

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        cleaned = original(resource_json, resources_map)
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            # CloudFormation drops a list element that resolves to AWS::NoValue; moto keeps null
            return [value for value in cleaned if value is not None]
        return cleaned

    return [mock.patch.object(parsing, "clean_json", clean_json)]


# ------------------------------------------------------------------------ change-set planning


@dataclass
class Planned:
    """What a change set (or update) does to each resource, as CloudFormation plans it."""

    add: list[str] = field(default_factory=list)
    modify: dict[str, Modification] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)

    def by_action(self) -> dict[str, list[str]]:
        """moto's form of a resource diff."""
        return {"Add": list(self.add), "Modify": list(self.modify), "Remove": list(self.remove)}


@dataclass
class Modification:
    """One modified resource: which top-level properties change and whether it is replaced."""

    properties: list[str]
    replacement: bool
    scope: list[str]
    recreated: set[str] = field(default_factory=set)


_UNKNOWN = object()


def _target(resource_map: Any, template: dict[str, Any], parameters: Mapping[str, Any]) -> Any:
    """A ResourceMap of the new template and parameters, loaded but with nothing created."""
    from moto.cloudformation.parsing import ResourceMap  # noqa: PLC0415

    target = ResourceMap(
        resource_map.stack_id,
        resource_map._parsed_resources["AWS::StackName"],
        dict(parameters),
        resource_map.tags,
        resource_map._region_name,
        resource_map._account_id,
        template,
        cross_stack_resources=resource_map.cross_stack_resources,
    )
    target.load_mapping()
    target.transform_mapping()
    target.load_parameters()
    target.load_conditions()
    return target


def _active(entry: Mapping[str, Any], conditions: Any) -> bool:
    condition = entry.get("Condition")
    return not condition or bool(conditions[condition])


def _pointer(value: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif part == "*" and isinstance(value, list):
            return value
        else:
            return _UNKNOWN
    return value


_CREATE_ONLY: dict[tuple[str, str], list[list[str]]] = {}


def create_only(region: str, resource_type: str) -> list[list[str]]:
    """The create-only property paths of a resource type (from cfn-lint's copy of the schemas)."""
    key = (region, resource_type)
    if key not in _CREATE_ONLY:
        paths: list[list[str]] = []
        if not resource_type.startswith("Custom::"):
            try:
                from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # noqa: PLC0415

                schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type)
                pointers = schema.schema.get("createOnlyProperties") or []
            except Exception:  # a type cfn-lint does not know replaces nothing here
                pointers = []
            paths = [
                str(p).removeprefix("/properties/").split("/")
                for p in pointers
                if str(p).startswith("/properties/")
            ]
        _CREATE_ONLY[key] = paths
    return _CREATE_ONLY[key]


def _modification(
    region: str, resource_type: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> Modification | None:
    """How `old` properties become `new` ones; None when they are the same."""
    names = sorted(k for k in set(old) | set(new) if old.get(k, _UNKNOWN) != new.get(k, _UNKNOWN))
    if not names:
        return None
    recreated = {
        path[0]
        for path in create_only(region, resource_type)
        if _pointer(old, path) != _pointer(new, path)
    }
    return Modification(names, bool(recreated), ["Properties"], recreated)


def plan(
    resource_map: Any, template: dict[str, Any], parameters: Mapping[str, Any] | None
) -> Planned:
    """The resource changes that take the stack's resources to `template` and `parameters`.

    A resource counts as there only if it was made: after a failed operation (rollback off),
    every resource that failed or was never reached is added again, however alike the templates.
    A Modify compares the properties resolved as made with the new ones resolved now; where a
    new value needs a resource not made yet, the unresolved template entries are compared.
    """
    state = state_of(resource_map)
    existing = created(resource_map)
    new = template.get("Resources") or {}
    given = parameters if parameters else resource_map.input_parameters
    target = _target(resource_map, template, given)
    conditions = target.lazy_condition_map
    resolver = Resolver(resource_map, target._parsed_resources, conditions)
    planned = Planned()
    for name, entry in new.items():
        if not _active(entry, conditions):
            continue
        if name not in existing:
            planned.add.append(name)
            continue
        old_entry = state.applied.get(name) or resource_map._resource_json_map.get(name) or {}
        change = _changed(resource_map, name, old_entry, entry, resolver)
        if change is not None:
            planned.modify[name] = change
    planned.remove = [
        name for name in existing if name not in new or not _active(new[name], conditions)
    ]
    return planned


def _changed(
    resource_map: Any, name: str, old_entry: Any, entry: Any, resolver: Resolver
) -> Modification | None:
    region, kind = resource_map._region_name, str(entry.get("Type", ""))
    old_props = state_of(resource_map).resolved.get(name)
    try:
        new_props = resolve(entry.get("Properties") or {}, resolver)
    except Unresolvable:
        new_props = None
    if old_props is None or new_props is None:
        # not known before execution: a change only if the template's expressions differ
        old_props = old_entry.get("Properties") or {}
        new_props = entry.get("Properties") or {}
    change = _modification(region, kind, old_props, new_props)
    # the rest of the entry (Metadata, DependsOn, ...); DeletionPolicy alone changes no resource
    others, old_others = _beyond_properties(entry), _beyond_properties(old_entry)
    if others != old_others:
        if change is None:
            change = Modification([], False, [])
        if "Metadata" in others or "Metadata" in old_others:
            change.scope.append("Metadata")
    return change


def _beyond_properties(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("Properties", "DeletionPolicy")}


def _planned_changes(change_set: Any) -> list[Any]:
    """ChangeSet.diff as `plan` has it: the changes to the stack's resources that exist."""
    from moto.cloudformation.models import Change  # noqa: PLC0415

    rmap = change_set.stack.resource_map
    planned = plan(rmap, change_set.template_dict, change_set.parameters)
    new = change_set.template_dict.get("Resources") or {}
    existing = created(rmap)
    changes = [Change("Add", name, str(new[name]["Type"])) for name in planned.add]
    for name in planned.modify:
        changes.append(_physical(Change("Modify", name, str(new[name]["Type"])), existing[name]))
    for name in planned.remove:
        kind = rmap._resource_json_map.get(name, {}).get("Type", "")
        changes.append(_physical(Change("Remove", name, str(kind)), existing[name]))
    return changes


def _physical(change: Any, resource: Any) -> Any:
    change.physical_resource_id = getattr(resource, "physical_resource_id", None)
    return change


def _record(resources_map: Any, logical_id: str, entry: Any) -> None:
    state = state_of(resources_map)
    state.applied[logical_id] = entry
    try:
        state.resolved[logical_id] = resolve(entry.get("Properties") or {}, Resolver(resources_map))
    except Unresolvable:
        state.resolved[logical_id] = None
    state.deleted.discard(logical_id)


# ------------------------------------------------------------------------ resume a failed stack

_FAILED = ("CREATE_FAILED", "UPDATE_FAILED")


def _resume_bookkeeping() -> list[Patch]:
    """Patches that record what each resource was made from, and which ones were deleted."""
    from moto.cloudformation import parsing  # noqa: PLC0415

    original_create = parsing.parse_and_create_resource
    original_update = parsing.parse_and_update_resource
    original_delete = parsing.ResourceMap._delete_resource

    def parse_and_create_resource(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kw: Any
    ) -> Any:
        entry = copy.deepcopy(resource_json)
        made = original_create(logical_id, resource_json, resources_map, *args, **kw)
        if made is not None:
            _record(resources_map, logical_id, entry)
        return made

    def parse_and_update_resource(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kw: Any
    ) -> Any:
        entry = copy.deepcopy(resource_json)
        made = original_update(logical_id, resource_json, resources_map, *args, **kw)
        if made is not None:
            # the map holds the old object until update() stores this one: resolve against it
            resources_map._parsed_resources[logical_id] = made
            _record(resources_map, logical_id, entry)
        return made

    def delete_resource(self: Any, parsed: Any, resource_json: dict[str, Any]) -> None:
        original_delete(self, parsed, resource_json)
        logical = getattr(parsed, "logical_resource_id", None)
        if logical:
            state_of(self).deleted.add(str(logical))

    return [
        mock.patch.object(parsing, "parse_and_create_resource", parse_and_create_resource),
        mock.patch.object(parsing, "parse_and_update_resource", parse_and_update_resource),
        mock.patch.object(parsing.ResourceMap, "_delete_resource", delete_resource),
    ]


def resume_failed_stack(ctx: Context) -> list[Patch]:
    """Provider: plans (change sets, updates) start from the resources that exist."""
    from moto.cloudformation import parsing  # noqa: PLC0415
    from moto.cloudformation.models import ChangeSet, CloudFormationBackend  # noqa: PLC0415
    from moto.cloudformation.responses import CloudFormationResponse  # noqa: PLC0415

    bookkeeping = _resume_bookkeeping()
    original_rmap_update = parsing.ResourceMap.update
    original_create_change_set = CloudFormationBackend.create_change_set
    original_execute = CloudFormationBackend.execute_change_set
    original_validate = CloudFormationResponse._validate_different_update

    def build_resource_diff(
        self: Any, other_template: dict[str, Any], parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return plan(self, other_template, parameters).by_action()

    def rmap_update(self: Any, template: dict[str, Any], parameters: Any = None) -> None:
        try:
            original_rmap_update(self, template, parameters)
        finally:
            # moto leaves the objects of resources it deleted in the map; a later Add of the
            # same logical id must create a new one
            for name in state_of(self).deleted:
                self._parsed_resources.pop(name, None)

    def create_change_set(self: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
        change_set_id, stack_id = original_create_change_set(self, *args, **kwargs)
        change_set = self.change_sets[change_set_id]
        if change_set.stack.status in _FAILED and change_set.changes:
            # what failed or was never reached is still to do, whatever the template says
            change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"
            change_set.status_reason = None
        return change_set_id, stack_id

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        try:
            original_execute(self, change_set_name, stack_name)
        finally:
            change_set = self.describe_change_set(change_set_name)
            stack = self.stacks.get(change_set.stack_id)
            if stack is not None and stack.status in _FAILED:
                # the stack now has the template it failed with, as AWS's GetTemplate shows
                stack.template = change_set.template
                stack.template_dict = change_set.template_dict
                stack.parameters = dict(change_set.parameters)

    def validate_different_update(
        self: Any, incoming: Any, stack_body: str, old_stack: Any
    ) -> None:
        if old_stack.status in _FAILED and self._get_action() == "CreateChangeSet":
            return  # a failed stack has work left even with the same template and parameters
        original_validate(self, incoming, stack_body, old_stack)

    return [
        *bookkeeping,
        mock.patch.object(parsing.ResourceMap, "build_resource_diff", build_resource_diff),
        mock.patch.object(parsing.ResourceMap, "update", rmap_update),
        mock.patch.object(ChangeSet, "diff", _planned_changes),
        mock.patch.object(CloudFormationBackend, "create_change_set", create_change_set),
        mock.patch.object(CloudFormationBackend, "execute_change_set", execute_change_set),
        mock.patch.object(
            CloudFormationResponse, "_validate_different_update", validate_different_update
        ),
    ]


# ------------------------------------------------------------------------ change-set replacement


def change_set_replacement(ctx: Context) -> list[Patch]:
    """Provider: a change set's Modify says whether it replaces the resource, and why."""
    from moto.cloudformation.models import ChangeSet  # noqa: PLC0415

    original = ChangeSet.diff

    def diff(self: Any) -> list[Any]:
        changes: list[Any] = original(self)
        if not any(c.action == "Modify" for c in changes):
            return changes
        planned = plan(self.stack.resource_map, self.template_dict, self.parameters)
        for change in changes:
            modification = planned.modify.get(change.logical_resource_id)
            if change.action != "Modify" or modification is None:
                continue
            # a create-only property that changes makes CloudFormation replace the resource
            change.replacement = "True" if modification.replacement else "False"
            change.scope = modification.scope
            change.details = [
                {
                    "Target": {
                        "Attribute": "Properties",
                        "Name": name,
                        "RequiresRecreation": (
                            "Always" if name in modification.recreated else "Never"
                        ),
                    },
                    "Evaluation": "Static",
                    "ChangeSource": "DirectModification",
                }
                for name in modification.properties
            ]
        return changes

    return [mock.patch.object(ChangeSet, "diff", diff)]


# ------------------------------------------------------------------------- empty change sets


def empty_change_set(ctx: Context) -> list[Patch]:
    """Provider: CreateChangeSet without changes makes a FAILED change set instead of refusing."""
    from moto.cloudformation.responses import CloudFormationResponse  # noqa: PLC0415

    original = CloudFormationResponse._validate_different_update

    def validate_different_update(
        self: Any, incoming: Any, stack_body: str, old_stack: Any
    ) -> None:
        # CreateChangeSet without changes makes a FAILED change set saying so (moto's backend
        # does that); only UpdateStack refuses at once with "No updates are to be performed."
        if self._get_action() != "CreateChangeSet":
            original(self, incoming, stack_body, old_stack)

    return [
        mock.patch.object(
            CloudFormationResponse, "_validate_different_update", validate_different_update
        )
    ]


# ------------------------------------------------------------------------- stack deletion order

_SUB_NAME = re.compile(r"\$\{([^!}][^}]*)\}")
# DeletionPolicy values that keep the resource when the stack deletes it
_KEPT = ("Retain", "RetainExceptOnCreate")


def references(value: Any) -> set[str]:
    """The names a template fragment reads through Ref, Fn::GetAtt and Fn::Sub.

    Names that are not resources (parameters, pseudo parameters, a Sub's own variables) are
    in the answer too; callers keep the ones they know as resources.
    """
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
        return found
    if not isinstance(value, dict):
        return found
    for key, inner in value.items():
        if key == "Ref" and isinstance(inner, str):
            found.add(inner)
        elif key == "Fn::GetAtt":
            if isinstance(inner, str):
                found.add(inner.split(".", 1)[0])
            elif isinstance(inner, list) and inner:
                if isinstance(inner[0], str):
                    found.add(inner[0])
                found |= references(inner[1:])
        elif key == "Fn::Sub":
            text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
            names = {m.split(".", 1)[0].strip() for m in _SUB_NAME.findall(str(text))}
            found |= names - set(variables or {})
            found |= references(variables)
        else:
            found |= references(inner)
    return found


def dependencies(entries: Mapping[str, Any]) -> dict[str, set[str]]:
    """For each resource of a template, the resources it depends on.

    Ref, Fn::GetAtt, Fn::Sub and DependsOn count, as when CloudFormation orders creation and,
    reversed, deletion.
    """
    graph: dict[str, set[str]] = {}
    for name, entry in entries.items():
        body = {k: v for k, v in entry.items() if k not in ("Condition", "DependsOn")}
        needs = references(body)
        depends = entry.get("DependsOn") or []
        needs |= {depends} if isinstance(depends, str) else set(depends)
        graph[name] = {n for n in needs if n in entries and n != name}
    return graph


def resource_event(
    stack: Any, logical: str, resource: Any, kind: str, status: str, *, reason: str = ""
) -> None:
    """Add a resource's event to the stack's events; nothing when there is no stack."""
    from moto.cloudformation.models import Event  # noqa: PLC0415

    if stack is None:
        return
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical,
            physical_resource_id=str(getattr(resource, "physical_resource_id", "") or ""),
            resource_type=kind,
            resource_status=status,
            resource_status_reason=reason or None,
            resource_properties=None,
        )
    )


def delete_resources(resource_map: Any, stack: Any = None) -> None:
    """Delete a stack's resources in CloudFormation's order; ResourceFailed names what failed.

    Each resource goes only once every resource that depends on it is gone; kept ones
    (DeletionPolicy Retain) are skipped; when one fails, what it depends on stays and the rest
    goes. With `stack`, each step is a resource event of it.
    """
    state = state_of(resource_map)
    existing = created(resource_map)
    entries = {
        name: resource_map._resource_json_map.get(name) or state.applied.get(name) or {}
        for name in existing
    }
    dependents: dict[str, set[str]] = {name: set() for name in entries}
    for name, needs in dependencies(entries).items():
        for needed in needs:
            dependents[needed].add(name)
    pending, failed = list(entries), []
    blocked: set[str] = set()
    while pending:
        # in template order, for a deterministic emulation of CloudFormation's parallel waves
        ready = [n for n in pending if not dependents[n] & (set(pending) | blocked)]
        if not ready:
            break
        for name in ready:
            pending.remove(name)
            reason = _delete_one(resource_map, stack, name, entries[name], existing[name])
            if reason is not None:
                failed.append((name, reason))
                blocked.add(name)
    if failed:
        names = ", ".join(name for name, _ in failed)
        error = ResourceFailed(names, "; ".join(reason for _, reason in failed))
        error.recorded = True  # the events are written: the stack's failure only sums up
        raise error


def _delete_one(resource_map: Any, stack: Any, name: str, entry: Any, resource: Any) -> str | None:
    """Delete (or keep) one resource of the stack; why it could not be deleted, if it failed."""
    state = state_of(resource_map)
    kind = str(entry.get("Type", ""))
    if entry.get("DeletionPolicy") in _KEPT:
        state.mark(name, "DELETE_SKIPPED")
        resource_event(stack, name, resource, kind, "DELETE_SKIPPED")
        return None
    resource_event(stack, name, resource, kind, "DELETE_IN_PROGRESS")
    try:
        resource_map._delete_resource(resource, entry)
    except Exception as exc:
        reason = exc.reason if isinstance(exc, ResourceFailed) else f"{exc}"[:400]
        state.mark(name, "DELETE_FAILED")
        resource_event(stack, name, resource, kind, "DELETE_FAILED", reason=reason)
        return reason
    resource_map._parsed_resources.pop(name, None)
    state.mark(name, "DELETE_COMPLETE")
    state.deleted.add(name)
    resource_event(stack, name, resource, kind, "DELETE_COMPLETE")
    return None


def stack_delete_order(ctx: Context) -> list[Patch]:
    """Provider: DeleteStack deletes in dependency order, as delete_resources does."""
    from moto.cloudformation.models import Stack  # noqa: PLC0415

    def delete(self: Any) -> None:
        self._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        delete_resources(self.resource_map, self)
        self._add_stack_event("DELETE_COMPLETE")
        self.status = "DELETE_COMPLETE"

    return [mock.patch.object(Stack, "delete", delete)]


# ------------------------------------------------------------------------- stack parameter values


def stack_parameter_values(ctx: Context) -> list[Patch]:
    """Provider: DescribeStacks shows parameter values as they were given."""
    from moto.cloudformation.models import Stack  # noqa: PLC0415

    def parameter_list(self: Any) -> list[dict[str, Any]]:
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

    return [mock.patch.object(Stack, "parameter_list", property(parameter_list))]


__all__ = [
    "Resolver",
    "StackState",
    "Unresolvable",
    "change_set_replacement",
    "delete_resources",
    "dependencies",
    "empty_change_set",
    "no_value_in_lists",
    "references",
    "resolve",
    "resource_event",
    "resume_failed_stack",
    "stack_delete_order",
    "stack_parameter_values",
    "stack_resource_detail",
    "state_of",
]
