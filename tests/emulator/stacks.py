"""Raw boto3 change-set calls against the emulator, as the deployer makes them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from tsm_infra import aws
from tsm_infra.plan import (
    JoinedRefs,
    OutputRef,
    ParamValue,
    core_parameters,
    kms_parameters,
    stack_name,
)
from tsm_infra.spec import Cluster, Node
from tsm_infra.templates import template_body

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_BODIES: dict[str, str] = {}
_CLIENTS: dict[tuple[str, str, str, str], Any] = {}


def body(kind: str) -> str:
    """The template body deploy sends (cached: decoding takes a moment)."""
    if kind not in _BODIES:
        _BODIES[kind] = template_body(kind)
    return _BODIES[kind]


def client(endpoint: str, node: Node, service: str, region: str | None = None) -> Any:
    """A client acting in the node's account (and its region unless given)."""
    key = (endpoint, node.account, region or node.region, service)
    if key not in _CLIENTS:
        _CLIENTS[key] = aws.local_session(node.account, key[2], endpoint).client(service)
    return _CLIENTS[key]


def resolve(
    params: Mapping[str, ParamValue], outputs: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """Plan parameters with OutputRef/JoinedRefs replaced by the named stacks' outputs."""

    def one(ref: OutputRef) -> str:
        return outputs[ref.stack][ref.output]

    resolved: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, str):
            resolved[name] = value
        elif isinstance(value, OutputRef):
            resolved[name] = one(value)
        elif isinstance(value, JoinedRefs):
            resolved[name] = ",".join(one(r) for r in value.refs)
    return resolved


def parameters(
    cluster: Cluster, node: Node, kind: str, outputs: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The plan's parameters of one stack, resolved."""
    make = kms_parameters if kind == "kms" else core_parameters
    return resolve(make(cluster, node), outputs)


def wait(cfn: Any, name: str) -> dict[str, Any]:
    """The stack once it is no longer in progress."""
    for _ in range(200):
        stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        time.sleep(0.05)
    raise AssertionError(f"{name} stays {stack['StackStatus']}")


def deploy(
    endpoint: str, cluster: Cluster, node: Node, kind: str, params: Mapping[str, str]
) -> dict[str, Any]:
    """Create or update one stack through a change set; the change set and the stack afterwards."""
    cfn = client(endpoint, node, "cloudformation")
    name = stack_name(cluster.name, node.index, kind)  # type: ignore[arg-type]
    try:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        kind_of_change = "CREATE" if status == "REVIEW_IN_PROGRESS" else "UPDATE"
    except cfn.exceptions.ClientError:
        kind_of_change = "CREATE"
    created = cfn.create_change_set(
        StackName=name,
        ChangeSetName=f"tsm-{uuid.uuid4().hex[:12]}",
        ChangeSetType=kind_of_change,
        TemplateBody=body(kind),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=CAPABILITIES,
    )
    change_set = cfn.describe_change_set(ChangeSetName=created["Id"], StackName=name)
    if change_set["Status"] != "FAILED":  # a FAILED one (no changes) cannot be executed
        cfn.execute_change_set(ChangeSetName=created["Id"], StackName=name)
    return {"change_set": change_set, "stack": wait(cfn, name)}


def outputs_of(stack: Mapping[str, Any]) -> dict[str, str]:
    """A stack's outputs by key."""
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
