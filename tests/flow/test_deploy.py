"""`tsm-infra deploy`, `status` and `outputs` across three accounts, against the emulator."""

from __future__ import annotations

import json

import pytest
from click.testing import Result

from tests.flow.conftest import (
    THREE_NODES,
    client,
    outputs,
    parameters,
    run_cli,
    secret_values,
    secret_versions,
)
from tsm_infra.aws import CallCounter, Connector
from tsm_infra.emulator import LocalAws
from tsm_infra.plan import Plan, deploy_plan
from tsm_infra.run import Options, execute
from tsm_infra.spec import Cluster
from tsm_infra.templates import template_body


@pytest.fixture(scope="module")
def first(emulator: LocalAws) -> Result:
    """The first deploy, through the CLI as a user runs it (plain progress: not a terminal)."""
    return run_cli("deploy", str(THREE_NODES), "--yes", "--endpoint-url", emulator.endpoint_url)


def _plan(cluster: Cluster) -> Plan:
    return deploy_plan(cluster)


def test_first_deploy_creates_all_six_stacks(first: Result) -> None:
    assert first.exit_code == 0, first.output
    created = [line for line in first.stdout.splitlines() if line.rstrip().endswith("change(s))")]
    assert len(created) == 6
    assert all(" created (" in line for line in created)
    # KMS stacks before Core stacks
    names = [line.split()[0] for line in created]
    assert [n.endswith("-kms") for n in names] == [True] * 3 + [False] * 3


def test_progress_is_reported_as_plain_lines(first: Result) -> None:
    lines = [line for line in first.stderr.splitlines() if "tsm-acme-vault-node1-core" in line]
    assert any("creating change set" in line for line in lines)
    assert any(line.rstrip().endswith(": created") for line in lines)


def test_the_change_sets_are_shown_per_account_even_with_yes(first: Result) -> None:
    lines = first.stderr.splitlines()
    assert any(
        line.startswith("tsm-acme-vault-node2-kms (account 333333333333, us-east-1): create, ")
        for line in lines
    )
    assert "    Add NodeKey (AWS::KMS::Key)" in lines
    assert "    Add Database (AWS::RDS::DBInstance)" in lines


def test_invitations_are_accepted_in_every_account(
    first: Result, emulator: LocalAws, cluster: Cluster
) -> None:
    assert first.exit_code == 0
    for node in cluster.nodes:
        senders = []
        for peer in cluster.nodes:
            if peer.account == node.account:
                continue
            # RAM is regional: the invitation is in the region of the stack that shares
            ram = client(emulator, node, "ram", peer.region)
            invitations = ram.get_resource_share_invitations()["resourceShareInvitations"]
            senders += [i["senderAccountId"] for i in invitations if i["status"] == "ACCEPTED"]
        assert sorted(senders) == sorted(n.account for n in cluster.nodes if n != node)


def test_each_core_stack_is_wired_to_its_own_and_its_peers_kms_stacks(
    first: Result, emulator: LocalAws, cluster: Cluster
) -> None:
    assert first.exit_code == 0
    kms = {n.index: outputs(emulator, cluster, n, "kms") for n in cluster.nodes}
    for node in cluster.nodes:
        params = parameters(emulator, cluster, node, "core")
        peers = [n.index for n in cluster.nodes if n.index != node.index]
        assert params["PeerIndices"] == ",".join(map(str, peers))
        assert params["PeerPublicKeyParameterArns"].split(",") == [
            kms[p]["PublicKeyParameterArn"] for p in peers
        ]
        assert sorted(params["PeerEgressCidrs"].split(",")) == sorted(
            kms[p]["EgressCidrs"] for p in peers
        )
        assert params["KmsKeyArn"] == kms[node.index]["KmsKeyArn"]
        assert params["EgressAllocationIds"] == kms[node.index]["EgressAllocationIds"]
        # the three public keys are distinct: each node generated its own
    assert len({out["PublicKey"] for out in kms.values()}) == 3


def test_no_secret_value_reaches_the_cli_output(
    first: Result, emulator: LocalAws, cluster: Cluster
) -> None:
    assert first.exit_code == 0
    secrets = secret_values(emulator, cluster)
    assert len(secrets) >= 4 * 3  # every node's generated secrets were found and checked
    status = run_cli("status", str(THREE_NODES), "--endpoint-url", emulator.endpoint_url)
    manifest = run_cli("outputs", str(THREE_NODES), "--endpoint-url", emulator.endpoint_url)
    printed = first.output + status.output + manifest.output
    leaked = [i for i, value in enumerate(secrets) if value in printed]
    assert leaked == []


