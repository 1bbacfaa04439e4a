"""Drift detection in `status`: drift is a problem, a detection that cannot run is not."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tsm_infra.stacks import StackInfo, StackOps
from tsm_infra.status import _Deployed, _drift, drift_unavailable


def _found(cfn: Any) -> _Deployed:
    return _Deployed(
        node=None, ops=StackOps(cfn, poll_interval=0, sleep=lambda s: None), session=None
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("result", ["DRIFTED", "IN_SYNC"])
def test_drift_detection_waits_for_its_result(result: str) -> None:
    cfn = boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(cfn) as stub:
        stub.add_response("detect_stack_drift", {"StackDriftDetectionId": "d1"})
        progress = {
            "StackId": "arn:s",
            "StackDriftDetectionId": "d1",
            "DetectionStatus": "DETECTION_IN_PROGRESS",
            "Timestamp": "2026-01-01T00:00:00Z",
        }
        stub.add_response("describe_stack_drift_detection_status", progress)
        done = {**progress, "DetectionStatus": "DETECTION_COMPLETE", "StackDriftStatus": result}
        stub.add_response("describe_stack_drift_detection_status", done)
        info = StackInfo("s", "CREATE_COMPLETE", "", {}, "arn:s")
        assert _drift(_found(cfn), "s", info) == result


def test_a_detection_that_cannot_run_is_unknown() -> None:
    cfn = boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(cfn) as stub:
        stub.add_client_error("detect_stack_drift", "AccessDenied", "not allowed")
        info = StackInfo("s", "CREATE_COMPLETE", "", {}, "arn:s")
        assert _drift(_found(cfn), "s", info) == (
            "not checked: access denied (AccessDenied); drift detection needs "
            "cloudformation:DetectStackDrift and read access to the stack's resources"
        )


def test_a_detection_the_endpoint_does_not_run_is_named_plainly() -> None:
    from botocore.parsers import ResponseParserError

    raw = "Unable to parse response, invalid XML received: b'<!doctype html>...'"
    text = drift_unavailable(ResponseParserError(raw))
    assert text == ("not checked: this endpoint does not run drift detection (ResponseParserError)")


def test_a_detection_that_does_not_finish_in_time_is_not_checked() -> None:
    cfn = boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    now, waits = [0.0], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    running = {
        "StackId": "arn:s",
        "StackDriftDetectionId": "d1",
        "DetectionStatus": "DETECTION_IN_PROGRESS",
        "Timestamp": "2026-01-01T00:00:00Z",
    }
    with Stubber(cfn) as stub:
        stub.add_response("detect_stack_drift", {"StackDriftDetectionId": "d1"})
        for _ in range(4):
            stub.add_response("describe_stack_drift_detection_status", running)
        ops = StackOps(cfn, poll_interval=2, timeout=5, sleep=sleep, clock=lambda: now[0])
        found = _Deployed(node=None, ops=ops, session=None)  # type: ignore[arg-type]
        info = StackInfo("s", "CREATE_COMPLETE", "", {}, "arn:s")
        assert _drift(found, "s", info) == "not checked: drift detection did not finish in time"
    # the first check comes soon, then the waits back off
    assert waits == [0.6, 2, 3.0]
