"""What deploy and destroy refuse to do, and how they stop."""

from __future__ import annotations

import _thread
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.flow.conftest import client
from tsm_infra.aws import AccessError, Connector
from tsm_infra.emulator import LocalAws
from tsm_infra.plan import Plan, deploy_plan
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.run import DeployError, Event, Options, check_destroy, execute
from tsm_infra.spec import Cluster
from tsm_infra.stacks import Interrupted


def _plan(cluster: Cluster) -> Plan:
    return deploy_plan(cluster)


class _StubSession:
    """Hands out one stubbed CloudFormation client, whatever the account."""

    def __init__(self, cfn: Any) -> None:
        self.cfn = cfn

    def client(self, service: str, region: str | None = None) -> Any:
        assert service == "cloudformation"
        return self.cfn


class _StubConnector(Connector):
    def __init__(self, cfn: Any) -> None:
        super().__init__()
        self.session = _StubSession(cfn)

    def for_node(self, node: Any) -> Any:
        return self.session


def _stack(name: str) -> dict[str, Any]:
    return {
        "StackName": name,
        "StackId": f"arn:aws:cloudformation:eu-west-1:111111111111:stack/{name}/1",
        "StackStatus": "CREATE_COMPLETE",
        "CreationTime": "2026-01-01T00:00:00Z",
    }


def _check_destroy(cluster: Cluster, database: dict[str, Any], allow: bool) -> list[str]:
    """check_destroy against stacks whose deployed Core template has this Database resource."""
    import boto3

    cfn = boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    template = json.dumps({"Resources": {"Database": database}})
    with Stubber(cfn) as stub:
        for node in cluster.nodes:
            core, kms = (f"tsm-acme-vault-node{node.index}-{k}" for k in ("core", "kms"))
            stub.add_response("describe_stacks", {"Stacks": [_stack(core)]})
            stub.add_response("describe_stacks", {"Stacks": [_stack(kms)]})
            stub.add_response("get_template", {"TemplateBody": template})
        return check_destroy(cluster, _StubConnector(cfn), allow_data_loss=allow)


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_destroy_refuses_to_lose_the_key_shares(cluster: Cluster, policy: str) -> None:
    database = {"Type": "AWS::RDS::DBInstance", "DeletionPolicy": policy}
    with pytest.raises(DeployError) as caught:
        _check_destroy(cluster, database, allow=False)
    assert str(caught.value).startswith(
        "refusing to destroy: no final snapshot of the key-share database would be "
        f"taken for tsm-acme-vault-node0-core (DeletionPolicy {policy}), "
    )
    assert "--i-understand-data-loss" in str(caught.value)


def test_destroy_goes_ahead_when_a_snapshot_is_kept(cluster: Cluster) -> None:
    database = {"Type": "AWS::RDS::DBInstance", "DeletionPolicy": "Snapshot"}
    details = _check_destroy(cluster, database, allow=False)
    assert (
        details[0] == "tsm-acme-vault-node0-core: delete; a final snapshot of the database is kept"
    )
    assert details[1].startswith("tsm-acme-vault-node0-kms: delete; the KMS key and")


def test_destroy_goes_ahead_when_the_loss_is_understood(cluster: Cluster) -> None:
    details = _check_destroy(cluster, {"Type": "AWS::RDS::DBInstance"}, allow=True)
    assert "the database is DELETED without snapshot" in details[0]


def test_declining_changes_nothing(cluster: Cluster) -> None:
    asked: list[tuple[str, Sequence[str]]] = []

    def no(question: str, details: Sequence[str]) -> bool:
        asked.append((question, details))
        return False

    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        result = execute(
            _plan(cluster),
            Connector(endpoint_url=aws.endpoint_url),
            prompt=no,
            options=Options(poll_interval=0.01),
        )
        assert [o.result for o in result.outcomes] == ["declined"] * 3  # no Core phase after it
        assert asked[0][0] == "Execute the kms phase's changes to 3 stacks?"
        assert asked[0][1][0].startswith(
            "tsm-acme-vault-node0-kms (account 111111111111, eu-west-1): create, "
        )
        for node in cluster.nodes:
            stacks = client(aws, node, "cloudformation").describe_stacks()["Stacks"]
            assert [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"] == []


def test_ctrl_c_stops_waiting_and_the_rerun_resumes(cluster: Cluster) -> None:
    interrupted: list[str] = []

    def report(event: Event) -> None:
        # the operator presses Ctrl-C while the Core phase prepares its change sets
        if event.stack.endswith("node0-core") and event.status == "checking" and not interrupted:
            interrupted.append(event.stack)
            _thread.interrupt_main()
            time.sleep(0.5)  # keep the phase busy until the main thread has seen it

    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        connector = Connector(endpoint_url=aws.endpoint_url)
        with pytest.raises(Interrupted) as caught:
            execute(_plan(cluster), connector, report=report, options=Options(poll_interval=0.05))
        assert "stopped waiting" in str(caught.value)
        assert "run the same command again to resume" in str(caught.value)
        rerun = execute(_plan(cluster), connector, options=Options(poll_interval=0.01))
        results = {o.stack: o.result for o in rerun.outcomes}
        assert rerun.ok, rerun.to_dict()
        assert [results[f"tsm-acme-vault-node{i}-kms"] for i in range(3)] == ["unchanged"] * 3


def test_an_unreachable_account_fails_only_its_own_stacks(cluster: Cluster) -> None:
    class OneAccountDown(Connector):
        def for_node(self, node: Any) -> Any:
            if node.index == 1:
                raise AccessError(f"nodes[1] (account {node.account}): cannot reach the account")
            return super().for_node(node)

    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        result = execute(
            _plan(cluster),
            OneAccountDown(endpoint_url=aws.endpoint_url),
            options=Options(poll_interval=0.01),
        )
    results = [(o.stack, o.result) for o in result.outcomes]
    assert results == [
        ("tsm-acme-vault-node0-kms", "created"),
        ("tsm-acme-vault-node1-kms", "failed"),
        ("tsm-acme-vault-node2-kms", "created"),
        ("tsm-acme-vault-node0-core", "skipped"),
        ("tsm-acme-vault-node1-core", "skipped"),
        ("tsm-acme-vault-node2-core", "skipped"),
    ]
    assert result.outcomes[1].reason == "nodes[1] (account 222222222222): cannot reach the account"
