"""What a plan is made of: steps that form a dependency graph, and the plan that holds them.

A step says everything needed to carry it out: the target (the node's account, region and how
to reach it), the stack and template, parameters (literal, or references to other stacks'
outputs), tags and the guards that must hold before it acts. `depends_on` names the steps whose
completion it needs; the executor runs every step as soon as those are done. Plans are frozen
data: no AWS, no files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tsm_infra.spec import Node

StackKind = Literal["kms", "core"]
StackAction = Literal["deploy", "delete"]
Command = Literal["deploy", "destroy"]

# Guards a stack step may carry; the executor checks each before the step changes anything.
LEFTOVER_SECRETS = "no-leftover-secrets"  # a new KMS stack must not collide with kept secrets
STATEFUL_REPLACEMENT = "refuse-stateful-replacement"  # unless --allow-replace names it
LIFT_DELETION_PROTECTION = "lift-deletion-protection"  # on the database and load balancer


@dataclass(frozen=True)
class OutputRef:
    """An output of another stack, known only once that stack is deployed."""

    stack: str
    output: str

    def symbol(self) -> str:
        """How the plan shows it: `${stack.Output}`."""
        return f"${{{self.stack}.{self.output}}}"


@dataclass(frozen=True)
class JoinedRefs:
    """A comma-separated list parameter built from several stacks' outputs."""

    refs: tuple[OutputRef, ...]

    def symbol(self) -> str:
        """The refs' symbols joined by commas, as the parameter will be."""
        return ",".join(ref.symbol() for ref in self.refs)


ParamValue = str | OutputRef | JoinedRefs


def show(value: ParamValue) -> str:
    """A parameter value as text: literal, or symbolic for what deploy fills in."""
    return value if isinstance(value, str) else value.symbol()


def references(value: ParamValue) -> tuple[OutputRef, ...]:
    """The other stacks' outputs a parameter value is made of (none for a literal)."""
    if isinstance(value, str):
        return ()
    return value.refs if isinstance(value, JoinedRefs) else (value,)


@dataclass(frozen=True)
class StackStep:
    """Deploy or delete one stack of one node, in that node's account and region."""

    kind: StackKind
    node: Node
    access: str
    stack_name: str
    template: str
    parameters: Mapping[str, ParamValue]
    action: StackAction = "deploy"
    tags: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    # the plan stage it is shown in; the stage's stack steps are confirmed together
    stage: str = ""
    # from the template, when it is read: defaults the plan leaves alone, and the outputs
    template_defaults: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The step's name in the graph: its stack's name."""
        return self.stack_name

    @property
    def node_index(self) -> int:
        """The index of the node the stack belongs to."""
        return self.node.index

    @property
    def account(self) -> str:
        """The account the stack lives in."""
        return self.node.account

    @property
    def region(self) -> str:
        """The region the stack lives in."""
        return self.node.region

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; symbolic values stay symbolic."""
        return {
            "stack_name": self.stack_name,
            "kind": self.kind,
            "action": self.action,
            "node": self.node_index,
            "account": self.account,
            "region": self.region,
            "access": self.access,
            "template": self.template,
            "depends_on": list(self.depends_on),
            "guards": list(self.guards),
            "tags": dict(self.tags),
            "parameters": {name: show(value) for name, value in self.parameters.items()},
            "template_defaults": dict(self.template_defaults),
            "outputs": list(self.outputs),
        }


@dataclass(frozen=True)
class Invitation:
    """A peer's RAM share that an account must accept: who sends it, its name and region."""

    sender: str
    share: str
    region: str


@dataclass(frozen=True)
class ShareStep:
    """Accept, in one account, the peers' RAM share invitations its Core stacks rely on."""

    node: Node  # the first node in the account: its access settings open the account
    access: str
    expected: tuple[Invitation, ...]
    depends_on: tuple[str, ...] = ()
    stage: str = "share"
    kind: Literal["share"] = "share"

    @property
    def id(self) -> str:
        """The step's name in the graph."""
        return f"share:{self.node.account}"

    @property
    def account(self) -> str:
        """The account that accepts."""
        return self.node.account

    def describe(self) -> str:
        """What the step does, in words."""
        return f"accept invitations in {self.account}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "id": self.id,
            "kind": self.kind,
            "action": "accept-invitations",
            "account": self.account,
            "access": self.access,
            "depends_on": list(self.depends_on),
            "expected": [
                {"sender": i.sender, "share": i.share, "region": i.region} for i in self.expected
            ],
        }


Step = StackStep | ShareStep


@dataclass(frozen=True)
class Stage:
    """A group of steps as the plan shows them, and the point where they are confirmed."""

    name: str
    description: str


@dataclass(frozen=True)
class Phase:
    """One stage with its steps, for display: stack steps, and actions in words."""

    name: str
    description: str
    steps: tuple[StackStep, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The steps that carry out one command on a cluster. A plan changes nothing by itself."""

    command: Command
    cluster: str
    threshold: int
    source: str
    graph: tuple[Step, ...]  # every step, each after the steps it depends on
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = field(default=())

    def steps(self) -> list[StackStep]:
        """Every stack step, in the plan's order."""
        return [step for step in self.graph if isinstance(step, StackStep)]

    @property
    def phases(self) -> tuple[Phase, ...]:
        """The steps grouped by stage, in stage order."""
        return tuple(
            Phase(
                stage.name,
                stage.description,
                tuple(s for s in self.steps() if s.stage == stage.name),
                tuple(
                    s.describe()
                    for s in self.graph
                    if isinstance(s, ShareStep) and s.stage == stage.name
                ),
            )
            for stage in self.stages
            if any(step.stage == stage.name for step in self.graph)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: the graph, and the stages it is shown and confirmed in."""
        phases = self.phases
        order = {phase.name: number for number, phase in enumerate(phases, start=1)}
        return {
            "command": self.command,
            "cluster": self.cluster,
            "threshold": self.threshold,
            "spec": self.source,
            "deployed": False,
            "phases": [
                {
                    "order": order[phase.name],
                    "name": phase.name,
                    "description": phase.description,
                    "stacks": [step.stack_name for step in phase.steps],
                    "actions": list(phase.actions),
                }
                for phase in phases
            ],
            "stacks": [
                {"order": order[step.stage], "phase": step.stage, **step.to_dict()}
                for step in self.steps()
            ],
            "steps": [
                {
                    "id": step.id,
                    "kind": step.kind,
                    "stage": step.stage,
                    "after": list(step.depends_on),
                }
                for step in self.graph
            ],
            "warnings": list(self.warnings),
        }
