"""What to do next with one stack, from what it is now: a pure function with a table of cases.

The executor observes a stack (DescribeStacks), asks `decide` what to do, does it, and, once a
change set is ready, asks `judge` whether to execute it. Neither function calls AWS, so every
state a stack can be in is tested as a row of a table (tests/unit/test_decide.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from tsm_infra.run.results import OutcomeKind
from tsm_infra.stacks import Change, State

Verb = Literal["create", "update", "resume", "replace"]
DONE: Mapping[Verb, OutcomeKind] = {
    "create": "created",
    "update": "updated",
    "resume": "resumed",
    "replace": "replaced",
}


@dataclass(frozen=True)
class Observed:
    """A stack as DescribeStacks shows it (absent: state "absent", the rest empty)."""

    state: State
    status: str = ""
    reason: str = ""
    parameters: Mapping[str, str] | None = None
    tags: Mapping[str, str] | None = None


ABSENT = Observed("absent")


@dataclass(frozen=True)
class Wanted:
    """What a deploy step would send: parameters, tags, and the template's own defaults."""

    parameters: Mapping[str, str]
    tags: Mapping[str, str]
    defaults: Mapping[str, str]


@dataclass(frozen=True)
class Wait:
    """The stack is busy: wait until it rests, then decide again."""


@dataclass(frozen=True)
class Finish:
    """Nothing to do, or nothing that may be done: the step ends with this outcome."""

    result: OutcomeKind
    reason: str = ""


@dataclass(frozen=True)
class ChangeSet:
    """Make a change set that will `verb` the stack, and review it.

    `discard_empty_stack`: an earlier create was never executed; the stack holds no resources,
    only change sets, so it is deleted and created again from nothing.
    """

    verb: Verb
    discard_empty_stack: bool = False

    @property
    def create(self) -> bool:
        """True when the change set creates the stack (after deleting it, for a replace)."""
        return self.verb in ("create", "replace")


@dataclass(frozen=True)
class Delete:
    """Delete the stack (after lifting deletion protection, when the step says so)."""

    lift_protection: bool


@dataclass(frozen=True)
class Execute:
    """Execute the reviewed change set; the step then ends as `DONE[verb]`."""

    verb: Verb


Decision = Wait | Finish | ChangeSet | Delete


def decide(
    action: Literal["deploy", "delete"],
    observed: Observed,
    wanted: Wanted | None = None,
    *,
    lift_protection: bool = False,
) -> Decision:
    """The next thing to do with a stack that is `observed` so, for a step that wants `action`."""
    state = observed.state
    if state == "in_progress":
        return Wait()
    if action == "delete":
        return Finish("absent") if state == "absent" else Delete(lift_protection)
    if state == "absent":
        return ChangeSet("create")
    if state == "review":
        return ChangeSet("create", discard_empty_stack=True)
    if state == "rollback_complete":
        return ChangeSet("replace")
    if state == "resumable":
        return ChangeSet("resume")
    if state == "failed":
        return Finish(
            "failed",
            f"the stack is {observed.status} and cannot be updated: {observed.reason}; repair it "
            "in the CloudFormation console (e.g. continue the rollback), then deploy again",
        )
    if wanted is not None and up_to_date(observed, wanted):
        return Finish("unchanged")
    return ChangeSet("update")


def up_to_date(observed: Observed, wanted: Wanted) -> bool:
    """True when the stack already has this template (by its digest tag), parameters and tags.

    A parameter the step does not pass must hold the template's default; anything else (an
    older deployer's stack without the digest tag, say) goes through a change set.
    """
    if observed.parameters is None or observed.tags is None:
        return False
    if dict(observed.tags) != dict(wanted.tags):
        return False
    for name, value in observed.parameters.items():
        expected = wanted.parameters.get(name, wanted.defaults.get(name))
        if expected != value:
            return False
    return set(wanted.parameters) <= set(observed.parameters)


def judge(
    plan: ChangeSet,
    changes: Iterable[Change] | None,
    *,
    refused: Iterable[Change] = (),
    observed: Observed = ABSENT,
    first_failure: str = "",
) -> Execute | Finish:
    """Whether a prepared change set is executed. `changes` None: the change set is empty."""
    if changes is None:
        if plan.verb == "resume":
            return Finish(
                "failed",
                f"still {observed.status} and the change set finds nothing to retry: "
                f"{first_failure or observed.reason}",
            )
        return Finish("unchanged")
    stopped = list(refused)
    if stopped:
        names = " ".join(change.logical_id for change in stopped)
        return Finish(
            "refused",
            "the change set would "
            + "; ".join(change.describe() for change in stopped)
            + ", which holds state that cannot be made again; rerun with "
            f"--allow-replace {names} if that is really meant",
        )
    return Execute(plan.verb)
