"""The spec's shape: field types that check their values, and the pydantic models.

Each field check returns the value or raises ValueError with the message the user sees after
the field's path, so messages read as "nodes[2].account: must be 12 digits, got '12345'".
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tsm_infra.limits import isolated_region_problem
from tsm_infra.spec.reader import show

DEFAULT_INSTANCE_TYPE = "m7i.large"
DEFAULT_DB_INSTANCE_CLASS = "db.t4g.medium"


# --------------------------------------------------------------------------- field checks


def _matches(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}, got {show(value)}")
        return value

    return AfterValidator(check)


def _check_account(value: str) -> str:
    # [0-9], not \d: \d also takes fullwidth and Arabic-Indic digits, which AWS refuses
    if not re.fullmatch(r"[0-9]{12}", value):
        raise ValueError(f"must be 12 digits, got {show(value)}")
    return value


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region name botocore's bundled endpoint data knows, across all partitions.

    Read from the endpoint data itself: no session (only aws.py makes those) and no service
    model, which a session's get_available_regions would load for this (a third of a second).
    """
    import botocore.loaders  # noqa: PLC0415 - heavy import, only needed when validating

    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(
        str(region)
        for partition in endpoints.get("partitions", [])
        for region in partition.get("regions", {})
    )


def _check_region(value: str) -> str:
    isolated = isolated_region_problem(value)
    if isolated:
        raise ValueError(isolated)
    if value not in known_regions():
        folded = value.strip().lower().replace("_", "-")
        close = (
            [folded]
            if folded in known_regions()
            else difflib.get_close_matches(value, sorted(known_regions()), n=1)
        )
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown region {show(value)}{hint}")
    return value


