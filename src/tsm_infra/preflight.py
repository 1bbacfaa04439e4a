"""Preflight: ask each node's account, before anything is created, whether deploy can succeed.

Pure checks: each returns findings (what is wrong and what to do, exit 2) and notes (checks that
could not run here, which do not fail). One worker per node runs its node's checks in parallel;
the Elastic IP headroom is checked once per account and region, for every node deployed there.
Nothing here prints; the CLI renders the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tsm_infra.aws import AWS_ERRORS, AccessError, AccountSession, Connector
from tsm_infra.contract import KmsParameters, secret_prefix, stack_name
from tsm_infra.errors import BadInputError, describe_error, error_code
from tsm_infra.limits import in_zone
from tsm_infra.plan import ecr_repository_arn
from tsm_infra.spec import Cluster, Node
from tsm_infra.stacks import stack_missing

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.type_defs import StackTypeDef
    from mypy_boto3_secretsmanager.type_defs import SecretListEntryTypeDef

DB_ENGINE = "postgres"
DB_ENGINE_VERSION = "17"  # tsm_infra/cfn/core.yaml DbEngineVersion default
EIP_QUOTA_CODE = "L-0263D0A3"  # EC2-VPC Elastic IPs
DEFAULT_EIP_QUOTA = 5
ENABLED_REGION = ("opt-in-not-required", "opted-in")
# What deploy does with the deploying identity, by service (not every action it needs: the ones
# whose absence stops a deploy part-way).
DEPLOY_ACTIONS = (
    "cloudformation:CreateChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DescribeStacks",
    "iam:PassRole",
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "kms:CreateKey",
    "kms:PutKeyPolicy",
    "lambda:CreateFunction",
    "secretsmanager:CreateSecret",
    "ssm:PutParameter",
    "ram:CreateResourceShare",
    "ram:AcceptResourceShareInvitation",
    "ec2:AllocateAddress",
    "ec2:CreateVpc",
    "ec2:CreateNatGateway",
    "elasticloadbalancing:CreateLoadBalancer",
    "rds:CreateDBInstance",
    "route53:ChangeResourceRecordSets",
    "acm:RequestCertificate",
    "autoscaling:CreateAutoScalingGroup",
    "servicediscovery:CreatePrivateDnsNamespace",
)


def _where(node: int, account: str, region: str) -> str:
    return f"nodes[{node}] (account {account}, {region})"


@dataclass(frozen=True)
class Finding:
    """One thing that would make deploy fail, on one node, and what to do about it."""

    node: int
    account: str
    region: str
    check: str
    message: str
    advice: str

    def render(self) -> str:
        """`nodes[i] (account A, region): message; advice` on one line."""
        return f"{_where(self.node, self.account, self.region)}: {self.message}; {self.advice}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Note:
    """A check that did not run (or ran with a fallback), and why; never a failure."""

    node: int
    account: str
    region: str
    check: str
    message: str

    def render(self) -> str:
        """`nodes[i] (account A, region) check: message`."""
        return f"{_where(self.node, self.account, self.region)} {self.check}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class PreflightResult:
    """Every finding and note, and how long the checks took."""

    cluster: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing would stop a deploy."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "cluster": self.cluster,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "notes": [n.to_dict() for n in self.notes],
            "seconds": round(self.seconds, 2),
        }


class PreflightError(BadInputError):
    """Preflight found what would make the deploy fail; nothing was created."""

    def __init__(self, result: PreflightResult) -> None:
        self.result = result
        lines = [f.render() for f in result.findings]
        lines.append(
            f"preflight: {len(result.findings)} finding(s); nothing was created. Fix them and "
            "run again (`tsm-infra preflight SPEC` checks without deploying)"
        )
        super().__init__("\n".join(lines))


class _Node:
    """Collects one node's findings and notes."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.findings: list[Finding] = []
        self.notes: list[Note] = []

    def find(self, check: str, message: str, advice: str) -> None:
        n = self.node
        self.findings.append(Finding(n.index, n.account, n.region, check, message, advice))

    def note(self, check: str, message: str) -> None:
        n = self.node
        self.notes.append(Note(n.index, n.account, n.region, check, message))


