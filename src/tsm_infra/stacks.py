"""One CloudFormation stack: change set -> review -> execute -> wait -> outputs.

Every create and update goes through a change set, so that what will happen is known (and can be
refused) before anything happens. A change set without changes is success ("unchanged"). The many
CloudFormation statuses reduce to a few states (`state_of`), which is all the deployer needs.
Every CloudFormation call of the tool is made here, through `StackReader` (reading) and
`StackOps` (changing, waiting, deleting); this module receives a client, never creates one,
and never prints.

Waiting backs off: a stack is described at `poll_interval`, then 1.5 times longer each time up
to 12 times `poll_interval`, and again at `poll_interval` as soon as its status changes. While
resources keep completing the interval holds instead of growing. The resources behind the
`[done/total]` progress are listed on every sixth poll and when the status changes, not on
every poll: a 20-minute Core stack then costs about 30 calls instead of about 490.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from tsm_infra.aws import AWS_ERRORS
from tsm_infra.backoff import FIRST_CHECK, Backoff
from tsm_infra.contract import MANAGED_BY, STATEFUL_TYPES
from tsm_infra.errors import TsmInfraError, describe_error, error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.literals import CapabilityType
    from mypy_boto3_cloudformation.type_defs import (
        DescribeChangeSetOutputTypeDef,
        StackEventTypeDef,
        StackResourceTypeDef,
        StackTypeDef,
    )

State = Literal[
    "absent", "complete", "in_progress", "resumable", "failed", "rollback_complete", "review"
]

# Statuses a stack rests in without anyone acting; everything else is still moving.
_COMPLETE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",  # the import was undone; the stack is as it was before
}
# What a failed operation leaves when rollback is off: the resources that succeeded are kept and
# the next change set carries on from there.
_RESUMABLE = {"CREATE_FAILED", "UPDATE_FAILED"}
_FAILED = {
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_FAILED",
    "IMPORT_ROLLBACK_FAILED",
}
CAPABILITIES: tuple[CapabilityType, ...] = (
    "CAPABILITY_IAM",
    "CAPABILITY_NAMED_IAM",
    "CAPABILITY_AUTO_EXPAND",
)
# How often the resources are listed for the progress counter: every this many polls.
RESOURCES_EVERY = 6


def stack_missing(exc: ClientError) -> bool:
    """True when CloudFormation answered that the stack does not exist.

    CloudFormation has no error code of its own for a missing stack: DescribeStacks (and the
    other stack calls) answer `ValidationError` with the message "Stack with id NAME does not
    exist". This is the one place that reads a message to tell an error apart.
    """
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) == "ValidationError" and "does not exist" in message


def no_changes(reason: str) -> bool:
    """True when a change set was refused or failed only because it changes nothing.

    CloudFormation says so in words only: a change set FAILED with the StatusReason "The
    submitted information didn't contain changes ...", or (some endpoints) CreateChangeSet
    refused with "No updates are to be performed.".
    """
    return "didn't contain changes" in reason or "No updates are to be performed" in reason


def state_of(status: str | None) -> State:
    """Reduce a CloudFormation stack status to what the deployer acts on."""
    if status is None or status == "DELETE_COMPLETE":
        return "absent"
    if status in _COMPLETE:
        return "complete"
    if status == "ROLLBACK_COMPLETE":
        return "rollback_complete"
    if status == "REVIEW_IN_PROGRESS":
        return "review"
    if status in _RESUMABLE:
        return "resumable"
    if status in _FAILED:
        return "failed"
    return "in_progress"


class StackError(TsmInfraError):
    """A stack operation failed; the message names the stack and the first failed resource."""


class Interrupted(TsmInfraError):
    """The user stopped the wait; whatever CloudFormation was doing goes on without us."""


@dataclass(frozen=True)
class StackInfo:
    """What a stack is now: status, reason, outputs."""

    name: str
    status: str
    reason: str
    outputs: dict[str, str]
    stack_id: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> State:
        """The status reduced to a deployer state."""
        return state_of(self.status)


@dataclass(frozen=True)
class Change:
    """One resource change of a change set."""

    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True | False | Conditional, for Modify

    @property
    def destroys(self) -> bool:
        """True when the change deletes the resource or may replace it with a new one."""
        return self.action == "Remove" or (
            self.action == "Modify" and self.replacement in ("True", "Conditional")
        )

    def describe(self) -> str:
        """`Modify Database (AWS::RDS::DBInstance), replacement True`."""
        text = f"{self.action} {self.logical_id} ({self.resource_type})"
        return f"{text}, replacement {self.replacement}" if self.action == "Modify" else text


@dataclass(frozen=True)
class Review:
    """A change set ready to execute (or empty), and what it would do."""

    stack_name: str
    change_set_id: str
    create: bool
    changes: tuple[Change, ...] = ()

    @property
    def empty(self) -> bool:
        """True when there is nothing to execute."""
        return not self.change_set_id

    def refused(self, allow_replace: Iterable[str]) -> list[Change]:
        """Changes that would delete or replace a stateful resource not named in allow_replace."""
        allowed = set(allow_replace)
        return [
            change
            for change in self.changes
            if change.destroys
            and change.resource_type in STATEFUL_TYPES
            and change.logical_id not in allowed
        ]


@dataclass(frozen=True)
class Progress:
    """A snapshot of a stack operation while waiting for it."""

    stack_name: str
    status: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


@dataclass
class StackReader:
    """Reads the stacks of one account and region, through one CloudFormation client.

    What `status`, the destroy guard and the rehearsal need: a stack, its template, its
    resources, its drift. Safe to share between threads: every wait keeps its own state.
    """

    cfn: CloudFormationClient
    poll_interval: float = 5.0
    timeout: float = 3 * 3600.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    # ------------------------------------------------------------------ reading

    def describe(self, name: str) -> StackInfo | None:
        """The stack now, or None when it does not exist."""
        try:
            stacks = self.cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if stack_missing(exc):
                return None
            raise StackError(f"{name}: cannot describe the stack: {describe_error(exc)}") from None
        except AWS_ERRORS as exc:
            raise StackError(f"{name}: cannot describe the stack: {describe_error(exc)}") from None
        return _info(stacks[0], name)

    def first_failure(self, name: str, stack_id: str = "") -> str:
        """`LogicalId (Type): reason` of the earliest failed resource event, or ""."""
        try:
            events = self._events(stack_id or name)
        except AWS_ERRORS:  # the reason is a courtesy; the failure itself is already known
            return ""
        for event in reversed(events):  # oldest first
            status = event.get("ResourceStatus", "")
            reason = event.get("ResourceStatusReason", "")
            if status.endswith("_FAILED") and event.get("LogicalResourceId") != name and reason:
                return f"{event['LogicalResourceId']} ({event.get('ResourceType', '?')}): {reason}"
        return ""

    def _events(self, name: str) -> list[StackEventTypeDef]:
        pages = self.cfn.get_paginator("describe_stack_events").paginate(StackName=name)
        return [event for page in pages for event in page["StackEvents"]]

    def template(self, name: str) -> dict[str, Any]:
        """The template the stack was last deployed with, as a dict (intrinsics as None in YAML).

        An unreadable or non-mapping template is an empty dict; StackError when it cannot be
        fetched.
        """
        try:
            body: object = self.cfn.get_template(StackName=name)["TemplateBody"]
        except AWS_ERRORS as exc:
            raise StackError(f"{name}: cannot read its template: {describe_error(exc)}") from None
        return _template_dict(body)

    def resources(self, name: str) -> list[StackResourceTypeDef]:
        """The stack's resources now; StackError when they cannot be listed."""
        try:
            return self.cfn.describe_stack_resources(StackName=name)["StackResources"]
        except AWS_ERRORS as exc:
            raise StackError(f"{name}: cannot list its resources: {describe_error(exc)}") from None

    def resource_count(self, name: str) -> int:
        """How many resources the stack has now; StackError when they cannot be listed."""
        return len(self.resources(name))

    def physical_id(self, name: str, logical_id: str) -> str:
        """The physical id of one resource of the stack; StackError when it has none."""
        return str(self._resource(name, logical_id).get("PhysicalResourceId") or "")

    def metadata(self, name: str, logical_id: str) -> dict[str, Any]:
        """The resolved Metadata of one resource of the stack ({} when it has none)."""
        text = self._resource(name, logical_id).get("Metadata") or "{}"
        try:
            loaded = json.loads(text)
        except ValueError:
            raise StackError(f"{name}: {logical_id} has metadata that is not JSON") from None
        return loaded if isinstance(loaded, dict) else {}

    def _resource(self, name: str, logical_id: str) -> dict[str, Any]:
        try:
            detail = self.cfn.describe_stack_resource(StackName=name, LogicalResourceId=logical_id)
        except AWS_ERRORS as exc:
            raise StackError(
                f"{name}: cannot read its resource {logical_id}: {describe_error(exc)}"
            ) from None
        return dict(detail["StackResourceDetail"])

    def drift(self, name: str) -> str:
        """Detect the stack's drift and wait for the answer: `IN_SYNC`, `DRIFTED`, ...

        The AWS error is raised as it is (one of AWS_ERRORS), so that the caller can say why
        drift could not be checked; StackError when the detection does not finish in time.
        """
        detection = self.cfn.detect_stack_drift(StackName=name)["StackDriftDetectionId"]
        deadline = self.clock() + self.timeout
        backoff = Backoff(self.poll_interval, first=self.poll_interval * FIRST_CHECK)
        while True:
            status = self.cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
            if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
                return str(status.get("StackDriftStatus", "UNKNOWN"))
            self._wait(name, deadline, "drift detection", backoff)

    def _progress(self, name: str, status: str) -> Progress:
        try:
            resources = self.resources(name)
        except StackError:  # the counter is a courtesy; the status is what is waited for
            return Progress(name, status, 0, 0)
        done = sum(
            1
            for r in resources
            if r.get("ResourceStatus", "").endswith("_COMPLETE")
            or r.get("ResourceStatus") == "DELETE_SKIPPED"
        )
        return Progress(name, status, done, len(resources))

    def _wait(self, name: str, deadline: float, what: str, backoff: Backoff) -> None:
        if self.clock() >= deadline:
            raise StackError(
                f"{name}: gave up waiting for {what} after {self.timeout:.0f} s; it may still "
                "finish: check the CloudFormation console, then run the command again"
            )
        self.sleep(backoff.next())


