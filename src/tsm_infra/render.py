"""Plain-text renderings of results for the terminal. JSON output is the results' to_dict()."""

from __future__ import annotations

from pathlib import Path

from tsm_infra.plan import Plan, show
from tsm_infra.spec import Cluster
from tsm_infra.templates import LintResult


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
