"""How the engine resolves intrinsics without creating anything, and the intrinsics moto lacks.

`Resolver` and `resolve` read a stack's resources as they exist (for metadata and change-set
diffs); the providers below are the `clean_json` handlers that fill moto's gaps in resolving.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from tsm_infra.emulator import hooks
from tsm_infra.emulator.engine.state import created
from tsm_infra.emulator.registry import Context, Installed, provider


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


# ------------------------------------------------------------------ intrinsics moto resolves wrong


@provider(
    "no-value-in-lists",
    emulates="List elements that resolve to AWS::NoValue are dropped, as CloudFormation drops "
    "them.",
)
def no_value_in_lists(ctx: Context) -> Installed:
    """A list element that resolves to AWS::NoValue is dropped (moto keeps a null)."""

    def clean_json(following: Any, resource_json: Any, resources_map: Any) -> Any:
        cleaned = following(resource_json, resources_map)
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            return [value for value in cleaned if value is not None]
        return cleaned

    return [hooks.CLEAN_JSON.layer(clean_json)]


@provider(
    "sub-dotted-attributes",
    emulates="Fn::Sub reads attributes whose names hold dots (${Database.Endpoint.Address}).",
)
def sub_dotted_attributes(ctx: Context) -> Installed:
    """A dotted attribute name in Fn::Sub stays one name (moto splits it at every dot)."""

    def clean_json(following: Any, resource_json: Any, resources_map: Any) -> Any:
        getatt = resource_json.get("Fn::GetAtt") if isinstance(resource_json, dict) else None
        if isinstance(getatt, list) and len(getatt) > 2:
            resource_json = {"Fn::GetAtt": [getatt[0], ".".join(map(str, getatt[1:]))]}
        return following(resource_json, resources_map)

    return [hooks.CLEAN_JSON.layer(clean_json)]


@provider("fn-cidr", emulates="Fn::Cidr is computed by the emulator.")
def fn_cidr(ctx: Context) -> Installed:
    """Fn::Cidr gives the first `count` subnets of the block (moto leaves it unresolved)."""

    def clean_json(following: Any, resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and set(resource_json) == {"Fn::Cidr"}:
            block, count, bits = (following(v, resources_map) for v in resource_json["Fn::Cidr"])
            network = ipaddress.ip_network(str(block), strict=True)
            # cidrBits is the size of each subnet's host part, as in CloudFormation
            prefix = network.max_prefixlen - int(bits)
            subnets = network.subnets(new_prefix=prefix)
            return [str(next(subnets)) for _ in range(int(count))]
        return following(resource_json, resources_map)

    return [hooks.CLEAN_JSON.layer(clean_json)]
