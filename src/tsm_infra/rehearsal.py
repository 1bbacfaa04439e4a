"""The local rehearsal: the real templates and deployer against an embedded emulated AWS.

After the deploy, each node's boot is played as far as it can go without an instance: the settings
cfn-init would write are read from the Core stack's LaunchTemplate metadata (DescribeStackResource,
as cfn-init does), and the real boot module (`node/tsm_node.py`) fetches the node's secrets and its
peers' shared public keys, in the node's own account, and renders config.toml. Only config.toml is
written (it holds no secret, only env references); the env file with the secrets is not.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsm_infra.aws import AccountSession, Connector
from tsm_infra.contract import LAUNCH_TEMPLATE, STACK_KINDS, KmsOutputs, stack_name
from tsm_infra.errors import TsmInfraError, describe_error
from tsm_infra.node import tsm_node
from tsm_infra.spec import Cluster, Node
from tsm_infra.stacks import Interrupted, StackError, StackOps

if TYPE_CHECKING:
    from tsm_infra.run import RunResult
    from tsm_infra.status import StatusReport

SETTINGS_FILE = "/etc/tsm/node.json"


GONE_ADVICE = (
    "interrupted: the in-memory emulator stopped with it, and everything deployed in it is "
    "gone. There is nothing to resume or clean up; run the same `--local` command again to "
    "start from scratch."
)


class RehearsalError(TsmInfraError):
    """A rehearsal step failed after the deploy; the message names the node and the step."""


class AwsCliRunner:
    """Answers the `aws` commands the boot module runs, through a session of the node's account.

    The instance would run the AWS CLI with its role's credentials; here the same two reads go
    through boto3 in the same account, so that cross-account reads meet the same sharing rules.
    """

    def __init__(self, session: AccountSession) -> None:
        self.session = session

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """Run one supported `aws` command; NodeError as the real runner would raise."""
        args = list(argv)
        options = dict(zip(args[3::2], args[4::2], strict=False))
        region = options.get("--region")  # a peer's parameter is read in the peer's region
        try:
            if args[:3] == ["aws", "secretsmanager", "get-secret-value"]:
                client = self.session.client("secretsmanager", region)
                got = client.get_secret_value(SecretId=options["--secret-id"])
                return str(got["SecretString"]) + "\n"
            if args[:3] == ["aws", "ssm", "get-parameter"]:
                found = self.session.client("ssm", region).get_parameter(Name=options["--name"])
                return str(found["Parameter"]["Value"]) + "\n"
        except Exception as exc:
            raise tsm_node.NodeError(describe_error(exc)) from None
        raise tsm_node.NodeError(f"`{' '.join(args[:3])}` is not emulated in the rehearsal")


@dataclass(frozen=True)
class RenderedNode:
    """One node's rendered configuration and what it says about its peers."""

    index: int
    config_path: Path
    config: dict[str, Any]
    peer_public_keys: dict[int, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no secret is in it: config.toml holds env references only)."""
        return {
            "index": self.index,
            "config": str(self.config_path),
            "peers": {str(i): key for i, key in sorted(self.peer_public_keys.items())},
        }


def node_settings(session: AccountSession, cluster: str, index: int) -> dict[str, Any]:
    """/etc/tsm/node.json as cfn-init would write it from the LaunchTemplate's metadata."""
    name = stack_name(cluster, index, "core")
    try:
        metadata = StackOps(session.client("cloudformation")).metadata(name, LAUNCH_TEMPLATE)
        content = metadata["AWS::CloudFormation::Init"]["files"]["files"][SETTINGS_FILE]["content"]
    except (KeyError, TypeError) as exc:
        raise RehearsalError(
            f"{name}: {LAUNCH_TEMPLATE} metadata has no resolved {SETTINGS_FILE} ({exc!r})"
        ) from None
    except StackError as exc:
        raise RehearsalError(str(exc)) from None
    try:
        settings = json.loads(content) if isinstance(content, str) else content
    except ValueError as exc:
        raise RehearsalError(f"{name}: {SETTINGS_FILE} is not JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise RehearsalError(f"{name}: {SETTINGS_FILE} is not a JSON object")
    return settings


def render_node(cluster: Cluster, node: Node, connector: Connector, out_dir: Path) -> RenderedNode:
    """Play one node's boot up to config.toml with the real boot module; write config.toml only."""
    session = connector.for_node(node)
    raw = node_settings(session, cluster.name, node.index)
    try:
        settings = tsm_node.parse_settings(raw)
        rendered = tsm_node.render(settings, tsm_node.fetch(settings, AwsCliRunner(session)))
    except tsm_node.NodeError as exc:
        raise RehearsalError(f"nodes[{node.index}]: boot would fail: {exc}") from None
    path = out_dir / f"node{node.index}" / "config.toml"
    tsm_node.write_atomic(path, rendered.config_toml, 0o644)
    config = tomllib.loads(rendered.config_toml)
    layout = tsm_node.LAYOUTS[settings.layout]
    players = config.get(layout.players, {})
    keys = {int(index): entry[layout.public_key] for index, entry in players.items()}
    return RenderedNode(node.index, path, config, keys)


def check_configs(
    cluster: Cluster, rendered: Sequence[RenderedNode], published: dict[int, str]
) -> list[str]:
    """Problems with the rendered configs: each must pin exactly its peers' published keys."""
    problems = []
    for node in rendered:
        peers = {n.index for n in cluster.nodes if n.index != node.index}
        if set(node.peer_public_keys) != peers:
            problems.append(
                f"nodes[{node.index}]: config.toml lists players {sorted(node.peer_public_keys)}, "
                f"the cluster's peers are {sorted(peers)}"
            )
        for peer, key in sorted(node.peer_public_keys.items()):
            if published.get(peer) != key:
                problems.append(
                    f"nodes[{node.index}]: config.toml pins a key for player {peer} that is not "
                    f"the one nodes[{peer}]'s KMS stack published"
                )
    return problems


@dataclass
class Timer:
    """Named wall-clock spans of a run."""

    spans: dict[str, float]

    def __init__(self) -> None:
        self.spans = {}
        self._start = time.monotonic()

    def mark(self, name: str) -> None:
        """Record the time since the previous mark under `name`."""
        now = time.monotonic()
        self.spans[name] = now - self._start
        self._start = now


@dataclass
class Rehearsal:
    """What a rehearsal did: the deploy, the rendered configs, the checks, counts and timings."""

    deploy: RunResult
    emulated: list[str]
    rendered: list[RenderedNode]
    status: StatusReport | None
    problems: list[str]
    resources: dict[str, int]
    timings: dict[str, float]
    destroy: RunResult | None = None
    endpoint_url: str = ""

    @property
    def ok(self) -> bool:
        """True when the deploy, the rendering and every check succeeded."""
        return self.deploy.ok and not self.problems and (self.destroy is None or self.destroy.ok)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "emulated": list(self.emulated),
            "deploy": self.deploy.to_dict(),
            "configs": [node.to_dict() for node in self.rendered],
            "status": self.status.to_dict() if self.status is not None else None,
            "problems": list(self.problems),
            "resources": dict(self.resources),
            "timings": {name: round(seconds, 2) for name, seconds in self.timings.items()},
            "destroy": self.destroy.to_dict() if self.destroy is not None else None,
        }


