"""How StackOps waits: back-off, resets on a status change, and how often it lists resources.

A scripted CloudFormation stand-in answers DescribeStacks from a list of statuses and
DescribeStackResources from a list of completed counts; a fake sleep records every wait and
advances a fake clock, so the tests read the exact sequence of waits and calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tsm_infra.backoff import MAX_INTERVALS, Backoff
from tsm_infra.stacks import Progress, StackError, StackOps


class ScriptedCfn:
    """Answers each DescribeStacks with the next status, each resource listing with a count."""

    def __init__(self, statuses: list[str], done: Iterator[int] | None = None, total: int = 10):
        self.statuses = list(statuses)
        self.done = done
        self.total = total
        self.calls: list[str] = []
        self.change_set_statuses: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.calls.append("DescribeStacks")
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Stacks": [{"StackName": StackName, "StackStatus": status}]}

    def describe_stack_resources(self, StackName: str) -> dict[str, Any]:
        self.calls.append("DescribeStackResources")
        done = next(self.done) if self.done is not None else 0
        resources = [
            {"ResourceStatus": "CREATE_COMPLETE" if i < done else "CREATE_IN_PROGRESS"}
            for i in range(self.total)
        ]
        return {"StackResources": resources}

    def create_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("CreateChangeSet")
        return {"Id": "cs-1"}

    def describe_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("DescribeChangeSet")
        return {"Status": self.change_set_statuses.pop(0), "Changes": []}


class Clock:
    """A fake clock and sleep: every wait is recorded and moves the clock on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 4))
        self.now += seconds

    def ops(self, cfn: ScriptedCfn, poll_interval: float = 1.0) -> StackOps:
        return StackOps(
            cfn,  # type: ignore[arg-type]
            poll_interval=poll_interval,
            sleep=self.sleep,
            clock=lambda: self.now,
        )


def test_the_waits_grow_by_half_up_to_the_cap() -> None:
    backoff = Backoff(1.0)
    waits = [round(backoff.next(), 4) for _ in range(10)]
    assert waits == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.5938, 11.3906, 12.0, 12.0, 12.0]
    assert backoff.cap == MAX_INTERVALS * 1.0


def test_a_reset_starts_over_and_a_hold_keeps_the_pace() -> None:
    backoff = Backoff(2.0, first=0.5)
    assert [backoff.next(), backoff.next(), backoff.next()] == [0.5, 2.0, 3.0]
    backoff.hold()
    assert [backoff.next(), backoff.next()] == [3.0, 4.5]
    backoff.reset()
    assert [backoff.next(), backoff.next()] == [2.0, 3.0]


def test_waiting_backs_off_and_starts_over_when_the_status_changes() -> None:
    clock = Clock()
    statuses = ["UPDATE_IN_PROGRESS"] * 5 + ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"] * 3
    cfn = ScriptedCfn([*statuses, "UPDATE_COMPLETE"])
    info = clock.ops(cfn).settle("s")
    assert info is not None
    assert info.status == "UPDATE_COMPLETE"
    assert clock.waits == [1.0, 1.5, 2.25, 3.375, 5.0625, 1.0, 1.5, 2.25]
    # nobody watches the progress: the resources are never listed
    assert set(cfn.calls) == {"DescribeStacks"}


def test_the_resources_are_listed_every_sixth_poll_and_when_the_status_changes() -> None:
    clock = Clock()
    cfn = ScriptedCfn(["CREATE_IN_PROGRESS"] * 9 + ["CREATE_COMPLETE"], done=iter(range(100)))
    seen: list[Progress] = []
    clock.ops(cfn).settle("s", seen.append)
    listed = [
        i
        for i, call in enumerate(c for c in cfn.calls if c == "DescribeStacks")
        if _listed_after(cfn.calls, i)
    ]
    assert listed == [0, 6, 9]  # the first poll, every sixth, and the final status
    assert len(seen) == 10
    # between listings the last count is shown with the new status
    assert [p.done for p in seen] == [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    assert seen[-1].status == "CREATE_COMPLETE"


def _listed_after(calls: list[str], poll: int) -> bool:
    """Whether the poll-th DescribeStacks was followed by a resource listing."""
    positions = [i for i, call in enumerate(calls) if call == "DescribeStacks"]
    at = positions[poll]
    return at + 1 < len(calls) and calls[at + 1] == "DescribeStackResources"


def test_the_wait_holds_while_resources_keep_completing() -> None:
    clock = Clock()
    cfn = ScriptedCfn(["CREATE_IN_PROGRESS"] * 9 + ["CREATE_COMPLETE"], done=iter(range(100)))
    clock.ops(cfn).settle("s", lambda progress: None)
    # the count listed at poll 6 changed: the wait after it does not grow
    assert clock.waits == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.5938, 7.5938, 11.3906, 12.0]


