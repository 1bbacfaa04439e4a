"""Preflight checks the emulator cannot answer, against botocore's Stubber (real AWS shapes)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from tests.helpers import VALID_SPEC
from tsm_infra.preflight import DEPLOY_ACTIONS, _Node, check_db_class, check_permissions
from tsm_infra.spec import load_spec_text

NODE = load_spec_text(VALID_SPEC).nodes[0]


class _Session:
    """An AccountSession stand-in whose clients are stubbed."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubs: dict[str, Stubber] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        if service not in self.clients:
            made = boto3.client(
                service,
                region_name="eu-west-1",
                aws_access_key_id="x",
                aws_secret_access_key="y",
            )
            self.clients[service] = made
            self.stubs[service] = Stubber(made)
            self.stubs[service].activate()
        return self.clients[service]

    def stub(self, service: str) -> Stubber:
        self.client(service)
        return self.stubs[service]


def _option(version: str) -> dict[str, Any]:
    return {"Engine": "postgres", "EngineVersion": version, "DBInstanceClass": "db.t4g.medium"}


def test_a_db_class_that_does_not_run_postgres_17_is_a_finding() -> None:
    session = _Session()
    session.stub("rds").add_response(
        "describe_orderable_db_instance_options",
        {"OrderableDBInstanceOptions": [_option("15.7"), _option("16.3")]},
    )
    out = _Node(NODE)
    check_db_class(session, out)  # type: ignore[arg-type]
    assert [f.check for f in out.findings] == ["db_instance_class"]
    assert "does not run PostgreSQL 17 in eu-west-1 (it runs 15, 16)" in out.findings[0].message


def test_a_db_class_that_runs_postgres_17_passes() -> None:
    session = _Session()
    session.stub("rds").add_response(
        "describe_orderable_db_instance_options",
        {"OrderableDBInstanceOptions": [_option("17.2")]},
    )
    out = _Node(NODE)
    check_db_class(session, out)  # type: ignore[arg-type]
    assert out.findings == [] and out.notes == []


def test_denied_deploy_actions_are_a_finding_for_the_role_behind_the_session() -> None:
    session = _Session()
    session.stub("sts").add_response(
        "get_caller_identity",
        {
            "Account": "111111111111",
            "UserId": "AROAEXAMPLE:tsm-infra",
            "Arn": "arn:aws:sts::111111111111:assumed-role/TsmDeployer/tsm-infra",
        },
    )
    iam = session.stub("iam")
    iam.add_client_error("get_role", "AccessDenied")
    iam.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                {"EvalActionName": "kms:CreateKey", "EvalDecision": "implicitDeny"},
                {"EvalActionName": "iam:PassRole", "EvalDecision": "explicitDeny"},
                {"EvalActionName": "ssm:PutParameter", "EvalDecision": "allowed"},
            ],
            "IsTruncated": False,
        },
        {
            "PolicySourceArn": "arn:aws:iam::111111111111:role/TsmDeployer",
            "ActionNames": list(DEPLOY_ACTIONS),
        },
    )
    out = _Node(NODE)
    check_permissions(session, out)  # type: ignore[arg-type]
    assert [f.check for f in out.findings] == ["permissions"]
    assert out.findings[0].message == (
        "arn:aws:iam::111111111111:role/TsmDeployer may not iam:PassRole, kms:CreateKey"
    )


def test_a_simulation_that_is_not_allowed_is_a_note_not_a_finding() -> None:
    session = _Session()
    session.stub("sts").add_response(
        "get_caller_identity",
        {"Account": "111111111111", "UserId": "AIDA", "Arn": "arn:aws:iam::111111111111:user/ops"},
    )
    session.stub("iam").add_client_error("simulate_principal_policy", "AccessDenied", "no")
    out = _Node(NODE)
    check_permissions(session, out)  # type: ignore[arg-type]
    assert out.findings == []
    assert [n.check for n in out.notes] == ["permissions"]
    assert "AccessDenied" in out.notes[0].message
