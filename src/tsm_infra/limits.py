"""What AWS will refuse, checked offline: partitions, limits, counts and quotas a spec can hit.

`tsm_infra.spec` calls `check_cluster` after the shape of the spec is valid; every rule here names
the limit and what to do, so a spec that validates does not fail halfway through a deploy.
`cluster_warnings` lists valid but risky choices. Nothing here talks to AWS.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tsm_infra.images import ecr_repository

if TYPE_CHECKING:
    from tsm_infra.spec import Node, Spec, TsmSettings

YamlPath = tuple[str | int, ...]
Add = Callable[[YamlPath, str], None]

# Partitions the tool deploys to, and the region prefixes of the isolated ones it cannot.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_ISOLATED = re.compile(r"(?:us-iso[a-z]*-|us-isob-|eu-isoe-|[a-z]{2}-iso[a-z]*-)")

# AWS limits, with where they apply.
SG_INBOUND_RULES = 60  # default inbound rules per security group (VPC quota L-0EA8095F)
ELASTIC_IPS_PER_REGION = 5  # default Elastic IPs per account and region (EC2 quota L-0263D0A3)
ACM_DOMAIN_LENGTH = 64  # ACM: the first domain name of a certificate, at most 64 characters
SSM_ADVANCED_VALUE_BYTES = 8192  # the templates write Advanced-tier parameters (8 KB)
CUSTOM_RESOURCE_RESPONSE_BYTES = 4096  # CloudFormation custom resource response body
MAX_NODE_INDEX = 99  # NodeIndex AllowedPattern "^[0-9]{1,2}$" in tsm_infra/cfn/kms.yaml, core.yaml
STACK_NAME_LENGTH = 128

API_KEY_HASH_CHARS = 44  # base64 of a SHA-256 digest
_P2P_PUBLIC_KEY_CHARS = 124  # base64 of a P-256 SubjectPublicKeyInfo (91 bytes), the default
_SECRET_ITEMS = (
    "p2p-private-key",
    "sdk-api-keys",
    "management-api-key",
    "encryptor-master-password",
    "database-password",
)
_SECRET_PROPERTIES = (
    "P2PKeySecretArn",
    "SdkApiKeysSecretArn",
    "ManagementApiKeySecretArn",
    "EncryptorMasterPasswordSecretArn",
    "DatabasePasswordSecretArn",
)

# The node AMI is Amazon Linux 2023 for x86_64; Graviton families have a `g` after the
# generation digit (m7g, c7gn, r8g, t4g, m6gd, x2gd, im4gn, g5g, hpc7g).
_FAMILY = re.compile(r"([a-z]+)([0-9]+)([a-z-]*)")
# Previous-generation RDS classes that RDS for PostgreSQL 17 is not offered on.
_OLD_DB_FAMILIES = ("t1", "t2", "m1", "m2", "m3", "m4", "r3", "r4", "x1", "x1e")
_TSM_DIRECT_FROM = 73  # TSM 73 LTS and later read [MPCDirectServer] (config_layout mpc-direct)


def partition_of(region: str) -> str:
    """The ARN partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def isolated_region_problem(region: str) -> str | None:
    """Why an isolated-partition region cannot be used, or None."""
    if _ISOLATED.match(region):
        return (
            f"{region!r} is in an isolated partition (aws-iso*), which has no public endpoints "
            "and where this tool's templates and AMI lookup are not available; use a region "
            "of aws, aws-cn or aws-us-gov"
        )
    return None


def in_zone(dns_name: str, zone: str) -> bool:
    """True when `dns_name` is the zone's apex or a name below it (at a label boundary)."""
    return dns_name == zone or dns_name.endswith(f".{zone}")


def is_ecr_image(image: str) -> bool:
    """True for images in Amazon ECR, which nodes pull with their role and no secret."""
    return ecr_repository(image) is not None


def is_graviton(instance_type: str) -> bool:
    """True for arm64 (Graviton) instance families."""
    match = _FAMILY.fullmatch(instance_type.partition(".")[0])
    return match is not None and "g" in match[3]


