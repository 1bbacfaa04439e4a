#!/usr/bin/env python3
"""The baseline deploy: one stack after another with plain boto3, as `aws cloudformation deploy`.

The baseline (a) of performance.md section 2, on the embedded emulator: every KMS stack in plan
order, then each account accepts its peers' RAM share invitations (one listing per region), then
every Core stack. Each stack goes DescribeStacks, CreateChangeSet, the change-set waiter,
ExecuteChangeSet (DisableRollback), the stack waiter, DescribeStacks for its outputs. It sends
what tsm-infra sends: the same template bodies, parameters (outputs filled in from the stacks
before), tags (with the template's SHA-256) and capabilities. Only the deployer differs, so
T(tsm-infra) / T(this) measures tsm-infra's client overhead.

    .venv/bin/python bench/sequential.py [--nodes 3]

Figures, not assertions. `deploy_scaling.py` runs it for the ratio it prints.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

import boto3
from botocore.exceptions import WaiterError
from clusters import POLL_SECONDS, SCALE, fresh_emulator, make_cluster, plan_of

from tsm_infra.aws import LOCAL_ACCESS_KEY, LOCAL_ROLE_NAME, LOCAL_SECRET_KEY, CallCounter
from tsm_infra.contract import TAG_TEMPLATE
from tsm_infra.plan import JoinedRefs, OutputRef, ParamValue, Plan, ShareStep, StackStep
from tsm_infra.stacks import CAPABILITIES
from tsm_infra.templates import TEMPLATE_FILES, template_body

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import WaiterConfigTypeDef
    from mypy_boto3_ram import RAMClient


class Accounts:
    """One plain boto3 session per (account, region), by AssumeRole into the emulated account."""

    def __init__(self, endpoint_url: str, counter: CallCounter) -> None:
        self.endpoint_url = endpoint_url
        self.counter = counter
        self._sessions: dict[tuple[str, str], boto3.Session] = {}

    def session(self, account: str, region: str) -> boto3.Session:
        """The session acting as `account`, opened on first use."""
        if (account, region) not in self._sessions:
            base = boto3.Session(
                aws_access_key_id=LOCAL_ACCESS_KEY,
                aws_secret_access_key=LOCAL_SECRET_KEY,
                region_name=region,
            )
            sts = self.counter.attach(base.client("sts", endpoint_url=self.endpoint_url))
            role = f"arn:aws:iam::{account}:role/{LOCAL_ROLE_NAME}"
            credentials = sts.assume_role(RoleArn=role, RoleSessionName="sequential")["Credentials"]
            self._sessions[(account, region)] = boto3.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=region,
            )
        return self._sessions[(account, region)]

    def cloudformation(self, account: str, region: str) -> CloudFormationClient:
        """A counted CloudFormation client in the account."""
        client = self.session(account, region).client(
            "cloudformation", endpoint_url=self.endpoint_url
        )
        return self.counter.attach(client)

    def ram(self, account: str, home: str, region: str) -> RAMClient:
        """A counted RAM client in the account (opened from its home region's session)."""
        client = self.session(account, home).client(
            "ram", region_name=region, endpoint_url=self.endpoint_url
        )
        return self.counter.attach(client)


def rendered_bodies() -> dict[str, str]:
    """The template bodies tsm-infra sends, rendered once before anything is timed."""
    return {kind: template_body(kind) for kind in TEMPLATE_FILES}


def deploy_sequential(
    plan: Plan,
    bodies: Mapping[str, str],
    endpoint_url: str,
    *,
    counter: CallCounter,
    poll_interval: float,
) -> bool:
    """Deploy the plan's stacks one after another; True when every stack completed."""
    accounts = Accounts(endpoint_url, counter)
    outputs: dict[str, dict[str, str]] = {}
    steps = plan.steps()
    for step in (s for s in steps if s.kind == "kms"):
        outputs[step.stack_name] = _deploy_stack(accounts, step, bodies, outputs, poll_interval)
    for share in (s for s in plan.graph if isinstance(s, ShareStep)):
        _accept(accounts, share)
    for step in (s for s in steps if s.kind != "kms"):
        outputs[step.stack_name] = _deploy_stack(accounts, step, bodies, outputs, poll_interval)
    return all(outputs.values())


def _deploy_stack(
    accounts: Accounts,
    step: StackStep,
    bodies: Mapping[str, str],
    outputs: Mapping[str, Mapping[str, str]],
    delay: float,
) -> dict[str, str]:
    """One stack, as `aws cloudformation deploy` does it; its outputs ({} when it failed)."""
    cfn = accounts.cloudformation(step.account, step.region)
    body = bodies[step.kind]
    tags = {**step.tags, TAG_TEMPLATE: hashlib.sha256(body.encode()).hexdigest()}
    exists = _exists(cfn, step.stack_name)
    change_set = cfn.create_change_set(
        StackName=step.stack_name,
        ChangeSetName=f"sequential-{int(time.time() * 1000)}",
        ChangeSetType="UPDATE" if exists else "CREATE",
        TemplateBody=body,
        Parameters=[
            {"ParameterKey": name, "ParameterValue": _resolve(value, outputs)}
            for name, value in step.parameters.items()
        ],
        Capabilities=list(CAPABILITIES),
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )["Id"]
    # botocore sleeps whatever Delay holds; the stubs type it int, the bench polls sub-second
    waiter = cast("WaiterConfigTypeDef", {"Delay": delay, "MaxAttempts": 100_000})
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            StackName=step.stack_name,
            ChangeSetName=change_set,
            WaiterConfig=waiter,
        )
    except WaiterError:
        # no changes: `aws cloudformation deploy` deletes the empty change set and goes on
        cfn.delete_change_set(StackName=step.stack_name, ChangeSetName=change_set)
        return _outputs(cfn, step.stack_name)
    cfn.execute_change_set(
        StackName=step.stack_name, ChangeSetName=change_set, DisableRollback=True
    )
    try:
        if exists:
            cfn.get_waiter("stack_update_complete").wait(
                StackName=step.stack_name, WaiterConfig=waiter
            )
        else:
            cfn.get_waiter("stack_create_complete").wait(
                StackName=step.stack_name, WaiterConfig=waiter
            )
    except WaiterError:
        return {}
    return _outputs(cfn, step.stack_name)


