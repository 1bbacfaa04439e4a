"""The decision table: what the executor does with a stack in every state it can be in."""

from __future__ import annotations

import pytest

from tsm_infra.run.decide import (
    ChangeSet,
    Delete,
    Execute,
    Finish,
    Observed,
    Wait,
    Wanted,
    decide,
    judge,
    up_to_date,
)
from tsm_infra.stacks import Change, State, state_of

WANTED = Wanted(
    parameters={"ClusterName": "c", "NodeIndex": "0"},
    tags={"tsm:cluster": "c", "tsm:template-sha256": "abc"},
    defaults={"LogRetentionDays": "365"},
)
SAME = Observed(
    "complete",
    "UPDATE_COMPLETE",
    parameters={"ClusterName": "c", "NodeIndex": "0", "LogRetentionDays": "365"},
    tags={"tsm:cluster": "c", "tsm:template-sha256": "abc"},
)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("absent", ChangeSet("create")),
        ("in_progress", Wait()),
        ("review", ChangeSet("create", discard_empty_stack=True)),
        ("rollback_complete", ChangeSet("replace")),
        ("resumable", ChangeSet("resume")),
        ("complete", ChangeSet("update")),
    ],
)
def test_deploy_decisions(state: State, expected: object) -> None:
    assert decide("deploy", Observed(state, "X")) == expected


def test_a_failed_stack_is_left_for_the_console_with_its_status_and_reason() -> None:
    decision = decide("deploy", Observed("failed", "UPDATE_ROLLBACK_FAILED", "role is gone"))
    assert isinstance(decision, Finish)
    assert decision.result == "failed"
    assert "UPDATE_ROLLBACK_FAILED and cannot be updated: role is gone" in decision.reason
    assert "continue the rollback" in decision.reason


def test_a_complete_stack_with_the_same_template_parameters_and_tags_is_unchanged() -> None:
    assert decide("deploy", SAME, WANTED) == Finish("unchanged")


@pytest.mark.parametrize(
    "observed",
    [
        # another template (its digest tag differs)
        Observed("complete", parameters=SAME.parameters, tags={"tsm:cluster": "c"}),
        # a parameter changed
        Observed(
            "complete",
            parameters={**(SAME.parameters or {}), "NodeIndex": "1"},
            tags=SAME.tags,
        ),
        # a parameter left out now holds something other than the template default
        Observed(
            "complete",
            parameters={**(SAME.parameters or {}), "LogRetentionDays": "30"},
            tags=SAME.tags,
        ),
        # a parameter the step now passes is not one the stack has
        Observed("complete", parameters={"ClusterName": "c"}, tags=SAME.tags),
        # nothing known of it
        Observed("complete"),
    ],
)
def test_any_difference_goes_through_a_change_set(observed: Observed) -> None:
    assert not up_to_date(observed, WANTED)
    assert decide("deploy", observed, WANTED) == ChangeSet("update")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("absent", Finish("absent")),
        ("in_progress", Wait()),
        ("complete", Delete(lift_protection=True)),
        ("resumable", Delete(lift_protection=True)),
        ("failed", Delete(lift_protection=True)),  # DELETE_FAILED: try again
        ("rollback_complete", Delete(lift_protection=True)),
        ("review", Delete(lift_protection=True)),
    ],
)
def test_delete_decisions(state: State, expected: object) -> None:
    assert decide("delete", Observed(state), lift_protection=True) == expected


@pytest.mark.parametrize(
    "status",
    [
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
        "CREATE_FAILED",
        "UPDATE_FAILED",
        "ROLLBACK_FAILED",
        "DELETE_FAILED",
        "UPDATE_ROLLBACK_FAILED",
        "IMPORT_ROLLBACK_FAILED",
        "ROLLBACK_COMPLETE",
        "REVIEW_IN_PROGRESS",
        "CREATE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "DELETE_IN_PROGRESS",
        "ROLLBACK_IN_PROGRESS",
        "DELETE_COMPLETE",
    ],
)
def test_every_cloudformation_status_gets_a_decision(status: str) -> None:
    for action in ("deploy", "delete"):
        decision = decide(action, Observed(state_of(status), status))  # type: ignore[arg-type]
        assert isinstance(decision, Wait | Finish | ChangeSet | Delete)
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        assert decide("deploy", Observed(state_of(status), status)) == Wait()


ADD = Change("Add", "Bucket", "AWS::S3::Bucket")
REPLACE_DB = Change("Modify", "Database", "AWS::RDS::DBInstance", "True")


@pytest.mark.parametrize(
    ("plan", "changes", "refused", "expected"),
    [
        (ChangeSet("create"), (ADD,), (), Execute("create")),
        (ChangeSet("update"), (ADD,), (), Execute("update")),
        (ChangeSet("resume"), (ADD,), (), Execute("resume")),
        (ChangeSet("update"), None, (), Finish("unchanged")),
        (ChangeSet("create"), None, (), Finish("unchanged")),
    ],
)
def test_judging_a_change_set(
    plan: ChangeSet,
    changes: tuple[Change, ...] | None,
    refused: tuple[Change, ...],
    expected: object,
) -> None:
    assert judge(plan, changes, refused=refused) == expected


def test_a_change_set_that_replaces_state_is_refused_with_the_flag_to_allow_it() -> None:
    verdict = judge(ChangeSet("update"), (ADD, REPLACE_DB), refused=(REPLACE_DB,))
    assert isinstance(verdict, Finish)
    assert verdict.result == "refused"
    assert "Modify Database (AWS::RDS::DBInstance), replacement True" in verdict.reason
    assert "--allow-replace Database" in verdict.reason


def test_a_resume_with_nothing_to_retry_fails_with_the_first_failure() -> None:
    observed = Observed("resumable", "CREATE_FAILED", "one resource failed")
    verdict = judge(ChangeSet("resume"), None, observed=observed, first_failure="Db: no quota")
    assert verdict == Finish(
        "failed", "still CREATE_FAILED and the change set finds nothing to retry: Db: no quota"
    )
    fallback = judge(ChangeSet("resume"), None, observed=observed)
    assert isinstance(fallback, Finish)
    assert fallback.reason.endswith("one resource failed")