def _why(exc: BaseException) -> str:
    """An AWS error's code and message; of anything else (an emulator's garbage) its type."""
    if getattr(exc, "response", None):
        return describe_error(exc)
    return f"{type(exc).__name__}; the endpoint gave no usable answer"


# --------------------------------------------------------------------------- the checks


def check_region(session: AccountSession, out: _Node) -> bool:
    """(2) The node's region is enabled for the account; False when it is not."""
    region = out.node.region
    try:
        regions = session.client("ec2").describe_regions(AllRegions=True, RegionNames=[region])
    except AWS_ERRORS as exc:
        out.note("region", f"cannot ask EC2 which regions are enabled ({_why(exc)})")
        return True
    status = next(
        (r.get("OptInStatus", "") for r in regions.get("Regions", []) if r["RegionName"] == region),
        "",
    )
    if status and status not in ENABLED_REGION:
        out.find(
            "region",
            f"region {region} is not enabled for the account (opt-in status {status})",
            f"enable it (aws account enable-region --region-name {region}) and wait until "
            "get-region-opt-status says ENABLED, or choose another region",
        )
        return False
    return True


def check_hosted_zone(session: AccountSession, out: _Node) -> None:
    """(3) The hosted zone exists in the account, is public, has the spec's name, holds the node."""
    node = out.node
    zone_id = node.hosted_zone_id
    try:
        got = session.client("route53").get_hosted_zone(Id=zone_id)
    except AWS_ERRORS as exc:
        if error_code(exc) in ("NoSuchHostedZone", "InvalidInput"):
            out.find(
                "hosted_zone",
                f"hosted zone {zone_id} does not exist in account {node.account}",
                "fix nodes[].hosted_zone_id, or create the zone in the node's own account "
                "(its certificate is validated by records written there)",
            )
        else:
            out.note("hosted_zone", f"cannot read hosted zone {zone_id} ({_why(exc)})")
        return
    zone = got["HostedZone"]
    name = str(zone["Name"]).rstrip(".").lower()
    if zone.get("Config", {}).get("PrivateZone"):
        out.find(
            "hosted_zone",
            f"hosted zone {zone_id} ({name}) is private",
            "name a public zone: the certificate is validated and peers resolve the node "
            "through public DNS",
        )
    if name != node.hosted_zone_name:
        out.find(
            "hosted_zone",
            f"hosted zone {zone_id} is {name}, not {node.hosted_zone_name}",
            "fix nodes[].hosted_zone_id or nodes[].hosted_zone_name",
        )
    if not in_zone(node.dns_name, name):
        out.find(
            "hosted_zone",
            f"{node.dns_name} is not inside hosted zone {zone_id} ({name})",
            "choose a dns_name that ends in the zone's name, or the zone that holds it",
        )


def used_azs(session: AccountSession) -> list[str]:
    """The first two AZs `Fn::GetAZs` gives the template: available zones, by name."""
    zones = session.client("ec2").describe_availability_zones(
        Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
    )["AvailabilityZones"]
    names = sorted(z["ZoneName"] for z in zones if z.get("State", "available") == "available")
    return names[:2]


def check_instance_type(session: AccountSession, out: _Node) -> None:
    """(4) The instance type is offered in both AZs the template uses."""
    node = out.node
    try:
        azs = used_azs(session)
        offered = {
            o["Location"]
            for page in session.client("ec2")
            .get_paginator("describe_instance_type_offerings")
            .paginate(
                LocationType="availability-zone",
                Filters=[
                    {"Name": "instance-type", "Values": [node.instance_type]},
                    {"Name": "location", "Values": azs},
                ],
            )
            for o in page["InstanceTypeOfferings"]
        }
    except AWS_ERRORS as exc:
        out.note("instance_type", f"cannot list instance type offerings ({_why(exc)})")
        return
    missing = [az for az in azs if az not in offered]
    if missing:
        out.find(
            "instance_type",
            f"instance type {node.instance_type} is not offered in {', '.join(missing)} "
            f"(the template uses {', '.join(azs)})",
            "choose an instance_type offered in both zones "
            f"(aws ec2 describe-instance-type-offerings --location-type availability-zone "
            f"--region {node.region})",
        )


