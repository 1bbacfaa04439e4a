"""How long CloudFormation takes, modelled: typical real-AWS durations and the schedule they make.

The table holds, per resource type the two templates use, a typical creation time on real AWS
(and a deletion time where it differs), each with where the figure comes from. From a template's
resource-level dependencies (Ref, Fn::GetAtt, Fn::Sub, DependsOn, after Fn::ForEach and the
template's Conditions) `schedule` says when each resource starts and ends if it starts as soon
as the resources it needs are done; the emulator's latency model and the critical path of a
whole cluster (`critical_path`) are built on it. Figures are typical values, not bounds: RDS
alone varies by a factor of two or more from one run to the next.

Pure: no AWS, no moto, no boto3, no files; templates are read by `tsm_infra.resource_graph`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from tsm_infra.resource_graph import (
    Conditions,
    dependencies,
    parameter_values,
    references,
    resources,
)

Operation = Literal["create", "delete"]
K = TypeVar("K")


@dataclass(frozen=True)
class Typical:
    """A resource type's typical duration on real AWS in seconds, and the source of the figure."""

    create: float
    source: str
    delete: float | None = None  # None: deleting takes as long as creating

    def seconds(self, operation: Operation) -> float:
        """The typical time of one operation."""
        return self.delete if operation == "delete" and self.delete is not None else self.create


# Change-set creation, with the AWS::LanguageExtensions transform: 5-20 s (performance.md
# section 4); now and then up to a minute or more (cloudtools/stacker#389, acquia/moonshot#227).
# CloudFormation has the template parsed and diffed before any resource starts.
CHANGE_SET_SECONDS = 10.0

_PERF = "performance.md section 4"
_EC2_SMALL = "EC2 control-plane object, created synchronously by its API call (estimate)"

