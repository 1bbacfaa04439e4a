"""The deployment spec: the one file a user writes to describe a cluster.

This module is the only reader of spec YAML. `load_spec` turns a file into a `Cluster` (every
node with its defaults resolved) or raises one `SpecError` listing every problem found, each with
its YAML path and line. Checks happen in three passes, so a user sees all problems at once:
the YAML itself (syntax, duplicate keys), the shape and field values (pydantic), and the rules
that span fields (indices, threshold, distinct accounts and names).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from tsm_infra.errors import Problem, SpecError
from tsm_infra.limits import check_cluster, cluster_warnings, isolated_region_problem, partition_of
from tsm_infra.specfile import decode, read_spec_bytes
from tsm_infra.specfile import fail as _fail

# A spec is a few dozen lines; this bound stops alias bombs ("billion laughs") long before they
# cost memory or time.
MAX_YAML_NODES = 20_000
MAX_YAML_DEPTH = 40

DEFAULT_INSTANCE_TYPE = "m7i.large"
DEFAULT_DB_INSTANCE_CLASS = "db.t4g.medium"

YamlPath = tuple[str | int, ...]


# --------------------------------------------------------------------------- field checks
# Each check returns the value or raises ValueError with the message the user sees after the
# field's path, so messages read as "nodes[2].account: must be 12 digits, got '12345'".


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _matches(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}, got {_show(value)}")
        return value

    return AfterValidator(check)


def _check_account(value: str) -> str:
    # [0-9], not \d: \d also takes fullwidth and Arabic-Indic digits, which AWS refuses
    if not re.fullmatch(r"[0-9]{12}", value):
        raise ValueError(f"must be 12 digits, got {_show(value)}")
    return value


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region name botocore's bundled endpoint data knows, across all partitions."""
    import botocore.session  # noqa: PLC0415 - heavy import, only needed when validating

    session = botocore.session.get_session()
    names: set[str] = set()
    for partition in session.get_available_partitions():
        names.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(names)


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
        raise ValueError(f"unknown region {_show(value)}{hint}")
    return value


