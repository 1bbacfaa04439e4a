#!/usr/bin/env python3
"""How deploy scales with the number of nodes: wall time and AWS API calls, against the emulator.

For 1, 3 and 7 nodes (each in its own account), deploys a fresh cluster into a fresh embedded
emulator, then deploys it again at once (a no-op), and prints for each: wall time, the number of
AWS API calls the deployer made (by the calls' own count, not CloudFormation's work behind them)
and the cluster's critical path. Two models of AWS: "none", the emulator as fast as it goes,
which measures the deployer's client overhead; "latency", the emulator's latency model, where
each resource takes its typical real-AWS time (tsm_infra.durations) scaled by one factor
(clusters.SCALE, 1/20 by default, the deployer's 5 s poll interval scaled alike), which measures
how close the deploy comes to the critical path, the physical limit of the templates.

The 3-node unmodelled deploy is also run by a one-stack-after-another boto3 script on the same
emulator (sequential.py, performance.md section 2) for the ratio T(tsm-infra) / T(sequential).
Figures, not assertions: run it before and after a change to the deployer.

    .venv/bin/python bench/deploy_scaling.py [--sizes 1,3,7] [--models none,latency]
        [--repeat N] [--scale 0.05] [--json] [--timeline]

critical_path_seconds is that of a deploy of the cluster (durations.critical_path, scaled), in
every row: the no-op rows carry it to show the cluster, not as their own limit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clusters import (
    POLL_SECONDS,
    SCALE,
    fresh_emulator,
    make_cluster,
    plan_of,
    rendered_templates,
)
from sequential import deploy_sequential, rendered_bodies

from tsm_infra.aws import CallCounter, Connector
from tsm_infra.durations import CriticalPath, Link, critical_path
from tsm_infra.plan import Plan
from tsm_infra.run import Options, execute

SIZES = "1,3,7"
MODELS = ("none", "latency")
RATIO_NODES = 3  # the size the sequential baseline runs at


@dataclass(frozen=True)
class Run:
    """One timed deploy."""

    nodes: int
    scenario: str  # "deploy" | "noop"
    model: str  # "none" | "latency"
    seconds: float
    critical_path_seconds: float
    api_calls: int
    repeat: int
    executed: int
    ok: bool
    result: str
    # per stack: (name, modelled start, modelled end, measured start, measured end), seconds
    stacks: tuple[tuple[str, float, float, float, float], ...] = ()


@dataclass(frozen=True)
class Deployed:
    """What the deployer says of one run."""

    ok: bool
    result: str
    stacks: dict[str, tuple[float, float]]  # stack -> (started, ended) after the run started


def run_deployer(
    plan: Plan, connector: Connector, poll_interval: float, durations_scale: float
) -> Deployed:
    """The one call into tsm-infra's deployer: how every stack ended, and when.

    Under the latency model the deployer is told the model's scale, as on AWS it assumes the
    typical durations (`durations_scale` 1): it paces its polls by them.
    """
    options = Options(poll_interval=poll_interval, durations_scale=durations_scale)
    result = execute(plan, connector, options=options)
    reasons = "; ".join(f"{o.stack}: {o.reason}" for o in result.failures())
    return Deployed(
        result.ok,
        "ok" if result.ok else f"FAILED: {reasons}",
        {o.stack: (o.started, o.ended) for o in result.outcomes},
    )


def measure(size: int, model: str, repeat: int, scale: float) -> list[Run]:
    """Deploy then redeploy a cluster of `size` nodes in a fresh emulator of that model."""
    cluster = make_cluster(size)
    plan = plan_of(cluster)
    modelled = critical_path(plan.steps(), rendered_templates(), scale=scale)
    runs = []
    with fresh_emulator(cluster, scale if model == "latency" else None) as endpoint:
        for scenario in ("deploy", "noop"):
            counter = CallCounter()
            connector = Connector(endpoint_url=endpoint, counter=counter)
            started = time.perf_counter()
            deployed = run_deployer(
                plan, connector, POLL_SECONDS * scale, scale if model == "latency" else 0.0
            )
            seconds = time.perf_counter() - started
            executed = counter.counts().get("cloudformation:ExecuteChangeSet", 0)
            timeline = tuple(
                (name, *modelled.stacks.get(name, (0.0, 0.0)), *when)
                for name, when in deployed.stacks.items()
            )
            runs.append(
                Run(
                    size,
                    scenario,
                    model,
                    seconds,
                    modelled.seconds,
                    counter.total(),
                    repeat,
                    executed,
                    deployed.ok,
                    deployed.result,
                    timeline,
                )
            )
    return runs


def measure_sequential(size: int, scale: float) -> tuple[float, int, bool]:
    """The baseline's deploy of the same cluster, unmodelled: seconds, API calls, completed."""
    cluster = make_cluster(size)
    plan = plan_of(cluster)
    bodies = rendered_bodies()
    with fresh_emulator(cluster) as endpoint:
        counter = CallCounter()
        started = time.perf_counter()
        ok = deploy_sequential(
            plan, bodies, endpoint, counter=counter, poll_interval=POLL_SECONDS * scale
        )
        return time.perf_counter() - started, counter.total(), ok


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """Min and median seconds per (nodes, scenario, model), with the calls and the limit."""
    groups: dict[tuple[int, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.nodes, run.scenario, run.model), []).append(run)
    rows = []
    for (nodes, scenario, model), group in groups.items():
        seconds = [run.seconds for run in group]
        rows.append(
            {
                "nodes": nodes,
                "scenario": scenario,
                "model": model,
                "n": len(group),
                "min": min(seconds),
                "median": statistics.median(seconds),
                "critical_path_seconds": group[0].critical_path_seconds,
                "api_calls": statistics.median(run.api_calls for run in group),
                "ok": all(run.ok for run in group),
            }
        )
    return rows


