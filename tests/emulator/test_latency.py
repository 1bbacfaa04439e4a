"""The latency model: stacks stay in progress and resources complete in dependency order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator.stacks import client
from tsm_infra import durations
from tsm_infra.emulator import EmulatorError, LocalAws
from tsm_infra.spec import Cluster, Node

# SSM parameters take 5 s on AWS: at this scale a chain of three takes 1.5 s here
SCALE = 0.1
STEP = durations.TYPICAL["AWS::SSM::Parameter"].create * SCALE


def _parameter(name: str, value: Any) -> dict[str, Any]:
    properties = {"Name": f"/latency/{name}", "Type": "String", "Value": value}
    return {"Type": "AWS::SSM::Parameter", "Properties": properties}


# First <- Second <- Third, and Apart needs nothing
CHAIN = {
    "Resources": {
        "Third": _parameter("third", {"Fn::GetAtt": ["Second", "Value"]}),
        "Second": _parameter("second", {"Fn::Sub": "${First}-2"}),
        "First": _parameter("first", "one"),
        "Apart": _parameter("apart", "alone"),
    },
    "Outputs": {"Last": {"Value": {"Ref": "Third"}}},
}


@pytest.fixture
def node(cluster: Cluster) -> Node:
    return cluster.nodes[0]


@pytest.fixture
def modelled() -> Iterator[LocalAws]:
    local = LocalAws(latency_scale=SCALE)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _create(cfn: Any, name: str, template: dict[str, Any]) -> str:
    made = cfn.create_change_set(
        StackName=name,
        ChangeSetName=f"{name}-1",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(template),
    )
    return str(made["Id"])


def _until(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("not reached in time")


def _stack(cfn: Any, name: str) -> dict[str, Any]:
    return dict(cfn.describe_stacks(StackName=name)["Stacks"][0])


def _completions(cfn: Any, name: str) -> list[str]:
    """Logical ids in the order their CREATE_COMPLETE events happened."""
    events = cfn.describe_stack_events(StackName=name)["StackEvents"][::-1]
    return [
        e["LogicalResourceId"]
        for e in events
        if e["ResourceStatus"] == "CREATE_COMPLETE"
        and e["ResourceType"] != "AWS::CloudFormation::Stack"
    ]


def test_a_created_stack_is_in_progress_then_complete_in_dependency_order(
    modelled: LocalAws, node: Node
) -> None:
    cfn = client(modelled.endpoint_url, node, "cloudformation")
    change_set = _create(cfn, "chain", CHAIN)
    described = cfn.describe_change_set(ChangeSetName=change_set)
    assert described["Status"] == "CREATE_IN_PROGRESS"
    with pytest.raises(cfn.exceptions.InvalidChangeSetStatusException):
        cfn.execute_change_set(ChangeSetName=change_set)
    _until(lambda: cfn.describe_change_set(ChangeSetName=change_set)["Status"] == "CREATE_COMPLETE")

    started = time.monotonic()
    cfn.execute_change_set(ChangeSetName=change_set)
    seen: list[tuple[float, dict[str, str]]] = []

    def complete() -> bool:
        stack = _stack(cfn, "chain")
        resources = cfn.describe_stack_resources(StackName="chain")["StackResources"]
        seen.append(
            (
                time.monotonic() - started,
                {r["LogicalResourceId"]: r["ResourceStatus"] for r in resources},
            )
        )
        if stack["StackStatus"] == "CREATE_IN_PROGRESS":
            assert "Outputs" not in stack
            return False
        return True

    _until(complete)
    elapsed = time.monotonic() - started
    assert 3 * STEP <= elapsed < 3 * STEP + 5.0  # the machine may be busy
    stack = _stack(cfn, "chain")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert [o["OutputKey"] for o in stack["Outputs"]] == ["Last"]

    # observed in progress, with not every resource complete yet
    in_progress = [resources for _, resources in seen[:-1]]
    assert in_progress and set(in_progress[0].values()) != {"CREATE_COMPLETE"}
    for resources in [r for _, r in seen]:
        # a resource completes only after what it needs has completed
        if resources.get("Second") == "CREATE_COMPLETE":
            assert resources["First"] == "CREATE_COMPLETE"
        if resources.get("Third") == "CREATE_COMPLETE":
            assert resources["Second"] == "CREATE_COMPLETE"
        if "Third" in resources:  # it starts only once Second is complete
            assert resources["Second"] == "CREATE_COMPLETE"
    order = _completions(cfn, "chain")
    assert order.index("First") < order.index("Second") < order.index("Third")
    assert set(order) == {"First", "Second", "Third", "Apart"}
    # and, the run over, each resource's timestamp is its modelled completion
    resources = cfn.describe_stack_resources(StackName="chain")["StackResources"]
    when = {r["LogicalResourceId"]: r["Timestamp"] for r in resources}
    assert when["First"] < when["Second"] < when["Third"]
    assert abs((when["Second"] - when["First"]).total_seconds() - STEP) < 0.01


def test_without_the_model_everything_is_at_once(node: Node) -> None:
    with LocalAws() as local:
        cfn = client(local.endpoint_url, node, "cloudformation")
        change_set = _create(cfn, "chain", CHAIN)
        assert cfn.describe_change_set(ChangeSetName=change_set)["Status"] == "CREATE_COMPLETE"
        cfn.execute_change_set(ChangeSetName=change_set)
        assert _stack(cfn, "chain")["StackStatus"] == "CREATE_COMPLETE"
        resources = cfn.describe_stack_resources(StackName="chain")["StackResources"]
        assert {r["ResourceStatus"] for r in resources} == {"CREATE_COMPLETE"}
        assert len(resources) == 4


def test_a_deleted_stack_is_deleting_until_its_resources_are_gone(
    modelled: LocalAws, node: Node
) -> None:
    cfn = client(modelled.endpoint_url, node, "cloudformation")
    change_set = _create(cfn, "chain", CHAIN)
    _until(lambda: cfn.describe_change_set(ChangeSetName=change_set)["Status"] == "CREATE_COMPLETE")
    cfn.execute_change_set(ChangeSetName=change_set)
    _until(lambda: _stack(cfn, "chain")["StackStatus"] == "CREATE_COMPLETE")

    cfn.delete_stack(StackName="chain")
    assert _stack(cfn, "chain")["StackStatus"] == "DELETE_IN_PROGRESS"
    first = {
        r["LogicalResourceId"]: r["ResourceStatus"]
        for r in cfn.describe_stack_resources(StackName="chain")["StackResources"]
    }
    # deletion goes the other way: Third (needed by nothing) first, First last
    assert first["Third"] == "DELETE_IN_PROGRESS" and first["First"] == "CREATE_COMPLETE"

    def gone() -> bool:
        try:
            cfn.describe_stacks(StackName="chain")
        except cfn.exceptions.ClientError as exc:
            return "does not exist" in str(exc)
        return False

    _until(gone)
    events = cfn.describe_stack_events(StackName=cfn.list_stacks()["StackSummaries"][0]["StackId"])
    deleted = [
        e["LogicalResourceId"]
        for e in events["StackEvents"][::-1]
        if e["ResourceStatus"] == "DELETE_COMPLETE"
    ]
    assert deleted.index("Third") < deleted.index("Second") < deleted.index("First")


def test_a_failure_shows_at_the_failing_resources_modelled_time(
    modelled: LocalAws, node: Node
) -> None:
    template = {
        "Resources": {
            "First": _parameter("first", "one"),
            # a RAM share of a parameter of another account fails (ram-share refuses it)
            "Share": {
                "Type": "AWS::RAM::ResourceShare",
                "DependsOn": "First",
                "Properties": {
                    "Name": "bad",
                    "Principals": ["111111111111"],
                    "ResourceArns": ["arn:aws:ssm:eu-west-1:999999999999:parameter/x"],
                },
            },
        }
    }
    cfn = client(modelled.endpoint_url, node, "cloudformation")
    change_set = _create(cfn, "failing", template)
    _until(lambda: cfn.describe_change_set(ChangeSetName=change_set)["Status"] == "CREATE_COMPLETE")
    started = time.monotonic()
    cfn.execute_change_set(ChangeSetName=change_set)
    assert _stack(cfn, "failing")["StackStatus"] == "CREATE_IN_PROGRESS"
    _until(lambda: _stack(cfn, "failing")["StackStatus"] != "CREATE_IN_PROGRESS")
    share = durations.TYPICAL["AWS::RAM::ResourceShare"].create * SCALE
    assert time.monotonic() - started >= STEP + share
    stack = _stack(cfn, "failing")
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert "Share" in stack["StackStatusReason"]


def test_a_scale_must_be_positive() -> None:
    with pytest.raises(EmulatorError, match="not a positive number"):
        LocalAws(latency_scale=0)


def test_an_update_keeps_the_old_outputs_until_it_ends(modelled: LocalAws, node: Node) -> None:
    cfn = client(modelled.endpoint_url, node, "cloudformation")
    change_set = _create(cfn, "chain", CHAIN)
    _until(lambda: cfn.describe_change_set(ChangeSetName=change_set)["Status"] == "CREATE_COMPLETE")
    cfn.execute_change_set(ChangeSetName=change_set)
    _until(lambda: _stack(cfn, "chain")["StackStatus"] == "CREATE_COMPLETE")
    outputs = _stack(cfn, "chain")["Outputs"]

    changed = json.loads(json.dumps(CHAIN))
    changed["Resources"]["Apart"]["Properties"]["Value"] = "moved"
    update = cfn.create_change_set(
        StackName="chain",
        ChangeSetName="chain-2",
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(changed),
    )["Id"]
    _until(lambda: cfn.describe_change_set(ChangeSetName=update)["Status"] == "CREATE_COMPLETE")
    cfn.execute_change_set(ChangeSetName=update)
    stack = _stack(cfn, "chain")
    assert stack["StackStatus"] == "UPDATE_IN_PROGRESS"
    assert stack["Outputs"] == outputs
    statuses = {
        r["LogicalResourceId"]: r["ResourceStatus"]
        for r in cfn.describe_stack_resources(StackName="chain")["StackResources"]
    }
    assert statuses == {
        "First": "CREATE_COMPLETE",
        "Second": "CREATE_COMPLETE",
        "Third": "CREATE_COMPLETE",
        "Apart": "UPDATE_IN_PROGRESS",
    }
    with pytest.raises(cfn.exceptions.ClientError, match="UPDATE_IN_PROGRESS"):
        cfn.delete_stack(StackName="chain")
    _until(lambda: _stack(cfn, "chain")["StackStatus"] == "UPDATE_COMPLETE")
    ssm = client(modelled.endpoint_url, node, "ssm")
    assert ssm.get_parameter(Name="/latency/apart")["Parameter"]["Value"] == "moved"


def test_the_report_names_the_model_only_when_it_is_on() -> None:
    plain, modelled = LocalAws().emulated(), LocalAws(latency_scale=0.25).emulated()
    extra = [line for line in modelled if line not in plain]
    assert len(modelled) == len(plain) + 1
    assert len(extra) == 1 and "times 0.25" in extra[0]
