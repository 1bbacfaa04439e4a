"""What a deployed cluster looks like: stack states, cluster consistency, the client manifest.

Consistency is checked the way the nodes themselves will see each other: every Core stack's peer
wiring must name exactly the other nodes, and each peer public key a node reads (cross-account,
by ARN, as the node does at boot) must be the key that peer's KMS stack generated. Nothing here
prints or creates sessions; secret values are never read, only public ones and ARNs.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tsm_infra.aws import AWS_ERRORS, AccountSession, Connector
from tsm_infra.contract import (
    TAG_NODE,
    TAG_NODES,
    TAG_THRESHOLD,
    CoreOutputs,
    CoreParameters,
    KmsOutputs,
    StackKind,
    stack_name,
)
from tsm_infra.errors import describe_error, error_code
from tsm_infra.spec import Cluster, Node
from tsm_infra.stacks import StackError, StackInfo, StackReader

PING_TIMEOUT_SECONDS = 5.0
Ping = Callable[[Node], str]


@dataclass(frozen=True)
class NodeState:
    """One node's stacks as they are now."""

    index: int
    account: str
    region: str
    dns_name: str
    stacks: dict[str, str]  # stack name -> status ("absent" when there is none)
    drift: dict[str, str] = field(default_factory=dict)  # stack name -> drift status
    ping: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "index": self.index,
            "account": self.account,
            "region": self.region,
            "dns_name": self.dns_name,
            "stacks": dict(self.stacks),
            "drift": dict(self.drift),
            "ping": self.ping,
        }


@dataclass(frozen=True)
class StatusReport:
    """Every node's state and what the cluster-wide checks found."""

    cluster: str
    threshold: int
    nodes: tuple[NodeState, ...]
    passed: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every stack is complete and every check passed."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "cluster": self.cluster,
            "threshold": self.threshold,
            "ok": self.ok,
            "nodes": [node.to_dict() for node in self.nodes],
            "checks_passed": list(self.passed),
            "problems": list(self.problems),
        }


@dataclass
class _Deployed:
    node: Node
    ops: StackReader
    session: AccountSession
    kms: StackInfo | None = None
    core: StackInfo | None = None
    core_parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)


def emulated_ping(node: Node) -> str:
    """What /ping is behind an emulator: there is no node to answer."""
    del node
    return "not attempted: emulated, the TSM container does not run"


def https_ping(node: Node) -> str:
    """GET https://<dns_name>/ping: `200 OK`, the HTTP status, or why it was not reachable."""
    context = ssl.create_default_context()
    url = f"https://{node.dns_name}/ping"
    try:
        with urllib.request.urlopen(url, timeout=PING_TIMEOUT_SECONDS, context=context) as answer:
            return f"{answer.status} OK"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"unreachable ({type(exc).__name__}: {getattr(exc, 'reason', exc)})"


def _drift(found: _Deployed, name: str, info: StackInfo | None) -> str:
    if info is None:
        return "absent"
    try:
        return found.ops.drift(info.stack_id or name)
    except AWS_ERRORS as exc:
        return drift_unavailable(exc)
    except StackError:  # the detection ran past the wait's timeout
        return "not checked: drift detection did not finish in time"


DRIFT_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


def drift_unavailable(exc: BaseException) -> str:
    """One plain phrase for a drift detection that could not run, never the raw answer.

    An endpoint without drift detection (the emulator) answers with a page of HTML; only the
    error's code or type is named.
    """
    code = error_code(exc)
    if code in DRIFT_DENIED:
        return (
            f"not checked: access denied ({code}); drift detection needs "
            "cloudformation:DetectStackDrift and read access to the stack's resources"
        )
    if code:
        return f"not checked: drift detection failed ({code})"
    return f"not checked: this endpoint does not run drift detection ({type(exc).__name__})"


