"""The local emulator: both stacks of every node of examples/three-nodes.yaml deploy, update with
no changes, and delete as in AWS; secrets never reach the logs."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.emulator import scenarios
from tests.emulator.stacks import client, deploy, outputs_of, parameters
from tsm_infra.emulator import LocalAws
from tsm_infra.plan import stack_name
from tsm_infra.spec import Cluster, Node

SECRET_OUTPUTS = (
    "P2PKeySecretArn",
    "SdkApiKeysSecretArn",
    "ManagementApiKeySecretArn",
    "EncryptorMasterPasswordSecretArn",
)


@dataclass
class Cluster3:
    """The deployed example cluster and what the deployment printed and logged."""

    local: LocalAws
    cluster: Cluster
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    read_before_accepting: str = ""
    deleted: dict[str, str] = field(default_factory=dict)
    log: io.StringIO = field(default_factory=io.StringIO)

    def name(self, node: Node, kind: str) -> str:
        """The stack name of a node's stack."""
        return stack_name(self.cluster.name, node.index, kind)  # type: ignore[arg-type]

    def client(self, node: Node, service: str, region: str | None = None) -> Any:
        """A client in the node's account."""
        return client(self.local.endpoint_url, node, service, region)


@contextlib.contextmanager
def _captured(sink: io.StringIO) -> Iterator[None]:
    """Everything the emulator logs (at DEBUG) or prints while deploying goes to `sink`."""
    handler = logging.StreamHandler(sink)
    handler.setLevel(logging.DEBUG)
    names = ("", "tsm_infra", "tsm", "moto", "werkzeug")
    levels = {name: logging.getLogger(name).level for name in names}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in names[1:]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module")
def deployed(cluster: Cluster) -> Iterator[Cluster3]:
    """KMS stacks of all nodes, the invitations accepted, then the Core stacks."""
    with LocalAws() as local:
        done = Cluster3(local, cluster)
        with _captured(done.log):
            for node in cluster.nodes:
                local.prepare_account(
                    node.account, node.region, node.hosted_zone_id, node.hosted_zone_name
                )
                result = deploy(
                    local.endpoint_url, cluster, node, "kms", parameters(cluster, node, "kms", {})
                )
                done.stacks[done.name(node, "kms")] = result["stack"]
                done.outputs[done.name(node, "kms")] = outputs_of(result["stack"])
            owner, reader = cluster.nodes[0], cluster.nodes[1]
            arn = done.outputs[done.name(owner, "kms")]["PublicKeyParameterArn"]
            try:
                done.client(reader, "ssm", owner.region).get_parameter(Name=arn)
            except ClientError as exc:
                done.read_before_accepting = exc.response["Error"]["Code"]
            for node in cluster.nodes:
                for peer in cluster.nodes:
                    ram = done.client(node, "ram", peer.region)
                    for invitation in ram.get_resource_share_invitations()[
                        "resourceShareInvitations"
                    ]:
                        ram.accept_resource_share_invitation(
                            resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
                        )
            for node in cluster.nodes:
                params = parameters(cluster, node, "core", done.outputs)
                result = deploy(local.endpoint_url, cluster, node, "core", params)
                done.stacks[done.name(node, "core")] = result["stack"]
                done.outputs[done.name(node, "core")] = outputs_of(result["stack"])
        yield done


def test_every_stack_completes(deployed: Cluster3) -> None:
    statuses = {name: stack["StackStatus"] for name, stack in deployed.stacks.items()}
    assert set(statuses.values()) == {"CREATE_COMPLETE"}, statuses
    assert len(statuses) == 6


