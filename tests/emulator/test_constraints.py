"""The emulator refuses what AWS refuses: parameter constraints, sizes, names, unprepared zones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.emulator.stacks import CAPABILITIES, client, wait
from tsm_infra.emulator import LocalAws
from tsm_infra.emulator.constraints import TEMPLATE_BODY_BYTES, parameter_problem
from tsm_infra.emulator.limits import generated_name
from tsm_infra.spec import Cluster


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws() as aws:
        yield aws


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


# ------------------------------------------------------------------- parameter constraints (unit)


@pytest.mark.parametrize(
    ("slot", "value", "message"),
    [
        # the whole value must match, as CloudFormation's (Java) matches() does
        ({"AllowedPattern": "[a-z]+"}, "abc1", "Parameter 'P' must match pattern [a-z]+"),
        ({"AllowedPattern": "[a-z]+"}, "", "Parameter 'P' must match pattern [a-z]+"),
        ({"AllowedValues": ["a", "b"]}, "c", "Parameter 'P' must be one of AllowedValues"),
        ({"MinLength": 3}, "ab", "Parameter 'P' must contain at least 3 characters"),
        ({"MaxLength": 3}, "abcd", "Parameter 'P' must contain at most 3 characters"),
        ({"Type": "Number"}, "ten", "Parameter 'P' must be a number."),
        ({"Type": "Number", "MinValue": 7}, "6", "Parameter 'P' must be a number not less than 7"),
        (
            {"Type": "Number", "MaxValue": 30},
            "31",
            "Parameter 'P' must be a number not greater than 30",
        ),
        ({"Type": "Number", "AllowedValues": [1, 2]}, "3", "must be one of AllowedValues"),
        (
            {"Type": "CommaDelimitedList", "AllowedPattern": "[0-9]+"},
            "1,2,x",
            "Parameter 'P' must match pattern [0-9]+",
        ),
        ({"Type": "List<Number>"}, "1,x", "Parameter 'P' must be a number."),
        (
            {"AllowedPattern": "[a-z]+", "ConstraintDescription": "lower-case letters"},
            "A",
            "Parameter 'P' failed to satisfy constraint: lower-case letters",
        ),
    ],
)
def test_a_value_breaking_a_constraint_is_refused_as_cloudformation_says(
    slot: dict[str, Any], value: str, message: str
) -> None:
    found = parameter_problem("P", {"Type": "String", **slot}, value)
    assert found is not None and message in found


@pytest.mark.parametrize(
    ("slot", "value"),
    [
        ({"AllowedPattern": "[a-z]+"}, "abc"),
        ({"Type": "Number", "AllowedValues": [1, 2]}, "2"),
        ({"Type": "Number", "MinValue": 7, "MaxValue": 30}, "30"),
        ({"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}, "a, b"),
        ({"MinLength": 1, "MaxLength": 3}, "abc"),
    ],
)
def test_a_value_within_its_constraints_passes(slot: dict[str, Any], value: str) -> None:
    assert parameter_problem("P", {"Type": "String", **slot}, value) is None


# ------------------------------------------------------------- the same at the emulator's API

_TEMPLATE = {
    "Parameters": {
        "Name": {"Type": "String", "AllowedPattern": "[a-z]+"},
        "Days": {"Type": "Number", "MinValue": 7, "MaxValue": 30, "Default": 30},
    },
    "Resources": {
        "Parameter": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": {"Fn::Sub": "/constraints/${AWS::StackName}"},
                "Type": "String",
                "Value": {"Ref": "Name"},
            },
        }
    },
}


def _params(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def test_create_change_set_refuses_a_bad_parameter_before_making_anything(
    local: LocalAws, cluster: Cluster
) -> None:
    cfn = client(local.endpoint_url, cluster.nodes[0], "cloudformation")
    with pytest.raises(ClientError) as exc:
        cfn.create_change_set(
            StackName="bad-parameter",
            ChangeSetName="c1",
            ChangeSetType="CREATE",
            TemplateBody=json.dumps(_TEMPLATE),
            Parameters=_params(Name="abc", Days="31"),
        )
    assert _error(exc) == (
        "ValidationError",
        "Parameter 'Days' must be a number not greater than 30",
    )
    names = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]
    assert "bad-parameter" not in names


def test_create_and_update_stack_check_parameters_too(local: LocalAws, cluster: Cluster) -> None:
    cfn = client(local.endpoint_url, cluster.nodes[0], "cloudformation")
    with pytest.raises(ClientError) as exc:
        cfn.create_stack(
            StackName="bad-create",
            TemplateBody=json.dumps(_TEMPLATE),
            Parameters=_params(Name="a1"),
        )
    assert _error(exc) == ("ValidationError", "Parameter 'Name' must match pattern [a-z]+")
    cfn.create_stack(
        StackName="good-create", TemplateBody=json.dumps(_TEMPLATE), Parameters=_params(Name="ab")
    )
    with pytest.raises(ClientError) as exc:
        cfn.update_stack(
            StackName="good-create",
            TemplateBody=json.dumps(_TEMPLATE),
            Parameters=[{"ParameterKey": "Name", "UsePreviousValue": True}, *_params(Days="6")],
        )
    assert _error(exc)[1] == "Parameter 'Days' must be a number not less than 7"


def test_an_over_long_template_body_is_refused(local: LocalAws, cluster: Cluster) -> None:
    cfn = client(local.endpoint_url, cluster.nodes[0], "cloudformation")
    template = {**_TEMPLATE, "Description": "x" * TEMPLATE_BODY_BYTES}
    with pytest.raises(ClientError) as exc:
        cfn.create_stack(
            StackName="too-long", TemplateBody=json.dumps(template), Parameters=_params(Name="ab")
        )
    code, message = _error(exc)
    assert code == "ValidationError"
    assert "'templateBody'" in message and "less than or equal to 51200" in message


@pytest.mark.parametrize("name", ["1-starts-with-a-digit", "has_underscore", "a" * 129])
def test_stack_names_follow_cloudformations_pattern(
    local: LocalAws, cluster: Cluster, name: str
) -> None:
    cfn = client(local.endpoint_url, cluster.nodes[0], "cloudformation")
    with pytest.raises(ClientError) as exc:
        cfn.create_change_set(
            StackName=name,
            ChangeSetName="c1",
            ChangeSetType="CREATE",
            TemplateBody=json.dumps(_TEMPLATE),
            Parameters=_params(Name="ab"),
        )
    code, message = _error(exc)
    assert code == "ValidationError" and "'stackName'" in message


# ------------------------------------------------------------------------------------ limits


def test_ssm_parameter_values_are_limited_by_tier(local: LocalAws, cluster: Cluster) -> None:
    ssm = client(local.endpoint_url, cluster.nodes[0], "ssm")
    ssm.put_parameter(Name="/limits/standard", Type="String", Value="x" * 4096)
    with pytest.raises(ClientError) as exc:
        ssm.put_parameter(Name="/limits/standard-over", Type="String", Value="x" * 4097)
    assert _error(exc)[0] == "ValidationException"
    assert "maximum parameter value of 4096" in _error(exc)[1]
    ssm.put_parameter(Name="/limits/adv", Type="String", Value="x" * 8192, Tier="Advanced")
    with pytest.raises(ClientError) as exc:
        ssm.put_parameter(Name="/limits/adv-over", Type="String", Value="x" * 8193, Tier="Advanced")
    assert "less than or equal to 8192" in _error(exc)[1]


def test_iam_role_names_are_limited(local: LocalAws, cluster: Cluster) -> None:
    iam = client(local.endpoint_url, cluster.nodes[0], "iam")
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(RoleName="r" * 64, AssumeRolePolicyDocument=policy)
    for name in ("r" * 65, "has space"):
        with pytest.raises(ClientError) as exc:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy)
        assert _error(exc)[0] == "ValidationError" and "'roleName'" in _error(exc)[1]


def test_generated_names_fit_their_limits(local: LocalAws, cluster: Cluster) -> None:
    assert generated_name("AWS::RDS::DBInstance", "S" * 80, "Database", "ABC") == "s" * 59 + "-abc"
    assert generated_name("AWS::SSM::Parameter", "s", "P", "ABC") is None
    name = "n" + "-long" * 24
    template = {
        "Resources": {
            "NodeRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}
                },
            }
        }
    }
    cfn = client(local.endpoint_url, cluster.nodes[0], "cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=CAPABILITIES)
    assert wait(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    role = cfn.describe_stack_resource(StackName=name, LogicalResourceId="NodeRole")
    physical = role["StackResourceDetail"]["PhysicalResourceId"]
    assert len(physical) <= 64 and physical.startswith("n-long")


def test_the_emulated_list_names_the_rules_and_what_is_not_enforced(local: LocalAws) -> None:
    lines = local.emulated()
    assert any("AllowedPattern" in line for line in lines)
    assert any("AWS::Route53::HostedZone::Id" in line for line in lines)
    assert any("51,200 bytes" in line for line in lines)
    assert any(line.startswith("Not enforced: IAM") for line in lines)
    assert any("60 inbound rules" in line for line in lines)


def test_a_vpc_security_group_takes_at_most_60_inbound_rules(
    local: LocalAws, cluster: Cluster
) -> None:
    def template(rules: int) -> str:
        resources: dict[str, Any] = {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
            "Group": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": "limits", "VpcId": {"Ref": "Vpc"}},
            },
        }
        for index in range(rules):
            resources[f"Rule{index}"] = {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": {"Fn::GetAtt": ["Group", "GroupId"]},
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "CidrIp": f"198.51.100.{index}/32",
                },
            }
        return json.dumps({"Resources": resources})

    cfn = client(local.endpoint_url, cluster.nodes[0], "cloudformation")

    def deployed(name: str, rules: int) -> dict[str, Any]:
        made = cfn.create_change_set(
            StackName=name, ChangeSetName="c1", ChangeSetType="CREATE", TemplateBody=template(rules)
        )
        cfn.execute_change_set(ChangeSetName=made["Id"], StackName=name)
        return wait(cfn, name)

    assert deployed("sixty-rules", 60)["StackStatus"] == "CREATE_COMPLETE"
    failed = deployed("sixty-one-rules", 61)
    assert failed["StackStatus"] == "CREATE_FAILED"
    assert "RulesPerSecurityGroupLimitExceeded" in failed["StackStatusReason"]
