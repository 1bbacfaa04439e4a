"""How a change set (or an update) is planned: which resources it adds, modifies or removes.

CloudFormation plans against the resources that exist, resolved as they were made; moto diffs
templates. `plan_changes` is the engine's plan, which the resume and replacement providers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tsm_infra.emulator import hooks
from tsm_infra.emulator.engine.resolve import Resolver, Unresolvable, resolve
from tsm_infra.emulator.engine.state import created, stack_state
from tsm_infra.emulator.registry import Context, Installed, provider


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


def plan_changes(
    resource_map: Any, template: dict[str, Any], parameters: Mapping[str, Any] | None
) -> Planned:
    """The resource changes that take the stack's resources to `template` and `parameters`.

    A resource counts as there only if it was made: after a failed operation (rollback off),
    every resource that failed or was never reached is added again, however alike the templates.
    A Modify compares the properties resolved as made with the new ones resolved now; where a
    new value needs a resource not made yet, the unresolved template entries are compared.
    """
    state = stack_state(resource_map)
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
    old_props = stack_state(resource_map).resolved.get(name)
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


def planned_changes(change_set: Any) -> list[Any]:
    """ChangeSet.diff as `plan_changes` has it: the changes to the stack's resources that exist."""
    from moto.cloudformation.models import Change  # noqa: PLC0415

    rmap = change_set.stack.resource_map
    planned = plan_changes(rmap, change_set.template_dict, change_set.parameters)
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


def _replacement_details(change: Any, modification: Modification) -> None:
    # a create-only property that changes makes CloudFormation replace the resource
    change.replacement = "True" if modification.replacement else "False"
    change.scope = modification.scope
    change.details = [
        {
            "Target": {
                "Attribute": "Properties",
                "Name": name,
                "RequiresRecreation": "Always" if name in modification.recreated else "Never",
            },
            "Evaluation": "Static",
            "ChangeSource": "DirectModification",
        }
        for name in modification.properties
    ]


@provider(
    "change-set-replacement",
    emulates="Change sets say whether a Modify replaces the resource, from the create-only "
    "properties in cfn-lint's resource schemas.",
)
def change_set_replacement(ctx: Context) -> Installed:
    """A change set's Modify says whether it replaces the resource, and why."""

    def diff(following: Any, self: Any) -> list[Any]:
        changes: list[Any] = following(self)
        if not any(c.action == "Modify" for c in changes):
            return changes
        planned = plan_changes(self.stack.resource_map, self.template_dict, self.parameters)
        for change in changes:
            modification = planned.modify.get(change.logical_resource_id)
            if change.action == "Modify" and modification is not None:
                _replacement_details(change, modification)
        return changes

    return [hooks.CHANGE_SET_DIFF.layer(diff)]


@provider(
    "empty-change-set",
    emulates="A change set without changes is created FAILED with AWS's reason instead of being "
    "refused.",
)
def empty_change_set(ctx: Context) -> Installed:
    """CreateChangeSet without changes makes a FAILED change set instead of refusing."""

    def validate_different_update(
        following: Any, self: Any, incoming: Any, stack_body: str, old_stack: Any
    ) -> None:
        # CreateChangeSet without changes makes a FAILED change set saying so (moto's backend
        # does that); only UpdateStack refuses at once with "No updates are to be performed."
        if self._get_action() != "CreateChangeSet":
            following(self, incoming, stack_body, old_stack)

    return [hooks.VALIDATE_DIFFERENT_UPDATE.layer(validate_different_update)]
