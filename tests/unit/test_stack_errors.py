"""StackOps tells AWS errors apart by their code, and reads what other modules used to read.

Against botocore's Stubber (real CloudFormation shapes, no request sent): a missing stack (the
one case CloudFormation says only in words), other errors, empty change sets, the deployed
template, a stack's resources and one resource's physical id and metadata.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from tsm_infra.aws import AWS_ERRORS
from tsm_infra.stacks import StackError, StackOps, no_changes, stack_missing

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _client() -> Any:
    return boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeStacks")


def _ops(cfn: Any) -> StackOps:
    return StackOps(cfn, poll_interval=0.0, sleep=lambda s: None)


@pytest.mark.parametrize(
    ("code", "message", "missing"),
    [
        ("ValidationError", "Stack with id tsm-a-node0-kms does not exist", True),
        ("ValidationError", "1 validation error detected: Value at 'stackName'", False),
        ("AccessDenied", "User is not authorized; the stack does not exist for you", False),
        ("Throttling", "Rate exceeded", False),
    ],
)
def test_a_missing_stack_is_a_validation_error_saying_so(
    code: str, message: str, missing: bool
) -> None:
    assert stack_missing(_error(code, message)) is missing


def test_describe_answers_none_for_a_missing_stack_and_names_other_errors() -> None:
    cfn = _client()
    with Stubber(cfn) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id s does not exist"
        )
        stub.add_client_error("describe_stacks", "AccessDenied", "not authorized")
        assert _ops(cfn).describe("s") is None
        with pytest.raises(StackError) as caught:
            _ops(cfn).describe("s")
    assert str(caught.value) == "s: cannot describe the stack: AccessDenied: not authorized"


def test_aws_errors_are_answers_and_failures_of_botocore_not_bugs() -> None:
    assert isinstance(_error("X", "y"), AWS_ERRORS)
    assert isinstance(EndpointConnectionError(endpoint_url="http://x"), AWS_ERRORS)
    assert not isinstance(KeyError("StackStatus"), AWS_ERRORS)


def test_a_bug_is_not_reported_as_an_aws_error() -> None:
    class Broken:
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            return {"Stacks": [{"StackName": StackName}]}  # no StackStatus

    with pytest.raises(KeyError):
        _ops(Broken()).describe("s")


@pytest.mark.parametrize(
    ("reason", "empty"),
    [
        ("The submitted information didn't contain changes. Submit different information.", True),
        ("No updates are to be performed.", True),
        ("Template format error: Unresolved resource dependencies [X]", False),
    ],
)
def test_a_change_set_without_changes_is_told_by_its_words(reason: str, empty: bool) -> None:
    assert no_changes(reason) is empty


def test_an_empty_change_set_is_deleted_and_reported_empty() -> None:
    cfn = _client()
    with Stubber(cfn) as stub:
        stub.add_response("create_change_set", {"Id": "cs-1", "StackId": "st"})
        stub.add_response(
            "describe_change_set",
            {
                "Status": "FAILED",
                "StatusReason": "The submitted information didn't contain changes.",
            },
        )
        stub.add_response("delete_change_set", {})
        review = _ops(cfn).prepare("s", "{}", {}, {}, create=False)
        stub.assert_no_pending_responses()
    assert review.empty


def test_an_update_refused_for_no_changes_is_empty() -> None:
    cfn = _client()
    with Stubber(cfn) as stub:
        stub.add_client_error(
            "create_change_set", "ValidationError", "No updates are to be performed."
        )
        assert _ops(cfn).prepare("s", "{}", {}, {}, create=False).empty


def test_a_refused_change_set_names_the_stack_and_the_error() -> None:
    cfn = _client()
    with Stubber(cfn) as stub:
        stub.add_client_error("create_change_set", "InsufficientCapabilitiesException", "needs IAM")
        with pytest.raises(StackError) as caught:
            _ops(cfn).prepare("s", "{}", {}, {}, create=True)
    assert str(caught.value) == (
        "s: cannot create a change set: InsufficientCapabilitiesException: needs IAM"
    )


@pytest.mark.parametrize(
    ("body", "database"),
    [
        (json.dumps({"Resources": {"Database": {"DeletionPolicy": "Snapshot"}}}), "Snapshot"),
        (
            "Resources:\n  Database:\n    DeletionPolicy: Retain\n    Properties:\n"
            "      Name: !Ref Name\n",
            "Retain",
        ),
    ],
)
def test_the_deployed_template_is_read_as_a_dict(body: str, database: str) -> None:
    cfn = _client()
    with Stubber(cfn) as stub:
        stub.add_response("get_template", {"TemplateBody": body})
        template = _ops(cfn).template("s")
    assert template["Resources"]["Database"]["DeletionPolicy"] == database


def test_an_unreadable_template_is_empty_and_an_unfetchable_one_an_error() -> None:
    cfn = _client()
    with Stubber(cfn) as stub:
        stub.add_response("get_template", {"TemplateBody": "[: not yaml"})
        stub.add_client_error("get_template", "AccessDenied", "no cloudformation:GetTemplate")
        assert _ops(cfn).template("s") == {}
        with pytest.raises(StackError, match="s: cannot read its template: AccessDenied"):
            _ops(cfn).template("s")


def _resource(logical: str, physical: str) -> dict[str, Any]:
    return {
        "LogicalResourceId": logical,
        "PhysicalResourceId": physical,
        "ResourceType": "AWS::EC2::LaunchTemplate",
        "Timestamp": WHEN,
        "ResourceStatus": "CREATE_COMPLETE",
    }


def test_resources_are_counted_and_one_is_read_by_its_logical_id() -> None:
    cfn = _client()
    detail = {
        **_resource("LaunchTemplate", "lt-123"),
        "LastUpdatedTimestamp": WHEN,
        "Metadata": json.dumps({"AWS::CloudFormation::Init": {"files": {}}}),
    }
    del detail["Timestamp"]
    with Stubber(cfn) as stub:
        stub.add_response(
            "describe_stack_resources",
            {"StackResources": [_resource("LaunchTemplate", "lt-123"), _resource("B", "b")]},
        )
        stub.add_response("describe_stack_resource", {"StackResourceDetail": detail})
        stub.add_response("describe_stack_resource", {"StackResourceDetail": detail})
        stub.add_client_error("describe_stack_resource", "ValidationError", "Resource X not found")
        ops = _ops(cfn)
        assert ops.resource_count("s") == 2
        assert ops.physical_id("s", "LaunchTemplate") == "lt-123"
        assert ops.metadata("s", "LaunchTemplate") == {"AWS::CloudFormation::Init": {"files": {}}}
        with pytest.raises(StackError, match="s: cannot read its resource X: ValidationError"):
            ops.physical_id("s", "X")