def sdk_hashes_parameter_bytes(app_ids: Sequence[str]) -> int:
    """Size of the sdk-api-key-hashes SSM parameter: JSON of application id to hash."""
    return len(json.dumps(dict.fromkeys(app_ids, "h" * API_KEY_HASH_CHARS)))


def keygen_response_bytes(spec: Spec, node: Node) -> int:
    """Size of the key-generation custom resource's response for `node` (as keygen sends it)."""
    partition, region, account = node.partition, node.region, node.account
    name = f"tsm-{spec.cluster}-node{node.index}-kms"
    prefix = f"tsm/{spec.cluster}/node{node.index}"
    data = {
        "PublicKey": "k" * _P2P_PUBLIC_KEY_CHARS,
        "SdkApiKeyHashes": json.dumps(
            dict.fromkeys(spec.tsm.sdk_applications, "h" * API_KEY_HASH_CHARS)
        ),
        "ManagementApiKeyHash": "h" * API_KEY_HASH_CHARS,
    }
    for item, prop in zip(_SECRET_ITEMS, _SECRET_PROPERTIES, strict=True):
        data[prop] = (
            f"arn:{partition}:secretsmanager:{region}:{account}:secret:{prefix}/{item}-AbCdEf"
        )
    uuid = "0" * 36
    body = {
        "StackId": f"arn:{partition}:cloudformation:{region}:{account}:stack/{name}/{uuid}",
        "RequestId": uuid,
        "LogicalResourceId": "NodeSecrets",
        "Status": "SUCCESS",
        "Reason": "; ".join(f"{item} generated" for item in _SECRET_ITEMS),
        "PhysicalResourceId": f"{name}-secrets",
        "Data": data,
    }
    return len(json.dumps(body))


# --------------------------------------------------------------------------- the rules


def _node_field(spec: Spec, position: int, name: str) -> YamlPath:
    """Where a node's resolved setting was written: on the node or under defaults."""
    if getattr(spec.nodes[position], name) is not None:
        return ("nodes", position, name)
    return ("defaults", name)


def _check_partitions(spec: Spec, nodes: Sequence[Node | None], add: Add) -> None:
    first: dict[str, int] = {}
    for position, node in enumerate(nodes):
        if node is None:
            continue
        first.setdefault(node.partition, position)
        if len(first) > 1 and node.partition != next(iter(first)):
            other = next(iter(first))
            add(
                _node_field(spec, position, "region"),
                f"{node.region} is in partition {node.partition} but nodes[{first[other]}] is in "
                f"{other}; a cluster lives in one partition (accounts, roles and RAM shares do "
                "not cross partitions): put every node in regions of one partition",
            )
        access = node.access
        if access is not None and access.role_arn:
            role_partition = access.role_arn.split(":")[1]
            if role_partition != node.partition:
                path = _node_field(spec, position, "access")
                add(
                    (*path, "role_arn"),
                    f"the role is in partition {role_partition} but nodes[{position}] runs in "
                    f"{node.region} ({node.partition}); write it as arn:{node.partition}:iam::...",
                )


def _secret_path(spec: Spec, position: int) -> YamlPath:
    if spec.nodes[position].registry_credentials_secret_arn is not None:
        return ("nodes", position, "registry_credentials_secret_arn")
    if spec.defaults.registry_credentials_secret_arn is not None:
        return ("defaults", "registry_credentials_secret_arn")
    return ("tsm", "registry_credentials_secret_arn")


def _check_registry_secrets(
    spec: Spec, nodes: Sequence[Node | None], add: Add, regions: frozenset[str]
) -> None:
    for position, node in enumerate(nodes):
        arn = node.registry_credentials_secret_arn if node else None
        if node is None or arn is None:
            continue
        path = _secret_path(spec, position)
        _, partition, _, region, account, *_ = arn.split(":")
        if region not in regions:
            add(path, f"the secret's region {region!r} is not an AWS region; copy the ARN again")
        elif partition_of(region) != partition:
            add(path, f"region {region} is in partition {partition_of(region)}, not {partition}")
        elif partition != node.partition:
            add(
                path,
                f"the secret is in partition {partition} but nodes[{position}] runs in "
                f"{node.partition}; keep a copy of the secret in the node's own partition",
            )
        if account != node.account:
            add(
                path,
                f"the secret is in account {account} but nodes[{position}] is in "
                f"{node.account}, and a node reads only its own account's secrets: put a copy "
                f"of the secret in account {node.account} and set "
                f"nodes[{position}].registry_credentials_secret_arn to it (or "
                "defaults.registry_credentials_secret_arn when the accounts match)",
            )