def prepare_accounts(aws: Any, nodes: Sequence[Node]) -> None:
    """Create in each node's emulated account what a real one has before a deploy.

    That is its hosted zone and, where the spec names one, its registry credentials secret.
    """
    for node in nodes:
        aws.prepare_account(node.account, node.region, node.hosted_zone_id, node.hosted_zone_name)
        if node.registry_credentials_secret_arn:
            aws.prepare_registry_secret(node.account, node.registry_credentials_secret_arn)


def rehearse(
    cluster: Cluster,
    *,
    out_dir: Path,
    report: Any = None,
    destroy_after: bool = False,
    emulator: Any = None,
) -> Rehearsal:
    """Deploy the cluster into an embedded emulator, render and check every node's config.

    Without `emulator` a fresh one is started for the run and stopped at its end; with one
    (a started `LocalAws`), it is used and left running, for tests to look inside.
    """
    from tsm_infra.emulator import LocalAws  # noqa: PLC0415

    if emulator is not None:
        return _rehearse(cluster, emulator, out_dir, report, destroy_after)
    try:
        with LocalAws() as aws:
            return _rehearse(cluster, aws, out_dir, report, destroy_after)
    except (KeyboardInterrupt, Interrupted):
        # the deployer's own advice ("run it again to resume") is wrong here: the stacks lived
        # in this process's memory
        raise Interrupted(GONE_ADVICE) from None


def _rehearse(
    cluster: Cluster, aws: Any, out_dir: Path, report: Any, destroy_after: bool
) -> Rehearsal:
    from tsm_infra.plan import deploy_plan, destroy_plan  # noqa: PLC0415
    from tsm_infra.run import Options, execute  # noqa: PLC0415
    from tsm_infra.status import cluster_status, emulated_ping  # noqa: PLC0415

    timer = Timer()
    prepare_accounts(aws, cluster.nodes)
    connector = Connector(endpoint_url=aws.endpoint_url)
    timer.mark("emulator")
    from tsm_infra.preflight import require  # noqa: PLC0415

    # what the emulator can answer is as real as on AWS: refuse before anything is created
    require(cluster, connector)
    timer.mark("preflight")
    options = Options(poll_interval=0.05, timeout=300, share_timeout=30)
    deployed = execute(deploy_plan(cluster), connector, report=report, options=options)
    timer.mark("deploy")
    result = Rehearsal(
        deploy=deployed,
        emulated=aws.emulated(),
        rendered=[],
        status=None,
        problems=[],
        resources={},
        timings=timer.spans,
    )
    result.endpoint_url = aws.endpoint_url
    if not deployed.ok:
        return result
    for node in cluster.nodes:
        ops = StackOps(connector.for_node(node).client("cloudformation"))
        for kind in STACK_KINDS:
            name = stack_name(cluster.name, node.index, kind)
            result.resources[name] = ops.resource_count(name)
    result.rendered = [render_node(cluster, n, connector, out_dir) for n in cluster.nodes]
    timer.mark("render configs")
    result.status = cluster_status(cluster, connector, ping=emulated_ping, poll_interval=0.05)
    published = {node.index: _published_key(connector, cluster, node) for node in cluster.nodes}
    result.problems = list(result.status.problems) + check_configs(
        cluster, result.rendered, published
    )
    timer.mark("checks")
    if destroy_after:
        result.destroy = execute(destroy_plan(cluster), connector, report=report, options=options)
        timer.mark("destroy")
    return result


def _published_key(connector: Connector, cluster: Cluster, node: Node) -> str:
    ops = StackOps(connector.for_node(node).client("cloudformation"))
    info = ops.describe(stack_name(cluster.name, node.index, "kms"))
    return info.outputs.get(KmsOutputs.PUBLIC_KEY, "") if info is not None else ""
