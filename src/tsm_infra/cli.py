"""The `tsm-infra` command: parse arguments, call one function, render, map errors to exit codes.

Heavy modules (pydantic, boto3, cfn-lint) are imported inside the commands that need them, so
`tsm-infra --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from tsm_infra.errors import EXIT_BAD_INPUT, EXIT_FAILED, TsmInfraError

OUTPUT_FORMATS = click.Choice(["text", "json"])


class _Group(click.Group):
    """Turns the project's errors into plain lines and exit codes; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TsmInfraError as exc:
            if _debug(ctx):
                raise
            for line in exc.lines():
                click.echo(line, err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            # the message of an unexpected exception could carry anything; name only its type
            click.echo(
                f"internal error ({type(exc).__name__}); run again with --debug for the "
                "traceback and report it",
                err=True,
            )
            ctx.exit(EXIT_FAILED)


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("debug"))


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _warn(warnings: list[str] | tuple[str, ...]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="tsm-infra")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Stand up a Builder Vault TSM cluster across AWS accounts from one spec file.

    Start with `tsm-infra plan examples/three-nodes.yaml`.
    """
    ctx.obj = {"debug": debug}


spec_argument = click.argument("spec", type=click.Path(dir_okay=True, path_type=str))


@cli.command()
@spec_argument
@click.option("--output", "output", type=OUTPUT_FORMATS, default="text", show_default=True)
def validate(spec: str, output: str) -> None:
    """Check a spec offline; print every problem with its file:line. `-` reads stdin."""
    from tsm_infra.errors import SpecError  # noqa: PLC0415
    from tsm_infra.render import cluster_summary  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415

    try:
        cluster = load_spec(spec)
    except SpecError as exc:
        if output != "json":
            raise
        problems = [{"path": p.path, "line": p.line, "message": p.message} for p in exc.problems]
        _emit_json({"spec": spec, "valid": False, "problems": problems, "warnings": []})
        for line in exc.lines():
            click.echo(line, err=True)
        click.get_current_context().exit(exc.exit_code)
    if output == "json":
        _emit_json({"spec": spec, "valid": True, "problems": [], "warnings": cluster.warnings()})
        return
    click.echo(cluster_summary(cluster))
    _warn(cluster.warnings())


@cli.command()
@spec_argument
@click.option("--output", "output", type=OUTPUT_FORMATS, default="text", show_default=True)
@click.option("--no-lint", is_flag=True, help="Skip running cfn-lint on the templates.")
@click.option("--destroy", "destroying", is_flag=True, help="Show what `destroy` would do instead.")
def plan(spec: str, output: str, no_lint: bool, destroying: bool) -> None:
    """Show the steps a deploy (or destroy) would take, offline: order, parameters, wiring."""
    from tsm_infra import plan as plans  # noqa: PLC0415
    from tsm_infra.render import lint_dict, plan_text  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415
    from tsm_infra.templates import lint_all  # noqa: PLC0415

    cluster = load_spec(spec)
    result = plans.destroy_plan(cluster) if destroying else plans.deploy_plan(cluster)
    lint = None if no_lint else lint_all(node.region for node in cluster.nodes)
    if output == "json":
        data = result.to_dict()
        data["templates"] = lint_dict(lint) if lint is not None else None
        _emit_json(data)
        return
    click.echo(plan_text(result, lint))
    _warn(result.warnings)


class _TerminalPrompt:
    """The executor's prompt: shows what will change, then asks (or not, with --yes).

    With JSON output the details are left to the result; without a terminal and without
    --yes there is no one to ask, which is an error rather than a silent yes.
    """

    def __init__(self, yes: bool, output: str = "text", view: Any = None) -> None:
        self.yes = yes
        self.output = output
        self.view = view

    @property
    def asks(self) -> bool:
        """False with --yes: the executor then goes ahead with each step as soon as it is ready."""
        return not self.yes

    def __call__(self, question: str, details: Sequence[str]) -> bool:
        from contextlib import nullcontext  # noqa: PLC0415

        from tsm_infra.errors import BadInputError  # noqa: PLC0415

        with self.view.paused() if self.view is not None else nullcontext():
            if self.output != "json":
                for line in details:
                    click.echo(line, err=True)
            if self.yes:
                return True
            if not sys.stdin.isatty():
                raise BadInputError(
                    "no terminal to confirm the change sets on; review them with an "
                    "interactive run, or pass --yes"
                )
            return click.confirm(question, default=False, err=True)


def _connector(endpoint_url: str | None) -> Any:
    from tsm_infra.aws import Connector, check_endpoint  # noqa: PLC0415

    if endpoint_url:
        check_endpoint(endpoint_url)  # a dead endpoint fails in seconds, exit 2
    return Connector(endpoint_url=endpoint_url)


endpoint_option = click.option(
    "--endpoint-url",
    metavar="URL",
    help="Send every AWS call to this endpoint, e.g. an emulator from `tsm-infra emulator`; "
    "every account is then reached by assuming a role on it.",
)
output_option = click.option(
    "--output", "output", type=OUTPUT_FORMATS, default="text", show_default=True
)


@cli.command()
@spec_argument
@click.option("--yes", is_flag=True, help="Execute the change sets without asking.")
@click.option(
    "--allow-replace",
    multiple=True,
    metavar="LOGICAL_ID",
    help="Let a change set replace or delete this stateful resource (database, KMS key, "
    "secrets, key generation); repeatable.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Rehearse in an embedded emulated AWS started for this run: no account needed.",
)
@click.option(
    "--then-destroy", is_flag=True, help="With --local: destroy the cluster again at the end."
)
@click.option(
    "--configs-dir",
    default=".tsm-rehearsal",
    show_default=True,
    help="With --local: where each node's rendered config.toml goes.",
)
@click.option(
    "--verbose", is_flag=True, help="With --local: list everything the emulator emulates."
)
@click.option(
    "--no-preflight",
    is_flag=True,
    help="Skip the account checks of `tsm-infra preflight` (only when one is wrong for you).",
)
@endpoint_option
@output_option
def deploy(
    *,
    spec: str,
    yes: bool,
    allow_replace: tuple[str, ...],
    local: bool,
    then_destroy: bool,
    configs_dir: str,
    verbose: bool,
    no_preflight: bool,
    endpoint_url: str | None,
    output: str,
) -> None:
    """Deploy the cluster: KMS stacks, RAM invitations, then Core stacks, via change sets."""
    from pathlib import Path  # noqa: PLC0415

    from tsm_infra.errors import BadInputError  # noqa: PLC0415
    from tsm_infra.progress import progress_view  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415

    cluster = load_spec(spec)
    _warn(cluster.warnings())
    if then_destroy and not local:
        raise BadInputError("--then-destroy goes with --local only; use `tsm-infra destroy`")
    if not local and not yes and not sys.stdin.isatty():
        # asked only after the change sets exist, this would leave stacks in REVIEW_IN_PROGRESS
        raise BadInputError(
            "no terminal to confirm the change sets on, and nothing was created: run it "
            "interactively to review them, or pass --yes"
        )
    if local:
        if endpoint_url:
            raise BadInputError("--local starts its own emulator; leave out --endpoint-url")
        from tsm_infra.localmode import require_local_extra  # noqa: PLC0415

        require_local_extra()
        from tsm_infra.rehearsal import rehearse  # noqa: PLC0415
        from tsm_infra.render import rehearsal_text  # noqa: PLC0415

        with progress_view(output) as view:
            rehearsal = rehearse(
                cluster, out_dir=Path(configs_dir), report=view.update, destroy_after=then_destroy
            )
        if output == "json":
            _emit_json(rehearsal.to_dict())
        else:
            click.echo(rehearsal_text(rehearsal, spec, verbose=verbose))
        if not rehearsal.ok:
            sys.exit(EXIT_FAILED)
        return
    _run(
        spec=spec,
        cluster=cluster,
        command="deploy",
        yes=yes,
        allow_replace=frozenset(allow_replace),
        endpoint_url=endpoint_url,
        output=output,
        preflight=not no_preflight,
    )


def _run(
    *,
    spec: str,
    cluster: Any,
    command: str,
    yes: bool,
    allow_replace: frozenset[str],
    endpoint_url: str | None,
    output: str,
    connector: Any = None,
    preflight: bool = False,
) -> None:
    from tsm_infra import plan as plans  # noqa: PLC0415
    from tsm_infra.progress import progress_view  # noqa: PLC0415
    from tsm_infra.render import run_text  # noqa: PLC0415
    from tsm_infra.run import Options, execute  # noqa: PLC0415

    options = Options(
        allow_replace=allow_replace,
        poll_interval=1.0 if endpoint_url else 5.0,
        durations_scale=0.0 if endpoint_url else 1.0,
    )
    connector = connector or _connector(endpoint_url)
    if preflight:
        from tsm_infra.preflight import require  # noqa: PLC0415

        # before any stack or change set exists: a finding exits 2 with nothing created
        _preflight_notes(require(cluster, connector), output)
    plan = plans.deploy_plan(cluster) if command == "deploy" else plans.destroy_plan(cluster)
    with progress_view(output) as view:
        result = execute(
            plan,
            connector,
            prompt=_TerminalPrompt(yes, output, view),
            report=view.update,
            options=options,
        )
    if output == "json":
        _emit_json(result.to_dict())
    else:
        click.echo(run_text(result, spec))
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _preflight_notes(result: Any, output: str) -> None:
    if output != "json":
        for note in result.notes:
            click.echo(f"preflight note: {note.render()}", err=True)


@cli.command()
@spec_argument
@endpoint_option
@output_option
def preflight(spec: str, endpoint_url: str | None, output: str) -> None:
    """Ask each node's account whether deploy can succeed; nothing is created (exit 2 if not)."""
    from tsm_infra.preflight import preflight as run_preflight  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415

    cluster = load_spec(spec)
    result = run_preflight(cluster, _connector(endpoint_url))
    if output == "json":
        _emit_json(result.to_dict())
    else:
        for finding in result.findings:
            click.echo(finding.render())
        for note in result.notes:
            click.echo(f"note: {note.render()}")
        verdict = "ready to deploy" if result.ok else f"{len(result.findings)} finding(s)"
        click.echo(
            f"preflight of {cluster.name}: {len(cluster.nodes)} nodes, {verdict}, "
            f"{len(result.notes)} note(s), {result.seconds:.1f} s"
        )
    if not result.ok:
        sys.exit(EXIT_BAD_INPUT)


