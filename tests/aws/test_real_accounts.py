"""Against real AWS accounts: deploy, check, and (when asked) destroy a cluster from a spec.

Never runs by default or in CI (the `aws` marker is deselected). To run it, point it at a spec
for sandbox accounts whose credentials this shell has, and select the marker:

    TSM_INFRA_AWS_SPEC=my-sandbox.yaml .venv/bin/pytest -m aws tests/aws
    TSM_INFRA_AWS_DESTROY=1 ...   # also destroy at the end (the database is snapshotted)

It creates real, billed resources (NAT gateways, a load balancer, RDS) in every account.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from tsm_infra.cli import cli

pytestmark = pytest.mark.aws

SPEC = os.environ.get("TSM_INFRA_AWS_SPEC", "")


@pytest.fixture(scope="module")
def spec() -> str:
    if not SPEC:
        pytest.skip("set TSM_INFRA_AWS_SPEC to a spec for sandbox accounts")
    return SPEC


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_deploy_status_outputs_and_destroy(spec: str) -> None:
    code, out, err = _run("deploy", spec, "--yes", "--output", "json")
    assert code == 0, out + err
    assert json.loads(out)["ok"] is True
    code, out, err = _run("status", spec, "--output", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["problems"] == []
    assert all(node["ping"] == "200 OK" for node in report["nodes"])
    code, out, _ = _run("outputs", spec)
    assert code == 0
    assert all(node["deployed"] for node in json.loads(out)["nodes"])
    # a second deploy right away changes nothing
    code, out, err = _run("deploy", spec, "--yes", "--output", "json")
    assert code == 0, out + err
    assert {stack["result"] for stack in json.loads(out)["stacks"]} == {"unchanged"}
    if os.environ.get("TSM_INFRA_AWS_DESTROY") == "1":
        code, out, err = _run("destroy", spec, "--yes", "--output", "json")
        assert code == 0, out + err
