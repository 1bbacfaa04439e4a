"""The duration model: the schedule of one template and the critical path of a cluster."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tsm_infra.durations import (
    CHANGE_SET,
    CHANGE_SET_SECONDS,
    CREATION_POLICY_ASG,
    DEFAULT,
    MULTI_AZ_DATABASE,
    TYPICAL,
    critical_path,
    schedule,
)
from tsm_infra.plan import JoinedRefs, OutputRef, build_plan
from tsm_infra.resource_graph import dependencies
from tsm_infra.spec import load_spec
from tsm_infra.templates import TEMPLATE_FILES, template_body, template_interface

ROLE = TYPICAL["AWS::IAM::Role"].create
KEY = TYPICAL["AWS::KMS::Key"].create
SECRET = TYPICAL["AWS::SecretsManager::Secret"].create
PROFILE = TYPICAL["AWS::IAM::InstanceProfile"].create
DATABASE = TYPICAL["AWS::RDS::DBInstance"].create
VPC = TYPICAL["AWS::EC2::VPC"].create


def chain_template() -> dict[str, Any]:
    """Role -> key (GetAtt) -> secret (Sub ${Key.Arn}) -> an unlisted type (DependsOn), and a
    ForEach of rules on a security group, one conditional resource and one Fn::If."""
    return {
        "Parameters": {
            "Rules": {"Type": "CommaDelimitedList", "Default": "0,1"},
            "WithExtra": {"Type": "String", "Default": "false"},
        },
        "Conditions": {"Extra": {"Fn::Equals": [{"Ref": "WithExtra"}, "true"]}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role"},
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {"KeyPolicy": {"Principal": {"Fn::GetAtt": ["Role", "Arn"]}}},
            },
            "Secret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {"Description": {"Fn::Sub": "under ${Key.Arn} in ${AWS::Region}"}},
            },
            "Last": {"Type": "Custom::Other", "DependsOn": "Secret"},
            "Group": {"Type": "AWS::EC2::SecurityGroup"},
            "Fn::ForEach::Rules": [
                "Index",
                {"Ref": "Rules"},
                {
                    "Rule${Index}": {
                        "Type": "AWS::EC2::SecurityGroupIngress",
                        "Properties": {
                            "GroupId": {"Ref": "Group"},
                            "Other": {"Fn::If": ["Extra", {"Ref": "Extra"}, {"Ref": "Role"}]},
                        },
                    }
                },
            ],
            "Extra": {"Type": "AWS::EC2::VPC", "Condition": "Extra"},
        },
    }


def test_schedule_follows_the_dependency_order_scaled() -> None:
    timeline = schedule(chain_template(), 0.5)
    assert timeline["Role"] == (0.0, ROLE * 0.5)
    assert timeline["Key"] == (ROLE * 0.5, (ROLE + KEY) * 0.5)
    assert timeline["Secret"] == ((ROLE + KEY) * 0.5, (ROLE + KEY + SECRET) * 0.5)
    assert timeline["Last"][0] == timeline["Secret"][1]
    assert timeline["Last"][1] - timeline["Last"][0] == DEFAULT.create * 0.5
    # the ForEach made two rules; the false Fn::If branch names Role, the condition's resource
    # is not created at all
    assert set(timeline) == {"Role", "Key", "Secret", "Last", "Group", "Rule0", "Rule1"}
    assert timeline["Rule1"][0] == max(timeline["Group"][1], timeline["Role"][1])


def test_parameters_decide_the_foreach_the_conditions_and_the_if() -> None:
    needs = dependencies(chain_template(), {"Rules": "7", "WithExtra": "true"})
    assert set(needs) == {"Role", "Key", "Secret", "Last", "Group", "Rule7", "Extra"}
    assert needs["Rule7"] == {"Group", "Extra"}


def test_deleting_starts_with_what_nothing_else_needs() -> None:
    timeline = schedule(chain_template(), 1.0, operation="delete")
    assert timeline["Last"][0] == 0.0
    assert timeline["Secret"][0] == timeline["Last"][1]
    assert timeline["Key"][1] - timeline["Key"][0] == TYPICAL["AWS::KMS::Key"].delete
    assert timeline["Role"][0] == max(timeline[name][1] for name in ("Key", "Rule0", "Rule1"))


def test_multi_az_and_creation_policy_change_the_duration() -> None:
    template = {
        "Parameters": {"MultiAz": {"Type": "String", "Default": "false"}},
        "Resources": {
            "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"MultiAZ": {"Ref": "MultiAz"}}},
            "Group": {"Type": "AWS::AutoScaling::AutoScalingGroup"},
            "Waited": {"Type": "AWS::AutoScaling::AutoScalingGroup", "CreationPolicy": {}},
        },
    }
    assert schedule(template, 1.0)["Db"] == (0.0, DATABASE)
    assert schedule(template, 1.0, parameters={"MultiAz": "true"})["Db"][1] == (
        MULTI_AZ_DATABASE.create
    )
    timeline = schedule(template, 1.0)
    assert timeline["Group"][1] == TYPICAL["AWS::AutoScaling::AutoScalingGroup"].create
    assert timeline["Waited"][1] == CREATION_POLICY_ASG.create


def test_a_dependency_cycle_is_named() -> None:
    template = {
        "Resources": {
            "A": {"Type": "AWS::IAM::Role", "DependsOn": "B"},
            "B": {"Type": "AWS::IAM::Role", "Properties": {"X": {"Ref": "A"}}},
        }
    }
    with pytest.raises(ValueError, match="dependency cycle"):
        schedule(template, 1.0)


@dataclass(frozen=True)
class FakeStack:
    """The parts of a plan's stack step the critical path reads."""

    kind: str
    stack_name: str
    parameters: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeAction:
    """A non-stack step (accepting invitations): it has no template."""

    kind: str = "share"