def check_db_class(session: AccountSession, out: _Node) -> None:
    """(5) The DB class runs PostgreSQL 17 in the region (orderable)."""
    node = out.node
    rds = session.client("rds")
    try:
        options = rds.describe_orderable_db_instance_options(
            Engine=DB_ENGINE, DBInstanceClass=node.db_instance_class, MaxRecords=100
        )["OrderableDBInstanceOptions"]
        if not options:
            # AWS always lists PostgreSQL classes; an empty answer for the engine means the
            # endpoint (an emulator) does not know them: say so rather than guess
            known = rds.describe_orderable_db_instance_options(Engine=DB_ENGINE, MaxRecords=20)
            if not known["OrderableDBInstanceOptions"]:
                out.note("db_instance_class", "this endpoint lists no orderable PostgreSQL options")
                return
    except AWS_ERRORS as exc:
        out.note("db_instance_class", f"cannot list orderable DB options ({_why(exc)})")
        return
    versions = {str(o.get("EngineVersion", "")) for o in options}
    if not any(v == DB_ENGINE_VERSION or v.startswith(f"{DB_ENGINE_VERSION}.") for v in versions):
        have = sorted({v.split(".")[0] for v in versions if v})
        out.find(
            "db_instance_class",
            f"DB class {node.db_instance_class} does not run PostgreSQL {DB_ENGINE_VERSION} in "
            f"{node.region}" + (f" (it runs {', '.join(have)})" if have else ""),
            "choose a db_instance_class that does (aws rds describe-orderable-db-instance-options "
            f"--engine postgres --engine-version {DB_ENGINE_VERSION} --region {node.region})",
        )


def _kms_stack(session: AccountSession, cluster: str, node: Node) -> StackTypeDef | None:
    """The node's KMS stack, or None when there is none (a deleted one counts as none)."""
    try:
        stacks = session.client("cloudformation").describe_stacks(
            StackName=stack_name(cluster, node.index, "kms")
        )["Stacks"]
    except ClientError as exc:
        if stack_missing(exc):
            return None
        raise
    live = [s for s in stacks if s.get("StackStatus") not in ("DELETE_COMPLETE",)]
    return live[0] if live else None


def _in_review(stack: StackTypeDef | None) -> bool:
    return stack is None or stack.get("StackStatus") == "REVIEW_IN_PROGRESS"


# counting addresses reads a deployed stack's parameter, which another tool may have garbled
_COUNT_ERRORS: tuple[type[Exception], ...] = (*AWS_ERRORS, ValueError)


def check_eip_headroom(
    session: AccountSession, cluster: str, group: Sequence[Node], out: _Node
) -> None:
    """(6) Elastic IPs: the quota leaves room for the addresses the group's KMS stacks allocate."""
    ec2 = session.client("ec2")
    try:
        quota_value = session.client("service-quotas").get_service_quota(
            ServiceCode="ec2", QuotaCode=EIP_QUOTA_CODE
        )["Quota"]["Value"]
        quota = int(quota_value)
    except AWS_ERRORS as exc:
        quota = DEFAULT_EIP_QUOTA
        out.note(
            "elastic_ips",
            f"the Service Quotas API gives no Elastic IP quota here ({_why(exc)}); "
            f"assuming the default {DEFAULT_EIP_QUOTA}",
        )
    try:
        in_use = len(ec2.describe_addresses()["Addresses"])
        needed = 0
        for node in group:
            stack = _kms_stack(session, cluster, node)
            have = 0
            if not _in_review(stack) and stack is not None:
                params = {
                    p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])
                }
                have = int(params.get(KmsParameters.EGRESS_ADDRESS_COUNT, "1") or 1)
            needed += max(0, node.nat_gateways - have)
    except _COUNT_ERRORS as exc:
        out.note("elastic_ips", f"cannot count Elastic IPs ({_why(exc)})")
        return
    if in_use + needed > quota:
        nodes = ", ".join(f"nodes[{n.index}]" for n in group)
        out.find(
            "elastic_ips",
            f"{needed} new Elastic IP(s) for {nodes}, but {in_use} of the quota of {quota} are "
            "in use",
            f"release unused addresses, or request a higher quota ({EIP_QUOTA_CODE}: aws "
            f"service-quotas request-service-quota-increase --service-code ec2 --quota-code "
            f"{EIP_QUOTA_CODE} --desired-value {in_use + needed})",
        )


