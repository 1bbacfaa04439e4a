"""What the benchmarks share: the clusters they build, the emulator they start, the time scale.

The latency model runs real AWS's typical durations (tsm_infra.durations) scaled by SCALE, one
factor for everything: resource times, change sets and the deployer's poll interval (real AWS is
polled every POLL_SECONDS). 1/20 turns the bench clusters' critical path (~15 min on real AWS,
single-AZ databases) into 44.5 s and the poll into 0.25 s. The factor is bounded below by the
emulator's own CPU: moto does a stack's work inside the request, ~0.5-1 s per stack and one GIL
for all (an unmodelled 7-node deploy takes 8-14 s on 2 busy cores), and that work must fit into
the modelled time or the run measures the emulator. At 1/100 the modelled KMS stack is 1.5 s,
less than the CPU its seven copies need, and a 7-node modelled deploy took 2.3x its critical
path; at 1/20 it is 7 s. Above, a repeat of all sizes takes about 3 minutes.

The emulator runs in a process of its own, as AWS runs on machines of its own: in the bench's
process its request handling would share one GIL with the deployer being measured.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from typing import Any

from tsm_infra.emulator import LocalAws
from tsm_infra.plan import Plan, build_plan
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.spec import Cluster, Node, TsmSettings
from tsm_infra.templates import TEMPLATE_FILES, template_body, template_interface

SCALE = 1 / 20
POLL_SECONDS = 5.0  # the deployer's poll interval on real AWS
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "ap-northeast-2")


def make_cluster(size: int) -> Cluster:
    """A cluster of `size` nodes, each in its own account and one of a few regions.

    A one-node cluster is not a valid spec (a cluster needs two nodes); it is built directly
    here to show the cost of a single node's two stacks.
    """
    nodes = tuple(
        Node(
            index=i,
            account=f"{100000000000 + i * 111111:012d}",
            region=REGIONS[i % len(REGIONS)],
            dns_name=f"node{i}.bench{i}.example.com",
            hosted_zone_id=f"Z{i:020d}",
            hosted_zone_name=f"bench{i}.example.com",
            access=None,
            instance_type="m7i.large",
            db_instance_class="db.t4g.medium",
            multi_az=False,
            sdk_client_cidrs=("198.51.100.0/24",),
            allow_mobile_players=False,
            nat_gateways=1,
        )
        for i in range(size)
    )
    return Cluster(
        name=f"bench{size}",
        threshold=max(0, (size - 1) // 2),
        tsm=TsmSettings(image="registry.example.com/tsm-node:72.0.0"),
        nodes=nodes,
        allow_shared_account=False,
        same_organization=False,
        source=f"<{size} nodes>",
    )


def plan_of(cluster: Cluster) -> Plan:
    """The deploy plan, checked against the templates."""
    return build_plan(cluster, {kind: template_interface(kind) for kind in TEMPLATE_FILES})


def rendered_templates() -> dict[str, dict[str, Any]]:
    """Each stack kind's template as deploy sends it, as a dict."""
    return {kind: json.loads(template_body(kind)) for kind in TEMPLATE_FILES}


@contextmanager
def fresh_emulator(cluster: Cluster, latency_scale: float | None = None) -> Iterator[str]:
    """A fresh embedded emulator with the cluster's accounts prepared; its endpoint URL.

    With `latency_scale`, stack operations take their modelled time times that factor.
    """
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(
        target=_serve, args=(cluster, latency_scale, theirs), name="tsm-emulator", daemon=True
    )
    child.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the emulator process did not start within 120 s")
        yield str(ours.recv())
    finally:
        ours.send("stop")
        child.join(30)
        if child.is_alive():
            child.kill()


def _serve(cluster: Cluster, latency_scale: float | None, pipe: Connection) -> None:
    """In the emulator's own process: serve until the bench says stop (or goes away)."""
    with LocalAws(latency_scale=latency_scale) as aws:
        prepare_accounts(aws, cluster.nodes)
        pipe.send(aws.endpoint_url)
        with suppress(EOFError):  # the bench went away: stop as well
            pipe.recv()
