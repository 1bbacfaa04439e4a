"""Per-stack bookkeeping the engine keeps beyond moto's: which resources exist, as what.

It hangs off moto's `ResourceMap` as one `StackState` object, made on first use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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


def stack_state(resource_map: Any) -> StackState:
    """The emulator's bookkeeping of a moto ResourceMap, made on first use."""
    found = resource_map.__dict__.get("_tsm_emulator")
    if found is None:
        found = resource_map.__dict__["_tsm_emulator"] = StackState()
    return found  # type: ignore[no-any-return]


def created(resource_map: Any) -> dict[str, Any]:
    """The stack's resources that exist now, by logical id."""
    parsed: dict[str, Any] = resource_map._parsed_resources
    template: Mapping[str, Any] = resource_map._resource_json_map
    deleted = stack_state(resource_map).deleted
    return {
        name: value
        for name, value in parsed.items()
        if name in template
        and name not in _PSEUDO
        and name not in deleted
        and value is not None
        and hasattr(value, "logical_resource_id")
    }