@pytest.mark.parametrize("index", [0, 1, 2])
def test_kms_key_and_generated_secrets(deployed: Cluster3, index: int) -> None:
    node = deployed.cluster.nodes[index]
    outputs = deployed.outputs[deployed.name(node, "kms")]
    kms = deployed.client(node, "kms")
    key = kms.describe_key(KeyId=outputs["KmsKeyArn"])["KeyMetadata"]
    assert key["Arn"].split(":")[3:5] == [node.region, node.account]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    sm = deployed.client(node, "secretsmanager")
    for name in SECRET_OUTPUTS:
        info = sm.describe_secret(SecretId=outputs[name])
        assert info["KmsKeyId"] in (key["KeyId"], key["Arn"])
        assert sm.get_secret_value(SecretId=outputs[name])["SecretString"]
    p2p = sm.get_secret_value(SecretId=outputs["P2PKeySecretArn"])["SecretString"]
    private = serialization.load_der_private_key(base64.b64decode(p2p), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP256R1)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert base64.b64encode(spki).decode() == outputs["PublicKey"]
    apps = json.loads(sm.get_secret_value(SecretId=outputs["SdkApiKeysSecretArn"])["SecretString"])
    assert sorted(apps) == ["payments", "treasury"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_public_parameters_and_share(deployed: Cluster3, index: int) -> None:
    node = deployed.cluster.nodes[index]
    outputs = deployed.outputs[deployed.name(node, "kms")]
    ssm = deployed.client(node, "ssm")
    found = ssm.get_parameter(Name=f"{outputs['PublicParametersPath']}/public-key")["Parameter"]
    assert found["Value"] == outputs["PublicKey"]
    described = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Path", "Values": [outputs["PublicParametersPath"]]}]
    )["Parameters"]
    assert len(described) == 5
    assert {p["Tier"] for p in described} == {"Advanced"}
    shares = deployed.client(node, "ram").get_resource_shares(resourceOwner="SELF")
    (share,) = shares["resourceShares"]
    assert share["resourceShareArn"] == outputs["ResourceShareArn"]
    assert share["allowExternalPrincipals"] is True


@pytest.mark.parametrize("index", [0, 1, 2])
def test_core_resources(deployed: Cluster3, index: int) -> None:
    node = deployed.cluster.nodes[index]
    kms_outputs = deployed.outputs[deployed.name(node, "kms")]
    outputs = deployed.outputs[deployed.name(node, "core")]
    rds = deployed.client(node, "rds")
    (db,) = rds.describe_db_instances(DBInstanceIdentifier=outputs["DatabaseInstanceId"])[
        "DBInstances"
    ]
    assert db["StorageEncrypted"]
    assert db["KmsKeyId"] == kms_outputs["KmsKeyArn"]
    sm = deployed.client(node, "secretsmanager")
    secret = sm.describe_secret(SecretId=db["MasterUserSecret"]["SecretArn"])
    assert secret["KmsKeyId"] == kms_outputs["KmsKeyArn"]
    for name, check in scenarios.CORE_CHECKS.items():
        if name != "sg-ingress-foreach":
            assert check(deployed.local, node, outputs), name
    asg = deployed.client(node, "autoscaling")
    (group,) = asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["AutoScalingGroupName"]]
    )["AutoScalingGroups"]
    template = group["LaunchTemplate"]
    ec2 = deployed.client(node, "ec2")
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=[str(template["Version"])]
    )["LaunchTemplateVersions"]
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"


def test_mpc_port_open_only_to_peer_egress_addresses(deployed: Cluster3) -> None:
    node = deployed.cluster.nodes[0]
    peers = [
        deployed.outputs[deployed.name(p, "kms")]["EgressCidrs"] for p in deployed.cluster.nodes[1:]
    ]
    rules = scenarios._sg_rules(deployed.local, node)
    mpc = {r.get("CidrIpv4") for r in rules if not r["IsEgress"] and r["FromPort"] == 9000}
    assert mpc == set(peers)


def test_shared_parameter_readable_by_peer_after_accepting(deployed: Cluster3) -> None:
    owner, reader = deployed.cluster.nodes[0], deployed.cluster.nodes[1]
    outputs = deployed.outputs[deployed.name(owner, "kms")]
    assert deployed.read_before_accepting == "ParameterNotFound"
    got = deployed.client(reader, "ssm", owner.region).get_parameter(
        Name=outputs["PublicKeyParameterArn"]
    )
    assert got["Parameter"]["Value"] == outputs["PublicKey"]


