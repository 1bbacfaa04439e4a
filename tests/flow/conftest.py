"""Fixtures for flow tests: the real templates and deployer against the embedded emulator."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.helpers import REPO
from tsm_infra.aws import local_session
from tsm_infra.cli import cli
from tsm_infra.emulator import LocalAws
from tsm_infra.plan import stack_name
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.spec import Cluster, Node, load_spec

THREE_NODES = REPO / "examples" / "three-nodes.yaml"


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    """The bundled three-account example."""
    return load_spec(THREE_NODES)


def run_cli(*args: str) -> Result:
    """Run the CLI in-process with separate stdout and stderr; exceptions propagate."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@functools.cache
def _client(endpoint: str, account: str, region: str, service: str) -> Any:
    # making sessions and clients is most of these tests' time; each emulator gets a new port
    return local_session(account, region, endpoint).client(service)


def client(aws: LocalAws, node: Node, service: str, region: str | None = None) -> Any:
    """A client acting in the node's account on the emulator (in its region unless told)."""
    return _client(aws.endpoint_url, node.account, region or node.region, service)


def outputs(aws: LocalAws, cluster: Cluster, node: Node, kind: str) -> dict[str, str]:
    """A deployed stack's outputs."""
    cfn = client(aws, node, "cloudformation")
    stack = cfn.describe_stacks(StackName=stack_name(cluster.name, node.index, kind))["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def parameters(aws: LocalAws, cluster: Cluster, node: Node, kind: str) -> dict[str, str]:
    """A deployed stack's parameters."""
    cfn = client(aws, node, "cloudformation")
    stack = cfn.describe_stacks(StackName=stack_name(cluster.name, node.index, kind))["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def secret_values(aws: LocalAws, cluster: Cluster) -> list[str]:
    """Every generated secret value of the cluster, and every value inside a JSON secret."""
    found: list[str] = []
    for node in cluster.nodes:
        sm = client(aws, node, "secretsmanager")
        arns = [
            value
            for key, value in outputs(aws, cluster, node, "kms").items()
            if key.endswith("SecretArn")
        ]
        for secret in sm.list_secrets()["SecretList"]:
            if secret["Name"].startswith("rds!") or "master" in secret["Name"].lower():
                arns.append(secret["ARN"])
        for arn in arns:
            value = sm.get_secret_value(SecretId=arn)["SecretString"]
            found.append(value)
            try:
                inner = json.loads(value)
            except ValueError:
                continue
            if isinstance(inner, dict):
                found += [v for v in inner.values() if isinstance(v, str) and len(v) >= 16]
    return found


def secret_versions(aws: LocalAws, cluster: Cluster) -> dict[str, dict[str, list[str]]]:
    """Each generated secret's versions and their stages: what must not change on a redeploy."""
    versions = {}
    for node in cluster.nodes:
        sm = client(aws, node, "secretsmanager")
        for key, arn in outputs(aws, cluster, node, "kms").items():
            if key.endswith("SecretArn"):
                versions[arn] = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return versions


@pytest.fixture(scope="module")
def emulator(cluster: Cluster) -> Iterator[LocalAws]:
    """An emulator with the example's accounts prepared (hosted zones, registry secrets)."""
    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        yield aws