@cli.command()
@spec_argument
@click.option("--drift", is_flag=True, help="Also run CloudFormation drift detection.")
@click.option("--no-ping", is_flag=True, help="Do not call each node's /ping.")
@endpoint_option
@output_option
def status(spec: str, drift: bool, no_ping: bool, endpoint_url: str | None, output: str) -> None:
    """Per node the stack states and /ping; across nodes, whether the wiring is consistent."""
    from tsm_infra.render import status_text  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415
    from tsm_infra.status import cluster_status, emulated_ping, https_ping  # noqa: PLC0415

    cluster = load_spec(spec)
    ping = None if no_ping else emulated_ping if endpoint_url else https_ping
    report = cluster_status(cluster, _connector(endpoint_url), drift=drift, ping=ping)
    if output == "json":
        _emit_json(report.to_dict())
    else:
        click.echo(status_text(report))
    if not report.ok:
        sys.exit(EXIT_FAILED)


@cli.command()
@spec_argument
@endpoint_option
def outputs(spec: str, endpoint_url: str | None) -> None:
    """A JSON manifest for client applications: endpoints, threshold, API-key secret ARNs."""
    from tsm_infra.spec import load_spec  # noqa: PLC0415
    from tsm_infra.status import manifest  # noqa: PLC0415

    _emit_json(manifest(load_spec(spec), _connector(endpoint_url)))


