"""The local rehearsal end to end: real templates, deployer, key generation and node renderer."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import REPO
from tsm_infra.aws import local_session
from tsm_infra.cli import cli
from tsm_infra.emulator import LocalAws
from tsm_infra.rehearsal import Rehearsal, rehearse
from tsm_infra.render import rehearsal_text
from tsm_infra.spec import Cluster, Node, load_spec

THREE_NODES = REPO / "examples" / "three-nodes.yaml"


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return load_spec(THREE_NODES)


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalAws]:
    with LocalAws() as aws:
        yield aws


@pytest.fixture(scope="module")
def rehearsal(
    cluster: Cluster, emulator: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> Rehearsal:
    return rehearse(cluster, out_dir=tmp_path_factory.mktemp("configs"), emulator=emulator)


@functools.cache
def _cached_client(endpoint: str, account: str, region: str, service: str) -> Any:
    # making sessions and clients is most of these tests' time; the emulator outlives them
    return local_session(account, region, endpoint).client(service)


def _client(aws: LocalAws, node: Node, service: str) -> Any:
    return _cached_client(aws.endpoint_url, node.account, node.region, service)


def _outputs(aws: LocalAws, node: Node, stack: str) -> dict[str, str]:
    described = _client(aws, node, "cloudformation").describe_stacks(StackName=stack)
    return {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0]["Outputs"]}


def _secret(aws: LocalAws, node: Node, arn: str) -> str:
    return str(_client(aws, node, "secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def test_the_demo_path_deploys_six_stacks(rehearsal: Rehearsal) -> None:
    assert rehearsal.deploy.ok, rehearsal.deploy.to_dict()
    assert [o.result for o in rehearsal.deploy.outcomes] == ["created"] * 6
    assert rehearsal.problems == []
    assert rehearsal.ok
    assert all(count > 20 for count in rehearsal.resources.values())


def test_each_account_holds_what_the_templates_give(
    rehearsal: Rehearsal, emulator: LocalAws, cluster: Cluster
) -> None:
    assert rehearsal.deploy.ok
    for node in cluster.nodes:
        kms_out = _outputs(emulator, node, f"tsm-acme-vault-node{node.index}-kms")
        key_arn = kms_out["KmsKeyArn"]
        key = _client(emulator, node, "kms").describe_key(KeyId=key_arn)["KeyMetadata"]
        assert key["KeyState"] == "Enabled"
        rotation = _client(emulator, node, "kms").get_key_rotation_status(KeyId=key_arn)
        assert rotation["KeyRotationEnabled"] is True
        sm = _client(emulator, node, "secretsmanager")
        for name in (
            "P2PKeySecretArn",
            "SdkApiKeysSecretArn",
            "ManagementApiKeySecretArn",
            "EncryptorMasterPasswordSecretArn",
        ):
            assert sm.describe_secret(SecretId=kms_out[name])["KmsKeyId"] in (
                key_arn,
                key["KeyId"],
            )
        ssm = _client(emulator, node, "ssm")
        assert (
            ssm.get_parameter(Name=kms_out["PublicKeyParameterArn"])["Parameter"]["Value"]
            == (kms_out["PublicKey"])
        )
        shares = _client(emulator, node, "ram").get_resource_shares(resourceOwner="SELF")
        assert [s["name"] for s in shares["resourceShares"]] == [
            f"tsm-acme-vault-node{node.index}-public"
        ]

        (db,) = _client(emulator, node, "rds").describe_db_instances()["DBInstances"]
        assert db["StorageEncrypted"] is True
        assert db["KmsKeyId"] in (key_arn, key["KeyId"])
        assert db["PubliclyAccessible"] is False
        assert db["DeletionProtection"] is True
        assert db["BackupRetentionPeriod"] >= 7

        elb = _client(emulator, node, "elbv2")
        (nlb,) = elb.describe_load_balancers()["LoadBalancers"]
        assert nlb["Type"] == "network"
        listeners = elb.describe_listeners(LoadBalancerArn=nlb["LoadBalancerArn"])["Listeners"]
        assert sorted((x["Protocol"], x["Port"]) for x in listeners) == [
            ("TCP", 9000),
            ("TLS", 443),
        ]
        tls = next(x for x in listeners if x["Protocol"] == "TLS")
        assert tls["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")

        records = _client(emulator, node, "route53").list_resource_record_sets(
            HostedZoneId=node.hosted_zone_id
        )["ResourceRecordSets"]
        alias = [r for r in records if r["Name"].rstrip(".") == node.dns_name and r["Type"] == "A"]
        assert len(alias) == 1 and "AliasTarget" in alias[0]

        (group,) = _client(emulator, node, "autoscaling").describe_auto_scaling_groups()[
            "AutoScalingGroups"
        ]
        assert (group["MinSize"], group["MaxSize"]) == (1, 1)
        template_id = group["LaunchTemplate"]["LaunchTemplateId"]
        versions = _client(emulator, node, "ec2").describe_launch_template_versions(
            LaunchTemplateId=template_id
        )["LaunchTemplateVersions"]
        metadata = versions[0]["LaunchTemplateData"]["MetadataOptions"]
        assert metadata["HttpTokens"] == "required"


def _spki_of(sec1_b64: str) -> str:
    key = serialization.load_der_private_key(base64.b64decode(sec1_b64), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(spki).decode()


def _hash(value: str) -> str:
    return base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()


def test_rendered_configs_agree_with_each_other_and_the_stored_secrets(
    rehearsal: Rehearsal, emulator: LocalAws, cluster: Cluster
) -> None:
    assert rehearsal.deploy.ok
    secrets = {}
    for node in cluster.nodes:
        out = _outputs(emulator, node, f"tsm-acme-vault-node{node.index}-kms")
        secrets[node.index] = {
            "public": _spki_of(_secret(emulator, node, out["P2PKeySecretArn"])),
            "sdk": json.loads(_secret(emulator, node, out["SdkApiKeysSecretArn"])),
            "mgmt": _secret(emulator, node, out["ManagementApiKeySecretArn"]),
        }
    assert len({s["public"] for s in secrets.values()}) == 3
    for rendered in rehearsal.rendered:
        config = rendered.config
        own = secrets[rendered.index]
        assert config["Player"]["Index"] == rendered.index
        assert config["Player"]["PrivateKey"] == "{{ env `TSM_PLAYER_PRIVATE_KEY` }}"
        peers = {int(i): entry["PublicKey"] for i, entry in config["Players"].items()}
        assert peers == {i: s["public"] for i, s in secrets.items() if i != rendered.index}
        apps = {k["ApplicationID"]: k["APIKey"] for k in config["Authentication"]["APIKeys"]}
        assert apps == {app: _hash(key) for app, key in own["sdk"].items()}
        assert config["ManagementServer"]["APIKeys"][0]["APIKey"] == _hash(own["mgmt"])
        text = Path(rendered.config_path).read_text()
        for value in [own["mgmt"], *own["sdk"].values()]:
            assert value not in text


def test_the_rehearsal_report_holds_no_secret_value(
    rehearsal: Rehearsal, emulator: LocalAws, cluster: Cluster
) -> None:
    printed = rehearsal_text(rehearsal, str(THREE_NODES)) + json.dumps(rehearsal.to_dict())
    configs = "".join(Path(node.config_path).read_text() for node in rehearsal.rendered)
    values = []
    for node in cluster.nodes:
        out = _outputs(emulator, node, f"tsm-acme-vault-node{node.index}-kms")
        for key, arn in out.items():
            if key.endswith("SecretArn"):
                value = _secret(emulator, node, arn)
                values.append(value)
                if value.startswith("{"):
                    values += list(json.loads(value).values())
    assert len(values) >= 15
    assert [v for v in values if v in printed or v in configs] == []


def test_a_second_deploy_changes_nothing_and_regenerates_nothing(
    rehearsal: Rehearsal, emulator: LocalAws, cluster: Cluster, tmp_path: Path
) -> None:
    assert rehearsal.deploy.ok

    def versions() -> dict[str, Any]:
        found = {}
        for node in cluster.nodes:
            out = _outputs(emulator, node, f"tsm-acme-vault-node{node.index}-kms")
            sm = _client(emulator, node, "secretsmanager")
            for key, arn in out.items():
                if key.endswith("SecretArn"):
                    found[arn] = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        return found

    before = versions()
    again = rehearse(cluster, out_dir=tmp_path, emulator=emulator)
    assert [o.result for o in again.deploy.outcomes] == ["unchanged"] * 6
    assert again.ok
    assert versions() == before


def test_destroy_keeps_the_key_the_secrets_and_a_database_snapshot(
    rehearsal: Rehearsal, emulator: LocalAws, cluster: Cluster
) -> None:
    assert rehearsal.deploy.ok
    kept = {
        node.index: _outputs(emulator, node, f"tsm-acme-vault-node{node.index}-kms")
        for node in cluster.nodes
    }
    result = CliRunner().invoke(
        cli,
        ["destroy", str(THREE_NODES), "--yes", "--endpoint-url", emulator.endpoint_url],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "a final snapshot of the database is kept" in result.output
    assert "Retained on purpose" in result.stdout
    for node in cluster.nodes:
        # named by ARN: the alias is deleted with the stack, the key and secrets are not
        assert f"KMS key {kept[node.index]['KmsKeyArn']}: its alias went" in result.stdout
        assert kept[node.index]["P2PKeySecretArn"] in result.stdout
    for node in cluster.nodes:
        cfn = _client(emulator, node, "cloudformation")
        live = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
        assert not [name for name in live if name.startswith("tsm-acme-vault")]
        key = _client(emulator, node, "kms").describe_key(KeyId=kept[node.index]["KmsKeyArn"])
        assert key["KeyMetadata"]["KeyState"] == "Enabled"
        sm = _client(emulator, node, "secretsmanager")
        assert sm.describe_secret(SecretId=kept[node.index]["P2PKeySecretArn"])["ARN"]
        snapshots = _client(emulator, node, "rds").describe_db_snapshots()["DBSnapshots"]
        assert len(snapshots) == 1


def test_a_redeploy_after_destroy_names_the_retained_secrets_in_its_way(
    rehearsal: Rehearsal, emulator: LocalAws, cluster: Cluster
) -> None:
    # runs after the destroy test above, on the same emulator
    refused = CliRunner().invoke(
        cli,
        ["deploy", str(THREE_NODES), "--yes", "--endpoint-url", emulator.endpoint_url],
        catch_exceptions=False,
    )
    # preflight sees them first: exit 2, nothing created
    assert refused.exit_code == 2, refused.output
    assert (
        "nodes[0] (account 111111111111, eu-west-1): secrets of an earlier deployment of this "
        "node are still there (tsm/acme-vault/node0/"
    ) in refused.stderr
    for node in cluster.nodes:
        stacks = _client(emulator, node, "cloudformation").describe_stacks()["Stacks"]
        assert [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"] == []
    # and the deployer's own check still stops a KMS stack when preflight is skipped
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            str(THREE_NODES),
            "--yes",
            "--no-preflight",
            "--endpoint-url",
            emulator.endpoint_url,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    failed = result.stdout.split("Failed:", 1)[1]
    assert (
        "tsm-acme-vault-node0-kms (account 111111111111): failed: secrets of an earlier "
        "deployment of this node are still there (tsm/acme-vault/node0/"
    ) in failed
    assert "tsm/acme-vault/node0/encryptor-master-password" in failed
    assert "destroy keeps them on purpose" in failed
    # a plain delete-secret would keep the name taken for 30 days
    assert "delete-secret --secret-id NAME --force-delete-without-recovery" in failed
    assert "restore-secret --secret-id NAME" in failed
    for node in cluster.nodes:
        stacks = _client(emulator, node, "cloudformation").describe_stacks()["Stacks"]
        assert [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"] == []
