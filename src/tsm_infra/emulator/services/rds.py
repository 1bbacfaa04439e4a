"""RDS: DB instances as the templates declare them, their managed secret and final snapshot."""

from __future__ import annotations

import json
import uuid
from typing import Any
from unittest import mock

from tsm_infra.emulator import hooks
from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.services.common import random_password, truthy, updated_in_place


@provider(
    "rds-managed-master-secret",
    emulates="The database's managed master password is a random value in the emulated Secrets "
    "Manager; no database runs.",
)
def rds_managed_master_secret(ctx: Context) -> Installed:
    from moto.rds.models import DBInstance, MasterUserSecret  # noqa: PLC0415

    original_attr = DBInstance.get_cfn_attribute

    def create(  # noqa: PLR0917 - moto's signature
        following: Any,
        cls: Any,
        /,
        name: str,
        cfn: dict[str, Any],
        account: str,
        region: str,
        **kw: Any,
    ) -> Any:
        props = cfn["Properties"]
        database = following(cls, name, cfn, account, region, **kw)
        if truthy(props.get("ManageMasterUserPassword")):
            backend: Any = database.backend
            key = (props.get("MasterUserSecret") or {}).get("KmsKeyId")
            value = json.dumps(
                {"username": props.get("MasterUsername"), "password": random_password(40)}
            )
            secret = backend.secretsmanager.create_managed_secret(
                service_name="rds",
                secret_id=f"rds!db-{uuid.uuid4()}",
                secret_string=value,
                description=(
                    f"The secret associated with the primary RDS DB instance: {database.arn}"
                ),
                tags=[{"Key": "aws:rds:primaryDBInstanceArn", "Value": database.arn}],
                kms_key_id=key,
            )
            # moto's own MasterUserSecret would hold a fixed password; this one holds a random one
            managed = MasterUserSecret.__new__(MasterUserSecret)
            managed.resource, managed.kms, managed.secretsmanager = (
                database,
                backend.kms,
                backend.secretsmanager,
            )
            managed.secret, managed._status = secret, "active"
            database.manage_master_user_password = True
            database.master_user_secret = managed
            database.master_user_password = None
        return database

    def attr(self: Any, name: str) -> Any:
        if name == "MasterUserSecret.SecretArn" and getattr(self, "master_user_secret", None):
            return self.master_user_secret.secret_arn
        if name == "DBInstanceArn":
            return self.arn
        return original_attr(self, name)

    return [
        hooks.DB_INSTANCE_CREATE.layer(create),
        mock.patch.object(DBInstance, "get_cfn_attribute", attr),
    ]


@provider(
    "rds-instance-properties",
    emulates="DB instances get their parameter group by Ref, their engine's default port and "
    "their deletion protection, which an update changes in place.",
)
def rds_instance_properties(ctx: Context) -> Installed:
    from moto.rds.models import DBInstance, DBParameterGroup  # noqa: PLC0415

    def protect(database: Any, props: dict[str, Any], account: str, region: str) -> None:
        database.deletion_protection = truthy(props.get("DeletionProtection", False))

    def create(  # noqa: PLR0917 - moto's signature
        following: Any,
        cls: Any,
        /,
        name: str,
        cfn: dict[str, Any],
        account: str,
        region: str,
        **kw: Any,
    ) -> Any:
        props = dict(cfn["Properties"])
        # moto's CloudFormation gives every engine MySQL's port 3306
        props.setdefault("Port", DBInstance.default_port(str(props.get("Engine", "")).lower()))
        database = following(cls, name, {**cfn, "Properties": props}, account, region, **kw)
        # and ignores DeletionProtection, which AWS enforces on stack deletion too
        protect(database, props, account, region)
        return database

    return [
        # an update changes deletion protection only (the rest would need a real modification)
        mock.patch.object(
            DBInstance, "update_from_cloudformation_json", updated_in_place(protect), create=True
        ),
        # without it moto's Ref hands the group object itself to the DB instance, which then fails
        mock.patch.object(
            DBParameterGroup, "physical_resource_id", property(lambda self: self.name), create=True
        ),
        hooks.DB_INSTANCE_CREATE.layer(create),
    ]


@provider(
    "rds-snapshot-on-delete",
    emulates="DeletionPolicy Snapshot of the database leaves an (empty) emulated DB snapshot.",
)
def rds_snapshot_on_delete(ctx: Context) -> Installed:
    from moto.rds.models import DBInstance  # noqa: PLC0415

    def delete_resource(
        following: Any, self: Any, parsed: Any, resource_json: dict[str, Any]
    ) -> None:
        if isinstance(parsed, DBInstance) and resource_json.get("DeletionPolicy") == "Snapshot":
            # CloudFormation's DeletionPolicy Snapshot: a final snapshot named after the resource
            logical = str(getattr(parsed, "logical_resource_id", "db")).lower()
            snapshot = f"{logical}-final-{uuid.uuid4().hex[:8]}"
            parsed.backend.delete_db_instance(
                parsed.db_instance_identifier, final_db_snapshot_identifier=snapshot
            )
            return
        following(self, parsed, resource_json)

    return [hooks.DELETE_RESOURCE.layer(delete_resource)]
