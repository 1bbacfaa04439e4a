"""The rules that span fields, and the resolved cluster they produce.

`resolve_cluster` checks what no single field can (indices, threshold, distinct accounts and
names, the limits AWS enforces), fills each node's settings from the spec's defaults, and
returns the `Cluster` the rest of the tool works from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tsm_infra.errors import Problem, SpecError
from tsm_infra.limits import check_cluster, cluster_warnings, partition_of
from tsm_infra.spec.models import (
    DEFAULT_DB_INSTANCE_CLASS,
    DEFAULT_INSTANCE_TYPE,
    Access,
    NodeSpec,
    Spec,
    TsmSettings,
    known_regions,
)
from tsm_infra.spec.reader import LineMap, YamlPath, format_path

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


# --------------------------------------------------------------------------- cluster rules


class _Problems:
    """Collects cluster-rule problems with the line of the path they are about."""

    def __init__(self, lines: LineMap) -> None:
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


def resolve_cluster(spec: Spec, lines: LineMap, source: str) -> Cluster:
    """The cluster a shape-valid spec describes; SpecError listing every rule it breaks."""
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