TYPICAL: Mapping[str, Typical] = {
    # --- the long pole: the database (MultiAZ handled in `resource_seconds`)
    "AWS::RDS::DBInstance": Typical(
        450.0,
        "single-AZ 5-10 min, Multi-AZ 10-20 min, sometimes 30+: hashicorp/terraform#1097, #2886, "
        "hashicorp/terraform-provider-aws#27, hashicorp/terraform#5831 (" + _PERF + "); "
        "deletion with DeletionPolicy Snapshot takes the final snapshot first, which for large "
        "instances alone outlasts 40 min (hashicorp/terraform#5161); for a small gp3 instance "
        "about 8 min (estimate)",
        delete=480.0,
    ),
    "AWS::RDS::DBSubnetGroup": Typical(5.0, "RDS metadata object, synchronous (estimate)"),
    "AWS::RDS::DBParameterGroup": Typical(5.0, "RDS metadata object, synchronous (estimate)"),
    # --- network
    "AWS::EC2::NatGateway": Typical(
        120.0,
        "1-3 min pending -> available, up to 5-10 min: kubernetes/kops#944, #995 (" + _PERF + "); "
        "deletion also waits for the 'deleted' state, about a minute (aws/aws-sdk#61, "
        "kubernetes-sigs/cluster-api-provider-aws#2263)",
        delete=60.0,
    ),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": Typical(
        180.0,
        "2-4 min provisioning -> active: ELB docs, load balancer states (" + _PERF + "); "
        "deletion returns without a provisioning wait (estimate)",
        delete=30.0,
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": Typical(5.0, "ELB metadata object (estimate)"),
    "AWS::ElasticLoadBalancingV2::Listener": Typical(5.0, "ELB metadata object (estimate)"),
    "AWS::EC2::EIP": Typical(10.0, "5-60 s: " + _PERF),
    "AWS::EC2::VPC": Typical(10.0, _EC2_SMALL),
    "AWS::EC2::Subnet": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::InternetGateway": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::VPCGatewayAttachment": Typical(15.0, _EC2_SMALL),
    "AWS::EC2::RouteTable": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::Route": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::SubnetRouteTableAssociation": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::SecurityGroup": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::SecurityGroupIngress": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::SecurityGroupEgress": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::FlowLog": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::LaunchTemplate": Typical(5.0, _EC2_SMALL),
    "AWS::EC2::VPCEndpoint": Typical(
        90.0, "interface endpoint pending -> available, 1-2 min (estimate)"
    ),
    # --- TLS and DNS
    "AWS::CertificateManager::Certificate": Typical(
        180.0,
        "DNS-validated in the node's own zone 2-5 min, 'allow up to 30 min': brentio FireFly "
        "ACM workflow doc, cloudformation-coverage-roadmap#130 (" + _PERF + "); deletion is "
        "one API call (estimate)",
        delete=5.0,
    ),
    "AWS::Route53::RecordSet": Typical(
        45.0,
        "CloudFormation waits for the change to be INSYNC; Route 53 docs: changes generally "
        "reach all its name servers within 60 s",
    ),
    # --- identity
    "AWS::IAM::InstanceProfile": Typical(
        120.0, "about 2 min, a fixed propagation delay: hashicorp/terraform#15341 (" + _PERF + ")"
    ),
    "AWS::IAM::Role": Typical(
        20.0,
        "10-30 s (" + _PERF + "); propagation takes seconds to ~30 s: pulumi/pulumi-aws#2411, "
        "ansible-collections/community.aws#710, hashicorp/terraform#7733",
    ),
    "AWS::IAM::Policy": Typical(
        20.0,
        "10-30 s (" + _PERF + "); a use right after PutRolePolicy needed ~15 s: aws/aws-sdk-js#850",
    ),
    # --- keys, secrets and shared facts
    "AWS::KMS::Key": Typical(
        30.0,
        "5-60 s (" + _PERF + "); deletion only schedules it (PendingWindowInDays), or with "
        "DeletionPolicy Retain leaves it (estimate)",
        delete=5.0,
    ),
    "AWS::KMS::Alias": Typical(5.0, "5-60 s for KMS objects (" + _PERF + "); one API call"),
    "AWS::SecretsManager::Secret": Typical(10.0, "5-60 s: " + _PERF),
    "AWS::SecretsManager::ResourcePolicy": Typical(10.0, "5-60 s: " + _PERF),
    "AWS::SSM::Parameter": Typical(5.0, "5-60 s: " + _PERF),
    "AWS::RAM::ResourceShare": Typical(20.0, "5-60 s: " + _PERF),
    # --- the keygen function and its custom resource
    "AWS::Lambda::Function": Typical(
        20.0,
        "10-30 s (" + _PERF + "): CloudFormation waits for the function to leave Pending for "
        "Active (Lambda docs, function states)",
    ),
    "Custom::NodeSecrets": Typical(
        10.0,
        "5-15 s: Lambda cold start, GenerateDataKeyPair, 4 PutSecretValue (" + _PERF + ")",
    ),
    "AWS::Logs::LogGroup": Typical(5.0, "CloudWatch Logs metadata object (estimate)"),
    "AWS::CloudWatch::Alarm": Typical(5.0, "CloudWatch metadata object (estimate)"),
    # --- compute (CreationPolicy handled in `resource_seconds`)
    "AWS::AutoScaling::AutoScalingGroup": Typical(
        60.0,
        "without a CreationPolicy the group is created in about a minute (estimate); with one, "
        "see CREATION_POLICY_ASG; deleting terminates the instance first, 2-5 min (estimate)",
        delete=180.0,
    ),
    # --- service discovery
    "AWS::ServiceDiscovery::HttpNamespace": Typical(
        30.0, "Cloud Map creates namespaces as an asynchronous operation (estimate)"
    ),
    "AWS::ServiceDiscovery::Service": Typical(5.0, "Cloud Map metadata object (estimate)"),
    "AWS::ServiceDiscovery::Instance": Typical(10.0, "Cloud Map registration (estimate)"),
}