TWO_STACKS: dict[str, dict[str, Any]] = {
    "keys": {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role"},
            "Profile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"R": {"Ref": "Role"}}},
            "Key": {"Type": "AWS::KMS::Key"},
        },
        "Outputs": {"KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}},
    },
    "db": {
        "Parameters": {"KeyArn": {"Type": "String"}, "Peers": {"Type": "String"}},
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC"},
            "Db": {
                "Type": "AWS::RDS::DBInstance",
                "Properties": {"KmsKeyId": {"Ref": "KeyArn"}, "Vpc": {"Ref": "Vpc"}},
            },
            "Rule": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {"P": {"Ref": "Peers"}},
            },
        },
    },
}


def test_two_stacks_by_hand() -> None:
    steps = [
        FakeStack("keys", "k"),
        FakeAction(),
        FakeStack(
            "db",
            "d",
            {"KeyArn": OutputRef("k", "KeyArn"), "Peers": JoinedRefs((OutputRef("k", "KeyArn"),))},
        ),
    ]
    path = critical_path(steps, TWO_STACKS)
    keys_done = CHANGE_SET_SECONDS + ROLE + PROFILE
    assert path.seconds == keys_done + CHANGE_SET_SECONDS + VPC + DATABASE
    assert [(link.stack, link.name) for link in path.chain] == [
        ("k", CHANGE_SET),
        ("k", "Role"),
        ("k", "Profile"),
        ("d", CHANGE_SET),
        ("d", "Vpc"),
        ("d", "Db"),
    ]
    assert path.stacks == {
        "k": (0.0, keys_done),
        "d": (keys_done, keys_done + CHANGE_SET_SECONDS + VPC + DATABASE),
    }
    # without stack boundaries the database waits only for the key behind the output (which
    # takes longer than its own stack's change set and VPC)
    assert KEY > VPC
    assert path.resource_seconds == CHANGE_SET_SECONDS + KEY + DATABASE
    assert [(link.stack, link.name) for link in path.resource_chain] == [
        ("k", CHANGE_SET),
        ("k", "Key"),
        ("d", "Db"),
    ]
    assert critical_path(steps, TWO_STACKS, scale=0.01).seconds == pytest.approx(
        path.seconds * 0.01
    )


def test_the_three_node_example_runs_kms_then_core_and_ends_in_the_node_group(repo: Path) -> None:
    cluster = load_spec(repo / "examples/three-nodes.yaml")
    plan = build_plan(cluster, {kind: template_interface(kind) for kind in TEMPLATE_FILES})
    templates = {kind: json.loads(template_body(kind)) for kind in TEMPLATE_FILES}
    path = critical_path(plan.steps(), templates)

    def makespan(step: Any) -> float:
        literal = {k: v for k, v in step.parameters.items() if isinstance(v, str)}
        return max(
            end for _, end in schedule(templates[step.kind], 1.0, parameters=literal).values()
        )

    kms = max(makespan(step) for step in plan.steps() if step.kind == "kms")
    core = max(makespan(step) for step in plan.steps() if step.kind == "core")
    assert path.seconds == pytest.approx(2 * CHANGE_SET_SECONDS + kms + core)
    kinds = [link.stack.rsplit("-", 1)[1] for link in path.chain]
    first_core = kinds.index("core")
    assert set(kinds[:first_core]) == {"kms"} and set(kinds[first_core:]) == {"core"}
    assert path.chain[0].name == CHANGE_SET and path.chain[first_core].name == CHANGE_SET
    assert path.chain[-1].name == "NodeGroup"
    assert "Database" in [link.name for link in path.chain]
    # multi_az: true in the example
    database = next(link for link in path.chain if link.name == "Database")
    assert database.end - database.start == MULTI_AZ_DATABASE.create
    assert path.resource_seconds < path.seconds
    assert path.resource_chain[-1].name == "NodeGroup"
