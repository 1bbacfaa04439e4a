"""Helpers the service providers share."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from typing import Any
from unittest import mock

from tsm_infra.emulator.registry import Patch
from tsm_infra.emulator.resources import TYPES, EmulatedType


def types(**types: EmulatedType) -> Patch:
    return mock.patch.dict(TYPES, {name.replace("__", "::"): t for name, t in types.items()})


def updated_in_place(change: Callable[[Any, dict[str, Any], str, str], None]) -> Any:
    """A moto update_from_cloudformation_json that applies `change` to the resource itself.

    For moto classes that cannot update, which would otherwise drop the resource from the stack.
    `change` gets the resource, the new properties, the account and the region.
    """

    def update(  # noqa: PLR0917 - moto's signature
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        change(original_resource, cloudformation_json["Properties"], account_id, region_name)
        return original_resource

    return classmethod(update)


def truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def tags(value: Any) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in value or []]


def random_password(size: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(size))
