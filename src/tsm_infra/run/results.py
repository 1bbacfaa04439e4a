"""What a run reports: progress events while it goes, one outcome per stack when it ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tsm_infra.errors import TsmInfraError

OutcomeKind = Literal[
    "created",
    "updated",
    "unchanged",
    "replaced",
    "resumed",
    "failed",
    "refused",
    "declined",
    "skipped",
    "deleted",
    "absent",
]
# Outcomes that leave a stack where the run meant it to be.
OK_RESULTS: frozenset[str] = frozenset(
    {"created", "updated", "unchanged", "replaced", "resumed", "deleted", "absent"}
)


@dataclass(frozen=True)
class Event:
    """Progress of one stack, for a live view: what it is doing, how far, for how long."""

    stack: str
    node: int
    account: str
    region: str
    status: str
    done: int = 0
    total: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """How one stack ended in this run."""

    stack: str
    kind: str
    node: int
    account: str
    region: str
    result: OutcomeKind
    reason: str = ""
    changes: tuple[str, ...] = ()
    seconds: float = 0.0
    started: float = 0.0  # seconds after the run started
    ended: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the stack is where this run meant it to be."""
        return self.result in OK_RESULTS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "stack": self.stack,
            "kind": self.kind,
            "node": self.node,
            "account": self.account,
            "region": self.region,
            "result": self.result,
            "reason": self.reason,
            "changes": list(self.changes),
            "seconds": round(self.seconds, 1),
            "started": round(self.started, 1),
            "ended": round(self.ended, 1),
        }


@dataclass
class RunResult:
    """Every stack's outcome and the other actions taken, in the plan's order."""

    command: str
    cluster: str
    outcomes: list[Outcome] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every stack ended where it should."""
        return all(outcome.ok for outcome in self.outcomes)

    def failures(self) -> list[Outcome]:
        """The stacks that did not end where they should."""
        return [outcome for outcome in self.outcomes if not outcome.ok]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "command": self.command,
            "cluster": self.cluster,
            "ok": self.ok,
            "stacks": [outcome.to_dict() for outcome in self.outcomes],
            "actions": list(self.actions),
            "retained": list(self.retained),
            "seconds": round(self.seconds, 1),
        }


class Prompt(Protocol):
    """Asks the operator; returns True to go ahead."""

    def __call__(self, question: str, details: Sequence[str]) -> bool: ...


def always_yes(question: str, details: Sequence[str]) -> bool:
    """The prompt of `--yes` when nothing is shown: never waits, always goes ahead."""
    return True


def waits_for_answer(prompt: Prompt) -> bool:
    """True when the prompt may block for an answer, so the executor gathers a whole stage.

    A prompt that never asks (`--yes`) says so with `asks = False`; each step then goes ahead as
    soon as it is ready instead of waiting for the rest of its stage.
    """
    if prompt is always_yes:
        return False
    return bool(getattr(prompt, "asks", True))


@dataclass(frozen=True)
class Options:
    """How a run behaves, from the command line."""

    allow_replace: frozenset[str] = frozenset()
    poll_interval: float = 5.0
    timeout: float = 3 * 3600.0
    # How AWS's typical durations (durations.py) map to where the stacks go: 1.0 on AWS, the
    # latency scale on a modelled emulator, 0 where nothing is known (an instant emulator).
    # It paces the polls: a stack expected to take 20 minutes is not looked at every 5 s.
    durations_scale: float = 0.0
    # how long an account waits for its peers' share invitations to show up in RAM
    share_timeout: float = 600.0


RESUME_ADVICE = (
    "stopped waiting; CloudFormation goes on with what it had started{busy}. Nothing was "
    "damaged: run the same command again to resume."
)


class DeployError(TsmInfraError):
    """The run could not start or go on (the outcomes say which stacks were touched)."""
