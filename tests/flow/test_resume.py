"""One account fails mid-deploy: the others finish, the reason is shown, a rerun resumes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import Result

from tests.flow.conftest import THREE_NODES, client, run_cli, secret_versions
from tsm_infra.emulator import LocalAws
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.spec import Cluster


@pytest.fixture(scope="module")
def half_ready(cluster: Cluster) -> Iterator[LocalAws]:
    """An emulator where node 1's zone id names another domain's zone, as a mistake would.

    (A zone id that is no zone of the account is refused at CreateChangeSet, before anything
    is deployed; a zone of the wrong name fails mid-deploy, at the certificate.)
    """
    with LocalAws() as aws:
        prepare_accounts(aws, [n for n in cluster.nodes if n.index != 1])
        wrong = cluster.nodes[1]
        aws.prepare_account(wrong.account, wrong.region, wrong.hosted_zone_id, "other.example")
        if wrong.registry_credentials_secret_arn:
            aws.prepare_registry_secret(wrong.account, wrong.registry_credentials_secret_arn)
        yield aws


@pytest.fixture(scope="module")
def failed(half_ready: LocalAws) -> Result:
    # preflight would refuse this spec (node 1's zone is missing); the failure is the point here
    return run_cli(
        "deploy",
        str(THREE_NODES),
        "--yes",
        "--no-preflight",
        "--endpoint-url",
        half_ready.endpoint_url,
    )


def _status(aws: LocalAws, cluster: Cluster, index: int, kind: str) -> str:
    node = cluster.nodes[index]
    cfn = client(aws, node, "cloudformation")
    name = f"tsm-{cluster.name}-node{index}-{kind}"
    return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])


def test_the_failing_account_does_not_stop_the_others(
    failed: Result, half_ready: LocalAws, cluster: Cluster
) -> None:
    assert failed.exit_code == 1
    assert [_status(half_ready, cluster, i, "kms") for i in range(3)] == ["CREATE_COMPLETE"] * 3
    assert _status(half_ready, cluster, 0, "core") == "CREATE_COMPLETE"
    assert _status(half_ready, cluster, 2, "core") == "CREATE_COMPLETE"
    assert _status(half_ready, cluster, 1, "core") == "CREATE_FAILED"


def test_the_summary_names_the_failed_stack_and_its_first_failed_resource(
    failed: Result, cluster: Cluster
) -> None:
    failures = failed.stdout.split("Failed:", 1)[1].strip().splitlines()
    assert failures[0].startswith(
        "tsm-acme-vault-node1-core (account 222222222222): failed: CREATE_FAILED: "
    )
    # the first resource that failed, with its type, and the zone it could not find
    assert "(AWS::" in failures[0]
    assert cluster.nodes[1].hosted_zone_id in failures[0]
    assert "run `tsm-infra deploy" in failed.stdout


def test_the_rerun_resumes_and_regenerates_nothing(
    failed: Result, half_ready: LocalAws, cluster: Cluster
) -> None:
    assert failed.exit_code == 1
    before = secret_versions(half_ready, cluster)
    # the operator fixes the account: the zone of that id is the node's own
    node = cluster.nodes[1]
    client(half_ready, node, "route53").delete_hosted_zone(Id=node.hosted_zone_id)
    prepare_accounts(half_ready, [node])
    rerun = run_cli("deploy", str(THREE_NODES), "--yes", "--endpoint-url", half_ready.endpoint_url)
    assert rerun.exit_code == 0, rerun.output
    results = {
        line.split()[0]: line.split()[2]
        for line in rerun.stdout.splitlines()
        if line.startswith("  tsm-")
    }
    assert results == {
        "tsm-acme-vault-node0-kms": "unchanged",
        "tsm-acme-vault-node1-kms": "unchanged",
        "tsm-acme-vault-node2-kms": "unchanged",
        "tsm-acme-vault-node0-core": "unchanged",
        "tsm-acme-vault-node1-core": "resumed",
        "tsm-acme-vault-node2-core": "unchanged",
    }
    assert _status(half_ready, cluster, 1, "core") == "UPDATE_COMPLETE"
    assert secret_versions(half_ready, cluster) == before