def leftover_secrets(
    session: AccountSession, cluster: str, node: Node
) -> list[SecretListEntryTypeDef]:
    """Secrets under tsm/<cluster>/node<i>/, including those scheduled for deletion."""
    prefix = secret_prefix(cluster, node.index)
    pages = (
        session.client("secretsmanager")
        .get_paginator("list_secrets")
        .paginate(IncludePlannedDeletion=True, Filters=[{"Key": "name", "Values": [prefix]}])
    )
    return sorted(
        (s for page in pages for s in page["SecretList"] if str(s["Name"]).startswith(prefix)),
        key=lambda s: str(s["Name"]),
    )


def leftover_advice(secrets: Iterable[SecretListEntryTypeDef]) -> tuple[str, str]:
    """What is left over, and what to do: restore them, or delete them for good."""
    names = []
    for secret in secrets:
        planned = " (scheduled for deletion)" if secret.get("DeletedDate") else ""
        names.append(f"{secret['Name']}{planned}")
    message = (
        f"secrets of an earlier deployment of this node are still there ({', '.join(names)}); "
        "destroy keeps them on purpose, and a new KMS stack cannot create secrets whose names "
        "are taken"
    )
    advice = (
        "to keep them (the node's identity), restore those scheduled for deletion (aws "
        "secretsmanager restore-secret --secret-id NAME) and deploy under another cluster name; "
        "only if that node's key shares are gone for good, delete them (aws secretsmanager "
        "delete-secret --secret-id NAME --force-delete-without-recovery), which loses the "
        "node's key share identity and its database key for good (without that flag the name "
        "stays taken for the recovery window of up to 30 days)"
    )
    return message, advice


def check_leftover_secrets(
    session: AccountSession, cluster: str, out: _Node, kms: StackTypeDef | None
) -> None:
    """(7) A new KMS stack would collide with the secrets an earlier deployment kept."""
    if not _in_review(kms):
        return
    try:
        taken = leftover_secrets(session, cluster, out.node)
    except AWS_ERRORS as exc:
        out.note("leftover_secrets", f"cannot list secrets ({_why(exc)})")
        return
    if taken:
        out.find("leftover_secrets", *leftover_advice(taken))


_SECRET_REGION = re.compile(r"arn:[^:]+:secretsmanager:([^:]+):")