_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _check_dns_name(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"must be lower case, got {_show(value)}")
    if value.endswith("."):
        raise ValueError(f"must not end with a dot, got {_show(value)}")
    labels = value.split(".")
    if (
        len(value) > 253
        or len(labels) < 2
        or not all(_DNS_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(
            f"must be a DNS name such as 'node0.vault.example.com' (labels of a-z, 0-9 and "
            f"inner '-', at most 63 characters each), got {_show(value)}"
        )
    return value


def _check_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"must be a CIDR block such as '203.0.113.0/24', got {_show(value)}"
        ) from None
    if "/" not in value:
        raise ValueError(f"must give a prefix length, e.g. '{network}', got {_show(value)}")
    if network.version != 4:
        raise ValueError(f"must be an IPv4 CIDR (the load balancer is IPv4), got {_show(value)}")
    if str(network) != value:
        raise ValueError(f"has host bits set: {_show(value)}; did you mean '{network}'?")
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
            f"got {_show(value)}"
        )
    if not match["tag"] and not match["digest"]:
        raise ValueError(
            f"must pin a version with a tag or digest (e.g. {value}:72.0.0), got {_show(value)}"
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
            raise ValueError(f"{_show(value)} is listed twice")
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


# --------------------------------------------------------------------------- resolved cluster


@dataclass(frozen=True)
class Node:
    """A node with every setting resolved: what the plan is made from."""

    index: int
    account: str
    region: str
    dns_name: str
    hosted_zone_id: str
    hosted_zone_name: str
    access: Access | None
    instance_type: str
    db_instance_class: str
    multi_az: bool
    sdk_client_cidrs: tuple[str, ...]
    allow_mobile_players: bool
    nat_gateways: int
    registry_credentials_secret_arn: str | None = None

    @property
    def partition(self) -> str:
        """The ARN partition of the node's region."""
        return partition_of(self.region)

    @property
    def role_arn(self) -> str | None:
        """The role to assume, with a role name resolved against this node's account."""
        if self.access is None:
            return None
        if self.access.role_name:
            return (
                f"arn:{partition_of(self.region)}:iam::{self.account}:role/{self.access.role_name}"
            )
        return self.access.role_arn


@dataclass(frozen=True)
class Cluster:
    """A validated spec: the cluster's settings and its nodes ordered by index."""

    name: str
    threshold: int
    tsm: TsmSettings
    nodes: tuple[Node, ...]
    allow_shared_account: bool
    same_organization: bool
    source: str

    def warnings(self) -> list[str]:
        """Valid but risky choices, worth a line in front of the user."""
        notes: list[str] = []
        if self.threshold == 0:
            notes.append("threshold: 0 lets any single node sign alone; MPC protects nothing")
        if self.allow_shared_account:
            notes.append(
                "allow_shared_account: nodes share an AWS account, so one administrator can "
                "reach several key shares; use this for development only"
            )
        for node in self.nodes:
            open_cidrs = [c for c in node.sdk_client_cidrs if c in ("0.0.0.0/0", "::/0")]
            if open_cidrs:
                notes.append(
                    f"nodes[{node.index}].sdk_client_cidrs: {open_cidrs[0]} opens the SDK API "
                    "to the whole internet (it still needs an API key)"
                )
        return notes + cluster_warnings(self.tsm, self.nodes)


# --------------------------------------------------------------------------- reading YAML


def format_path(path: YamlPath) -> str:
    """`('nodes', 2, 'account')` -> `nodes[2].account`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _LineMap:
    """Remembers the line of every mapping key and sequence item, by YAML path."""

    def __init__(self) -> None:
        self._lines: dict[YamlPath, int] = {(): 1}
        # the text of unquoted scalars YAML read as numbers or booleans, to show what was written
        self.raw: dict[YamlPath, str] = {}

    def add(self, path: YamlPath, line: int) -> None:
        self._lines.setdefault(path, line)

    def line_of(self, path: YamlPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that is in the file."""
        for end in range(len(path), -1, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


class _Reader:
    """Builds plain Python data from a YAML node tree, keeping lines and refusing duplicates."""

    def __init__(self, loader: yaml.SafeLoader, lines: _LineMap) -> None:
        self.loader = loader
        self.lines = lines
        self.problems: list[Problem] = []
        self.nodes_seen = 0

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.nodes_seen += 1
        if self.nodes_seen > MAX_YAML_NODES or len(path) > MAX_YAML_DEPTH:
            raise _TooLarge(format_path(path), node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines.add((*path, i), item.start_mark.line + 1)
                items.append(self.build(item, (*path, i)))
            return items
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, bool | int | float) and getattr(node, "style", "") is None:
            self.lines.raw[path] = node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[str, Any]:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node, path)
            line = key_node.start_mark.line + 1
            if key is None:
                continue
            if key in first_line:
                self.problems.append(
                    Problem(
                        format_path((*path, key)),
                        f"duplicate key {key!r} (first at line {first_line[key]}); "
                        "keep one of them",
                        line,
                    )
                )
            else:
                first_line[key] = line
        # merge keys (`<<: *base`) are legitimate; flatten them the way PyYAML does, after the
        # duplicate check so that an explicit key overriding a merged one is not a duplicate
        self.loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path, report=False)
            if key is None:
                continue
            self.lines.add((*path, key), key_node.start_mark.line + 1)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, key_node: yaml.Node, path: YamlPath, *, report: bool = True) -> str | None:
        key = (
            self.loader.construct_object(key_node, deep=True)
            if isinstance(key_node, yaml.ScalarNode)
            else None
        )
        if isinstance(key, str):
            return key
        if report and isinstance(key_node, yaml.ScalarNode) and key is None:
            self.problems.append(
                Problem(
                    format_path(path),
                    "a key is empty (null); write a name before the ':' or remove the line",
                    key_node.start_mark.line + 1,
                )
            )
        elif report:
            got = _show(key) if key is not None else "a collection"
            plain = getattr(key_node, "style", "") is None
            if plain and isinstance(key, bool | int | float) and key_node.value != str(key):
                got = (
                    f"{key_node.value} unquoted, which YAML reads as {str(key).lower()}; "
                    f'quote it: "{key_node.value}"'
                )
            self.problems.append(
                Problem(
                    format_path(path),
                    f"keys must be names, got {got}",
                    key_node.start_mark.line + 1,
                )
            )
        return None


class _TooLarge(Exception):
    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line


def _read_yaml(text: str, source: str) -> tuple[Any, _LineMap]:
    lines = _LineMap()
    try:
        # the constructor already rejects characters YAML does not allow
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        at = text[: exc.position].count("\n") + 1
        message = f"character {exc.character:#06x} is not allowed in YAML; remove it"
        raise _fail(source, message, at) from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise _fail(source, "the spec is empty; start from examples/three-nodes.yaml")
        reader = _Reader(loader, lines)
        data = reader.build(root, ())
    except yaml.MarkedYAMLError as exc:
        several = exc.context == "expected a single document in the stream"
        if isinstance(exc, yaml.composer.ComposerError) and several and exc.problem_mark:
            message = (
                "holds several YAML documents (a second one starts at this line); a spec is one "
                "document: remove the extra '---' or split the files"
            )
            raise _fail(source, message, exc.problem_mark.line + 1) from None
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "not valid YAML"
        raise _fail(source, f"YAML syntax error: {what}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise _fail(source, f"not readable as YAML: {exc}") from None
    except (_TooLarge, RecursionError) as exc:
        message = (
            "the spec is nested too deeply or expands to too much data (check anchors and aliases)"
        )
        raise _fail(source, message, exc.line if isinstance(exc, _TooLarge) else None) from None
    finally:
        loader.dispose()
    if reader.problems:
        raise SpecError(source, reader.problems)
    return data, lines


# --------------------------------------------------------------------------- pydantic errors

_TYPE_NAMES = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing",
}