_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _check_dns_name(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"must be lower case, got {show(value)}")
    if value.endswith("."):
        raise ValueError(f"must not end with a dot, got {show(value)}")
    labels = value.split(".")
    if (
        len(value) > 253
        or len(labels) < 2
        or not all(_DNS_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(
            f"must be a DNS name such as 'node0.vault.example.com' (labels of a-z, 0-9 and "
            f"inner '-', at most 63 characters each), got {show(value)}"
        )
    return value


def _check_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"must be a CIDR block such as '203.0.113.0/24', got {show(value)}"
        ) from None
    if "/" not in value:
        raise ValueError(f"must give a prefix length, e.g. '{network}', got {show(value)}")
    if network.version != 4:
        raise ValueError(f"must be an IPv4 CIDR (the load balancer is IPv4), got {show(value)}")
    if str(network) != value:
        raise ValueError(f"has host bits set: {show(value)}; did you mean '{network}'?")
    return value


# The grammar of distribution/reference (what `docker pull` accepts), without the parts the
# tool must refuse: a reference has to pin a version, by tag or digest.
_IMAGE = re.compile(
    r"(?P<name>(?:(?P<registry>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def _check_image(value: str) -> str:
    match = _IMAGE.fullmatch(value)
    if match is None:
        raise ValueError(
            "must be an image reference such as 'registry.example.com/tsm-node:72.0.0', "
            f"got {show(value)}"
        )
    if not match["tag"] and not match["digest"]:
        raise ValueError(
            f"must pin a version with a tag or digest (e.g. {value}:72.0.0), got {show(value)}"
        )
    if match["tag"] == "latest" and not match["digest"]:
        raise ValueError(
            "must pin a version: 'latest' changes under you, so dev, test and prod could "
            "run different nodes; name the version (e.g. :72.0.0)"
        )
    return value


def _check_unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{show(value)} is listed twice")
        seen.add(value)
    return values


AccountId = Annotated[
    str, AfterValidator(_check_account), Field(json_schema_extra={"pattern": r"^[0-9]{12}$"})
]
Region = Annotated[str, AfterValidator(_check_region)]
DnsName = Annotated[str, AfterValidator(_check_dns_name)]
Cidr = Annotated[str, AfterValidator(_check_cidr)]
ClusterName = Annotated[
    str,
    _matches(
        r"[a-z][a-z0-9-]{0,22}[a-z0-9]",
        "2 to 24 characters of a-z, 0-9 and '-', starting with a letter",
    ),
    Field(json_schema_extra={"pattern": r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$"}),
]
HostedZoneId = Annotated[
    str,
    _matches(r"Z[A-Z0-9]{1,31}", "a Route 53 hosted zone id such as 'Z0123456789ABCDEFGHIJ'"),
    Field(json_schema_extra={"pattern": r"^Z[A-Z0-9]{1,31}$"}),
]
RoleArn = Annotated[
    str,
    _matches(
        r"arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}",
        "an IAM role ARN such as 'arn:aws:iam::111111111111:role/TsmDeployer'",
    ),
]
RoleName = Annotated[
    str,
    _matches(
        r"(?:[A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}",
        "an IAM role name such as 'TsmDeployer' (1 to 64 ASCII letters, digits and _+=,.@-, "
        "after an optional path/)",
    ),
]
ExternalId = Annotated[
    str,
    _matches(
        r"[A-Za-z0-9_+=,.@:/-]{2,1224}", "2 to 1224 ASCII letters, digits and _+=,.@:/- characters"
    ),
]
SecretArn = Annotated[
    str,
    _matches(
        r"arn:aws(?:-[a-z]+)*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9_/+=.@-]+",
        "a Secrets Manager secret ARN",
    ),
]
InstanceType = Annotated[
    str, _matches(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type such as 'm7i.large'")
]
DbInstanceClass = Annotated[
    str,
    _matches(r"db\.[a-z0-9-]+\.[a-z0-9]+", "an RDS instance class such as 'db.t4g.medium'"),
]
ApplicationId = Annotated[
    str, _matches(r"[A-Za-z0-9_.-]{1,64}", "1 to 64 characters of letters, digits and _.-")
]
ImageReference = Annotated[str, AfterValidator(_check_image)]


# --------------------------------------------------------------------------- the models


class _Model(BaseModel):
    # strict: YAML already gives real types; coercing "1" to 1 or 1 to "1" would hide mistakes
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Access(_Model):
    """How the tool reaches a node's account: a named profile, or a role to assume."""

    profile: str | None = Field(None, description="Named AWS CLI profile for this account.")
    role_arn: RoleArn | None = Field(
        None, description="Role to assume from the default credentials."
    )
    role_name: RoleName | None = Field(
        None,
        description="Role name to assume in the node's own account (handy under defaults).",
    )
    external_id: ExternalId | None = Field(
        None, description="External id the role's trust policy requires."
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> Access:
        given = [name for name in ("profile", "role_arn", "role_name") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of profile, role_arn or role_name"
                + (f", got {' and '.join(given)}" if given else "")
            )
        if self.external_id and self.profile:
            raise ValueError("external_id goes with role_arn or role_name, not with profile")
        return self


class NodeSettings(_Model):
    """Settings a node may set itself or inherit from the spec's defaults section."""

    region: Region | None = Field(None, description="AWS region of the node's stacks.")
    hosted_zone_id: HostedZoneId | None = Field(
        None, description="Route 53 hosted zone (in the node's account) for its DNS name."
    )
    hosted_zone_name: DnsName | None = Field(
        None,
        description="The hosted zone's domain name (default: the DNS name without its first "
        "label); preflight checks it against the zone, the rehearsal creates the zone with it.",
    )
    registry_credentials_secret_arn: SecretArn | None = Field(
        None,
        description="Secrets Manager secret with the image registry's pull credentials, in the "
        "node's own account (each node reads only its own account's secrets). Not needed for "
        "ECR images, which the node pulls with its role.",
    )
    access: Access | None = Field(
        None, description="How to reach the account; default credentials when absent."
    )
    instance_type: InstanceType | None = Field(
        None, description=f"EC2 instance type of the node (default {DEFAULT_INSTANCE_TYPE})."
    )
    db_instance_class: DbInstanceClass | None = Field(
        None,
        description=f"RDS instance class of the key-share database "
        f"(default {DEFAULT_DB_INSTANCE_CLASS}).",
    )
    multi_az: bool | None = Field(None, description="Run the database Multi-AZ (default false).")
    sdk_client_cidrs: Annotated[list[Cidr], AfterValidator(_check_unique)] | None = Field(
        None, description="Addresses allowed to call the SDK API (at least one).", min_length=1
    )
    allow_mobile_players: bool | None = Field(
        None,
        description="Let mobile and browser players reach the MPC port from anywhere; "
        "otherwise only the peer nodes' egress addresses may (default false).",
    )
    nat_gateways: Literal[1, 2] | None = Field(
        None,
        description="NAT gateways (and so egress addresses): 1, or 2 for one per "
        "availability zone (default 1).",
    )


class NodeSpec(NodeSettings):
    """One TSM node as written in the spec."""

    index: int = Field(description="Player index, 0..n-1.")
    account: AccountId = Field(description="12-digit AWS account id (quoted).")
    dns_name: DnsName = Field(description="The node's DNS name, inside hosted_zone_id.")


class TsmSettings(_Model):
    """The licensed TSM node software."""

    image: ImageReference = Field(description="TSM node image, pinned by tag or digest.")
    registry_credentials_secret_arn: SecretArn | None = Field(
        None,
        description="Pull-credentials secret for every node; only for nodes in the secret's "
        "own account. Nodes in other accounts set defaults/nodes[].registry_credentials_"
        "secret_arn to a copy in their own account.",
    )
    config_layout: Literal["mpc-tcp", "mpc-direct"] = Field(
        "mpc-tcp",
        description="Config-file key names the image's TSM version reads: mpc-tcp "
        "([MPCTCPServer]) or mpc-direct ([MPCDirectServer], TSM 73 LTS and later).",
    )
    sdk_applications: Annotated[list[ApplicationId], AfterValidator(_check_unique)] = Field(
        default=["default"],
        min_length=1,
        description="Application ids that each get their own SDK API key on every node.",
    )


class Spec(_Model):
    """A deployment spec: one TSM cluster, one node per AWS account."""

    model_config = ConfigDict(title="tsm-infra deployment spec")

    cluster: ClusterName = Field(description="Cluster name; part of every stack name.")
    threshold: int = Field(description="Signing needs threshold + 1 nodes.")
    tsm: TsmSettings
    allow_shared_account: bool = Field(
        False, description="Allow several nodes in one account (development only)."
    )
    same_organization: bool = Field(
        False,
        description="All node accounts are in one AWS Organization with RAM sharing enabled: "
        "shares stay inside it and need no invitations.",
    )
    defaults: NodeSettings = Field(
        default_factory=NodeSettings, description="Settings every node inherits."
    )
    nodes: list[NodeSpec]
