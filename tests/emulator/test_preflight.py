"""Preflight against the emulator: each check made to fail, and a clean three-node pass."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner

from tsm_infra import aws as aws_module
from tsm_infra.aws import Connector, local_session
from tsm_infra.cli import cli
from tsm_infra.emulator import LocalAws
from tsm_infra.preflight import PreflightResult, preflight
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.spec import Cluster, load_spec_text

_accounts = itertools.count(400000000000, 1000)


def spec_text(cluster: str = "pf-vault", **overrides: Any) -> str:
    """Three nodes in fresh accounts (so tests on one emulator do not meet); per-node overrides
    as `n<i>_<field>`."""
    nodes = []
    for i in range(3):
        account = str(next(_accounts))
        region = overrides.get(f"n{i}_region", ["eu-west-1", "eu-central-1", "us-east-1"][i])
        lines = [
            f"  - index: {i}",
            f'    account: "{account}"',
            f"    region: {region}",
            f"    dns_name: node{i}.vault.acme.example",
            f"    hosted_zone_id: Z0{account}{i}",
            "    registry_credentials_secret_arn: "
            f"arn:aws:secretsmanager:{region}:{account}:secret:tsm/registry-AbCdEf",
        ]
        lines += [
            f"    {key.split('_', 1)[1]}: {value}"
            for key, value in overrides.items()
            if key.startswith(f"n{i}_") and key != f"n{i}_region"
        ]
        nodes.append("\n".join(lines))
    return (
        f"cluster: {cluster}\nthreshold: 1\n"
        "tsm:\n  image: registry.example.com/acme/tsm-node:72.0.0\n"
        "defaults:\n  sdk_client_cidrs: [198.51.100.0/24]\n"
        "nodes:\n" + "\n".join(nodes) + "\n"
    )


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalAws]:
    with LocalAws() as aws:
        yield aws


def ready(aws: LocalAws, cluster: Cluster, *, skip_zone: int = -1, skip_secret: int = -1) -> None:
    """Prepare the accounts as a user would: hosted zones and registry secrets."""
    for node in cluster.nodes:
        if node.index != skip_zone:
            aws.prepare_account(
                node.account, node.region, node.hosted_zone_id, node.hosted_zone_name
            )
        if node.index != skip_secret and node.registry_credentials_secret_arn:
            aws.prepare_registry_secret(node.account, node.registry_credentials_secret_arn)


def run(aws: LocalAws, cluster: Cluster) -> PreflightResult:
    return preflight(cluster, Connector(endpoint_url=aws.endpoint_url))


def checks(result: PreflightResult) -> set[tuple[int, str]]:
    return {(f.node, f.check) for f in result.findings}


def sm(aws: LocalAws, cluster: Cluster, index: int) -> Any:
    node = cluster.nodes[index]
    return local_session(node.account, node.region, aws.endpoint_url).client("secretsmanager")


def test_a_ready_three_node_cluster_passes_with_notes_for_what_the_emulator_cannot_answer(
    emulator: LocalAws,
) -> None:
    cluster = load_spec_text(spec_text())
    ready(emulator, cluster)
    result = run(emulator, cluster)
    assert result.findings == []
    assert result.ok
    noted = {(n.node, n.check) for n in result.notes}
    # moto knows no PostgreSQL classes, no EC2 quotas, no policy simulation: notes, not passes
    for i in range(3):
        assert {(i, "db_instance_class"), (i, "elastic_ips"), (i, "permissions")} <= noted
    assert any("assuming the default 5" in n.message for n in result.notes)


def test_credentials_that_land_in_another_account_are_a_finding(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text())
    ready(emulator, cluster)
    real = aws_module.local_session

    def elsewhere(account: str, region: str, endpoint_url: str) -> Any:
        return real("999999999999", region, endpoint_url)

    with mock.patch.object(aws_module, "local_session", elsewhere):
        result = run(emulator, cluster)
    assert checks(result) == {(0, "credentials"), (1, "credentials"), (2, "credentials")}
    assert "acts in account 999999999999" in result.findings[0].message


def test_a_region_the_account_has_not_enabled_is_a_finding(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text(n2_region="ap-east-1"))  # an opt-in region
    ready(emulator, cluster)
    result = run(emulator, cluster)
    assert checks(result) == {(2, "region")}
    assert "not enabled" in result.findings[0].message
    assert "enable-region --region-name ap-east-1" in result.findings[0].advice


def test_a_missing_hosted_zone_is_a_finding(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text())
    ready(emulator, cluster, skip_zone=1)
    result = run(emulator, cluster)
    assert checks(result) == {(1, "hosted_zone")}
    assert "does not exist in account" in result.findings[0].message


def test_a_zone_with_another_name_is_a_finding(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text())
    ready(emulator, cluster, skip_zone=0)
    node = cluster.nodes[0]
    emulator.prepare_account(node.account, node.region, node.hosted_zone_id, "other.example")
    result = run(emulator, cluster)
    messages = [f.message for f in result.findings]
    assert checks(result) == {(0, "hosted_zone")}
    assert f"hosted zone {node.hosted_zone_id} is other.example, not vault.acme.example" in messages
    assert (
        f"node0.vault.acme.example is not inside hosted zone {node.hosted_zone_id} "
        in (messages[1][: len("node0.vault.acme.example is not inside hosted zone ") + 22])
    )


def test_an_instance_type_not_offered_is_a_finding(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text(n0_instance_type="zz9.mega"))
    ready(emulator, cluster)
    result = run(emulator, cluster)
    assert checks(result) == {(0, "instance_type")}
    assert "zz9.mega is not offered in eu-west-1a, eu-west-1b" in result.findings[0].message


def test_exhausted_elastic_ips_are_a_finding(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text(n1_nat_gateways=2))
    ready(emulator, cluster)
    node = cluster.nodes[1]
    ec2 = local_session(node.account, node.region, emulator.endpoint_url).client("ec2")
    for _ in range(4):
        ec2.allocate_address(Domain="vpc")
    result = run(emulator, cluster)
    assert checks(result) == {(1, "elastic_ips")}
    assert "2 new Elastic IP(s) for nodes[1], but 4 of the quota of 5" in result.findings[0].message


def test_leftover_and_scheduled_for_deletion_secrets_are_findings(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text())
    ready(emulator, cluster)
    sm(emulator, cluster, 0).create_secret(Name="tsm/pf-vault/node0/p2p-key", SecretString="x")
    gone = sm(emulator, cluster, 2)
    gone.create_secret(Name="tsm/pf-vault/node2/p2p-key", SecretString="x")
    gone.delete_secret(SecretId="tsm/pf-vault/node2/p2p-key", RecoveryWindowInDays=7)
    result = run(emulator, cluster)
    assert checks(result) == {(0, "leftover_secrets"), (2, "leftover_secrets")}
    by_node = {f.node: f for f in result.findings}
    assert "(tsm/pf-vault/node0/p2p-key)" in by_node[0].message
    assert "tsm/pf-vault/node2/p2p-key (scheduled for deletion)" in by_node[2].message
    assert "restore-secret" in by_node[2].advice
    assert "--force-delete-without-recovery" in by_node[2].advice
    assert "key share identity" in by_node[2].advice


def test_a_missing_registry_secret_is_a_finding(emulator: LocalAws) -> None:
    cluster = load_spec_text(spec_text())
    ready(emulator, cluster, skip_secret=2)
    result = run(emulator, cluster)
    assert checks(result) == {(2, "registry")}
    assert "tsm/registry-AbCdEf does not exist" in result.findings[0].message


def test_a_missing_ecr_repository_is_a_finding(emulator: LocalAws) -> None:
    text = spec_text().replace(
        "registry.example.com/acme/tsm-node:72.0.0",
        "444444444444.dkr.ecr.eu-west-1.amazonaws.com/tsm-node:72.0.0",
    )
    cluster = load_spec_text(text)
    ready(emulator, cluster)
    result = run(emulator, cluster)
    assert {f.check for f in result.findings} == {"registry"}
    assert "ECR repository tsm-node does not exist in registry 444444444444" in (
        result.findings[0].message
    )


def test_the_cli_prints_findings_and_exits_2_and_deploy_creates_nothing(
    emulator: LocalAws, tmp_path: Path
) -> None:
    cluster = load_spec_text(spec_text())
    ready(emulator, cluster, skip_secret=0)
    path = tmp_path / "spec.yaml"
    path.write_text(spec_text().replace("pf-vault", "pf-cli"), encoding="utf-8")
    cluster = load_spec_text(path.read_text(encoding="utf-8"))
    ready(emulator, cluster, skip_zone=0)
    runner = CliRunner()
    checked = runner.invoke(cli, ["preflight", str(path), "--endpoint-url", emulator.endpoint_url])
    assert checked.exit_code == 2
    assert "nodes[0] (account" in checked.stdout
    assert "1 finding(s)" in checked.stdout
    as_json = runner.invoke(
        cli,
        ["preflight", str(path), "--endpoint-url", emulator.endpoint_url, "--output", "json"],
    )
    assert as_json.exit_code == 2
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    assert [(f["node"], f["check"]) for f in data["findings"]] == [(0, "hosted_zone")]
    deployed = runner.invoke(
        cli, ["deploy", str(path), "--yes", "--endpoint-url", emulator.endpoint_url]
    )
    assert deployed.exit_code == 2
    assert "nothing was created" in deployed.stderr
    for node in cluster.nodes:
        cfn = local_session(node.account, node.region, emulator.endpoint_url).client(
            "cloudformation"
        )
        assert cfn.describe_stacks()["Stacks"] == []


def test_the_rehearsal_runs_preflight_first_and_creates_nothing_on_a_finding(
    emulator: LocalAws, tmp_path: Path
) -> None:
    from tsm_infra.preflight import PreflightError
    from tsm_infra.rehearsal import rehearse

    clean = load_spec_text(spec_text())
    prepare_accounts(emulator, clean.nodes)  # zones and registry secrets, as real accounts hold
    passed = preflight(clean, Connector(endpoint_url=emulator.endpoint_url))
    assert passed.findings == []
    assert not [n for n in passed.notes if n.check == "registry"]
    cluster = load_spec_text(spec_text(n1_instance_type="zz9.mega"))
    with pytest.raises(PreflightError) as refused:
        rehearse(cluster, out_dir=tmp_path, emulator=emulator)
    assert refused.value.exit_code == 2
    assert "zz9.mega is not offered" in str(refused.value)
    assert "nothing was created" in str(refused.value)
    for node in cluster.nodes:
        cfn = local_session(node.account, node.region, emulator.endpoint_url).client(
            "cloudformation"
        )
        assert cfn.describe_stacks()["Stacks"] == []