def _kind(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _got(value: object) -> str:
    return "nothing" if value is None else f"{_show(value)} ({_kind(value)})"


def _all_field_names() -> list[str]:
    names: set[str] = set()
    for model in (Spec, TsmSettings, NodeSpec, NodeSettings, Access):
        names.update(model.model_fields)
    return sorted(names)


def _unquoted(field: object, value: object, raw: str) -> str:
    """What YAML made of an unquoted scalar where text was expected, and how to quote it."""
    if field == "account" and isinstance(value, int) and raw != str(value):
        return (
            f"must be 12 digits in quotes, got {raw} unquoted, which YAML reads as the number "
            f'{value} (a leading 0 makes it octal); write "{raw}"'
        )
    if isinstance(value, bool):
        return (
            f"must be text, got {raw} unquoted, which YAML reads as "
            f'{str(value).lower()}; quote it: "{raw}"'
        )
    return f'must be text, got {raw} unquoted, which YAML reads as a number; quote it: "{raw}"'


def _message(error: dict[str, Any], raw: str | None = None) -> str:
    kind = error["type"]
    value = error.get("input")
    loc = error["loc"]
    field = loc[-1] if loc else ""
    if kind == "string_type" and raw is not None and (field != "account" or raw != str(value)):
        return _unquoted(field, value, raw)
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(field), _all_field_names(), n=1)
        return "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type":
        if field == "account" and isinstance(value, int):
            return (
                f"must be 12 digits in quotes, got {value} unquoted "
                "(YAML reads it as a number and drops leading zeros)"
            )
        return f"must be text, got {_got(value)}"
    if kind == "int_type":
        return f"must be a whole number, got {_got(value)}"
    if kind == "bool_type":
        return f"must be true or false, got {_got(value)}"
    if kind == "list_type":
        return f"must be a list, got {_got(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of keys to values, got {_got(value)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']}, got {_got(value)}"
    return str(error["msg"])


def _pydantic_problems(exc: ValidationError, lines: _LineMap) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        # unions of X | None report one error per branch; the None branch says nothing useful
        loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
        if error["type"] == "none_required":
            continue
        path = format_path(loc)
        message = _message(dict(error), lines.raw.get(loc))
        problems.append(Problem(path, message, lines.line_of(loc)))
    seen: set[tuple[str, str]] = set()
    unique = []
    for problem in problems:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            unique.append(problem)
    return sorted(unique, key=lambda p: p.line or 0)


# --------------------------------------------------------------------------- cluster rules


class _Problems:
    """Collects cluster-rule problems with the line of the path they are about."""

    def __init__(self, lines: _LineMap) -> None:
        self.lines = lines
        self.found: list[Problem] = []

    def add(self, path: YamlPath, message: str) -> None:
        """Record a problem once: nodes inheriting one default setting share its problem."""
        problem = Problem(format_path(path), message, self.lines.line_of(path))
        if problem not in self.found:
            self.found.append(problem)


def _check_indices_and_threshold(spec: Spec, problems: _Problems) -> None:
    count = len(spec.nodes)
    if count < 2:
        problems.add(("nodes",), f"a cluster needs at least 2 nodes, got {count}")
    first_with_index: dict[int, int] = {}
    for position, node in enumerate(spec.nodes):
        if node.index in first_with_index:
            problems.add(
                ("nodes", position, "index"),
                f"{node.index} is already nodes[{first_with_index[node.index]}]'s index",
            )
        elif not 0 <= node.index < count:
            problems.add(
                ("nodes", position, "index"),
                f"must be between 0 and {count - 1} (indices are 0..n-1), got {node.index}",
            )
        first_with_index.setdefault(node.index, position)
    if count >= 1 and not 0 <= spec.threshold < count:
        problems.add(
            ("threshold",),
            f"signing needs threshold + 1 of the {count} nodes, so the threshold must be "
            f"between 0 and {count - 1}, got {spec.threshold}",
        )


