"""tsm_infra/cfn/kms.yaml: the security and retention properties the KMS stack promises."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, VALID_SPEC
from tsm_infra.plan import OWN_KMS_OUTPUTS, build_plan, kms_parameters
from tsm_infra.spec import load_spec_text
from tsm_infra.templates import rendered, template_body, template_path

TEMPLATE_PATH = template_path("kms")
SECRETS = (
    "P2PKeySecret",
    "SdkApiKeysSecret",
    "ManagementApiKeySecret",
    "EncryptorMasterPasswordSecret",
    "DatabasePasswordSecret",
)
INLINE_BODY_LIMIT = 51_200


def _decode(text: str) -> dict[str, Any]:
    from cfnlint.decode.decode import decode_str

    template, errors = decode_str(text)
    assert not errors, errors
    return json.loads(json.dumps(template))  # plain dicts, lists and strings


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _decode(TEMPLATE_PATH.read_text())


def _resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principals(statement: dict[str, Any]) -> list[Any]:
    principal = statement["Principal"]
    return [p for values in principal.values() for p in _as_list(values)]


# ---------------------------------------------------------------- KMS key


def test_key_rotates_is_retained_and_has_a_deletion_window(template: dict[str, Any]) -> None:
    key = template["Resources"]["NodeKey"]
    assert key["DeletionPolicy"] == "Retain"
    assert key["UpdateReplacePolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == {"Ref": "KeyDeletionWindowDays"}
    window = template["Parameters"]["KeyDeletionWindowDays"]
    assert (window["MinValue"], window["MaxValue"], window["Default"]) == (7, 30, 30)
    alias = template["Resources"]["NodeKeyAlias"]["Properties"]
    assert alias["TargetKeyId"] == {"Ref": "NodeKey"}


def test_key_policy_names_its_principals_and_actions(template: dict[str, Any]) -> None:
    statements = _statements(template["Resources"]["NodeKey"]["Properties"]["KeyPolicy"])
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for principal in _principals(statement):
            assert principal != "*", statement["Sid"]
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{statement['Sid']}: wildcard action {action}"
    by_sid = {s["Sid"]: s for s in statements}
    node = [s for s in statements if {"Fn::GetAtt": ["NodeRole", "Arn"]} in _principals(s)]
    assert [_as_list(s["Action"]) for s in node] == [["kms:Decrypt"]]
    assert node[0]["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"
    }
    keygen = [s for s in statements if {"Fn::GetAtt": ["KeygenRole", "Arn"]} in _principals(s)]
    assert sorted(a for s in keygen for a in _as_list(s["Action"])) == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyPair",
    ]
    admin = by_sid["AccountAdministersTheKey"]
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(admin["Action"])


# ---------------------------------------------------------------- secrets


def test_secrets_are_encrypted_with_the_key_retained_and_never_given_a_value(
    template: dict[str, Any],
) -> None:
    secrets = _resources(template, "AWS::SecretsManager::Secret")
    assert sorted(secrets) == sorted(SECRETS)
    for name, secret in secrets.items():
        assert secret["DeletionPolicy"] == "Retain", name
        assert secret["UpdateReplacePolicy"] == "Retain", name
        assert secret["Properties"]["KmsKeyId"] == {"Ref": "NodeKey"}, name
        # only the key-generation function ever writes a value
        assert "SecretString" not in secret["Properties"], name
        assert "GenerateSecretString" not in secret["Properties"], name


def test_each_secret_has_a_policy_that_lets_only_the_node_read_and_keygen_write(
    template: dict[str, Any],
) -> None:
    policies = _resources(template, "AWS::SecretsManager::ResourcePolicy")
    covered = {p["Properties"]["SecretId"]["Ref"]: p["Properties"] for p in policies.values()}
    assert sorted(covered) == sorted(SECRETS)
    for name, policy in covered.items():
        assert policy["BlockPublicPolicy"] is True
        statements = {s["Sid"]: s for s in _statements(policy["ResourcePolicy"])}
        read = statements["OnlyTheNodeKeygenAndAdministratorsRead"]
        assert (read["Effect"], read["Action"]) == ("Deny", "secretsmanager:GetSecretValue")
        readers = read["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        joined = readers["Fn::Split"][1]["Fn::Join"][1]
        assert joined == [
            {"Fn::GetAtt": ["NodeRole", "Arn"]},
            {"Fn::GetAtt": ["KeygenRole", "Arn"]},
            {"Ref": "SecretAdministratorArns"},
        ], name
        write = statements["OnlyKeygenWrites"]
        assert write["Effect"] == "Deny"
        assert "secretsmanager:PutSecretValue" in write["Action"]
        assert write["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == {
            "Fn::GetAtt": ["KeygenRole", "Arn"]
        }
    assert template["Parameters"]["SecretAdministratorArns"]["Default"] == ""


def test_the_node_reads_only_its_own_four_secrets(template: dict[str, Any]) -> None:
    policy = template["Resources"]["NodePolicy"]["Properties"]["PolicyDocument"]
    statements = {s["Sid"]: s for s in _statements(policy)}
    assert statements["ReadOwnSecrets"]["Resource"] == [{"Ref": name} for name in SECRETS]
    assert statements["ReadOwnSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    for statement in statements.values():
        assert "*" not in str(statement["Action"])
    trust = template["Resources"]["NodeRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert _statements(trust)[0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    profile = template["Resources"]["NodeInstanceProfile"]["Properties"]
    assert profile["Roles"] == [{"Ref": "NodeRole"}]


# ---------------------------------------------------------------- key generation


def test_keygen_function_is_python_312_plus_with_an_encrypted_log_group(
    template: dict[str, Any],
) -> None:
    function = template["Resources"]["KeygenFunction"]["Properties"]
    major, minor = function["Runtime"].removeprefix("python").split(".")
    assert (int(major), int(minor)) >= (3, 12)
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "KeygenLogGroup"}
    group = template["Resources"]["KeygenLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["NodeKey", "Arn"]}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_keygen_permissions_are_only_the_calls_it_makes(template: dict[str, Any]) -> None:
    policy = template["Resources"]["KeygenPolicy"]["Properties"]["PolicyDocument"]
    actions = sorted(a for s in _statements(policy) for a in _as_list(s["Action"]))
    assert actions == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyPair",
        "kms:GenerateRandom",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:PutSecretValue",
    ]
    for statement in _statements(policy):
        if statement["Resource"] == "*":
            assert statement["Action"] == "kms:GenerateRandom"


def test_the_custom_resource_gets_every_secret_and_the_rotation_token(
    template: dict[str, Any],
) -> None:
    properties = template["Resources"]["NodeSecrets"]["Properties"]
    for name in SECRETS:
        assert properties[f"{name}Arn"] == {"Ref": name}
    assert properties["RotationToken"] == {"Ref": "RotationToken"}
    assert properties["ServiceToken"] == {"Fn::GetAtt": ["KeygenFunction", "Arn"]}


def test_what_deploy_sends_carries_the_handler_module_verbatim() -> None:
    source = (REPO / "src/tsm_infra/functions/keygen.py").read_text()
    # what CloudFormation will hand to Lambda, filled in when the template is rendered
    body = json.loads(template_body("kms"))
    assert body["Resources"]["KeygenFunction"]["Properties"]["Code"]["ZipFile"] == source
    # the committed template holds only the marker
    assert source.split("\n")[0] not in TEMPLATE_PATH.read_text()


def test_what_deploy_sends_fits_the_inline_body_limit() -> None:
    # deploy sends compact JSON as TemplateBody; past 51,200 bytes that call would be refused
    body = template_body("kms")
    assert len(body.encode()) < INLINE_BODY_LIMIT
    assert json.loads(body) == _decode(rendered("kms").text)


# ---------------------------------------------------------------- public facts and sharing


def test_public_parameters_are_advanced_and_the_peers_share_only_what_they_need(
    template: dict[str, Any],
) -> None:
    parameters = _resources(template, "AWS::SSM::Parameter")
    for name, parameter in parameters.items():
        assert parameter["Properties"]["Tier"] == "Advanced", name
        assert parameter["Properties"]["Name"]["Fn::Sub"].startswith(
            "/tsm/${ClusterName}/${NodeIndex}/"
        ), name
    share = template["Resources"]["PeerShare"]
    assert share["Condition"] == "HasPeerAccounts"
    props = share["Properties"]
    assert props["AllowExternalPrincipals"] == {"Ref": "AllowExternalPrincipals"}
    assert props["Principals"] == {"Fn::Split": [",", {"Ref": "PeerAccountIds"}]}
    shared = {arn["Fn::Sub"].rsplit("${", 1)[1].rstrip("}") for arn in props["ResourceArns"]}
    assert shared == {"PublicKeyParameter", "MpcAddressParameter", "EgressCidrsParameter"}


def test_egress_addresses_are_allocated_here_and_published(template: dict[str, Any]) -> None:
    eips = _resources(template, "AWS::EC2::EIP")
    assert sorted(eips) == ["EgressAddress1", "EgressAddress2"]
    assert eips["EgressAddress2"]["Condition"] == "TwoEgressAddresses"
    published = template["Resources"]["EgressCidrsParameter"]["Properties"]["Value"]
    assert "EgressAddress1.PublicIp" in json.dumps(published)
    assert "EgressAddress2.PublicIp" in json.dumps(published)


# ---------------------------------------------------------------- outputs and the plan


def test_outputs_cover_the_core_stack_wiring_and_carry_no_secret(
    template: dict[str, Any],
) -> None:
    outputs = template["Outputs"]
    needed = set(OWN_KMS_OUTPUTS) | {"PublicKeyParameterArn", "EgressCidrs", "PublicKey"}
    assert needed <= set(outputs)
    text = json.dumps(outputs)
    assert "resolve:secretsmanager" not in text
    assert "SecretString" not in text
    for name, output in outputs.items():
        # a secret output is only ever its ARN (Ref of a secret), never a value
        if "Secret" in name:
            assert output["Value"]["Ref"] in SECRETS


def test_no_parameter_takes_a_secret(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        assert "NoEcho" not in parameter, f"{name}: secrets are generated, never passed in"


def test_plan_parameters_match_the_template(template: dict[str, Any]) -> None:
    cluster = load_spec_text(VALID_SPEC)
    declared = template["Parameters"]
    for node in cluster.nodes:
        passed = kms_parameters(cluster, node)
        assert set(passed) <= set(declared)
        required = {name for name, p in declared.items() if "Default" not in p}
        assert required <= set(passed)
    for step in build_plan(cluster).steps():
        if step.kind == "core":
            referenced = {
                ref.output
                for value in step.parameters.values()
                for ref in getattr(value, "refs", (value,))
                if hasattr(ref, "output")
            }
            assert referenced <= set(template["Outputs"])


# ---------------------------------------------------------------- checkov suppressions


def _checkov_skips(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found.append((name, skip["id"], skip.get("comment", "")))
    return found


def test_every_checkov_suppression_gives_its_reason(template: dict[str, Any]) -> None:
    for name, check, comment in _checkov_skips(template):
        assert len(comment.split()) >= 5, f"{name} skips {check} without a reason"


def test_every_checkov_suppression_suppresses_something(
    template: dict[str, Any], tmp_path: Path
) -> None:
    checkov = REPO / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.skip("checkov's own virtualenv is made by `make lint`")
    standalone = tmp_path / "kms.yaml"  # checkov reads the template as rendered, code and all
    standalone.write_text(rendered("kms").text)
    args = ["-f", str(standalone), "--framework", "cloudformation", "--skip-download"]
    result = subprocess.run(
        [str(checkov), *args, "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)["results"]
    assert report["failed_checks"] == []
    used = {(c["resource"].split(".")[-1], c["check_id"]) for c in report["skipped_checks"]}
    declared = {(name, check) for name, check, _ in _checkov_skips(template)}
    assert declared == used


def test_the_key_generation_answers_within_minutes(template: dict[str, Any]) -> None:
    # not the default hour when the function dies without answering; above its own Timeout
    secrets = template["Resources"]["NodeSecrets"]["Properties"]
    function = template["Resources"]["KeygenFunction"]["Properties"]
    assert function["Timeout"] < secrets["ServiceTimeout"] <= 600