@dataclass
class StackOps(StackReader):
    """Operations on the stacks of one account and region: change sets, waits and deletes.

    Safe to share between threads: every wait keeps its own state.
    """

    # ------------------------------------------------------------------ change sets

    def prepare(
        self,
        name: str,
        template_body: str,
        parameters: Mapping[str, str],
        tags: Mapping[str, str],
        *,
        create: bool,
    ) -> Review:
        """Create a change set and wait until it is ready; an empty one is deleted at once."""
        change_set = f"{MANAGED_BY}-{uuid.uuid4().hex[:12]}"
        try:
            created = self.cfn.create_change_set(
                StackName=name,
                ChangeSetName=change_set,
                ChangeSetType="CREATE" if create else "UPDATE",
                TemplateBody=template_body,
                Parameters=[
                    {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()
                ],
                Capabilities=list(CAPABILITIES),
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        except AWS_ERRORS as exc:
            if no_changes(describe_error(exc)):
                return Review(name, "", create)  # some endpoints refuse an empty one at once
            raise StackError(f"{name}: cannot create a change set: {describe_error(exc)}") from None
        change_set_id = created["Id"]
        described = self._ready(name, change_set_id)
        if described is None:
            self._delete_change_set(name, change_set_id)
            return Review(name, "", create)
        changes = tuple(_changes(described, self.cfn, change_set_id, name))
        return Review(name, change_set_id, create, changes)

    def _ready(self, name: str, change_set_id: str) -> DescribeChangeSetOutputTypeDef | None:
        """The change set once it is ready, or None when it changes nothing."""
        deadline = self.clock() + self.timeout
        # a change set takes seconds, never none (but on an emulator): the first look comes
        # after a short wait rather than at once, then the usual back-off
        backoff = Backoff(self.poll_interval, first=self.poll_interval * FIRST_CHECK)
        while True:
            self._wait(name, deadline, "the change set", backoff)
            described = self.cfn.describe_change_set(ChangeSetName=change_set_id, StackName=name)
            status = described["Status"]
            if status == "CREATE_COMPLETE":
                return described
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if no_changes(reason):
                    return None
                raise StackError(f"{name}: the change set failed: {reason}")

    def discard(self, review: Review) -> None:
        """Delete a change set that will not be executed (a stack it created goes too)."""
        if review.empty:
            return
        self._delete_change_set(review.stack_name, review.change_set_id)
        if review.create:
            info = self.describe(review.stack_name)
            if info is not None and info.state == "review":
                try:
                    self.cfn.delete_stack(StackName=review.stack_name)
                except AWS_ERRORS as exc:
                    raise StackError(
                        f"{review.stack_name}: cannot delete the empty stack the change set "
                        f"made: {describe_error(exc)}"
                    ) from None

    def _delete_change_set(self, name: str, change_set_id: str) -> None:
        try:
            self.cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
        except AWS_ERRORS as exc:
            raise StackError(f"{name}: cannot delete change set: {describe_error(exc)}") from None

    def execute(
        self,
        review: Review,
        on_progress: ProgressCallback | None = None,
        *,
        expected: float | None = None,
    ) -> StackInfo:
        """Execute a reviewed change set and wait until the stack rests; StackError if it fails.

        Rollback is off: when a resource fails, what was already made (generated secrets
        included) stays, and the next change set resumes from there instead of starting over.
        `expected`: how long the operation typically takes, which paces the polls.
        """
        if review.empty:
            raise StackError(f"{review.stack_name}: nothing to execute")
        try:
            self.cfn.execute_change_set(ChangeSetName=review.change_set_id, DisableRollback=True)
        except AWS_ERRORS as exc:
            raise StackError(
                f"{review.stack_name}: cannot execute the change set: {describe_error(exc)}"
            ) from None
        return self.wait(review.stack_name, on_progress, expect="complete", expected=expected)

    # ------------------------------------------------------------------ waiting and deleting

    def settle(
        self,
        name: str,
        on_progress: ProgressCallback | None = None,
        *,
        expected: float | None = None,
    ) -> StackInfo | None:
        """Wait until the stack is not in progress; its info then, or None when it is gone.

        With `on_progress`, the resources for its counter are listed on the first poll,
        whenever the status changes and on every RESOURCES_EVERY-th poll; the polls between
        report the last count with the new status. Without it they are not listed at all.
        """
        deadline = self.clock() + self.timeout
        backoff = Backoff(self.poll_interval, expected=expected)
        last: Progress | None = None
        polls = 0
        while True:
            info = self.describe(name)
            status = info.status if info else "DELETE_COMPLETE"
            moved = last is not None and status != last.status
            if on_progress is None:
                now = Progress(name, status, 0, 0)
            else:
                now = self._count(name, info, last, listing=moved or polls % RESOURCES_EVERY == 0)
                on_progress(now)
            if state_of(status) != "in_progress":
                return info if info is not None and info.state != "absent" else None
            if moved:
                backoff.reset()
            elif last is not None and now.done != last.done:
                backoff.hold()  # resources keep completing: keep looking at this pace
            last, polls = now, polls + 1
            self._wait(name, deadline, "the stack", backoff)

    def _count(
        self, name: str, info: StackInfo | None, last: Progress | None, *, listing: bool
    ) -> Progress:
        """The progress now: listed afresh when asked (or first), else the last count."""
        status = info.status if info else "DELETE_COMPLETE"
        if info is None:
            return Progress(name, status, 0, 0)
        if last is None or listing:
            return self._progress(name, status)
        return Progress(name, status, last.done, last.total)

    def wait(
        self,
        name: str,
        on_progress: ProgressCallback | None = None,
        *,
        expect: State = "complete",
        expected: float | None = None,
    ) -> StackInfo:
        """Wait until the stack rests; StackError unless it rests in the `expect`ed state."""
        info = self.settle(name, on_progress, expected=expected)
        state = info.state if info else "absent"
        if state == expect:
            return info or StackInfo(name, "DELETE_COMPLETE", "", {})
        assert info is not None  # noqa: S101 - "absent" is the only state without info
        reason = self.first_failure(info.name, info.stack_id) or info.reason or "no reason given"
        raise StackError(f"{info.name}: {info.status}: {reason}")

    def delete(
        self,
        name: str,
        on_progress: ProgressCallback | None = None,
        *,
        expected: float | None = None,
    ) -> None:
        """Delete a stack and wait until it is gone; a stack that does not exist is fine."""
        info = self.describe(name)
        if info is None:
            return
        try:
            self.cfn.delete_stack(StackName=info.stack_id or name)
        except AWS_ERRORS as exc:
            raise StackError(f"{name}: cannot delete it: {describe_error(exc)}") from None
        self.wait(info.stack_id or name, on_progress, expect="absent", expected=expected)


def _info(stack: StackTypeDef, name: str) -> StackInfo:
    return StackInfo(
        name=stack.get("StackName", name),
        status=stack["StackStatus"],
        reason=stack.get("StackStatusReason", ""),
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        stack_id=stack.get("StackId", ""),
        parameters={
            p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
        },
        tags={t["Key"]: t["Value"] for t in stack.get("Tags", [])},
    )


def _template_dict(body: object) -> dict[str, Any]:
    """GetTemplate's body as a dict: botocore decodes a JSON body itself, YAML stays text."""
    if isinstance(body, dict):
        return body
    # a YAML body comes only from a stack another tool deployed
    import yaml  # noqa: PLC0415

    from tsm_infra import cfnyaml  # noqa: PLC0415

    try:
        loaded = json.loads(str(body))
    except ValueError:
        try:
            loaded = cfnyaml.load(str(body))
        except yaml.YAMLError:
            return {}
    return loaded if isinstance(loaded, dict) else {}


def _changes(
    described: DescribeChangeSetOutputTypeDef,
    cfn: CloudFormationClient,
    change_set_id: str,
    name: str,
) -> list[Change]:
    """Every resource change of a described change set, following NextToken."""
    found: list[Change] = []
    page = described
    while True:
        for change in page.get("Changes", []):
            resource = change.get("ResourceChange") or {}
            found.append(
                Change(
                    action=str(resource.get("Action", "")),
                    logical_id=str(resource.get("LogicalResourceId", "")),
                    resource_type=str(resource.get("ResourceType", "")),
                    replacement=str(resource.get("Replacement", "") or ""),
                )
            )
        token = page.get("NextToken")
        if not token:
            return found
        page = cfn.describe_change_set(ChangeSetName=change_set_id, StackName=name, NextToken=token)
