"""Small deployments whose checks each rest on particular emulator providers.

A check is a named yes/no question about what the deployment left behind; `run` answers every
check of a scenario, an exception along the way answering the remaining ones with False.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from tests.emulator.stacks import CAPABILITIES, body, client, deploy, outputs_of, parameters, wait
from tsm_infra.emulator import LocalAws
from tsm_infra.plan import stack_name
from tsm_infra.spec import Cluster, Node

Checks = dict[str, bool]
FAKE_PEER_CIDRS = "203.0.113.10/32,203.0.113.20/32"


def _kms(local: LocalAws, cluster: Cluster, node: Node, **extra: str) -> dict[str, Any]:
    local.prepare_account(node.account, node.region, node.hosted_zone_id, node.hosted_zone_name)
    params = {**parameters(cluster, node, "kms", {}), **extra}
    return deploy(local.endpoint_url, cluster, node, "kms", params)["stack"]


def kms_scenario(local: LocalAws, cluster: Cluster, checks: Checks) -> None:
    """One node's KMS stack, its secrets, parameters and share."""
    node = cluster.nodes[0]
    stack = _kms(local, cluster, node)
    checks["kms-complete"] = stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = outputs_of(stack)
    checks["kms-outputs"] = "KmsKeyArn" in outputs and "EgressCidrs" in outputs
    kms = client(local.endpoint_url, node, "kms")
    key = kms.describe_key(KeyId=outputs["KmsKeyArn"])["KeyMetadata"]
    checks["kms-key-rotation"] = kms.get_key_rotation_status(KeyId=key["KeyId"])[
        "KeyRotationEnabled"
    ]
    sm = client(local.endpoint_url, node, "secretsmanager")
    arn = outputs["P2PKeySecretArn"]
    # the template passes the key id (Ref), which Secrets Manager reports as given
    checks["secret-encrypted"] = sm.describe_secret(SecretId=arn)["KmsKeyId"] in (
        key["KeyId"],
        key["Arn"],
    )
    checks["secret-policy"] = "ResourcePolicy" in sm.get_resource_policy(SecretId=arn)
    checks["secret-generated"] = bool(sm.get_secret_value(SecretId=arn)["SecretString"])
    ram = client(local.endpoint_url, node, "ram")
    shares = ram.get_resource_shares(resourceOwner="SELF")["resourceShares"]
    checks["ram-share"] = any(s["resourceShareArn"] == outputs["ResourceShareArn"] for s in shares)
    cfn = client(local.endpoint_url, node, "cloudformation")
    cfn.delete_stack(StackName=stack["StackId"])
    checks["kms-deletes-in-order"] = _deleted_in_order(cfn, stack["StackId"])
    checks["kms-key-retained"] = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Enabled"]


def _deleted_in_order(cfn: Any, stack_id: str) -> bool:
    """The KMS stack is gone, the custom resource deleted before its function (which its
    Delete request runs), the key and the secrets kept."""
    stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"][::-1]  # oldest first
    seen = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events]

    def at(logical: str, status: str) -> int:
        return seen.index((logical, status)) if (logical, status) in seen else -1

    done, started = at("NodeSecrets", "DELETE_COMPLETE"), at("KeygenFunction", "DELETE_IN_PROGRESS")
    return bool(
        stack["StackStatus"] == "DELETE_COMPLETE"
        and 0 <= done < started
        and at("NodeKey", "DELETE_SKIPPED") >= 0
        and at("P2PKeySecret", "DELETE_SKIPPED") >= 0
    )


def keygen_failure_scenario(local: LocalAws, cluster: Cluster, checks: Checks) -> None:
    """A refused keygen request fails the stack with the handler's reason."""
    node = cluster.nodes[0]
    stack = _kms(local, cluster, node, RotationToken="encryptor-master-password=1")
    cfn = client(local.endpoint_url, node, "cloudformation")
    events = cfn.describe_stack_events(StackName=stack["StackId"])["StackEvents"]
    failed = [e for e in events if e["LogicalResourceId"] == "NodeSecrets"]
    checks["keygen-failure-fails-stack"] = stack["StackStatus"] == "CREATE_FAILED" and any(
        "cannot be rotated" in e.get("ResourceStatusReason", "") for e in failed
    )