def _exists(cfn: CloudFormationClient, name: str) -> bool:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError:
        return False
    return bool(stacks) and stacks[0]["StackStatus"] != "REVIEW_IN_PROGRESS"


def _outputs(cfn: CloudFormationClient, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}


def _resolve(value: ParamValue, outputs: Mapping[str, Mapping[str, str]]) -> str:
    if isinstance(value, OutputRef):
        return outputs[value.stack][value.output]
    if isinstance(value, JoinedRefs):
        return ",".join(outputs[ref.stack][ref.output] for ref in value.refs)
    return value


def _accept(accounts: Accounts, share: ShareStep) -> None:
    """Accept, in one account, every pending invitation, listing each region once."""
    for region in sorted({invitation.region for invitation in share.expected}):
        ram = accounts.ram(share.account, share.node.region, region)
        listed = ram.get_resource_share_invitations()["resourceShareInvitations"]
        for invitation in listed:
            if invitation.get("status") == "PENDING":
                ram.accept_resource_share_invitation(
                    resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
                )


def main(argv: Sequence[str]) -> int:
    """Deploy a fresh cluster of `--nodes` nodes sequentially into a fresh emulator."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args(argv)
    cluster = make_cluster(args.nodes)
    plan = plan_of(cluster)
    bodies = rendered_bodies()
    with fresh_emulator(cluster) as endpoint:
        counter = CallCounter()
        started = time.perf_counter()
        ok = deploy_sequential(
            plan, bodies, endpoint, counter=counter, poll_interval=POLL_SECONDS * SCALE
        )
        seconds = time.perf_counter() - started
    print(f"{args.nodes} nodes sequential: {seconds:.2f} s, {counter.total()} API calls, ok={ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
