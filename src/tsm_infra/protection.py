"""Turn off the deletion protection of a Core stack's database and load balancer before destroy.

The protection is lifted on the resources themselves (RDS ModifyDBInstance, ELBv2
ModifyLoadBalancerAttributes), found through the stack's resources, not through a stack update:
an update re-resolves the SSM-typed AMI parameter and would replace the node on the way out, and
a stack left CREATE_FAILED or UPDATE_ROLLBACK_FAILED may not accept an update at all. This works
whatever state the stack is in. Nothing here prints or creates sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from tsm_infra.aws import AWS_ERRORS, AccountSession
from tsm_infra.contract import DB_INSTANCE_TYPE, LB_DELETION_PROTECTION, LOAD_BALANCER_TYPE
from tsm_infra.errors import TsmInfraError, describe_error, error_code
from tsm_infra.stacks import StackError, StackReader

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_rds import RDSClient

# how long to wait for RDS to show the change before CloudFormation is asked to delete
WAIT_ATTEMPTS = 60


class ProtectionError(TsmInfraError):
    """Deletion protection could not be turned off; the message says which resource."""


def protected_resources(ops: StackReader, stack: str) -> list[tuple[str, str]]:
    """(type, physical id) of the stack's databases and load balancers that exist."""
    try:
        resources = ops.resources(stack)
    except StackError as exc:
        raise ProtectionError(f"{exc}; so deletion protection cannot be lifted") from None
    return [
        (r["ResourceType"], r["PhysicalResourceId"])
        for r in resources
        if r["ResourceType"] in (DB_INSTANCE_TYPE, LOAD_BALANCER_TYPE)
        and r.get("PhysicalResourceId")
        and r.get("ResourceStatus") != "DELETE_COMPLETE"
    ]


def lift_deletion_protection(
    session: AccountSession, stack: str, sleep: Callable[[float], None], poll_interval: float = 5.0
) -> list[str]:
    """Turn protection off on every protected database and load balancer of `stack`.

    `session` makes clients in the stack's account and region. Returns what was turned off,
    one line each; ProtectionError names what could not be.
    """
    lifted = []
    ops = StackReader(session.client("cloudformation"))
    for kind, physical_id in protected_resources(ops, stack):
        try:
            if kind == DB_INSTANCE_TYPE:
                changed = _lift_database(session.client("rds"), physical_id, sleep, poll_interval)
                what = f"database {physical_id}"
            else:
                changed = _lift_load_balancer(session.client("elbv2"), physical_id)
                what = f"load balancer {physical_id}"
        except AWS_ERRORS as exc:
            raise ProtectionError(
                f"{stack}: cannot turn off deletion protection of {physical_id}: "
                f"{describe_error(exc)}; the deploying role needs rds:ModifyDBInstance and "
                "elasticloadbalancing:ModifyLoadBalancerAttributes"
            ) from None
        if changed:
            lifted.append(f"{stack}: deletion protection turned off on {what}")
    return lifted


def _lift_database(
    rds: RDSClient, identifier: str, sleep: Callable[[float], None], poll_interval: float
) -> bool:
    def protected() -> bool | None:
        try:
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        except ClientError as exc:
            if error_code(exc).startswith("DBInstanceNotFound"):
                return None  # already gone
            raise
        return bool(found and found[0].get("DeletionProtection"))

    if not protected():
        return False
    rds.modify_db_instance(
        DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True
    )
    for _ in range(WAIT_ATTEMPTS):
        if not protected():
            return True
        sleep(poll_interval)
    raise ProtectionError(
        f"database {identifier} still has deletion protection on after the change; "
        "check it in the RDS console, then run destroy again"
    )


def _lift_load_balancer(elbv2: ElasticLoadBalancingv2Client, arn: str) -> bool:
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    values = {a["Key"]: str(a.get("Value", "")).lower() for a in attributes}
    if values.get(LB_DELETION_PROTECTION) != "true":
        return False
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": LB_DELETION_PROTECTION, "Value": "false"}]
    )
    return True
