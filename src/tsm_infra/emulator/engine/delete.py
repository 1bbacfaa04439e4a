"""Stack deletion in CloudFormation's order: dependents first, retained ones kept, with events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from unittest import mock

from tsm_infra.emulator.engine.state import created, stack_state
from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.resources import ResourceFailed

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
    state = stack_state(resource_map)
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
    state = stack_state(resource_map)
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


@provider(
    "stack-delete-order",
    emulates="Stack deletion deletes each resource after everything that depends on it, skips "
    "retained ones and keeps what a failed resource needs, with per-resource events.",
)
def stack_delete_order(ctx: Context) -> Installed:
    """DeleteStack deletes in dependency order, as delete_resources does."""
    from moto.cloudformation.models import Stack  # noqa: PLC0415

    def delete(self: Any) -> None:
        self._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        delete_resources(self.resource_map, self)
        self._add_stack_event("DELETE_COMPLETE")
        self.status = "DELETE_COMPLETE"

    return [mock.patch.object(Stack, "delete", delete)]
