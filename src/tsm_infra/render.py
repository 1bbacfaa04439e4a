"""Plain-text renderings of results for the terminal. JSON output is the results' to_dict()."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tsm_infra.plan import Plan, show
from tsm_infra.spec import Cluster
from tsm_infra.templates import LintResult

if TYPE_CHECKING:
    from tsm_infra.deploy import RunResult
    from tsm_infra.rehearsal import Rehearsal
    from tsm_infra.status import StatusReport


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def cluster_summary(cluster: Cluster) -> str:
    """One line saying what a valid spec describes."""
    accounts = len({node.account for node in cluster.nodes})
    regions = sorted({node.region for node in cluster.nodes})
    return (
        f"{cluster.source}: valid: cluster {cluster.name}, {len(cluster.nodes)} nodes in "
        f"{accounts} account{'s' if accounts != 1 else ''} ({', '.join(regions)}), "
        f"threshold {cluster.threshold} (any {cluster.threshold + 1} of "
        f"{len(cluster.nodes)} sign)"
    )


def plan_text(plan: Plan, lint: list[LintResult] | None) -> str:
    """The plan as an operator reads it: phases, stacks, parameters, then template checks."""
    count = len({step.node_index for step in plan.steps()})
    out = [
        f"Plan for cluster {plan.cluster} from {plan.source}: {count} nodes, threshold "
        f"{plan.threshold} (any {plan.threshold + 1} of {count} sign).",
        "Nothing has been deployed; this is what `tsm-infra deploy` would do.",
        "${stack.Output} is a value that stack's outputs provide at deploy time.",
    ]
    for order, phase in enumerate(plan.phases, start=1):
        out += ["", f"{order}. {phase.name}: {phase.description}"]
        out += [f"   - {action}" for action in phase.actions]
        for step in phase.steps:
            out.append(
                f"   {step.stack_name}  account {step.account}  {step.region}  ({step.access})"
            )
            shown = {name: show(value) for name, value in step.parameters.items()}
            width = max(len(name) for name in [*shown, *step.template_defaults])
            out += [f"       {n.ljust(width)} = {v or '(empty)'}" for n, v in shown.items()]
            out += [
                f"       {n.ljust(width)} = {v or '(empty)'}  (template default)"
                for n, v in step.template_defaults.items()
            ]
            if step.outputs:
                out.append(f"       outputs: {', '.join(step.outputs)}")
    if lint is not None:
        out += ["", "Templates (cfn-lint):"]
        for result in lint:
            name = _relative(result.path)
            if not result.exists:
                out.append(f"   {name}: not written yet")
            elif result.clean:
                out.append(f"   {name}: clean")
            else:
                out.append(f"   {name}: {len(result.findings)} finding(s)")
                out += [f"     {finding.render(name)}" for finding in result.findings]
    return "\n".join(out)


def lint_dict(results: list[LintResult]) -> list[dict[str, object]]:
    """Lint results for JSON output."""
    return [
        {
            "kind": result.kind,
            "path": _relative(result.path),
            "exists": result.exists,
            "clean": result.clean,
            "findings": [
                {"rule": f.rule, "level": f.level, "line": f.line, "message": f.message}
                for f in result.findings
            ],
        }
        for result in results
    ]


# --------------------------------------------------------------------------- runs


def run_text(result: RunResult, spec: str) -> str:
    """A deploy's or destroy's summary: one line per stack, then what failed and what to do."""
    width = max((len(o.stack) for o in result.outcomes), default=0)
    out = [f"{result.command} of cluster {result.cluster}: {result.seconds:.1f} s"]
    for outcome in result.outcomes:
        line = f"  {outcome.stack.ljust(width)}  {outcome.account}  {outcome.result}"
        if outcome.result in ("created", "updated", "replaced", "resumed") and outcome.changes:
            line += f" ({len(outcome.changes)} change(s))"
        out.append(line)
    out += [f"  - {action}" for action in result.actions]
    failures = result.failures()
    if failures:
        out += ["", "Failed:"]
        out += [f"  {o.stack} (account {o.account}): {o.result}: {o.reason}" for o in failures]
        if any(o.result in ("failed", "skipped") for o in failures):
            out.append(
                f"Fix the cause, then run `tsm-infra {result.command} {spec}` again: complete "
                "stacks are left as they are and nothing generated is generated again."
            )
    if result.retained:
        out += ["", "Retained on purpose (delete by hand once you are sure):"]
        out += [f"  {line}" for line in result.retained]
    return "\n".join(out)


def status_text(report: StatusReport) -> str:
    """Per node the stack states and reachability, then the cluster checks."""
    out = [f"Cluster {report.cluster}: threshold {report.threshold}"]
    for node in report.nodes:
        out.append(f"  nodes[{node.index}] {node.dns_name}  account {node.account} {node.region}")
        for stack, status in node.stacks.items():
            drift = f"  drift {node.drift[stack]}" if stack in node.drift else ""
            out.append(f"    {stack}: {status}{drift}")
        out.append(f"    /ping: {node.ping}")
    out += [f"  ok: {line}" for line in report.passed]
    out += [f"  PROBLEM: {line}" for line in report.problems]
    out.append("consistent" if report.ok else f"{len(report.problems)} problem(s)")
    return "\n".join(out)


def rehearsal_text(rehearsal: Rehearsal, spec: str) -> str:
    """What the rehearsal emulated, deployed, rendered and checked, with counts and timings."""
    out = ["Local rehearsal: nothing here touched AWS.", "Emulated:"]
    out += [f"  - {line}" for line in rehearsal.emulated]
    out += ["", run_text(rehearsal.deploy, spec)]
    if rehearsal.resources:
        out += ["", "Resources per stack:"]
        out += [f"  {name}: {count}" for name, count in rehearsal.resources.items()]
    if rehearsal.rendered:
        out += ["", "Rendered TSM configurations (config.toml, secrets only as env references):"]
        for node in rehearsal.rendered:
            peers = ", ".join(str(i) for i in sorted(node.peer_public_keys))
            out.append(
                f"  nodes[{node.index}]: {_relative(node.config_path)} (pins players {peers})"
            )
    if rehearsal.status is not None:
        out += ["", status_text(rehearsal.status)]
    extra = [
        p
        for p in rehearsal.problems
        if rehearsal.status is None or p not in rehearsal.status.problems
    ]
    out += [f"PROBLEM: {line}" for line in extra]
    if rehearsal.destroy is not None:
        out += ["", run_text(rehearsal.destroy, spec)]
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in rehearsal.timings.items())
    out += ["", f"Timings: {timings}"]
    out.append("Rehearsal passed." if rehearsal.ok else "Rehearsal FAILED.")
    return "\n".join(out)