def test_a_noop_redeploy_executes_no_change_set(
    first: Result, emulator: LocalAws, cluster: Cluster
) -> None:
    assert first.exit_code == 0
    before = secret_versions(emulator, cluster)
    counter = CallCounter()
    result = execute(
        _plan(cluster),
        Connector(endpoint_url=emulator.endpoint_url, counter=counter),
        options=Options(poll_interval=0.01),
    )
    assert [o.result for o in result.outcomes] == ["unchanged"] * 6
    calls = counter.counts()
    assert calls.get("cloudformation:ExecuteChangeSet", 0) == 0
    # each stack's template digest, parameters and tags match: no change set is needed
    assert calls.get("cloudformation:CreateChangeSet", 0) == 0
    assert calls.get("cloudformation:DescribeStacks", 0) == 6
    assert secret_versions(emulator, cluster) == before


def test_status_finds_the_cluster_consistent(first: Result, emulator: LocalAws) -> None:
    assert first.exit_code == 0
    result = run_cli(
        "status", str(THREE_NODES), "--endpoint-url", emulator.endpoint_url, "--output", "json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert sum("generated public key" in line for line in report["checks_passed"]) == 6
    assert all(set(n["stacks"].values()) == {"CREATE_COMPLETE"} for n in report["nodes"])


def test_outputs_is_a_manifest_without_secret_values(
    first: Result, emulator: LocalAws, cluster: Cluster
) -> None:
    assert first.exit_code == 0
    result = run_cli("outputs", str(THREE_NODES), "--endpoint-url", emulator.endpoint_url)
    manifest = json.loads(result.stdout)
    assert manifest["threshold"] == 1 and manifest["signers_needed"] == 2
    assert [n["sdk_endpoint"] for n in manifest["nodes"]] == [
        f"https://{n.dns_name}" for n in cluster.nodes
    ]
    assert all(
        n["sdk_api_keys_secret_arn"].startswith("arn:aws:secretsmanager:")
        for n in manifest["nodes"]
    )
    assert all(n["certificate"]["arn"].startswith("arn:aws:acm:") for n in manifest["nodes"])


def test_a_change_replacing_the_database_is_refused(
    first: Result, emulator: LocalAws, cluster: Cluster
) -> None:
    assert first.exit_code == 0
    database_before = {
        n.index: client(emulator, n, "rds").describe_db_instances()["DBInstances"][0][
            "DBInstanceIdentifier"
        ]
        for n in cluster.nodes
    }

    def body(kind: str) -> str:
        text = template_body(kind)
        # the database's name is create-only: changing it makes CloudFormation replace it
        return text.replace('"DBName":"tsm"', '"DBName":"tsmshares"') if kind == "core" else text

    result = execute(
        _plan(cluster),
        Connector(endpoint_url=emulator.endpoint_url),
        options=Options(poll_interval=0.01),
        template_body=body,
    )
    core = [o for o in result.outcomes if o.kind == "core"]
    assert [o.result for o in core] == ["refused"] * 3
    assert "Modify Database (AWS::RDS::DBInstance), replacement True" in core[0].reason
    assert "--allow-replace Database" in core[0].reason
    assert not result.ok
    for node in cluster.nodes:
        instances = client(emulator, node, "rds").describe_db_instances()["DBInstances"]
        assert [i["DBInstanceIdentifier"] for i in instances] == [database_before[node.index]]
        info = client(emulator, node, "cloudformation").describe_stacks(
            StackName=f"tsm-acme-vault-node{node.index}-core"
        )["Stacks"][0]
        assert info["StackStatus"] == "CREATE_COMPLETE"


def test_status_with_drift_reports_each_stack(first: Result, emulator: LocalAws) -> None:
    assert first.exit_code == 0
    result = run_cli("status", str(THREE_NODES), "--endpoint-url", emulator.endpoint_url, "--drift")
    # the emulator cannot detect drift: each stack says so, and that is no cluster problem
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "drift " in line]
    assert len(lines) == 6
    expected = "drift not checked: this endpoint does not run drift detection ("
    assert all(expected in line for line in lines), lines
    assert "html" not in result.output.lower()  # the emulator's raw answer is a page of HTML