def cluster_status(
    cluster: Cluster,
    connector: Connector,
    *,
    drift: bool = False,
    ping: Ping | None = None,
    poll_interval: float = 5.0,
) -> StatusReport:
    """Read every node's stacks (in parallel) and check that the cluster fits together."""

    def read(node: Node) -> _Deployed:
        return _read(connector, node, cluster.name, poll_interval)

    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        deployed = list(pool.map(read, cluster.nodes))
    problems: list[str] = []
    passed: list[str] = []
    states = []
    for found in deployed:
        stacks = {}
        drifts = {}
        pairs: tuple[tuple[StackKind, StackInfo | None], ...] = (
            ("kms", found.kms),
            ("core", found.core),
        )
        for kind, info in pairs:
            name = stack_name(cluster.name, found.node.index, kind)
            stacks[name] = info.status if info else "absent"
            if info is None or info.state != "complete":
                problems.append(f"{name}: {stacks[name]}; run `tsm-infra deploy` to complete it")
            if drift:
                drifts[name] = _drift(found, name, info)
                if drifts[name] == "DRIFTED":
                    problems.append(
                        f"{name}: DRIFTED: resources were changed outside CloudFormation; "
                        "see the stack's drift results, then deploy to bring them back"
                    )
        reachable = ping(found.node) if ping else "not checked"
        states.append(
            NodeState(
                found.node.index,
                found.node.account,
                found.node.region,
                found.node.dns_name,
                stacks,
                drifts,
                reachable,
            )
        )
    _check_cluster(cluster, deployed, problems, passed)
    return StatusReport(
        cluster.name, cluster.threshold, tuple(states), tuple(passed), tuple(problems)
    )


def _read(connector: Connector, node: Node, cluster: str, poll_interval: float = 5.0) -> _Deployed:
    session = connector.for_node(node)
    ops = StackReader(session.client("cloudformation"), poll_interval=poll_interval)
    found = _Deployed(node, ops, session)
    kinds: tuple[StackKind, ...] = ("kms", "core")
    for kind in kinds:
        name = stack_name(cluster, node.index, kind)
        info = found.ops.describe(name)
        if info is None:
            continue
        if kind == "kms":
            found.kms = info
        else:
            found.core = info
            found.core_parameters = info.parameters
        found.tags[kind] = info.tags
    return found


def _check_cluster(
    cluster: Cluster, deployed: list[_Deployed], problems: list[str], passed: list[str]
) -> None:
    """The peer wiring, indices, threshold and public keys agree across all nodes."""
    kms_out = {f.node.index: f.kms.outputs for f in deployed if f.kms and f.kms.state == "complete"}
    for found in deployed:
        _check_tags(cluster, found, problems)
        if found.core_parameters:
            _check_peers(cluster, found, kms_out, problems, passed)


def _check_tags(cluster: Cluster, found: _Deployed, problems: list[str]) -> None:
    """Every stack carries the node index, node count and threshold of the spec."""
    for kind, tags in found.tags.items():
        for tag, expected in (
            (TAG_THRESHOLD, str(cluster.threshold)),
            (TAG_NODES, str(len(cluster.nodes))),
            (TAG_NODE, str(found.node.index)),
        ):
            if tags.get(tag) != expected:
                problems.append(
                    f"nodes[{found.node.index}] {kind} stack: tag {tag} is "
                    f"{tags.get(tag, '(none)')!r}, the spec says {expected!r}; deploy again to "
                    "bring the stacks in line"
                )


