"""AWS size and name limits that moto 5.2 does not enforce, one patch of one moto function each.

Each rule is a `Provider` installed by `LocalAws` with the others and listed by `emulated()`.
Limits moto already enforces (target-group names, DB instance identifiers, 60 inbound rules per
VPC security group) are named in `ENFORCED_BY_MOTO` for the same list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

from tsm_infra.emulator.constraints import member_error
from tsm_infra.emulator.registry import Context, Installed, Provider, provider

SSM_STANDARD_BYTES = 4096
SSM_ADVANCED_BYTES = 8192
CUSTOM_RESPONSE_BYTES = 4096
ROLE_NAME_LENGTH = 64
_ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]+")
# resource type -> the longest name CloudFormation generates for it, and whether lower case
GENERATED_NAMES: dict[str, tuple[int, bool]] = {
    "AWS::IAM::Role": (ROLE_NAME_LENGTH, False),
    "AWS::RDS::DBInstance": (63, True),
}

ENFORCED_BY_MOTO = (
    "moto itself refuses target-group names over 32 characters or with '--', DB instance "
    "identifiers over 63 characters, and more than 60 inbound rules per VPC security group.",
)


@provider(
    "ssm-parameter-size",
    emulates=f"SSM parameter values over {SSM_STANDARD_BYTES} bytes (Standard tier) or "
    f"{SSM_ADVANCED_BYTES} bytes (Advanced) are refused.",
)
def ssm_parameter_size(ctx: Context) -> Installed:
    """PutParameter refuses values over the tier's size, as SSM does."""
    from moto.ssm.exceptions import ValidationException  # noqa: PLC0415
    from moto.ssm.models import SimpleSystemManagerBackend as SSMBackend  # noqa: PLC0415

    original = SSMBackend.put_parameter

    def put_parameter(
        self: Any, name: str, description: str, value: str, *a: Any, **kw: Any
    ) -> Any:
        names = ("parameter_type", "allowed_pattern", "keyid", "overwrite", "tags", "data_type")
        call = dict(zip((*names, "tier"), a, strict=False)) | kw
        tier = call.get("tier")
        previous = self._parameters.get(name) if call.get("overwrite") else None
        if tier is None and previous:
            tier = previous[-1].tier  # an advanced parameter stays advanced
        size = len(str(value or "").encode())
        if tier in ("Advanced", "Intelligent-Tiering"):
            if size > SSM_ADVANCED_BYTES:
                limit = f"have length less than or equal to {SSM_ADVANCED_BYTES}."
                raise ValidationException(member_error("value", limit))
        elif size > SSM_STANDARD_BYTES:
            raise ValidationException(
                f"Standard tier parameters support a maximum parameter value of "
                f"{SSM_STANDARD_BYTES} characters. To create a larger parameter value, upgrade "
                "the parameter to use the advanced-parameter tier."
            )
        return original(self, name, description, value, *a, **kw)

    return [mock.patch.object(SSMBackend, "put_parameter", put_parameter)]


@provider(
    "iam-role-names",
    emulates=f"IAM role names must be [\\w+=,.@-]+ within {ROLE_NAME_LENGTH} characters.",
)
def iam_role_names(ctx: Context) -> Installed:
    """CreateRole refuses names IAM refuses."""
    from moto.iam.exceptions import ValidationError  # noqa: PLC0415
    from moto.iam.models import IAMBackend  # noqa: PLC0415

    original = IAMBackend.create_role

    def create_role(self: Any, role_name: str, *args: Any, **kwargs: Any) -> Any:
        if len(role_name) > ROLE_NAME_LENGTH:
            raise ValidationError(
                member_error(
                    "roleName", f"have length less than or equal to {ROLE_NAME_LENGTH}", role_name
                )
            )
        if _ROLE_NAME.fullmatch(role_name) is None:
            raise ValidationError(
                member_error(
                    "roleName", r"satisfy regular expression pattern: [\w+=,.@-]+", role_name
                )
            )
        return original(self, role_name, *args, **kwargs)

    return [mock.patch.object(IAMBackend, "create_role", create_role)]


def generated_name(resource_type: str, stack_name: str, logical_id: str, suffix: str) -> str | None:
    """The name CloudFormation generates for an unnamed resource of a limited type, else None.

    stack-logical-SUFFIX, the stack and logical id cut to fit (as CloudFormation cuts them).
    """
    if resource_type not in GENERATED_NAMES:
        return None
    limit, lower = GENERATED_NAMES[resource_type]
    prefix = re.sub(r"-+", "-", f"{stack_name}-{logical_id}")[: limit - len(suffix) - 1]
    name = f"{prefix.rstrip('-')}-{suffix}"
    return name.lower() if lower else name


@provider(
    "generated-names",
    emulates="Names CloudFormation generates for unnamed IAM roles and DB instances are cut to "
    "their limits (64; 63 in lower case), as CloudFormation cuts them.",
)
def generated_names(ctx: Context) -> Installed:
    """Generated names of limited types are cut to their limits."""
    from moto.cloudformation import parsing  # noqa: PLC0415
    from moto.cloudformation.utils import random_suffix  # noqa: PLC0415

    original = parsing.generate_resource_name

    def generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
        made = generated_name(resource_type, stack_name, logical_id, random_suffix())
        return made if made is not None else original(resource_type, stack_name, logical_id)

    return [mock.patch.object(parsing, "generate_resource_name", generate_resource_name)]


@provider(
    "custom-resource-response-size",
    emulates=f"A custom resource's response over {CUSTOM_RESPONSE_BYTES} bytes fails the resource "
    "(Response object is too long).",
)
def custom_resource_response_size(ctx: Context) -> Installed:
    """An over-long custom-resource response fails the resource, as CloudFormation does."""
    from tsm_infra.functions import keygen  # noqa: PLC0415

    original = keygen.handle

    def handle(
        event: Mapping[str, Any], context: Any, clients: Any, send: Callable[[str, bytes], None]
    ) -> Any:
        def limited(url: str, body: bytes) -> None:
            if len(body) > CUSTOM_RESPONSE_BYTES:
                # CloudFormation does not read an over-long response: the resource fails
                answer = json.loads(body)
                body = json.dumps(
                    {
                        **{k: answer.get(k) for k in ("StackId", "RequestId", "LogicalResourceId")},
                        "PhysicalResourceId": answer.get("PhysicalResourceId"),
                        "Status": "FAILED",
                        "Reason": "Response object is too long.",
                    }
                ).encode()
            send(url, body)

        return original(event, context, clients, send=limited)

    return [mock.patch.object(keygen, "handle", handle)]


# in the order the rehearsal report lists them
LIMITS: tuple[Provider, ...] = (
    ssm_parameter_size,
    custom_resource_response_size,
    iam_role_names,
    generated_names,
)
