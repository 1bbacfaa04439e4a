#!/usr/bin/env python3
"""How deploy scales with the number of nodes: wall time and AWS API calls, against the emulator.

For 1, 3 and 7 nodes (each in its own account), deploys a fresh cluster into a fresh embedded
emulator, then deploys it again at once (a no-op), and prints for each: wall time and the number
of AWS API calls the deployer made (by the calls' own count, not CloudFormation's work behind
them). Figures, not assertions: run it before and after a change to the deployer.

    .venv/bin/python bench/deploy_scaling.py [--sizes 1,3,7]

A one-node cluster is not a valid spec (a cluster needs two nodes); it is built directly here to
show the cost of a single node's two stacks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tsm_infra.aws import CallCounter, Connector
from tsm_infra.deploy import Options, Runner
from tsm_infra.emulator import LocalAws
from tsm_infra.plan import build_plan
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.spec import Cluster, Node, TsmSettings
from tsm_infra.templates import TEMPLATE_FILES, template_interface

REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "ap-northeast-2")


def make_cluster(size: int) -> Cluster:
    """A cluster of `size` nodes, each in its own account and one of a few regions."""
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


def measure(size: int) -> list[str]:
    """Deploy then redeploy a cluster of `size` nodes; one printable line for each."""
    cluster = make_cluster(size)
    interfaces = {kind: template_interface(kind) for kind in TEMPLATE_FILES}
    plan = build_plan(cluster, interfaces)
    lines = []
    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        for run in ("deploy", "no-op redeploy"):
            counter = CallCounter()
            runner = Runner(
                cluster,
                Connector(endpoint_url=aws.endpoint_url, counter=counter),
                options=Options(poll_interval=0.05),
            )
            started = time.perf_counter()
            result = runner.deploy(plan)
            seconds = time.perf_counter() - started
            executed = counter.counts().get("cloudformation:ExecuteChangeSet", 0)
            state = (
                "ok"
                if result.ok
                else "FAILED: " + "; ".join(f"{o.stack}: {o.reason}" for o in result.failures())
            )
            lines.append(
                f"{size:>5}  {run:<15} {seconds:>8.2f}  {counter.total():>9}  "
                f"{executed:>8}  {state}"
            )
    return lines


def main(argv: list[str]) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,3,7", help="comma-separated node counts")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"deploy scaling against the embedded emulator ({Path(__file__).name})")
    print(f"{'nodes':>5}  {'run':<15} {'seconds':>8}  {'API calls':>9}  {'executed':>8}  result")
    for size in sizes:
        for line in measure(size):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