def _check_dns(spec: Spec, nodes: Sequence[Node | None], add: Add) -> None:
    zone_account: dict[str, tuple[str, int]] = {}
    for position, node in enumerate(nodes):
        if node is None:
            continue
        if len(node.dns_name) > ACM_DOMAIN_LENGTH:
            add(
                ("nodes", position, "dns_name"),
                f"is {len(node.dns_name)} characters; an ACM certificate's domain name is at "
                f"most {ACM_DOMAIN_LENGTH}: use a shorter name",
            )
        zone = node.hosted_zone_name
        if not in_zone(node.dns_name, zone):
            add(
                _node_field(spec, position, "hosted_zone_name"),
                f"{node.dns_name} is not inside the zone {zone}; the zone's name must end the "
                "DNS name at a label boundary (e.g. zone vault.example.com for "
                "node0.vault.example.com)",
            )
        owner = zone_account.setdefault(node.hosted_zone_id, (node.account, position))
        if owner[0] != node.account:
            add(
                _node_field(spec, position, "hosted_zone_id"),
                f"{node.hosted_zone_id} is nodes[{owner[1]}]'s zone in account {owner[0]}, but "
                f"nodes[{position}] is in {node.account}; a hosted zone belongs to one account: "
                "give this node a zone in its own account",
            )


def _check_counts(spec: Spec, nodes: Sequence[Node | None], add: Add) -> None:
    live = [n for n in nodes if n is not None]
    for position, node in enumerate(nodes):
        if node is None:
            continue
        if node.index > MAX_NODE_INDEX:
            add(
                ("nodes", position, "index"),
                f"the templates accept node indices 0..{MAX_NODE_INDEX} (NodeIndex), got "
                f"{node.index}; a cluster has at most {MAX_NODE_INDEX + 1} nodes",
            )
        peers = sum(p.nat_gateways for p in live if p.index != node.index)
        rules = peers + len(node.sdk_client_cidrs) + int(node.allow_mobile_players)
        if rules > SG_INBOUND_RULES:
            add(
                _node_field(spec, position, "sdk_client_cidrs"),
                f"nodes[{position}]'s load balancer security group needs {rules} inbound rules "
                f"({peers} peer egress addresses + {len(node.sdk_client_cidrs)} SDK client CIDRs"
                f"{' + 1 for mobile players' if node.allow_mobile_players else ''}), over the "
                f"default {SG_INBOUND_RULES} per security group: merge client CIDRs into wider "
                "blocks, use nat_gateways: 1, or raise the VPC quota 'Inbound or outbound rules "
                "per security group' first",
            )
    eips: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for position, node in enumerate(nodes):
        if node is not None:
            eips.setdefault((node.account, node.region), []).append((position, node.nat_gateways))
    for (account, region), used in eips.items():
        total = sum(count for _, count in used)
        positions = [position for position, _ in used]
        if total > ELASTIC_IPS_PER_REGION:
            add(
                _node_field(spec, positions[-1], "nat_gateways"),
                f"nodes {', '.join(f'[{p}]' for p in positions)} need {total} Elastic IPs in "
                f"account {account}, {region}; the default quota is {ELASTIC_IPS_PER_REGION} "
                "(EC2 'EC2-VPC Elastic IPs'): use nat_gateways: 1, or raise the quota in "
                "Service Quotas first",
            )
    apps = spec.tsm.sdk_applications
    size = sdk_hashes_parameter_bytes(apps)
    if size > SSM_ADVANCED_VALUE_BYTES:
        add(
            ("tsm", "sdk_applications"),
            f"{len(apps)} application ids make the sdk-api-key-hashes SSM parameter {size} "
            f"bytes, over its {SSM_ADVANCED_VALUE_BYTES}-byte limit (Advanced tier): use fewer "
            "or shorter application ids",
        )
    elif live:
        worst = max(live, key=lambda n: keygen_response_bytes(spec, n))
        size = keygen_response_bytes(spec, worst)
        if size > CUSTOM_RESOURCE_RESPONSE_BYTES:
            add(
                ("tsm", "sdk_applications"),
                f"{len(apps)} application ids make the key-generation response about {size} "
                f"bytes, over CloudFormation's {CUSTOM_RESOURCE_RESPONSE_BYTES}-byte limit for "
                "custom resource responses: use fewer or shorter application ids",
            )


