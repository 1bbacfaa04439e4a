"""The `tsm-infra` command: parse arguments, call one function, render, map errors to exit codes.

Heavy modules (pydantic, boto3, cfn-lint) are imported inside the commands that need them, so
`tsm-infra --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tsm_infra.errors import EXIT_FAILED, TsmInfraError

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
    """Check a spec offline; print every problem with its file:line."""
    from tsm_infra.render import cluster_summary  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415

    cluster = load_spec(spec)
    if output == "json":
        _emit_json({"spec": spec, "valid": True, "warnings": cluster.warnings()})
        return
    click.echo(cluster_summary(cluster))
    _warn(cluster.warnings())


@cli.command()
@spec_argument
@click.option("--output", "output", type=OUTPUT_FORMATS, default="text", show_default=True)
@click.option("--no-lint", is_flag=True, help="Skip running cfn-lint on the templates.")
def plan(spec: str, output: str, no_lint: bool) -> None:
    """Show the stacks a deploy would create, offline: order, parameters, wiring, lint."""
    from tsm_infra.plan import build_plan  # noqa: PLC0415
    from tsm_infra.render import lint_dict, plan_text  # noqa: PLC0415
    from tsm_infra.spec import load_spec  # noqa: PLC0415
    from tsm_infra.templates import TEMPLATE_FILES, lint_all, template_interface  # noqa: PLC0415

    cluster = load_spec(spec)
    result = build_plan(cluster, {kind: template_interface(kind) for kind in TEMPLATE_FILES})
    lint = None if no_lint else lint_all(node.region for node in cluster.nodes)
    if output == "json":
        data = result.to_dict()
        data["templates"] = lint_dict(lint) if lint is not None else None
        _emit_json(data)
        return
    click.echo(plan_text(result, lint))
    _warn(result.warnings)


@cli.command()
def lint() -> None:
    """Run cfn-lint over the templates with the project's settings; exit 1 on any finding."""
    from tsm_infra.templates import lint_all  # noqa: PLC0415

    results = lint_all()
    failed = False
    for result in results:
        if not result.exists:
            click.echo(f"{result.path}: not written yet")
            continue
        for finding in result.findings:
            click.echo(finding.render(str(result.path)))
        failed = failed or not result.clean
        click.echo(f"{result.path}: {'clean' if result.clean else 'findings above'}")
    if failed:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--check", is_flag=True, help="Only report templates that are out of date.")
def package(check: bool) -> None:
    """Copy each inline Lambda handler's source module into its template."""
    from tsm_infra.templates import package_all  # noqa: PLC0415

    stale = package_all(write=not check)
    for path in stale:
        verb = "is out of date; run `make templates`" if check else "updated"
        click.echo(f"{path}: {verb}")
    if check and stale:
        sys.exit(EXIT_FAILED)
    if not stale:
        click.echo("templates carry their handlers' current source")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the deployment spec."""
    from tsm_infra.spec import json_schema  # noqa: PLC0415

    _emit_json(json_schema())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tsm-infra")
