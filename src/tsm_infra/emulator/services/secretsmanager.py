"""Secrets Manager: the templates' secrets and resource policies as CloudFormation makes them."""

from __future__ import annotations

import json
from typing import Any

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.resources import Emulated, EmulatedType, Request
from tsm_infra.emulator.services.common import random_password, tags, types


@provider(
    "secretsmanager-secret",
    emulates="Secrets Manager secrets of the templates are created in the emulated Secrets "
    "Manager (GenerateSecretString gives a random 32-character value).",
)
def secretsmanager_secret(ctx: Context) -> Installed:
    from moto.secretsmanager.models import secretsmanager_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        backend: Any = secretsmanager_backends[req.account][req.region]
        props = req.properties
        name = str(props.get("Name") or req.name)
        value = props.get("SecretString")
        if value is None and isinstance(props.get("GenerateSecretString"), dict):
            value = random_password(32)
        backend.create_secret(
            name=name,
            secret_string=value,
            secret_binary=None,
            description=props.get("Description"),
            tags=tags(props.get("Tags")),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        arn = backend.describe_secret(name).arn

        def delete() -> None:
            backend.delete_secret(
                arn, recovery_window_in_days=None, force_delete_without_recovery=True
            )

        return Emulated(arn, {"Id": arn}, delete)

    def update(original: Emulated, req: Request) -> Emulated:
        old, new = original.properties, req.properties
        if (old.get("Name") or "") != (new.get("Name") or ""):
            made = create(req)
            original.delete(req.account, req.region)
            return made
        secret: Any = secretsmanager_backends[req.account][req.region].describe_secret(
            original.physical_id
        )
        secret.description = new.get("Description")
        secret.kms_key_id = new.get("KmsKeyId")
        return Emulated(original.physical_id, original.attributes, original.on_delete)

    return [types(AWS__SecretsManager__Secret=EmulatedType(create, update))]


@provider(
    "secretsmanager-resource-policy",
    emulates="Secret resource policies are stored but not enforced.",
)
def secretsmanager_resource_policy(ctx: Context) -> Installed:
    from moto.secretsmanager.models import secretsmanager_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        backend: Any = secretsmanager_backends[req.account][req.region]
        secret_id = str(req.properties["SecretId"])
        policy = req.properties["ResourcePolicy"]
        backend.put_resource_policy(
            secret_id, policy if isinstance(policy, str) else json.dumps(policy)
        )
        arn = backend.describe_secret(secret_id).arn

        def delete() -> None:
            backend.delete_resource_policy(arn)

        return Emulated(arn, {"Id": arn}, delete)

    def update(original: Emulated, req: Request) -> Emulated:
        return create(req)  # PutResourcePolicy replaces the policy in place

    return [types(AWS__SecretsManager__ResourcePolicy=EmulatedType(create, update))]