def ratios(runs: list[Run], sequential: list[tuple[float, int, bool]]) -> list[float]:
    """Per repetition: T(tsm-infra) / T(sequential), 3-node unmodelled deploys."""
    ours = [
        run.seconds
        for run in runs
        if (run.nodes, run.scenario, run.model) == (RATIO_NODES, "deploy", "none")
    ]
    return [mine / theirs for mine, (theirs, _, _) in zip(ours, sequential, strict=False)]


def main(argv: list[str]) -> int:
    """Run the measurements; print a table, or JSON with --json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=SIZES, help="comma-separated node counts")
    parser.add_argument("--models", default=",".join(MODELS), help="none, latency or both")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, for min/median")
    parser.add_argument("--scale", type=float, default=SCALE, help="modelled time factor")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="each modelled deploy's stacks: modelled vs measured",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    models = [model for model in args.models.split(",") if model]
    unknown = sorted(set(models) - set(MODELS))
    if unknown or args.repeat < 1:
        parser.error(f"--models takes {', '.join(MODELS)}; --repeat at least 1")
    text = not args.json
    if text:
        print(
            f"deploy scaling against the embedded emulator ({Path(__file__).name}), "
            f"latency scale {args.scale:g}, poll {POLL_SECONDS * args.scale:g} s"
        )
        print(_header())
    runs, sequential = run_all(
        sizes, models, args.repeat, args.scale, show=text, timeline=args.timeline
    )
    summary = summarize(runs)
    per_trial = ratios(runs, sequential)
    paths = {size: cluster_path(size) for size in sizes}
    if args.json:
        document = _document(runs, summary, sequential, per_trial, args.scale)
        document["critical_paths"] = [_path_dict(size, path) for size, path in paths.items()]
        print(json.dumps(document, indent=2))
    else:
        _print_summary(summary, per_trial)
        for size, path in paths.items():
            _print_path(size, path, chains=size == sizes[-1])
    return 0


def run_all(
    sizes: list[int],
    models: list[str],
    repeats: int,
    scale: float,
    *,
    show: bool,
    timeline: bool = False,
) -> tuple[list[Run], list[tuple[float, int, bool]]]:
    """Every measurement, repetition by repetition; each printed as it ends when `show`."""
    runs: list[Run] = []
    sequential: list[tuple[float, int, bool]] = []
    for repeat in range(repeats):
        for size in sizes:
            for model in models:
                for run in measure(size, model, repeat, scale):
                    runs.append(run)
                    if show:
                        print(_line(run), flush=True)
                    if show and timeline and run.model == "latency" and run.scenario == "deploy":
                        _print_timeline(run)
            if size == RATIO_NODES and "none" in models:
                sequential.append(measure_sequential(size, scale))
                seconds, calls, ok = sequential[-1]
                if show:
                    print(
                        f"{size:>5}  {'deploy':<7} {'seq':<8} {repeat + 1:>3} {seconds:>8.2f}"
                        f"  {'':>8}  {'':>6}  {calls:>9}  {'':>8}  "
                        f"{'ok' if ok else 'FAILED'} (sequential boto3)",
                        flush=True,
                    )
    return runs, sequential


def cluster_path(size: int) -> CriticalPath:
    """The real-AWS (unscaled) critical path of the bench cluster of `size` nodes."""
    return critical_path(plan_of(make_cluster(size)).steps(), rendered_templates())


def _print_path(size: int, path: CriticalPath, *, chains: bool) -> None:
    saving = path.seconds - path.resource_seconds
    print(
        f"\n{size} nodes on real AWS (typical durations): critical path "
        f"{path.seconds / 60:.1f} min; without stack boundaries "
        f"{path.resource_seconds / 60:.1f} min, so splitting stacks "
        f"could save at most {saving / 60:.1f} min ({saving / path.seconds:.0%})"
    )
    for line in path.lines() if chains else ():
        print(f"  {line}")


def _path_dict(size: int, path: CriticalPath) -> dict[str, Any]:
    def chain(links: tuple[Link, ...]) -> list[dict[str, Any]]:
        return [asdict(link) for link in links]

    return {
        "nodes": size,
        "seconds": path.seconds,
        "chain": chain(path.chain),
        "resource_level_seconds": path.resource_seconds,
        "resource_level_chain": chain(path.resource_chain),
    }


def _print_summary(summary: list[dict[str, Any]], per_trial: list[float]) -> None:
    print()
    print(
        f"{'nodes':>5}  {'run':<7} {'model':<8} {'n':>3} {'min s':>8} {'median s':>9}"
        f"  {'CP s':>8}  {'API calls':>9}"
    )
    for row in summary:
        print(
            f"{row['nodes']:>5}  {row['scenario']:<7} {row['model']:<8} {row['n']:>3} "
            f"{row['min']:>8.2f} {row['median']:>9.2f}  {row['critical_path_seconds']:>8.2f}  "
            f"{row['api_calls']:>9g}{'' if row['ok'] else '  FAILED'}"
        )
    if per_trial:
        print(
            f"\nT(tsm-infra) / T(sequential), {RATIO_NODES}-node unmodelled deploy: "
            + ", ".join(f"{ratio:.2f}" for ratio in per_trial)
            + f" (min {min(per_trial):.2f}, median {statistics.median(per_trial):.2f})"
        )


def _header() -> str:
    return (
        f"{'nodes':>5}  {'run':<7} {'model':<8} {'#':>3} {'seconds':>8}  {'CP s':>8}  "
        f"{'x CP':>6}  {'API calls':>9}  {'executed':>8}  result"
    )


def _print_timeline(run: Run) -> None:
    print(f"{'':>7}{'stack':<28} {'modelled':>17}  {'measured':>17}  late by")
    for name, model_start, model_end, start, end in run.stacks:
        print(
            f"{'':>7}{name:<28} {model_start:>7.2f} -> {model_end:>6.2f}  "
            f"{start:>7.2f} -> {end:>6.2f}  {end - model_end:>+6.2f}"
        )


def _line(run: Run) -> str:
    times = (
        f"{run.seconds / run.critical_path_seconds:>6.2f}"
        if run.model == "latency" and (run.scenario == "deploy")
        else f"{'':>6}"
    )
    return (
        f"{run.nodes:>5}  {run.scenario:<7} {run.model:<8} {run.repeat + 1:>3} "
        f"{run.seconds:>8.2f}  {run.critical_path_seconds:>8.2f}  {times}  "
        f"{run.api_calls:>9}  {run.executed:>8}  {run.result}"
    )


def _document(
    runs: list[Run],
    summary: list[dict[str, Any]],
    sequential: list[tuple[float, int, bool]],
    per_trial: list[float],
    scale: float,
) -> dict[str, Any]:
    return {
        "scale": scale,
        "poll_interval": POLL_SECONDS * scale,
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "sequential": {
            "nodes": RATIO_NODES,
            "runs": [{"seconds": s, "api_calls": calls, "ok": ok} for s, calls, ok in sequential],
            "ratio_tsm_over_sequential": per_trial,
            "ratio_median": statistics.median(per_trial) if per_trial else None,
        },
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
