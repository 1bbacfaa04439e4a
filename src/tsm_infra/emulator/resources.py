"""How the emulator adds CloudFormation resource types that moto's CloudFormation lacks.

moto looks a resource type up with `moto.cloudformation.parsing.resource_class_from_type`; the
emulator wraps that lookup once (while it runs) to consult `TYPES`, which each provider fills for
exactly as long as it is active. An `EmulatedType` behaves like a moto CloudFormation model class
and creates the real object in moto's own service backend through the provider's functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger("tsm_infra.emulator")

# cloudformation type -> emulated type; "Custom::*" stands for every custom resource type
TYPES: dict[str, EmulatedType] = {}
CUSTOM = "Custom::*"


class ResourceFailed(Exception):
    """A resource could not be created, updated or deleted; the message is the status reason."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(reason)
        self.logical_id = logical_id
        self.reason = reason
        # True when the resource events are written already (the stack's failure only sums up)
        self.recorded = False


@dataclass
class Request:
    """One resource operation as a provider sees it: resolved properties and where it runs."""

    logical_id: str
    resource_type: str
    # repr=False: properties may hold secret values, which a repr must never carry into a log
    properties: dict[str, Any] = field(repr=False)
    account: str
    region: str
    stack_id: str
    name: str  # the name CloudFormation generates when the template gives none


@dataclass
class Emulated:
    """A resource a provider created: its physical id (Ref), attributes (GetAtt) and clean-up."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict, repr=False)
    on_delete: Callable[[], None] | None = None
    # the properties it was made from, as the next update compares them (repr=False: secrets)
    properties: dict[str, Any] = field(default_factory=dict, repr=False)
    account: str = ""
    region: str = ""
    stack_id: str = ""
    # set by moto's CloudFormation after creation
    cf_resource_type: str = ""
    logical_resource_id: str = ""

    @property
    def physical_resource_id(self) -> str:
        """What Ref returns, as AWS returns it."""
        return self.physical_id

    def is_created(self) -> bool:
        """Emulated resources complete synchronously."""
        return True

    def get_cfn_attribute(self, name: str) -> Any:
        """GetAtt: the attributes AWS documents for the type."""
        if name in self.attributes:
            return self.attributes[name]
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException  # noqa: PLC0415

        raise UnformattedGetAttTemplateException()

    def delete(self, account_id: str, region_name: str) -> None:
        """Called by moto when the stack (or an update) removes the resource."""
        if self.on_delete is None:
            return
        try:
            self.on_delete()
        except Exception as exc:
            # moto deletes in no particular order: a rule or registration whose parent (group,
            # service) went first is gone already, which is what deleting it should achieve
            if "NotFound" not in type(exc).__name__:
                raise


Create = Callable[[Request], Emulated]
Update = Callable[[Emulated, Request], Emulated]


class EmulatedType:
    """Stands where moto expects a CloudFormation model class for one resource type."""

    def __init__(self, create: Create, update: Update | None = None) -> None:
        self._create, self._update = create, update

    def has_cfn_attr(self, attr: str) -> bool:
        """Every attribute is checked when it is read, as for moto's custom resources."""
        return True

    def create_from_cloudformation_json(
        self,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Emulated:
        """moto's creation entry point."""
        request = Request(
            logical_id=kwargs["LogicalId"],
            resource_type=kwargs["ResourceType"],
            properties=dict(cloudformation_json.get("Properties") or {}),
            account=account_id,
            region=region_name,
            stack_id=kwargs["StackId"],
            name=resource_name,
        )
        return _made_for(self._create(request), request)

    def update_from_cloudformation_json(
        self,
        original_resource: Emulated,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Emulated:
        """moto's update entry point: unchanged properties change nothing, as in AWS."""
        properties = dict(cloudformation_json.get("Properties") or {})
        if properties == original_resource.properties:
            return original_resource
        request = Request(
            logical_id=original_resource.logical_resource_id,
            resource_type=str(cloudformation_json.get("Type")),
            properties=properties,
            account=account_id,
            region=region_name,
            stack_id=original_resource.stack_id,
            name=new_resource_name,
        )
        if self._update is not None:
            return _made_for(self._update(original_resource, request), request)
        # replacement: the new resource first, then the old one goes, as CloudFormation does
        made = self._create(request)
        original_resource.delete(account_id, region_name)
        return _made_for(made, request)

    def delete_from_cloudformation_json(
        self,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        """Does nothing: moto calls it only when Emulated.delete raised TypeError or AttributeError.

        moto reads those two errors as "this object has no delete" and falls back to this
        class-level deletion, so such an error in an `on_delete` goes unreported.
        """


def _made_for(made: Emulated, request: Request) -> Emulated:
    """`made`, remembering the request it answers (for updates, deletion and describing)."""
    made.properties, made.account, made.region = request.properties, request.account, request.region
    made.stack_id = request.stack_id
    return made


def lookup_hook(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """A replacement for moto's resource_class_from_type that consults TYPES first."""

    def resource_class_from_type(resource_type: str) -> Any:
        if resource_type in TYPES:
            return TYPES[resource_type]
        if resource_type.startswith("Custom::") and CUSTOM in TYPES:
            return TYPES[CUSTOM]
        return original(resource_type)

    return resource_class_from_type