def test_the_first_change_set_check_is_sooner() -> None:
    clock = Clock()
    cfn = ScriptedCfn(["REVIEW_IN_PROGRESS"])
    cfn.change_set_statuses = ["CREATE_PENDING", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    review = clock.ops(cfn, poll_interval=5.0).prepare("s", "{}", {}, {}, create=True)
    assert review.change_set_id == "cs-1"
    # never at once (a change set takes seconds), and soon
    assert clock.waits == [1.5, 5.0, 7.5]
    assert cfn.calls.count("DescribeChangeSet") == 3


def test_a_long_stack_costs_few_calls() -> None:
    """A 20-minute Core stack at the real 5 s interval, watched: about 30 calls, not 490."""
    clock = Clock()
    polls = 0

    class Timed(ScriptedCfn):
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            nonlocal polls
            polls += 1
            self.statuses = ["CREATE_COMPLETE" if clock.now >= 1200 else "CREATE_IN_PROGRESS"]
            return super().describe_stacks(StackName)

    cfn = Timed(["CREATE_IN_PROGRESS"], done=iter(range(1000)), total=60)
    clock.ops(cfn, poll_interval=5.0).settle("s", lambda progress: None)
    assert len(cfn.calls) <= 32, cfn.calls
    assert clock.now - 1200 <= 60  # noticed within one capped wait of the end


def test_waiting_gives_up_at_the_deadline() -> None:
    clock = Clock()
    ops = clock.ops(ScriptedCfn(["CREATE_IN_PROGRESS"]), poll_interval=10)
    ops.timeout = 15
    with pytest.raises(StackError, match="gave up waiting for the stack after 15 s"):
        ops.settle("s")
    assert clock.waits == [10.0, 15.0]


def test_with_an_expected_end_the_waits_halve_the_time_left_to_it() -> None:
    backoff = Backoff(5.0, expected=100.0)
    waits = [backoff.next() for _ in range(7)]
    # half of what is left each time (never under base), then, past the expected end, base
    # again growing by half
    assert waits == [50.0, 25.0, 12.5, 6.25, 5.0, 5.0, 7.5]


def test_an_expected_end_far_away_waits_at_most_the_cap() -> None:
    backoff = Backoff(5.0, expected=1200.0)
    assert backoff.next() == 5.0 * MAX_INTERVALS


def test_a_stack_that_ends_when_expected_is_seen_within_one_interval_and_cheaply() -> None:
    """The same 20-minute stack, paced by its typical duration: seen at once, fewer calls."""
    clock = Clock()

    class Timed(ScriptedCfn):
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            self.statuses = ["CREATE_COMPLETE" if clock.now >= 1200 else "CREATE_IN_PROGRESS"]
            return super().describe_stacks(StackName)

    cfn = Timed(["CREATE_IN_PROGRESS"], done=iter(range(1000)), total=60)
    clock.ops(cfn, poll_interval=5.0).settle("s", lambda progress: None, expected=1200.0)
    assert clock.now - 1200 <= 5.0, clock.waits
    assert len(cfn.calls) <= 32, cfn.calls


def test_a_stack_slower_than_expected_backs_off_again_after_the_expected_end() -> None:
    clock = Clock()

    class Timed(ScriptedCfn):
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            self.statuses = ["CREATE_COMPLETE" if clock.now >= 2400 else "CREATE_IN_PROGRESS"]
            return super().describe_stacks(StackName)

    cfn = Timed(["CREATE_IN_PROGRESS"])
    clock.ops(cfn, poll_interval=5.0).settle("s", expected=1200.0)
    assert cfn.calls.count("DescribeStacks") <= 50
    assert max(clock.waits) == 5.0 * MAX_INTERVALS