def _check_peers(
    cluster: Cluster,
    found: _Deployed,
    kms_out: dict[int, dict[str, str]],
    problems: list[str],
    passed: list[str],
) -> None:
    """A node's Core stack names exactly its peers, their generated keys and their addresses."""
    node, params = found.node, found.core_parameters
    where = f"nodes[{node.index}]"
    peers = [p.index for p in cluster.nodes if p.index != node.index]
    if params.get(CoreParameters.NODE_INDEX) != str(node.index):
        runs = params.get(CoreParameters.NODE_INDEX)
        problems.append(f"{where}: its Core stack runs player index {runs}")
    listed = params.get(CoreParameters.PEER_INDICES, "")
    configured = [i.strip() for i in listed.split(",") if i.strip()]
    if configured != [str(p) for p in peers]:
        problems.append(
            f"{where}: its Core stack lists peers {configured}, the cluster has {peers}"
        )
        return
    pinned = params.get(CoreParameters.PEER_PUBLIC_KEY_PARAMETER_ARNS, "")
    arns = [a.strip() for a in pinned.split(",")]
    for peer, arn in zip(peers, arns, strict=False):
        published = kms_out.get(peer, {})
        if arn != published.get(KmsOutputs.PUBLIC_KEY_PARAMETER_ARN):
            problems.append(
                f"{where}: pins peer {peer}'s key parameter {arn}, but nodes[{peer}]'s KMS "
                f"stack publishes {published.get(KmsOutputs.PUBLIC_KEY_PARAMETER_ARN, '(nothing)')}"
            )
            continue
        try:
            # read by ARN in the parameter's own region, as the node does at boot
            ssm = found.session.client("ssm", arn.split(":")[3] or None)
            value = ssm.get_parameter(Name=arn)["Parameter"]["Value"]
        except AWS_ERRORS as exc:
            problems.append(
                f"{where}: cannot read peer {peer}'s public key {arn} from account "
                f"{node.account}: {describe_error(exc)} (is the RAM share accepted?)"
            )
            continue
        if value != published.get(KmsOutputs.PUBLIC_KEY):
            problems.append(
                f"{where}: reads a public key for peer {peer} that is not the key "
                f"nodes[{peer}] generated; redeploy nodes[{peer}]'s KMS stack"
            )
        else:
            passed.append(f"{where} reads peer {peer}'s generated public key")
    listed = params.get(CoreParameters.PEER_EGRESS_CIDRS, "")
    egress = sorted(c.strip() for c in listed.split(",") if c)
    expected = sorted(
        c
        for p in peers
        for c in kms_out.get(p, {}).get(KmsOutputs.EGRESS_CIDRS, "").split(",")
        if c
    )
    if egress != expected:
        problems.append(f"{where}: lets MPC in from {egress}, but the peers send from {expected}")
    else:
        passed.append(f"{where} lets MPC in from exactly its peers' egress addresses")


def manifest(cluster: Cluster, connector: Connector) -> dict[str, Any]:
    """What client applications need: endpoints, threshold, API-key secret ARNs, certificates."""

    def read(node: Node) -> dict[str, Any]:
        found = _read(connector, node, cluster.name)
        kms = found.kms.outputs if found.kms else {}
        core = found.core.outputs if found.core else {}
        return {
            "index": node.index,
            "account": node.account,
            "region": node.region,
            "dns_name": node.dns_name,
            "sdk_endpoint": core.get(CoreOutputs.SDK_ENDPOINT),
            "mpc_endpoint": core.get(CoreOutputs.MPC_ENDPOINT),
            "certificate": {"domain": node.dns_name, "arn": core.get(CoreOutputs.CERTIFICATE_ARN)},
            "cloud_map_namespace_id": core.get(CoreOutputs.NAMESPACE_ID),
            "public_key": kms.get(KmsOutputs.PUBLIC_KEY),
            "sdk_api_keys_secret_arn": kms.get(KmsOutputs.SDK_API_KEYS_SECRET_ARN),
            "management_api_key_secret_arn": kms.get(KmsOutputs.MANAGEMENT_API_KEY_SECRET_ARN),
            "deployed": bool(found.core and found.core.state == "complete"),
        }

    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        nodes = list(pool.map(read, cluster.nodes))
    return {
        "cluster": cluster.name,
        "threshold": cluster.threshold,
        "signers_needed": cluster.threshold + 1,
        "sdk_applications": list(cluster.tsm.sdk_applications),
        "nodes": nodes,
        "note": "API keys are in the named Secrets Manager secrets (JSON: application id -> key); "
        "grant each client application read access to its own.",
    }