# An auto-scaling group of one whose CreationPolicy waits for the instance's signal: launch
# ~1 min, then cfn-init, image pull, configuration and the node's /ping.
CREATION_POLICY_ASG = Typical(
    240.0, "3-6 min: launch ~1 min + cfn-init, image pull, config, /ping (" + _PERF + ")"
)
# A Multi-AZ database also builds and syncs its standby.
MULTI_AZ_DATABASE = Typical(900.0, "10-20 min: the RDS sources in TYPICAL (" + _PERF + ")")
# A resource DeletionPolicy keeps: CloudFormation only forgets it.
RETAINED = Typical(0.0, "DeletionPolicy Retain: nothing is deleted")
# Any other type, including custom resources other than Custom::NodeSecrets.
DEFAULT = Typical(10.0, "a type not in the table: a typical small resource (estimate)")


def typical(resource: Mapping[str, Any], values: Mapping[str, str] | None = None) -> Typical:
    """The typical duration of one resource, given its properties and the stack's parameters.

    Where a property changes the time (an RDS instance's MultiAZ, an auto-scaling group's
    CreationPolicy) the property decides; a MultiAZ that is a Ref reads the parameter value.
    """
    kind = str(resource.get("Type", ""))
    properties = resource.get("Properties")
    properties = properties if isinstance(properties, Mapping) else {}
    if kind == "AWS::RDS::DBInstance" and _true(properties.get("MultiAZ"), values or {}):
        return MULTI_AZ_DATABASE
    if kind == "AWS::AutoScaling::AutoScalingGroup" and "CreationPolicy" in resource:
        return Typical(CREATION_POLICY_ASG.create, CREATION_POLICY_ASG.source, TYPICAL[kind].delete)
    return TYPICAL.get(kind, DEFAULT)


def resource_seconds(
    resource: Mapping[str, Any],
    operation: Operation = "create",
    values: Mapping[str, str] | None = None,
) -> float:
    """Unscaled seconds one resource takes to be created or deleted."""
    if operation == "delete" and resource.get("DeletionPolicy") in (
        "Retain",
        "RetainExceptOnCreate",
    ):
        return RETAINED.create
    return typical(resource, values).seconds(operation)


def _true(value: Any, values: Mapping[str, str]) -> bool:
    if isinstance(value, Mapping) and set(value) == {"Ref"}:
        value = values.get(str(value["Ref"]), "false")
    return str(value).lower() == "true"


# --------------------------------------------------------------------------- the schedule


def schedule(
    template: Mapping[str, Any],
    scale: float,
    *,
    parameters: Mapping[str, str] | None = None,
    operation: Operation = "create",
) -> dict[str, tuple[float, float]]:
    """Logical id -> (start, end): seconds after the stack operation starts, times `scale`.

    Creating, a resource starts when every resource it needs has been created; deleting, when
    every resource that needs it has been deleted. `parameters` (the stack's values, else the
    template's defaults) decide Fn::ForEach collections, Conditions and MultiAZ. ValueError: a
    dependency cycle, or an Fn::ForEach over a parameter that has no value.
    """
    present = resources(template, parameters)
    needs = dependencies(template, parameters)
    if operation == "delete":
        needs = _reversed(needs)
    values = parameter_values(template, parameters)
    durations = {
        logical_id: resource_seconds(body, operation, values) * scale
        for logical_id, body in present.items()
    }
    ends = earliest_ends(durations, needs)
    return {
        logical_id: (ends[logical_id] - durations[logical_id], ends[logical_id])
        for logical_id in present
    }


