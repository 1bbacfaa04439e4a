"""One stack through change sets, against moto's CloudFormation (plus a stub for replacement)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tsm_infra.aws import local_session
from tsm_infra.emulator import LocalAws
from tsm_infra.stacks import Change, Review, StackError, StackOps, state_of

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _template(value: str = "v1", extra: bool = False) -> str:
    resources: dict[str, Any] = {
        "Param": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/t/p", "Type": "String", "Value": {"Ref": "Value"}},
        }
    }
    if extra:
        resources["Kept"] = {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "t/s"}}
    return json.dumps(
        {
            "Parameters": {"Value": {"Type": "String", "Default": value}},
            "Resources": resources,
            "Outputs": {"Name": {"Value": {"Ref": "Param"}}},
        }
    )


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalAws]:
    with LocalAws() as aws:
        yield aws


@pytest.fixture
def ops(emulator: LocalAws, request: pytest.FixtureRequest) -> StackOps:
    # a fresh account per test keeps the tests apart on one emulator
    account = f"{abs(hash(request.node.name)) % 10**12:012d}"
    cfn = local_session(account, "eu-west-1", emulator.endpoint_url).client("cloudformation")
    return StackOps(cfn, poll_interval=0.0, sleep=lambda s: None)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (None, "absent"),
        ("DELETE_COMPLETE", "absent"),
        ("CREATE_COMPLETE", "complete"),
        ("UPDATE_ROLLBACK_COMPLETE", "complete"),
        ("IMPORT_ROLLBACK_COMPLETE", "complete"),
        ("CREATE_FAILED", "resumable"),
        ("UPDATE_FAILED", "resumable"),
        ("DELETE_FAILED", "failed"),
        ("ROLLBACK_COMPLETE", "rollback_complete"),
        ("REVIEW_IN_PROGRESS", "review"),
        ("UPDATE_ROLLBACK_FAILED", "failed"),
        ("CREATE_IN_PROGRESS", "in_progress"),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "in_progress"),
    ],
)
def test_statuses_reduce_to_states(status: str | None, state: str) -> None:
    assert state_of(status) == state


def test_create_then_no_change_update_is_empty(ops: StackOps) -> None:
    assert ops.describe("s") is None
    review = ops.prepare("s", _template(), {"Value": "a"}, {"k": "v"}, create=True)
    assert review.create and not review.empty
    assert [c.action for c in review.changes] == ["Add"]
    info = ops.execute(review)
    assert info.state == "complete"
    assert info.outputs == {"Name": "/t/p"}
    again = ops.prepare("s", _template(), {"Value": "a"}, {"k": "v"}, create=False)
    assert again.empty
    # the empty change set was deleted, so nothing is left to execute by mistake
    summaries = ops.cfn.list_change_sets(StackName="s")["Summaries"]
    assert [s for s in summaries if s.get("ExecutionStatus") == "AVAILABLE"] == []


def test_removing_a_stateful_resource_is_refused(ops: StackOps) -> None:
    ops.execute(ops.prepare("s", _template(extra=True), {}, {}, create=True))
    review = ops.prepare("s", _template(), {}, {}, create=False)
    assert [(c.action, c.logical_id) for c in review.changes] == [("Remove", "Kept")]
    assert [c.logical_id for c in review.refused([])] == ["Kept"]
    assert review.refused(["Kept"]) == []
    ops.discard(review)
    assert ops.describe("s") is not None  # discarding an update leaves the stack alone


def test_discarding_a_create_removes_the_empty_stack(ops: StackOps) -> None:
    review = ops.prepare("s", _template(), {}, {}, create=True)
    ops.discard(review)
    assert ops.describe("s") is None


def test_delete_waits_until_gone_and_tolerates_absence(ops: StackOps) -> None:
    ops.execute(ops.prepare("s", _template(), {}, {}, create=True))
    ops.delete("s")
    assert ops.describe("s") is None
    ops.delete("never-created")


def test_replacement_of_a_stateful_resource_is_refused() -> None:
    cfn = _stubbable()
    change = {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "Database",
            "ResourceType": "AWS::RDS::DBInstance",
            "Replacement": "True",
        },
    }
    other = {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "NodeGroup",
            "ResourceType": "AWS::AutoScaling::AutoScalingGroup",
            "Replacement": "True",
        },
    }
    with Stubber(cfn) as stub:
        stub.add_response("create_change_set", {"Id": "cs-1", "StackId": "st"})
        stub.add_response(
            "describe_change_set",
            {"Status": "CREATE_COMPLETE", "Changes": [change], "NextToken": "n"},
        )
        stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": [other]})
        review = StackOps(cfn, sleep=lambda s: None).prepare("s", "{}", {}, {}, create=False)
    assert [c.logical_id for c in review.changes] == ["Database", "NodeGroup"]
    refused = review.refused([])
    assert [c.describe() for c in refused] == [
        "Modify Database (AWS::RDS::DBInstance), replacement True"
    ]
    assert review.refused(["Database"]) == []


def test_a_failed_stack_names_its_first_failed_resource() -> None:
    cfn = _stubbable()
    stack = {
        "StackName": "s",
        "StackId": "arn:st",
        "StackStatus": "ROLLBACK_COMPLETE",
        "CreationTime": WHEN,
    }
    events = [  # newest first, as CloudFormation lists them
        _event("s", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", ""),
        _event("Later", "AWS::EC2::VPC", "CREATE_FAILED", "Resource creation cancelled"),
        _event("Record", "AWS::Route53::RecordSet", "CREATE_FAILED", "zone Z1 not found"),
    ]
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [stack]})
        stub.add_response("describe_stack_events", {"StackEvents": events})
        with pytest.raises(StackError) as caught:
            StackOps(cfn, sleep=lambda s: None).wait("s")
    assert str(caught.value) == (
        "s: ROLLBACK_COMPLETE: Record (AWS::Route53::RecordSet): zone Z1 not found"
    )


def test_waiting_gives_up_with_advice() -> None:
    cfn = _stubbable()
    stack = {
        "StackName": "s",
        "StackStatus": "CREATE_IN_PROGRESS",
        "CreationTime": WHEN,
    }
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with Stubber(cfn) as stub:
        for _ in range(3):
            stub.add_response("describe_stacks", {"Stacks": [stack]})
        ops = StackOps(cfn, poll_interval=10, timeout=15, sleep=sleep, clock=lambda: now[0])
        with pytest.raises(StackError, match="gave up waiting for the stack after 15 s"):
            ops.wait("s")


def _stubbable() -> Any:
    """A CloudFormation client for botocore's Stubber; it never sends a request."""
    return boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def _event(logical: str, kind: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "StackId": "arn:st",
        "EventId": f"{logical}-{status}",
        "StackName": "s",
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "Timestamp": WHEN,
    }


def test_review_describes_changes() -> None:
    review = Review("s", "cs", False, (Change("Add", "A", "AWS::SNS::Topic"),))
    assert [c.describe() for c in review.changes] == ["Add A (AWS::SNS::Topic)"]
    assert not review.empty


def test_a_deployed_stack_reads_back_its_template_and_resources(ops: StackOps) -> None:
    ops.execute(ops.prepare("s", _template("v2"), {}, {}, create=True))
    template = ops.template("s")
    assert template["Parameters"]["Value"]["Default"] == "v2"
    assert ops.resource_count("s") == 1
    assert ops.physical_id("s", "Param") == "/t/p"
    assert ops.metadata("s", "Param") == {}
    with pytest.raises(StackError, match="s: cannot read its resource Nothing"):
        ops.physical_id("s", "Nothing")