def _check_distinct_accounts_and_names(spec: Spec, problems: _Problems) -> None:
    seen_accounts: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for position, node in enumerate(spec.nodes):
        if node.account in seen_accounts and not spec.allow_shared_account:
            problems.add(
                ("nodes", position, "account"),
                f"{node.account} is also nodes[{seen_accounts[node.account]}]'s account; give "
                "each node its own account (allow_shared_account: true is for development only)",
            )
        seen_accounts.setdefault(node.account, position)
        if node.dns_name in seen_names:
            problems.add(
                ("nodes", position, "dns_name"),
                f"{node.dns_name} is also nodes[{seen_names[node.dns_name]}]'s name",
            )
        seen_names.setdefault(node.dns_name, position)


_REQUIRED_SETTINGS = ("region", "hosted_zone_id", "sdk_client_cidrs")


def _resolve_node(spec: Spec, position: int, node: NodeSpec, problems: _Problems) -> Node | None:
    where: YamlPath = ("nodes", position)

    def pick(name: str) -> Any:
        value = getattr(node, name)
        return getattr(spec.defaults, name) if value is None else value

    missing = [name for name in _REQUIRED_SETTINGS if pick(name) is None]
    for name in missing:
        problems.add((*where, name), "required: set it on the node or under defaults")
    access: Access | None = pick("access")
    if access is not None and access.role_arn:
        role_account = access.role_arn.split(":")[4]
        if role_account != node.account:
            path = (*where, "access") if node.access else ("defaults", "access")
            problems.add(
                (*path, "role_arn"),
                f"the role is in account {role_account} but nodes[{position}] is in "
                f"{node.account}; name a role in the node's account "
                "(role_name resolves against each node's account)",
            )
    if missing:
        return None
    return Node(
        index=node.index,
        account=node.account,
        region=pick("region"),
        dns_name=node.dns_name,
        hosted_zone_id=pick("hosted_zone_id"),
        hosted_zone_name=pick("hosted_zone_name") or node.dns_name.partition(".")[2],
        access=access,
        instance_type=pick("instance_type") or DEFAULT_INSTANCE_TYPE,
        db_instance_class=pick("db_instance_class") or DEFAULT_DB_INSTANCE_CLASS,
        multi_az=bool(pick("multi_az")),
        sdk_client_cidrs=tuple(pick("sdk_client_cidrs")),
        allow_mobile_players=bool(pick("allow_mobile_players")),
        nat_gateways=pick("nat_gateways") or 1,
        registry_credentials_secret_arn=pick("registry_credentials_secret_arn")
        or spec.tsm.registry_credentials_secret_arn,
    )


def _resolve(spec: Spec, lines: _LineMap, source: str) -> Cluster:
    problems = _Problems(lines)
    _check_indices_and_threshold(spec, problems)
    _check_distinct_accounts_and_names(spec, problems)
    resolved = [_resolve_node(spec, i, node, problems) for i, node in enumerate(spec.nodes)]
    if not problems.found:
        check_cluster(spec, resolved, problems.add, known_regions())
    if problems.found:
        raise SpecError(source, problems.found)
    return Cluster(
        name=spec.cluster,
        threshold=spec.threshold,
        tsm=spec.tsm,
        nodes=tuple(sorted((n for n in resolved if n), key=lambda n: n.index)),
        allow_shared_account=spec.allow_shared_account,
        same_organization=spec.same_organization,
        source=source,
    )


# --------------------------------------------------------------------------- entry points


def load_spec_text(text: str, source: str = "<spec>") -> Cluster:
    """Validate spec text; `source` names it in messages. Raises SpecError listing every problem."""
    data, lines = _read_yaml(text, source)
    if not isinstance(data, dict):
        raise _fail(source, f"the spec must be a mapping of keys to values, got {_kind(data)}", 1)
    # `x-` keys hold YAML anchors for the rest of the file (x-common: &common {...})
    data = {key: value for key, value in data.items() if not key.startswith("x-")}
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, _pydantic_problems(exc, lines)) from None
    return _resolve(spec, lines, source)


def load_spec(path: str | Path) -> Cluster:
    """Read and validate the spec file at `path` (`-`: standard input, named `<stdin>`)."""
    raw, source = read_spec_bytes(path)
    return load_spec_text(decode(raw, source), source)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec, for editors and CI."""
    schema = Spec.model_json_schema()
    # top-level `x-` keys are ignored (YAML anchors), as load_spec_text does
    schema["patternProperties"] = {"^x-": {}}
    return schema


__all__ = [
    "Access",
    "Cluster",
    "Node",
    "NodeSettings",
    "NodeSpec",
    "Spec",
    "TsmSettings",
    "format_path",
    "json_schema",
    "known_regions",
    "load_spec",
    "load_spec_text",
    "partition_of",
]