def _reversed(needs: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    users: dict[str, set[str]] = {name: set() for name in needs}
    for name, required in needs.items():
        for other in required:
            users[other].add(name)
    return {name: frozenset(found) for name, found in users.items()}


def earliest_ends(durations: Mapping[K, float], needs: Mapping[K, Iterable[K]]) -> dict[K, float]:
    """Each node's earliest end when it starts as soon as every node it needs has ended.

    ValueError names a dependency cycle.
    """
    ends: dict[K, float] = {}
    visiting: set[K] = set()

    def end(node: K) -> float:
        if node in ends:
            return ends[node]
        if node in visiting:
            raise ValueError(f"dependency cycle through {node}")
        visiting.add(node)
        start = max((end(other) for other in needs.get(node, ())), default=0.0)
        visiting.discard(node)
        ends[node] = start + durations[node]
        return ends[node]

    for node in durations:
        end(node)
    return ends


# --------------------------------------------------------------------------- the cluster


@runtime_checkable
class _Ref(Protocol):
    """An output of another stack (the plan's OutputRef)."""

    @property
    def stack(self) -> str: ...
    @property
    def output(self) -> str: ...


@runtime_checkable
class _Joined(Protocol):
    """A list parameter made of several stacks' outputs (the plan's JoinedRefs)."""

    @property
    def refs(self) -> Sequence[_Ref]: ...


@runtime_checkable
class StackStep(Protocol):
    """What the critical path reads of a plan's stack step."""

    @property
    def kind(self) -> str: ...
    @property
    def stack_name(self) -> str: ...
    @property
    def parameters(self) -> Mapping[str, object]: ...


class Step(Protocol):
    """Any plan step; only those whose kind has a template are stacks."""

    @property
    def kind(self) -> str: ...


CHANGE_SET = "(change set)"
_DONE = "(complete)"


@dataclass(frozen=True)
class Link:
    """One element of a critical chain: a resource of a stack, or that stack's change set."""

    stack: str
    name: str  # a logical id, or CHANGE_SET
    start: float
    end: float


@dataclass(frozen=True)
class CriticalPath:
    """The longest chain of a cluster's deploy, and the bound if stacks did not exist.

    `seconds`/`chain`: each stack starts (with its change set) when every stack whose outputs it
    takes has completed. `resource_seconds`/`resource_chain`: a resource starts as soon as the
    resources behind the outputs it takes exist, after one change set at the start; what a
    stack split could reach at best (each split stack would still pay its own change set).
    """

    seconds: float
    chain: tuple[Link, ...]
    resource_seconds: float
    resource_chain: tuple[Link, ...]
    # each stack's (start of its change set, completion) with stack boundaries, as above
    stacks: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The two chains as printable lines."""
        out = [f"critical path {self.seconds:.1f} s:"]
        out += [f"  {link.end:8.1f}  {link.stack} {link.name}" for link in self.chain]
        out.append(f"without stack boundaries {self.resource_seconds:.1f} s:")
        out += [f"  {link.end:8.1f}  {link.stack} {link.name}" for link in self.resource_chain]
        return out


@dataclass(frozen=True)
class _Stack:
    """One stack as the critical path sees it."""

    name: str
    values: dict[str, str]  # literal parameter values
    inputs: dict[str, tuple[tuple[str, str], ...]]  # parameter -> (stack, output) it takes
    template: Mapping[str, Any]


def critical_path(
    steps: Iterable[Step], templates: Mapping[str, Mapping[str, Any]], *, scale: float = 1.0
) -> CriticalPath:
    """The critical path of a cluster's deploy from the plan's stack steps and their templates.

    `templates` maps a step's kind to its rendered template; steps of other kinds (accepting
    RAM invitations) take no modelled time and are left out. Durations are times `scale`.
    """
    stacks = [_stack(step, templates[step.kind]) for step in steps if _is_stack(step, templates)]
    by_name = {stack.name: stack for stack in stacks}
    durations: dict[tuple[str, str], float] = {}
    staged: dict[tuple[str, str], set[tuple[str, str]]] = {}
    direct: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for stack in stacks:
        own = resources(stack.template, stack.values)
        needs = dependencies(stack.template, stack.values)
        takes = _taken_outputs(stack, own)
        start = (stack.name, CHANGE_SET)
        durations[start] = CHANGE_SET_SECONDS * scale
        durations[(stack.name, _DONE)] = 0.0
        staged[start] = {(source, _DONE) for pairs in stack.inputs.values() for source, _ in pairs}
        direct[start] = set()
        staged[(stack.name, _DONE)] = direct[(stack.name, _DONE)] = {
            (stack.name, logical_id) for logical_id in own
        }
        for logical_id, body in own.items():
            key = (stack.name, logical_id)
            durations[key] = resource_seconds(body, "create", stack.values) * scale
            inner = {(stack.name, other) for other in needs[logical_id]} | {start}
            staged[key] = inner
            direct[key] = inner | {
                behind for ref in takes[logical_id] for behind in _behind(ref, by_name)
            }
    seconds, chain = _longest(durations, staged)
    resource_seconds_, resource_chain = _longest(durations, direct)
    ends = earliest_ends(durations, staged)
    times = {
        stack.name: (
            ends[(stack.name, CHANGE_SET)] - durations[(stack.name, CHANGE_SET)],
            ends[(stack.name, _DONE)],
        )
        for stack in stacks
    }
    return CriticalPath(seconds, chain, resource_seconds_, resource_chain, times)


def _is_stack(step: Step, templates: Mapping[str, Mapping[str, Any]]) -> bool:
    return step.kind in templates and isinstance(step, StackStep)


def _stack(step: Step, template: Mapping[str, Any]) -> _Stack:
    assert isinstance(step, StackStep)  # noqa: S101 - _is_stack checked it
    values: dict[str, str] = {}
    inputs: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, value in step.parameters.items():
        if isinstance(value, str):
            values[name] = value
        elif isinstance(value, _Joined):
            inputs[name] = tuple((ref.stack, ref.output) for ref in value.refs)
        elif isinstance(value, _Ref):
            inputs[name] = ((value.stack, value.output),)
    return _Stack(step.stack_name, values, inputs, template)


def _taken_outputs(
    stack: _Stack, own: Mapping[str, Mapping[str, Any]]
) -> dict[str, set[tuple[str, str]]]:
    """Each resource -> the (stack, output) pairs it takes through its parameters."""
    conditions = Conditions(stack.template.get("Conditions") or {}, stack.values)
    return {
        logical_id: {
            pair for name in references(body, conditions) for pair in stack.inputs.get(name, ())
        }
        for logical_id, body in own.items()
    }


def _behind(ref: tuple[str, str], stacks: Mapping[str, _Stack]) -> set[tuple[str, str]]:
    """The resources of the source stack an output's value is made of."""
    source = stacks.get(ref[0])
    if source is None:
        return set()
    outputs = source.template.get("Outputs") or {}
    output = outputs.get(ref[1]) if isinstance(outputs, Mapping) else None
    if not isinstance(output, Mapping):
        return set()
    own = resources(source.template, source.values)
    conditions = Conditions(source.template.get("Conditions") or {}, source.values)
    named = references(output.get("Value"), conditions)
    return {(source.name, name) for name in named if name in own}


def _longest(
    durations: Mapping[tuple[str, str], float],
    needs: Mapping[tuple[str, str], set[tuple[str, str]]],
) -> tuple[float, tuple[Link, ...]]:
    """The latest end over all nodes, and the chain of nodes that leads to it."""
    ends = earliest_ends(durations, needs)
    if not ends:
        return 0.0, ()
    node = max(ends, key=lambda key: (ends[key], key[1] != _DONE))
    total = ends[node]
    chain: list[Link] = []
    while True:
        if node[1] != _DONE:
            chain.append(Link(node[0], node[1], ends[node] - durations[node], ends[node]))
        before = needs.get(node, set())
        if not before:
            break
        node = max(before, key=lambda key: (ends[key], key[1] != _DONE, key))
    return total, tuple(reversed(chain))