def _check_machines(spec: Spec, nodes: Sequence[Node | None], add: Add) -> None:
    for position, node in enumerate(nodes):
        if node is None:
            continue
        if is_graviton(node.instance_type):
            add(
                _node_field(spec, position, "instance_type"),
                f"{node.instance_type} is a Graviton (arm64) type, but the node AMI is Amazon "
                "Linux 2023 for x86_64: pick an x86_64 type such as m7i.large or m7a.large",
            )
        family = node.db_instance_class.split(".")[1]
        if family in _OLD_DB_FAMILIES:
            add(
                _node_field(spec, position, "db_instance_class"),
                f"{node.db_instance_class} is a previous-generation class that RDS for "
                "PostgreSQL 17 does not run on: pick a current class such as db.t4g.medium, "
                "db.m7g.large or db.r7g.large",
            )


def check_cluster(
    spec: Spec, nodes: Sequence[Node | None], add: Add, regions: frozenset[str]
) -> None:
    """Add a problem for everything AWS would refuse; `nodes` are by spec position."""
    _check_partitions(spec, nodes, add)
    _check_registry_secrets(spec, nodes, add, regions)
    _check_dns(spec, nodes, add)
    _check_counts(spec, nodes, add)
    _check_machines(spec, nodes, add)


# --------------------------------------------------------------------------- warnings


def _image_major(image: str) -> int | None:
    tag = image.split("@", 1)[0].rpartition("/")[2].partition(":")[2]
    match = re.match(r"v?([0-9]+)(?:[.-]|$)", tag, re.ASCII)
    return int(match[1]) if match else None


# Ranges that never appear as a source address on the internet (RFC 1918, shared address
# space, loopback, link-local); documentation ranges such as 203.0.113.0/24 are left alone.
_NEVER_PUBLIC = tuple(
    ipaddress.IPv4Network(c)
    for c in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
    )
)


def _never_public(cidr: str) -> bool:
    network = ipaddress.IPv4Network(cidr)
    return any(network.subnet_of(block) for block in _NEVER_PUBLIC)


def cluster_warnings(tsm: TsmSettings, nodes: Sequence[Node]) -> list[str]:
    """Valid but risky choices the tool cannot refuse (it may be what the user wants)."""
    notes: list[str] = []
    for node in nodes:
        private = [c for c in node.sdk_client_cidrs if _never_public(c)]
        if private:
            notes.append(
                f"nodes[{node.index}].sdk_client_cidrs: {', '.join(private)} "
                f"{'is a private range' if len(private) == 1 else 'are private ranges'}; the "
                "load balancer is internet-facing, so clients there can never reach it (list "
                "their public or NAT addresses)"
            )
        if node.allow_mobile_players:
            notes.append(
                f"nodes[{node.index}].allow_mobile_players: the MPC port is open to the whole "
                "internet (0.0.0.0/0), not only to the peer nodes"
            )
    major = _image_major(tsm.image)
    if major is not None:
        expected = "mpc-direct" if major >= _TSM_DIRECT_FROM else "mpc-tcp"
        if expected != tsm.config_layout:
            notes.append(
                f"tsm.config_layout: the image is TSM {major}, which reads the {expected} "
                f"layout (mpc-direct from TSM {_TSM_DIRECT_FROM}), but the spec says "
                f"{tsm.config_layout}; set tsm.config_layout: {expected} unless you know "
                "this image differs"
            )
    return notes
