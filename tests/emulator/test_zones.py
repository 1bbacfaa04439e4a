"""Hosted zones are the user's own: prepared once per account and zone id, never made up."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from tests.emulator.stacks import CAPABILITIES, body, client, deploy, parameters
from tsm_infra.emulator import LocalAws
from tsm_infra.emulator.server import EmulatorError
from tsm_infra.plan import stack_name
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.spec import Cluster, Node


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def _params(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


# ---------------------------------------------------------------------------------- hosted zones


class _AnyOutputs(dict[str, dict[str, str]]):
    """Made-up outputs of every stack a Core stack's parameters name."""

    def __missing__(self, stack: str) -> dict[str, str]:
        class Outputs(dict[str, str]):
            def __missing__(self, output: str) -> str:
                return "0" if output.endswith("Indices") else f"arn:aws:x:::{output}"

        return Outputs()


def _core_change_set(local: LocalAws, cluster: Cluster, node: Node) -> Any:
    cfn = client(local.endpoint_url, node, "cloudformation")
    return cfn.create_change_set(
        StackName=stack_name(cluster.name, node.index, "core"),
        ChangeSetName=f"tsm-{uuid.uuid4().hex[:12]}",
        ChangeSetType="CREATE",
        TemplateBody=body("core"),
        Parameters=_params(**parameters(cluster, node, "core", _AnyOutputs())),
        Capabilities=CAPABILITIES,
    )


def test_a_core_stack_naming_an_unprepared_zone_is_refused_at_its_change_set(
    cluster: Cluster,
) -> None:
    node = cluster.nodes[0]
    with LocalAws() as local:  # nothing prepared: the account has no zone
        with pytest.raises(ClientError) as exc:
            _core_change_set(local, cluster, node)
        assert _error(exc) == (
            "ValidationError",
            f"Parameter validation failed: parameter value {node.hosted_zone_id} for parameter "
            "name HostedZoneId does not exist.",
        )
        r53 = client(local.endpoint_url, node, "route53")
        assert r53.list_hosted_zones()["HostedZones"] == []  # and none was made up
        prepare_accounts(local, [node])
        assert _core_change_set(local, cluster, node)["Id"]


def test_prepare_accounts_makes_one_zone_per_account_and_zone_id(cluster: Cluster) -> None:
    first = cluster.nodes[0]
    second = replace(first, index=5, dns_name=f"other.{first.hosted_zone_name}")
    with LocalAws() as local:
        prepare_accounts(local, [first, second, first])
        zones = client(local.endpoint_url, first, "route53").list_hosted_zones()["HostedZones"]
        assert [(z["Id"], z["Name"]) for z in zones] == [
            (f"/hostedzone/{first.hosted_zone_id}", f"{first.hosted_zone_name}.")
        ]
        renamed = replace(first, hosted_zone_name="elsewhere.example.org")
        with pytest.raises(EmulatorError, match="a zone has one name"):
            prepare_accounts(local, [renamed])


# ------------------------------------------------------------------- custom-resource response


def test_a_custom_resource_response_over_4096_bytes_fails_the_resource(cluster: Cluster) -> None:
    from tsm_infra.functions import keygen

    def oversized(event: Any, context: Any, clients: Any, send: Any) -> dict[str, Any]:
        answer = {
            "Status": "SUCCESS",
            "PhysicalResourceId": "p",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {"Big": "x" * 4096},
        }
        send(event["ResponseURL"], json.dumps(answer).encode())
        return answer

    node = cluster.nodes[0]
    with mock.patch.object(keygen, "handle", oversized), LocalAws() as local:
        prepare_accounts(local, [node])
        stack = deploy(
            local.endpoint_url, cluster, node, "kms", parameters(cluster, node, "kms", {})
        )["stack"]
        assert stack["StackStatus"] == "CREATE_FAILED"
        cfn = client(local.endpoint_url, node, "cloudformation")
        events = cfn.describe_stack_events(StackName=stack["StackId"])["StackEvents"]
        reasons = [e.get("ResourceStatusReason", "") for e in events]
        assert "Response object is too long." in reasons
