"""What a new user meets first: a dead endpoint, no terminal, the emulator's CLI hint."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from tests.flow.conftest import THREE_NODES, client, run_cli
from tsm_infra.aws import Connector
from tsm_infra.emulator import LocalAws
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.render import emulator_cli_hint
from tsm_infra.spec import Cluster


@pytest.mark.parametrize(
    ("endpoint", "command"),
    [
        ("http://127.0.0.1:9", "deploy"),  # nothing listens: refused
        ("http://127.0.0.1:9", "status"),
        ("http://192.0.2.1:4566", "destroy"),  # TEST-NET, never routed: times out
    ],
)
def test_a_dead_endpoint_fails_fast_naming_it(endpoint: str, command: str) -> None:
    started = time.monotonic()
    yes = ["--yes"] if command != "status" else []
    result = run_cli(command, str(THREE_NODES), *yes, "--endpoint-url", endpoint)
    assert time.monotonic() - started < 5
    assert result.exit_code == 2, result.output
    assert f"--endpoint-url {endpoint}: cannot connect to " in result.stderr
    assert "Traceback" not in result.output


def test_deploy_without_a_terminal_or_yes_creates_nothing(cluster: Cluster) -> None:
    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        # CliRunner's stdin is no terminal
        result = run_cli("deploy", str(THREE_NODES), "--endpoint-url", aws.endpoint_url)
        assert result.exit_code == 2
        assert "no terminal to confirm the change sets on, and nothing was created" in (
            result.stderr
        )
        for node in cluster.nodes:
            assert client(aws, node, "cloudformation").describe_stacks()["Stacks"] == []


def test_the_emulator_cli_hint_acts_in_the_nodes_account_and_region(
    cluster: Cluster, tmp_path: Path
) -> None:
    node = cluster.nodes[1]  # not the emulator's default account
    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        hint = emulator_cli_hint(aws.endpoint_url, [node, cluster.nodes[0]])
        commands = [line.strip() for line in hint if line.startswith("  ")]
        assert commands[0].endswith(f"AWS_DEFAULT_REGION={node.region}")
        assert f"arn:aws:iam::{node.account}:role/" in commands[1]
        assert commands[2] == f"aws --endpoint-url {aws.endpoint_url} cloudformation list-stacks"
        # the same calls through boto3: the printed keys, role and region land in the account
        keys = dict(part.split("=", 1) for part in commands[0].removeprefix("export ").split())
        role = re.search(r"--role-arn (\S+)", commands[1])
        assert role is not None
        sts = boto3.client(
            "sts",
            endpoint_url=aws.endpoint_url,
            region_name=keys["AWS_DEFAULT_REGION"],
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        )
        credentials = sts.assume_role(RoleArn=role.group(1), RoleSessionName="cli")["Credentials"]
        assumed = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=keys["AWS_DEFAULT_REGION"],
        )
        identity = assumed.client("sts", endpoint_url=aws.endpoint_url).get_caller_identity()
        assert identity["Account"] == node.account
        zones = assumed.client("route53", endpoint_url=aws.endpoint_url).list_hosted_zones()
        assert [z["Id"].split("/")[-1] for z in zones["HostedZones"]] == [node.hosted_zone_id]
        if shutil.which("aws") is None:
            return  # the AWS CLI is not installed here; the boto3 calls above stand for it
        script = "\n".join(
            [*commands[:2], f"aws --endpoint-url {aws.endpoint_url} sts get-caller-identity"]
        )
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        ran = subprocess.run(
            ["/bin/bash", "-ec", script],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["Account"] == node.account


def test_a_declined_update_leaves_no_change_set(cluster: Cluster) -> None:
    from tsm_infra.plan import deploy_plan
    from tsm_infra.run import Options, execute
    from tsm_infra.templates import template_body

    def changed_kms(kind: str) -> str:
        body = json.loads(template_body(kind))
        if kind == "kms":  # one more output: an update of every KMS stack
            body["Outputs"]["Rehearsed"] = {"Value": "yes"}
        return json.dumps(body, separators=(",", ":"))

    plan = deploy_plan(cluster)
    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        connector = Connector(endpoint_url=aws.endpoint_url)
        first = execute(plan, connector, options=Options(poll_interval=0.01))
        assert first.ok, first.to_dict()
        declined = execute(
            plan,
            connector,
            prompt=lambda question, details: False,
            options=Options(poll_interval=0.01),
            template_body=changed_kms,
        )
        assert [o.result for o in declined.outcomes] == ["declined"] * 3, declined.outcomes[
            0
        ].reason
        for node in cluster.nodes:
            cfn = client(aws, node, "cloudformation")
            name = f"tsm-{cluster.name}-node{node.index}-kms"
            left = cfn.list_change_sets(StackName=name)["Summaries"]
            # the executed create stays listed, as in AWS; the declined one is gone
            assert [
                c["ExecutionStatus"] for c in left if c["ExecutionStatus"] != "EXECUTE_COMPLETE"
            ] == []
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
            assert stack["StackStatus"] == "CREATE_COMPLETE"
            assert "Rehearsed" not in {o["OutputKey"] for o in stack.get("Outputs", [])}
