"""Checks around a destroy: what it would lose before it starts, what AWS keeps after it ends."""

from __future__ import annotations

from tsm_infra.aws import Connector
from tsm_infra.contract import (
    DATABASE,
    SECRET_ARN_SUFFIX,
    CoreOutputs,
    KmsOutputs,
    log_prefix,
    stack_name,
)
from tsm_infra.plan import Plan
from tsm_infra.run.results import DeployError
from tsm_infra.spec import Cluster, Node
from tsm_infra.stacks import StackInfo, StackOps


def check_destroy(cluster: Cluster, connector: Connector, *, allow_data_loss: bool) -> list[str]:
    """What destroy would do, per stack; DeployError when it would lose the key shares.

    The key shares live in each node's database: destroy goes ahead only when every deployed
    Core template keeps a final snapshot of it (DeletionPolicy Snapshot), or when the operator
    said they understand the loss.
    """
    details: list[str] = []
    losing: list[str] = []
    for node in cluster.nodes:
        ops = StackOps(connector.for_node(node).client("cloudformation"))
        core = ops.describe(stack_name(cluster.name, node.index, "core"))
        kms = ops.describe(stack_name(cluster.name, node.index, "kms"))
        if core is not None:
            template = ops.template(core.stack_id or core.name)
            database = (template.get("Resources") or {}).get(DATABASE) or {}
            policy = database.get("DeletionPolicy", "Delete") if database else "none"
            if policy == "Snapshot":
                details.append(f"{core.name}: delete; a final snapshot of the database is kept")
            elif database:
                losing.append(f"{core.name} (DeletionPolicy {policy})")
                details.append(f"{core.name}: delete; the database is DELETED without snapshot")
            else:
                details.append(f"{core.name}: delete (it has no database)")
        if kms is not None:
            details.append(
                f"{kms.name}: delete; the KMS key and the secrets are retained, the egress "
                "addresses released"
            )
    if losing and not allow_data_loss:
        raise DeployError(
            "refusing to destroy: no final snapshot of the key-share database would be taken for "
            + ", ".join(losing)
            + "; the key shares would be lost for good. Deploy the current templates first "
            "(they keep a snapshot), or pass --i-understand-data-loss"
        )
    return details


def retained(plan: Plan, deleted: dict[str, StackInfo]) -> list[str]:
    """What AWS keeps of each destroyed node, named by what its stacks output before deletion."""
    kept: list[str] = []
    nodes: dict[int, Node] = {step.node_index: step.node for step in plan.steps()}
    for index, node in sorted(nodes.items()):
        kms = deleted.get(stack_name(plan.cluster, index, "kms"))
        core = deleted.get(stack_name(plan.cluster, index, "core"))
        kept += _retained(plan.cluster, node, kms, core)
    return kept


def _retained(cluster: str, node: Node, kms: StackInfo | None, core: StackInfo | None) -> list[str]:
    kept = []
    out = kms.outputs if kms is not None else {}
    if out.get(KmsOutputs.KMS_KEY_ARN):
        kept.append(
            f"KMS key {out[KmsOutputs.KMS_KEY_ARN]}: its alias went with the stack; schedule the "
            "key's deletion yourself once nothing needs it (KMS then waits out the deletion "
            "window)"
        )
    kept += [
        f"secret {value}" for key, value in sorted(out.items()) if key.endswith(SECRET_ARN_SUFFIX)
    ]
    if core is not None and core.outputs.get(CoreOutputs.DATABASE_INSTANCE_ID):
        kept.append(f"final snapshot of database {core.outputs[CoreOutputs.DATABASE_INSTANCE_ID]}")
    if kms is not None or core is not None:
        kept.append(f"log groups under {log_prefix(cluster, node.index)}")
    where = f"nodes[{node.index}] (account {node.account}, {node.region})"
    return [f"{where}: {item}" for item in kept]
