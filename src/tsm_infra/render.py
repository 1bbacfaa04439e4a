"""Plain-text renderings of results for the terminal. JSON output is the results' to_dict()."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tsm_infra.plan import Plan, ShareStep, show
from tsm_infra.spec import Cluster, Node
from tsm_infra.templates import LintResult

if TYPE_CHECKING:
    from tsm_infra.rehearsal import Rehearsal
    from tsm_infra.run import RunResult
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
    """The plan as an operator reads it: stages, steps and what each waits for, parameters."""
    count = len({step.node_index for step in plan.steps()})
    command = f"tsm-infra {plan.command}"
    out = [
        f"Plan for cluster {plan.cluster} from {plan.source}: {count} nodes, threshold "
        f"{plan.threshold} (any {plan.threshold + 1} of {count} sign).",
        f"Nothing has been deployed or deleted; this is what `{command}` would do.",
        "Each step starts as soon as the steps it is `after` are done.",
    ]
    if plan.command == "deploy":
        out.append("${stack.Output} is a value that stack's outputs provide at deploy time.")
    for order, phase in enumerate(plan.phases, start=1):
        out += ["", f"{order}. {phase.name}: {phase.description}"]
        for step in (s for s in plan.graph if s.stage == phase.name):
            if isinstance(step, ShareStep):
                out.append(f"   - {step.describe()}  ({step.access})")
                out.append(f"       after: {', '.join(step.depends_on)}")
                continue
            verb = "delete " if step.action == "delete" else ""
            out.append(
                f"   {verb}{step.stack_name}  account {step.account}  {step.region}  "
                f"({step.access})"
            )
            if step.depends_on:
                out.append(f"       after: {', '.join(step.depends_on)}")
            shown = {name: show(value) for name, value in step.parameters.items()}
            names = [*shown, *step.template_defaults]
            width = max((len(name) for name in names), default=0)
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


def emulated_block(emulated: list[str], *, verbose: bool = False) -> list[str]:
    """What the emulator emulates: the general notes and a count, or with verbose every line."""
    if verbose:
        return [f"  - {line}" for line in emulated]
    gaps = [line for line in emulated if line.startswith(("Not enforced", "Not checked"))]
    from tsm_infra.emulator.server import NOTES  # noqa: PLC0415 - only a rehearsal shows this

    notes = [line for line in emulated if line in NOTES]  # in memory, no TSM container, ...
    shown = [f"  - {line}" for line in notes]
    rest = len(emulated) - len(notes) - len(gaps)
    shown.append(
        f"  - {rest} emulated behaviours and {len(gaps)} things AWS checks that the emulator "
        "does not (IAM policies, quotas, ...): `--verbose` lists them all."
    )
    return shown


def next_steps(spec: str) -> list[str]:
    """How to go from the rehearsal to a real deployment, one command a line."""
    return [
        f"  tsm-infra preflight {spec}   check each node's account, region and zone",
        f"  tsm-infra deploy {spec}      with real accounts (or --endpoint-url of "
        "`tsm-infra emulator`)",
        f"  tsm-infra status {spec}      stacks, /ping and the peer wiring",
        f"  tsm-infra destroy {spec}     keys, secrets and a database snapshot are kept",
    ]


def rehearsal_text(rehearsal: Rehearsal, spec: str, *, verbose: bool = False) -> str:
    """The rehearsal by phase, under headings: deploy, boot, checks, destroy; then what it
    emulated (short unless verbose) and the next steps towards a real deployment."""
    out = ["Local rehearsal: nothing here touched AWS.", "", "== 1. Deploy =="]
    out.append(run_text(rehearsal.deploy, spec))
    if rehearsal.resources:
        out += ["Resources per stack:"]
        out += [f"  {name}: {count}" for name, count in rehearsal.resources.items()]
    if rehearsal.rendered:
        out += ["", "== 2. Node boot, played up to config.toml =="]
        out.append("Rendered TSM configurations (config.toml, secrets only as env references):")
        for node in rehearsal.rendered:
            peers = ", ".join(str(i) for i in sorted(node.peer_public_keys))
            out.append(
                f"  nodes[{node.index}]: {_relative(node.config_path)} (pins players {peers})"
            )
    if rehearsal.status is not None:
        out += ["", "== 3. Checks ==", status_text(rehearsal.status)]
    extra = [
        p
        for p in rehearsal.problems
        if rehearsal.status is None or p not in rehearsal.status.problems
    ]
    out += [f"PROBLEM: {line}" for line in extra]
    if rehearsal.destroy is not None:
        out += ["", "== 4. Destroy ==", run_text(rehearsal.destroy, spec)]
    out += ["", "== Emulated =="]
    out += emulated_block(rehearsal.emulated, verbose=verbose)
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in rehearsal.timings.items())
    out += ["", f"Timings: {timings}"]
    out.append("Rehearsal passed." if rehearsal.ok else "Rehearsal FAILED.")
    if rehearsal.ok:
        out += ["", "== Next: a real deployment =="]
        out += next_steps(spec)
    return "\n".join(out)


def emulator_cli_hint(endpoint_url: str, nodes: Sequence[Node]) -> list[str]:
    """AWS CLI commands that work as printed against the emulator, in a node's account.

    The emulator acts in the account of the role a caller assumed (any role name), so the CLI
    assumes one there with the emulator's fixed credentials, in the node's region.
    """
    from tsm_infra.aws import LOCAL_ACCESS_KEY, LOCAL_ROLE_NAME, LOCAL_SECRET_KEY  # noqa: PLC0415

    account, region, who = (
        (nodes[0].account, nodes[0].region, "nodes[0]")
        if nodes
        else ("123456789012", "us-east-1", "an account")
    )
    role = f"arn:aws:iam::{account}:role/{LOCAL_ROLE_NAME}"
    out = [
        f"The AWS CLI, acting in {who}'s account {account} ({region}); the emulator acts in",
        "the account of the role you assume, any role name:",
        f"  export AWS_ACCESS_KEY_ID={LOCAL_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={LOCAL_SECRET_KEY} "
        f"AWS_DEFAULT_REGION={region}",
        f"  export $(aws --endpoint-url {endpoint_url} sts assume-role --role-arn {role} "
        "--role-session-name cli --query "
        "'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text | awk "
        '\'{print "AWS_ACCESS_KEY_ID="$1, "AWS_SECRET_ACCESS_KEY="$2, '
        '"AWS_SESSION_TOKEN="$3}\')',
        f"  aws --endpoint-url {endpoint_url} cloudformation list-stacks",
    ]
    others = [f"nodes[{n.index}] {n.account} {n.region}" for n in nodes[1:]]
    if others:
        out.append(
            "For another node, start a new shell and put its account and region in the first "
            f"two lines: {', '.join(others)}."
        )
    return out
