"""One CloudFormation stack: change set -> review -> execute -> wait -> outputs.

Every create and update goes through a change set, so that what will happen is known (and can be
refused) before anything happens. A change set without changes is success ("unchanged"). The many
CloudFormation statuses reduce to a few states (`state_of`), which is all the deployer needs.
This module receives a CloudFormation client; it never creates one and never prints.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tsm_infra.contract import MANAGED_BY, STATEFUL_TYPES
from tsm_infra.errors import TsmInfraError, describe_error, error_code

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
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


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
class StackOps:
    """Operations on the stacks of one account and region, through one CloudFormation client."""

    cfn: Any
    poll_interval: float = 5.0
    timeout: float = 3 * 3600.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    # ------------------------------------------------------------------ reading

    def describe(self, name: str) -> StackInfo | None:
        """The stack now, or None when it does not exist."""
        try:
            stacks = self.cfn.describe_stacks(StackName=name)["Stacks"]
        except Exception as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in describe_error(exc):
                return None
            raise StackError(f"{name}: cannot describe the stack: {describe_error(exc)}") from None
        stack = stacks[0]
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

    def first_failure(self, name: str, stack_id: str = "") -> str:
        """`LogicalId (Type): reason` of the earliest failed resource event, or ""."""
        try:
            events = self._events(stack_id or name)
        except Exception:  # the reason is a courtesy; the failure itself is already known
            return ""
        for event in reversed(events):  # oldest first
            status = event.get("ResourceStatus", "")
            reason = event.get("ResourceStatusReason", "")
            if status.endswith("_FAILED") and event.get("LogicalResourceId") != name and reason:
                return f"{event['LogicalResourceId']} ({event.get('ResourceType', '?')}): {reason}"
        return ""

    def _events(self, name: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=name):
            events.extend(page["StackEvents"])
        return events

    def _progress(self, name: str, status: str) -> Progress:
        try:
            resources = self.cfn.describe_stack_resources(StackName=name)["StackResources"]
        except Exception:
            resources = []
        done = sum(
            1
            for r in resources
            if r.get("ResourceStatus", "").endswith("_COMPLETE")
            or r.get("ResourceStatus") == "DELETE_SKIPPED"
        )
        return Progress(name, status, done, len(resources))

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
        except Exception as exc:
            if any(text in describe_error(exc) for text in _NO_CHANGES):
                return Review(name, "", create)  # some endpoints refuse an empty one at once
            raise StackError(f"{name}: cannot create a change set: {describe_error(exc)}") from None
        change_set_id = created["Id"]
        deadline = self.clock() + self.timeout
        while True:
            described = self.cfn.describe_change_set(ChangeSetName=change_set_id, StackName=name)
            status = described["Status"]
            if status == "CREATE_COMPLETE":
                break
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if any(text in reason for text in _NO_CHANGES):
                    self._delete_change_set(name, change_set_id)
                    return Review(name, "", create)
                raise StackError(f"{name}: the change set failed: {reason}")
            self._wait(name, deadline, "the change set")
        changes = tuple(_changes(described, self.cfn, change_set_id, name))
        return Review(name, change_set_id, create, changes)

    def discard(self, review: Review) -> None:
        """Delete a change set that will not be executed (a stack it created goes too)."""
        if review.empty:
            return
        self._delete_change_set(review.stack_name, review.change_set_id)
        if review.create:
            info = self.describe(review.stack_name)
            if info is not None and info.state == "review":
                self.cfn.delete_stack(StackName=review.stack_name)

    def _delete_change_set(self, name: str, change_set_id: str) -> None:
        try:
            self.cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
        except Exception as exc:
            raise StackError(f"{name}: cannot delete change set: {describe_error(exc)}") from None

    def execute(self, review: Review, on_progress: ProgressCallback | None = None) -> StackInfo:
        """Execute a reviewed change set and wait until the stack rests; StackError if it fails.

        Rollback is off: when a resource fails, what was already made (generated secrets
        included) stays, and the next change set resumes from there instead of starting over.
        """
        if review.empty:
            raise StackError(f"{review.stack_name}: nothing to execute")
        try:
            self.cfn.execute_change_set(ChangeSetName=review.change_set_id, DisableRollback=True)
        except Exception as exc:
            raise StackError(
                f"{review.stack_name}: cannot execute the change set: {describe_error(exc)}"
            ) from None
        return self.wait(review.stack_name, on_progress, expect="complete")

    # ------------------------------------------------------------------ waiting and deleting

    def settle(self, name: str, on_progress: ProgressCallback | None = None) -> StackInfo | None:
        """Wait until the stack is not in progress; its info then, or None when it is gone."""
        deadline = self.clock() + self.timeout
        while True:
            info = self.describe(name)
            status = info.status if info else "DELETE_COMPLETE"
            if on_progress is not None:
                on_progress(self._progress(name, status) if info else Progress(name, status, 0, 0))
            if state_of(status) != "in_progress":
                return info if info is not None and info.state != "absent" else None
            self._wait(name, deadline, "the stack")

    def wait(
        self,
        name: str,
        on_progress: ProgressCallback | None = None,
        *,
        expect: State = "complete",
    ) -> StackInfo:
        """Wait until the stack rests; StackError unless it rests in the `expect`ed state."""
        info = self.settle(name, on_progress)
        state = info.state if info else "absent"
        if state == expect:
            return info or StackInfo(name, "DELETE_COMPLETE", "", {})
        assert info is not None  # noqa: S101 - "absent" is the only state without info
        reason = self.first_failure(info.name, info.stack_id) or info.reason or "no reason given"
        raise StackError(f"{info.name}: {info.status}: {reason}")

    def delete(self, name: str, on_progress: ProgressCallback | None = None) -> None:
        """Delete a stack and wait until it is gone; a stack that does not exist is fine."""
        info = self.describe(name)
        if info is None:
            return
        try:
            self.cfn.delete_stack(StackName=info.stack_id or name)
        except Exception as exc:
            raise StackError(f"{name}: cannot delete it: {describe_error(exc)}") from None
        self.wait(info.stack_id or name, on_progress, expect="absent")

    def _wait(self, name: str, deadline: float, what: str) -> None:
        if self.clock() >= deadline:
            raise StackError(
                f"{name}: gave up waiting for {what} after {self.timeout:.0f} s; it may still "
                "finish: check the CloudFormation console, then run the command again"
            )
        self.sleep(self.poll_interval)


def _changes(described: dict[str, Any], cfn: Any, change_set_id: str, name: str) -> list[Change]:
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