def check_registry(session: AccountSession, image: str, out: _Node) -> None:
    """(8) The registry credentials secret, and the ECR repository of an ECR image, exist."""
    node = out.node
    arn = node.registry_credentials_secret_arn
    if arn:
        match = _SECRET_REGION.match(arn)
        region = match.group(1) if match else node.region
        try:
            secret = session.client("secretsmanager", region).describe_secret(SecretId=arn)
            if secret.get("DeletedDate"):
                out.find(
                    "registry",
                    f"registry credentials secret {arn} is scheduled for deletion",
                    f"restore it (aws secretsmanager restore-secret --secret-id {arn})",
                )
        except AWS_ERRORS as exc:
            if error_code(exc) == "ResourceNotFoundException":
                out.find(
                    "registry",
                    f"registry credentials secret {arn} does not exist",
                    "create it in the node's account (pull credentials as JSON), or fix "
                    "registry_credentials_secret_arn",
                )
            else:
                out.note("registry", f"cannot read {arn} ({_why(exc)})")
    repository = ecr_repository_arn(image)
    if repository:
        parts = repository.split(":")
        region, registry, name = parts[3], parts[4], parts[5].removeprefix("repository/")
        try:
            session.client("ecr", region).describe_repositories(
                registryId=registry, repositoryNames=[name]
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == "RepositoryNotFoundException":
                out.find(
                    "registry",
                    f"ECR repository {name} does not exist in registry {registry} ({region})",
                    "push the TSM image there, or fix tsm.image",
                )
            else:
                out.note("registry", f"cannot read ECR repository {name} ({_why(exc)})")


_ASSUMED = re.compile(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+")


def principal_arn(session: AccountSession, caller_arn: str) -> str:
    """The IAM ARN to simulate: the role (with its path) behind an assumed-role session."""
    match = _ASSUMED.fullmatch(caller_arn)
    if not match:
        return caller_arn
    partition, account, role = match.groups()
    try:
        return str(session.client("iam").get_role(RoleName=role)["Role"]["Arn"])
    except AWS_ERRORS:  # no iam:GetRole: a role without a path has this ARN
        return f"arn:{partition}:iam::{account}:role/{role}"


def check_permissions(session: AccountSession, out: _Node) -> None:
    """(9) The deploying identity may do what deploy does (iam:SimulatePrincipalPolicy)."""
    try:
        caller = str(session.client("sts").get_caller_identity()["Arn"])
        if caller.endswith(":root"):
            out.note("permissions", "the account's root user cannot be simulated; skipped")
            return
        principal = principal_arn(session, caller)
        pages = (
            session.client("iam")
            .get_paginator("simulate_principal_policy")
            .paginate(PolicySourceArn=principal, ActionNames=list(DEPLOY_ACTIONS))
        )
        results = [r for page in pages for r in page["EvaluationResults"]]
    except AWS_ERRORS as exc:
        out.note(
            "permissions",
            f"cannot simulate the deploying identity's policies ({_why(exc)}); skipped",
        )
        return
    denied = sorted(str(r["EvalActionName"]) for r in results if r["EvalDecision"] != "allowed")
    if denied:
        out.find(
            "permissions",
            f"{principal} may not {', '.join(denied)}",
            "grant these actions to the deploying role (or deploy with a role that has them)",
        )


# --------------------------------------------------------------------------- running them


def _check_node(
    cluster: Cluster,
    connector: Connector,
    node: Node,
    eip_group: Sequence[Node],
) -> _Node:
    out = _Node(node)
    try:
        session = connector.for_node(node)
    except AccessError as exc:
        out.find(
            "credentials",
            str(exc).partition(": ")[2] or str(exc),
            f"fix the access settings (if {node.region} is an opt-in region, enable it first)",
        )
        return out
    if not check_region(session, out):
        out.note("region", "the other checks need the region; skipped")
        return out
    check_hosted_zone(session, out)
    check_instance_type(session, out)
    check_db_class(session, out)
    if eip_group:
        check_eip_headroom(session, cluster.name, eip_group, out)
    try:
        kms = _kms_stack(session, cluster.name, node)
    except AWS_ERRORS as exc:
        out.note("leftover_secrets", f"cannot describe the KMS stack ({_why(exc)})")
    else:
        check_leftover_secrets(session, cluster.name, out, kms)
    check_registry(session, cluster.tsm.image, out)
    check_permissions(session, out)
    return out


def preflight(cluster: Cluster, connector: Connector) -> PreflightResult:
    """Every check for every node, one worker per node."""
    import time  # noqa: PLC0415

    started = time.monotonic()
    groups: dict[tuple[str, str], list[Node]] = {}
    for node in cluster.nodes:
        groups.setdefault((node.account, node.region), []).append(node)
    leaders = {group[0].index: group for group in groups.values()}
    with ThreadPoolExecutor(
        max_workers=max(1, len(cluster.nodes)), thread_name_prefix="tsm-preflight"
    ) as pool:
        futures = [
            pool.submit(_check_node, cluster, connector, node, leaders.get(node.index, ()))
            for node in cluster.nodes
        ]
        checked = [future.result() for future in futures]
    result = PreflightResult(cluster.name)
    for out in checked:
        result.findings += out.findings
        result.notes += out.notes
    result.seconds = time.monotonic() - started
    return result


def require(cluster: Cluster, connector: Connector) -> PreflightResult:
    """Preflight, raising PreflightError (exit 2) when anything would stop the deploy."""
    result = preflight(cluster, connector)
    if not result.ok:
        raise PreflightError(result)
    return result


__all__ = [
    "DEPLOY_ACTIONS",
    "Finding",
    "Note",
    "PreflightError",
    "PreflightResult",
    "leftover_advice",
    "leftover_secrets",
    "preflight",
    "require",
]