def share_scenario(local: LocalAws, cluster: Cluster, checks: Checks) -> None:
    """A peer account accepts the invitation and reads the shared public key by ARN."""
    owner, peer = cluster.nodes[0], cluster.nodes[1]
    outputs = outputs_of(_kms(local, cluster, owner))
    arn = outputs["PublicKeyParameterArn"]
    ram = client(local.endpoint_url, peer, "ram", region=owner.region)
    invitations = ram.get_resource_share_invitations()["resourceShareInvitations"]
    for invitation in invitations:
        ram.accept_resource_share_invitation(
            resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
        )
    checks["invitation-accepted"] = len(invitations) == 1
    ssm = client(local.endpoint_url, peer, "ssm", region=owner.region)
    value = ssm.get_parameter(Name=arn)["Parameter"]["Value"]
    checks["peer-reads-shared-parameter"] = value == outputs["PublicKey"]


def core_scenario(local: LocalAws, cluster: Cluster, checks: Checks) -> None:
    """One node's KMS and Core stacks (peers' outputs made up), then the Core stack deleted."""
    node = cluster.nodes[0]
    kms_stack = _kms(local, cluster, node)
    own = stack_name(cluster.name, node.index, "kms")
    peers = {
        stack_name(cluster.name, p.index, "kms"): {
            "PublicKeyParameterArn": f"arn:aws:ssm:{p.region}:{p.account}:parameter/x",
            "EgressCidrs": f"203.0.113.{p.index}/32",
        }
        for p in cluster.nodes
        if p.index != node.index
    }
    params = parameters(cluster, node, "core", {own: outputs_of(kms_stack), **peers})
    params["DeletionProtection"] = "false"
    # no registry credentials: the node policy's statement for them becomes AWS::NoValue
    params["RegistryCredentialsSecretArn"] = ""
    stack = deploy(local.endpoint_url, cluster, node, "core", params)["stack"]
    checks["core-complete"] = stack["StackStatus"] == "CREATE_COMPLETE"
    for name, check in CORE_CHECKS.items():
        checks[name] = check(local, node, outputs_of(stack))
    cfn = client(local.endpoint_url, node, "cloudformation")
    given = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    # a list comma-joined; an SSM-typed one by the parameter's name, so that an update can
    # pass the previous values back (as destroy does to lift deletion protection)
    checks["parameters-as-given"] = given["PeerEgressCidrs"] == params["PeerEgressCidrs"] and given[
        "LatestAmiId"
    ].startswith("/aws/service/")
    checks["launch-template-metadata"] = _node_settings(cfn, stack["StackId"], params)
    replaced = _database_change(cfn, stack, params, {"DBName": "tsmshares"})
    checks["db-rename-replaces"] = replaced == ("Modify", "True")
    in_place = _database_change(cfn, stack, {**params, "DbBackupRetentionDays": "21"}, {})
    checks["backup-change-in-place"] = in_place == ("Modify", "False")
    cfn.delete_stack(StackName=stack["StackId"])
    deleted = cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"]
    ec2 = client(local.endpoint_url, node, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"]
    checks["core-deletes"] = deleted == "DELETE_COMPLETE" and not vpc
    rds = client(local.endpoint_url, node, "rds")
    checks["db-snapshot-on-delete"] = bool(rds.describe_db_snapshots()["DBSnapshots"])


def _node_settings(cfn: Any, stack_id: str, params: dict[str, str]) -> bool:
    """cfn-init's view of the launch template: node.json with every intrinsic resolved."""
    detail = cfn.describe_stack_resource(StackName=stack_id, LogicalResourceId="LaunchTemplate")
    metadata = json.loads(detail["StackResourceDetail"]["Metadata"])
    files = metadata["AWS::CloudFormation::Init"]["files"]["files"]
    settings = json.loads(files["/etc/tsm/node.json"]["content"])
    return bool(
        settings["peers"]["indices"] == params["PeerIndices"]
        and settings["database"]["host"].endswith(".rds.amazonaws.com")
        and settings["database"]["port"] == 5432
        and settings["secrets"]["database_master"].startswith("arn:aws:secretsmanager:")
        and settings["secrets"]["database_password"].startswith("arn:aws:secretsmanager:")
        and detail["StackResourceDetail"]["ResourceStatus"] == "CREATE_COMPLETE"
    )


def _database_change(
    cfn: Any, stack: dict[str, Any], params: dict[str, str], database: dict[str, str]
) -> tuple[str, str]:
    """(Action, Replacement) of the Database in a change set with these parameters and
    Database properties; the change set is deleted unexecuted."""
    template = json.loads(body("core"))
    template["Resources"]["Database"]["Properties"].update(database)
    created = cfn.create_change_set(
        StackName=stack["StackName"],
        ChangeSetName=f"review-{uuid.uuid4().hex[:8]}",
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(template, separators=(",", ":")),  # compact, as deploy sends it
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=CAPABILITIES,
    )
    described = cfn.describe_change_set(ChangeSetName=created["Id"])
    cfn.delete_change_set(ChangeSetName=created["Id"])
    found = [
        c["ResourceChange"]
        for c in described["Changes"]
        if c["ResourceChange"]["LogicalResourceId"] == "Database"
    ]
    return (found[0]["Action"], found[0].get("Replacement", "")) if found else ("", "")


def _sg_rules(local: LocalAws, node: Node) -> list[dict[str, Any]]:
    ec2 = client(local.endpoint_url, node, "ec2")
    return list(ec2.describe_security_group_rules()["SecurityGroupRules"])


def _ingress_from_foreach(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    cidrs = {
        (r.get("CidrIpv4"), r["FromPort"]) for r in _sg_rules(local, node) if not r["IsEgress"]
    }
    return {("198.51.100.0/24", 443), ("203.0.113.1/32", 9000)} <= cidrs


def _egress_to_database(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    return any(
        r["IsEgress"] and r["FromPort"] == 5432 and r.get("ReferencedGroupInfo")
        for r in _sg_rules(local, node)
    )


def _network_lb_with_tls(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    elb = client(local.endpoint_url, node, "elbv2")
    balancers = elb.describe_load_balancers()["LoadBalancers"]
    if [b["Type"] for b in balancers] != ["network"]:
        return False
    listeners = elb.describe_listeners(LoadBalancerArn=balancers[0]["LoadBalancerArn"])["Listeners"]
    tls = [x for x in listeners if x["Protocol"] == "TLS"]
    return len(tls) == 1 and tls[0]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")


def _certificate_issued(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    acm = client(local.endpoint_url, node, "acm")
    cert = acm.describe_certificate(CertificateArn=outputs["CertificateArn"])["Certificate"]
    return bool(cert["Status"] == "ISSUED" and cert["DomainName"] == node.dns_name)


def _cloudmap(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    sd = client(local.endpoint_url, node, "servicediscovery")
    services = sd.list_services()["Services"]
    instances = sd.list_instances(ServiceId=services[0]["Id"])["Instances"]
    return bool(instances[0]["Attributes"]["SDK_URL"] == f"https://{node.dns_name}")


def _alarms(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    cw = client(local.endpoint_url, node, "cloudwatch")
    return len(cw.describe_alarms()["MetricAlarms"]) == 4


def _managed_db_secret(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    rds = client(local.endpoint_url, node, "rds")
    db = rds.describe_db_instances(DBInstanceIdentifier=outputs["DatabaseInstanceId"])
    secret_arn = db["DBInstances"][0]["MasterUserSecret"]["SecretArn"]
    sm = client(local.endpoint_url, node, "secretsmanager")
    value = json.loads(sm.get_secret_value(SecretId=secret_arn)["SecretString"])
    return bool(value["username"] == "tsm" and len(value["password"]) >= 32)


def _dns_alias(local: LocalAws, node: Node, outputs: dict[str, str]) -> bool:
    r53 = client(local.endpoint_url, node, "route53")
    records = r53.list_resource_record_sets(HostedZoneId=node.hosted_zone_id)["ResourceRecordSets"]
    return any(
        # moto keeps the name as given; AWS would add the final dot
        r["Name"].rstrip(".") == node.dns_name and r["Type"] == "A" and "AliasTarget" in r
        for r in records
    )


CORE_CHECKS: dict[str, Callable[[LocalAws, Node, dict[str, str]], bool]] = {
    "sg-ingress-foreach": _ingress_from_foreach,
    "sg-egress-rule": _egress_to_database,
    "nlb-network-tls": _network_lb_with_tls,
    "certificate-issued": _certificate_issued,
    "cloudmap-instance": _cloudmap,
    "alarms": _alarms,
    "db-managed-secret": _managed_db_secret,
    "dns-alias": _dns_alias,
}

RESUME_TEMPLATE = {
    "Parameters": {"ZoneId": {"Type": "String"}},
    "Resources": {
        # no KeyPolicy: AWS gives the key its default policy
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"Description": "resume"}},
        "First": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/resume/first", "Type": "String", "Value": {"Ref": "Key"}},
        },
        "Certificate": {
            "Type": "AWS::CertificateManager::Certificate",
            "Properties": {
                "DomainName": "resume.vault.acme.example",
                "ValidationMethod": "DNS",
                "DomainValidationOptions": [
                    {"DomainName": "resume.vault.acme.example", "HostedZoneId": {"Ref": "ZoneId"}}
                ],
            },
        },
        "Second": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": "/resume/second",
                "Type": "String",
                "Value": {"Ref": "Certificate"},
            },
        },
    },
}


def _change_set(cfn: Any, kind: str, zone: str) -> dict[str, Any]:
    """Create a change set of RESUME_TEMPLATE and describe it."""
    created = cfn.create_change_set(
        StackName="resume",
        ChangeSetName=f"resume-{uuid.uuid4().hex[:8]}",
        ChangeSetType=kind,
        TemplateBody=json.dumps(RESUME_TEMPLATE),
        Parameters=[{"ParameterKey": "ZoneId", "ParameterValue": zone}],
    )
    return dict(cfn.describe_change_set(ChangeSetName=created["Id"]))


def resume_scenario(local: LocalAws, cluster: Cluster, checks: Checks) -> None:
    """A create fails at a certificate (its zone is missing); once the zone exists, an update
    change set with the same template and parameters adds only what is missing."""
    node = cluster.nodes[0]
    cfn = client(local.endpoint_url, node, "cloudformation")
    ssm = client(local.endpoint_url, node, "ssm")
    first = _change_set(cfn, "CREATE", node.hosted_zone_id)
    cfn.execute_change_set(ChangeSetName=first["ChangeSetId"], DisableRollback=True)
    checks["create-fails"] = wait(cfn, "resume")["StackStatus"] == "CREATE_FAILED"
    key = ssm.get_parameter(Name="/resume/first")["Parameter"]
    kms = client(local.endpoint_url, node, "kms")
    policy = kms.get_key_policy(KeyId=key["Value"], PolicyName="default")["Policy"]
    checks["kms-default-policy"] = f"arn:aws:iam::{node.account}:root" in policy
    local.prepare_account(node.account, node.region, node.hosted_zone_id, node.hosted_zone_name)
    retry = _change_set(cfn, "UPDATE", node.hosted_zone_id)
    actions = sorted(
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
        for c in retry["Changes"]
    )
    checks["resume-adds-missing"] = retry["Status"] == "CREATE_COMPLETE" and actions == [
        ("Add", "Certificate"),
        ("Add", "Second"),
    ]
    cfn.execute_change_set(ChangeSetName=retry["ChangeSetId"], DisableRollback=True)
    checks["resume-completes"] = (
        wait(cfn, "resume")["StackStatus"] == "UPDATE_COMPLETE"
        and ssm.get_parameter(Name="/resume/first")["Parameter"]["Version"] == key["Version"]
        and ssm.get_parameter(Name="/resume/second")["Parameter"]["Value"].startswith("arn:")
    )
    again = _change_set(cfn, "UPDATE", node.hosted_zone_id)
    checks["empty-change-set-fails"] = again["Status"] == "FAILED" and again[
        "StatusReason"
    ].startswith("The submitted information didn't contain changes.")


SCENARIOS: dict[str, Callable[[LocalAws, Cluster, Checks], None]] = {
    "kms": kms_scenario,
    "resume": resume_scenario,
    "keygen-failure": keygen_failure_scenario,
    "share": share_scenario,
    "core": core_scenario,
}


class _Answered(Exception):
    """The check a run waits for has its answer: the rest of the scenario is not needed."""


class _Checks(dict[str, bool]):
    """Checks that end the scenario once `until` is answered."""

    def __init__(self, until: str | None) -> None:
        super().__init__()
        self.until = until

    def __setitem__(self, name: str, value: bool) -> None:
        super().__setitem__(name, value)
        if name == self.until:
            raise _Answered


def run(
    scenario: str, cluster: Cluster, disabled: tuple[str, ...] = (), until: str | None = None
) -> Checks:
    """Answer a scenario's checks on a fresh emulator; a failure leaves later checks False.

    With `until`, the scenario stops as soon as that check is answered (to keep tests fast)."""
    checks = _Checks(until)
    with LocalAws(disabled=disabled) as local:
        try:
            SCENARIOS[scenario](local, cluster, checks)
        except _Answered:
            pass
        except Exception as exc:
            checks.until = None  # recording the error must not end the run again
            checks["error"] = False
            checks["error: " + type(exc).__name__] = False
    return dict(checks)