def test_shared_parameter_not_readable_elsewhere(deployed: Cluster3) -> None:
    owner = deployed.cluster.nodes[0]
    outputs = deployed.outputs[deployed.name(owner, "kms")]
    stranger = Node.__new__(Node)
    object.__setattr__(stranger, "account", "444444444444")
    ssm = client(deployed.local.endpoint_url, stranger, "ssm", owner.region)
    with pytest.raises(ClientError) as caught:
        ssm.get_parameter(Name=outputs["PublicKeyParameterArn"])
    assert caught.value.response["Error"]["Code"] == "ParameterNotFound"
    # not shared at all: the management-key hash parameter
    reader = deployed.cluster.nodes[1]
    unshared = outputs["PublicKeyParameterArn"].replace("public-key", "management-api-key-hash")
    with pytest.raises(ClientError):
        deployed.client(reader, "ssm", owner.region).get_parameter(Name=unshared)


def _versions(sm: Any, arn: str) -> list[tuple[str, list[str]]]:
    listed = sm.list_secret_version_ids(SecretId=arn)["Versions"]
    return sorted((v["VersionId"], sorted(v["VersionStages"])) for v in listed)


def test_redeploy_with_unchanged_parameters_changes_nothing(deployed: Cluster3) -> None:
    cluster = deployed.cluster
    sm_versions = {}
    for node in cluster.nodes:
        outputs = deployed.outputs[deployed.name(node, "kms")]
        sm = deployed.client(node, "secretsmanager")
        for name in SECRET_OUTPUTS:
            sm_versions[outputs[name]] = _versions(sm, outputs[name])
    for kind in ("kms", "core"):
        for node in cluster.nodes:
            params = parameters(cluster, node, kind, deployed.outputs)
            result = deploy(deployed.local.endpoint_url, cluster, node, kind, params)
            assert result["change_set"]["Status"] == "FAILED"
            assert "didn't contain changes" in result["change_set"]["StatusReason"]
            assert result["stack"]["StackStatus"] == "CREATE_COMPLETE"
    for node in cluster.nodes:
        sm = deployed.client(node, "secretsmanager")
        for arn, versions in sm_versions.items():
            if f":{node.account}:" in arn:
                assert _versions(sm, arn) == versions


def test_rotation_token_change_invokes_update_for_that_item_only(deployed: Cluster3) -> None:
    cluster, node = deployed.cluster, deployed.cluster.nodes[2]
    outputs = deployed.outputs[deployed.name(node, "kms")]
    sm = deployed.client(node, "secretsmanager")

    def current() -> dict[str, str]:
        return {n: sm.get_secret_value(SecretId=outputs[n])["VersionId"] for n in SECRET_OUTPUTS}

    before = current()
    params = {**parameters(cluster, node, "kms", {}), "RotationToken": "management-api-key=1"}
    result = deploy(deployed.local.endpoint_url, cluster, node, "kms", params)
    assert result["stack"]["StackStatus"] == "UPDATE_COMPLETE"
    after = current()
    assert {n for n in SECRET_OUTPUTS if before[n] != after[n]} == {"ManagementApiKeySecretArn"}
    assert outputs_of(result["stack"])["PublicKey"] == outputs["PublicKey"]