@cli.command()
@spec_argument
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.option(
    "--i-understand-data-loss",
    "data_loss",
    is_flag=True,
    help="Destroy even where no final database snapshot would be taken.",
)
@endpoint_option
@output_option
def destroy(spec: str, yes: bool, data_loss: bool, endpoint_url: str | None, output: str) -> None:
    """Delete the Core stacks, then the KMS stacks; keys, secrets and a DB snapshot are kept."""
    from tsm_infra.run import check_destroy  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415

    cluster = load_spec(spec)
    connector = _connector(endpoint_url)
    details = check_destroy(cluster, connector, allow_data_loss=data_loss)
    if not _TerminalPrompt(yes, output)(
        f"Destroy cluster {cluster.name} ({len(cluster.nodes)} nodes)?", details
    ):
        click.echo("nothing was deleted", err=True)
        sys.exit(EXIT_FAILED)
    _run(
        spec=spec,
        cluster=cluster,
        command="destroy",
        yes=True,
        allow_replace=frozenset(),
        endpoint_url=endpoint_url,
        output=output,
        connector=connector,
    )


@cli.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--latency-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Make stack operations take AWS's typical durations times this factor (e.g. 0.01); "
    "by default they complete at once.",
)
def emulator(spec: str | None, latency_scale: float | None) -> None:
    """Run the embedded emulated AWS until Ctrl-C, for `--endpoint-url` and the AWS CLI.

    With SPEC, each node's account is prepared as a real one would be (its hosted zone and
    registry credentials secret).
    """
    import time  # noqa: PLC0415

    from tsm_infra.localmode import require_local_extra  # noqa: PLC0415

    require_local_extra()
    from tsm_infra.emulator import LocalAws  # noqa: PLC0415
    from tsm_infra.rehearsal import prepare_accounts  # noqa: PLC0415
    from tsm_infra.render import emulator_cli_hint  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415

    cluster = load_spec(spec) if spec else None
    with LocalAws(latency_scale=latency_scale) as aws:
        prepare_accounts(aws, cluster.nodes if cluster else ())
        click.echo(f"Emulated AWS at {aws.endpoint_url} (in memory; gone when this stops).")
        for line in aws.emulated():
            click.echo(f"  - {line}")
        target = spec or "SPEC"
        click.echo(
            "\nPoint tsm-infra at it:\n"
            f"  tsm-infra deploy {target} --endpoint-url {aws.endpoint_url} --yes\n"
            f"  tsm-infra status {target} --endpoint-url {aws.endpoint_url}\n"
        )
        for line in emulator_cli_hint(aws.endpoint_url, cluster.nodes if cluster else ()):
            click.echo(line)
        click.echo("Ctrl-C stops it.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)


@cli.command()
def lint() -> None:
    """Run cfn-lint over the templates with the project's settings; exit 1 on any finding."""
    from tsm_infra.errors import BadInputError  # noqa: PLC0415
    from tsm_infra.templates import lint_all  # noqa: PLC0415

    results = lint_all()
    missing = [str(result.path) for result in results if not result.exists]
    if missing:
        # the package carries its templates, so only a wrong TSM_INFRA_TEMPLATES loses them
        raise BadInputError(
            f"{', '.join(missing)}: no such template; point TSM_INFRA_TEMPLATES at a folder "
            "that has kms.yaml and core.yaml, or unset it to use the installed ones"
        )
    failed = False
    for result in results:
        for finding in result.findings:
            click.echo(finding.render(str(result.path)))
        failed = failed or not result.clean
        click.echo(f"{result.path}: {'clean' if result.clean else 'findings above'}")
    if failed:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write kms.yaml and core.yaml into (made if missing).",
)
def package(out: str) -> None:
    """Write standalone templates, inline code filled in (for the CloudFormation console)."""
    from pathlib import Path  # noqa: PLC0415

    from tsm_infra.templates import write_rendered  # noqa: PLC0415

    for path in write_rendered(Path(out)):
        click.echo(str(path))


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the deployment spec."""
    from tsm_infra.spec import json_schema  # noqa: PLC0415

    _emit_json(json_schema())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tsm-infra")