def test_secret_values_never_logged(deployed: Cluster3) -> None:
    # (where the value was found, the value): a failure names the place, never the value
    values: list[tuple[str, str]] = []
    for node in deployed.cluster.nodes:
        outputs = deployed.outputs[deployed.name(node, "kms")]
        sm = deployed.client(node, "secretsmanager")
        for name in SECRET_OUTPUTS:
            value = sm.get_secret_value(SecretId=outputs[name])["SecretString"]
            values.append((f"node {node.index} {name}", value))
            if name == "SdkApiKeysSecretArn":
                apps = json.loads(value)
                values.extend((f"node {node.index} {name} {app}", apps[app]) for app in apps)
        db_id = deployed.outputs[deployed.name(node, "core")]["DatabaseInstanceId"]
        db = deployed.client(node, "rds").describe_db_instances(DBInstanceIdentifier=db_id)
        managed = sm.get_secret_value(
            SecretId=db["DBInstances"][0]["MasterUserSecret"]["SecretArn"]
        )
        password = json.loads(managed["SecretString"])["password"]
        values.append((f"node {node.index} database password", password))
    log = deployed.log.getvalue()
    assert "Create NodeSecrets" in log  # the capture did capture the emulator's logging
    leaked = [where for where, value in values if value in log]
    assert not leaked


def test_delete_refused_while_the_database_is_protected(deployed: Cluster3) -> None:
    node = deployed.cluster.nodes[1]
    cfn = deployed.client(node, "cloudformation")
    core = deployed.name(node, "core")
    cfn.delete_stack(StackName=core)  # deletion protection is on: the template's default
    stack = cfn.describe_stacks(StackName=core)["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_FAILED"
    assert "[Database]" in stack["StackStatusReason"]
    assert outputs_of(stack) == deployed.outputs[core]
    # as in AWS, what the database needs stays; what nothing left needs is gone
    resources = {
        r["LogicalResourceId"]: r["ResourceStatus"]
        for r in cfn.describe_stack_resources(StackName=core)["StackResources"]
    }
    assert resources["Database"] == "DELETE_FAILED"
    assert {"DatabaseSubnetGroup", "DatabaseSecurityGroup", "Vpc"} <= set(resources)
    assert "DnsRecord" not in resources
    assert deployed.client(node, "ec2").describe_vpcs(VpcIds=[deployed.outputs[core]["VpcId"]])


def test_delete_keeps_key_secrets_and_a_database_snapshot(deployed: Cluster3) -> None:
    cluster, node = deployed.cluster, deployed.cluster.nodes[0]
    cfn = deployed.client(node, "cloudformation")
    core, kms_name = deployed.name(node, "core"), deployed.name(node, "kms")
    params = {**parameters(cluster, node, "core", deployed.outputs), "DeletionProtection": "false"}
    updated = deploy(deployed.local.endpoint_url, cluster, node, "core", params)["stack"]
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    for name in (core, kms_name):
        stack_id = deployed.stacks[name]["StackId"]
        cfn.delete_stack(StackName=name)
        deployed.deleted[name] = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    outputs = deployed.outputs[kms_name]
    key = deployed.client(node, "kms").describe_key(KeyId=outputs["KmsKeyArn"])["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    sm = deployed.client(node, "secretsmanager")
    for name in SECRET_OUTPUTS:
        assert sm.get_secret_value(SecretId=outputs[name])["SecretString"]
    snapshots = deployed.client(node, "rds").describe_db_snapshots()["DBSnapshots"]
    assert [s["DBInstanceIdentifier"] for s in snapshots] == [
        deployed.outputs[core]["DatabaseInstanceId"]
    ]


def test_core_stack_delete_completes(deployed: Cluster3) -> None:
    node = deployed.cluster.nodes[0]
    assert deployed.deleted[deployed.name(node, "core")] == "DELETE_COMPLETE"
    assert deployed.deleted[deployed.name(node, "kms")] == "DELETE_COMPLETE"
    # nothing the two stacks made is left in the account but what they retain
    ec2 = deployed.client(node, "ec2")
    assert not ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"]
    assert not ec2.describe_network_interfaces()["NetworkInterfaces"]
    assert not ec2.describe_internet_gateways()["InternetGateways"]
    assert not ec2.describe_addresses()["Addresses"]
    assert not ec2.describe_flow_logs()["FlowLogs"]
    nat = ec2.describe_nat_gateways()["NatGateways"]
    assert {n["State"] for n in nat} == {"deleted"}
    assert not deployed.client(node, "elbv2").describe_target_groups()["TargetGroups"]
