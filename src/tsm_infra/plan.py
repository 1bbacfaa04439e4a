"""Spec -> plan: which stacks go into which account, in what order, with what parameters.

Pure: no AWS calls, no files. Values that only exist once a stack is deployed (a KMS stack's
outputs feeding a Core stack) appear as `OutputRef`s, which `deploy` resolves and `plan` shows
symbolically as `${stack.Output}`. This module is also the single statement of how the two
templates are wired together; a test holds the templates' Parameters and Outputs to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tsm_infra.errors import TsmInfraError
from tsm_infra.images import ecr_repository, registry_port
from tsm_infra.spec import Cluster, Node, partition_of
from tsm_infra.templates import TemplateInterface

# Ports of the TSM node (TSM-FACTS.md); the Core stack exposes the same ones.
MPC_PORT = 9000

StackKind = Literal["kms", "core"]


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


@dataclass(frozen=True)
class StackStep:
    """One stack in one account: what to deploy there and with which parameters."""

    kind: StackKind
    node_index: int
    account: str
    region: str
    access: str
    stack_name: str
    template: str
    parameters: Mapping[str, ParamValue]
    depends_on: tuple[str, ...] = ()
    # from the template, when it is written: defaults the plan leaves alone, and the outputs
    template_defaults: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; symbolic values stay symbolic."""
        return {
            "stack_name": self.stack_name,
            "kind": self.kind,
            "node": self.node_index,
            "account": self.account,
            "region": self.region,
            "access": self.access,
            "template": self.template,
            "depends_on": list(self.depends_on),
            "parameters": {name: show(value) for name, value in self.parameters.items()},
            "template_defaults": dict(self.template_defaults),
            "outputs": list(self.outputs),
        }


@dataclass(frozen=True)
class Phase:
    """Steps that run in parallel; a phase starts when the one before has finished."""

    name: str
    description: str
    steps: tuple[StackStep, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The ordered phases that stand up a cluster. A plan deploys nothing by itself."""

    cluster: str
    threshold: int
    source: str
    phases: tuple[Phase, ...]
    warnings: tuple[str, ...] = field(default=())

    def steps(self) -> list[StackStep]:
        """Every stack step, in deployment order."""
        return [step for phase in self.phases for step in phase.steps]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the plan, with each stack's order."""
        stacks: list[dict[str, Any]] = []
        for order, phase in enumerate(self.phases, start=1):
            stacks.extend({"order": order, "phase": phase.name, **s.to_dict()} for s in phase.steps)
        return {
            "cluster": self.cluster,
            "threshold": self.threshold,
            "spec": self.source,
            "deployed": False,
            "phases": [
                {
                    "order": order,
                    "name": phase.name,
                    "description": phase.description,
                    "stacks": [step.stack_name for step in phase.steps],
                    "actions": list(phase.actions),
                }
                for order, phase in enumerate(self.phases, start=1)
            ],
            "stacks": stacks,
            "warnings": list(self.warnings),
        }


def stack_name(cluster: str, index: int, kind: StackKind) -> str:
    """The CloudFormation stack name of one node's stack of one kind."""
    return f"tsm-{cluster}-node{index}-{kind}"


def describe_access(node: Node) -> str:
    """How the deployer reaches the node's account, in words."""
    if node.access is None:
        return "default credentials"
    if node.access.profile:
        return f"profile {node.access.profile}"
    suffix = " with external id" if node.access.external_id else ""
    return f"assume {node.role_arn}{suffix}"


def kms_parameters(cluster: Cluster, node: Node) -> dict[str, ParamValue]:
    """Parameters of a node's KMS stack: all known before anything is deployed."""
    peers = sorted({peer.account for peer in cluster.nodes if peer.account != node.account})
    return {
        "ClusterName": cluster.name,
        "NodeIndex": str(node.index),
        "NodeDnsName": node.dns_name,
        "PeerAccountIds": ",".join(peers),
        "AllowExternalPrincipals": "false" if cluster.same_organization else "true",
        "SdkApplicationIds": ",".join(cluster.tsm.sdk_applications),
        "EgressAddressCount": str(node.nat_gateways),
    }


# KMS stack outputs a node's own Core stack takes, under the same names.
OWN_KMS_OUTPUTS = (
    "KmsKeyArn",
    "NodeInstanceProfileName",
    "NodeRoleName",
    "P2PKeySecretArn",
    "SdkApiKeysSecretArn",
    "ManagementApiKeySecretArn",
    "EncryptorMasterPasswordSecretArn",
    "DatabasePasswordSecretArn",
    "PublicParametersPath",
    "EgressAllocationIds",
)


def ecr_repository_arn(image: str) -> str:
    """The repository ARN of an `<acct>.dkr.ecr.<region>.amazonaws.com/<repo>:tag` image, or ""."""
    repository = ecr_repository(image)
    if repository is None:
        return ""
    account, region, name = repository
    return f"arn:{partition_of(region)}:ecr:{region}:{account}:repository/{name}"


def indices(count: int) -> str:
    """ "0,1,...,count-1": the positions a template's Fn::ForEach loops over."""
    return ",".join(str(i) for i in range(count))


def core_parameters(cluster: Cluster, node: Node) -> dict[str, ParamValue]:
    """Parameters of a node's Core stack, wired to its own and its peers' KMS stack outputs."""
    own_kms = stack_name(cluster.name, node.index, "kms")
    peers = [peer for peer in cluster.nodes if peer.index != node.index]

    def from_peers(output: str) -> JoinedRefs:
        return JoinedRefs(
            tuple(OutputRef(stack_name(cluster.name, p.index, "kms"), output) for p in peers)
        )

    params: dict[str, ParamValue] = {
        "ClusterName": cluster.name,
        "NodeIndex": str(node.index),
        "DnsName": node.dns_name,
        "HostedZoneId": node.hosted_zone_id,
        "TsmImage": cluster.tsm.image,
        "TsmConfigLayout": cluster.tsm.config_layout,
        "RegistryCredentialsSecretArn": node.registry_credentials_secret_arn or "",
        "EcrRepositoryArn": ecr_repository_arn(cluster.tsm.image),
        "RegistryPort": registry_port(cluster.tsm.image),
        "InstanceType": node.instance_type,
        "DbInstanceClass": node.db_instance_class,
        "DbMultiAz": str(node.multi_az).lower(),
        "NatGatewayCount": str(node.nat_gateways),
        "SdkClientCidrs": ",".join(node.sdk_client_cidrs),
        # the Core template names its rules by these positions, never by CIDR text
        "SdkClientIndices": indices(len(node.sdk_client_cidrs)),
        "AllowMobilePlayers": str(node.allow_mobile_players).lower(),
    }
    params.update({name: OutputRef(own_kms, name) for name in OWN_KMS_OUTPUTS})
    params.update(
        {
            "PeerIndices": ",".join(str(p.index) for p in peers),
            "PeerMpcAddresses": ",".join(f"tcp://{p.dns_name}:{MPC_PORT}" for p in peers),
            "PeerPublicKeyParameterArns": from_peers("PublicKeyParameterArn"),
            "PeerEgressCidrs": from_peers("EgressCidrs"),
            # each peer's KMS stack allocates one egress address per NAT gateway
            "PeerEgressIndices": indices(sum(p.nat_gateways for p in peers)),
        }
    )
    return params


class PlanError(TsmInfraError):
    """The plan and a template disagree: a bug in tsm-infra or an edited template."""


def _check_against(
    kind: str, parameters: Mapping[str, ParamValue], template: TemplateInterface
) -> dict[str, str]:
    """Template defaults the plan does not override; PlanError if the two do not fit."""
    unknown = sorted(set(parameters) - set(template.parameters))
    missing = sorted(
        name
        for name, default in template.parameters.items()
        if default is None and name not in parameters
    )
    if unknown or missing:
        problems = [f"passes {', '.join(unknown)}, which it does not declare"] if unknown else []
        problems += [f"does not pass required {', '.join(missing)}"] if missing else []
        raise PlanError(
            f"templates/{kind}.yaml and the plan disagree: the plan {'; '.join(problems)}"
        )
    return {
        name: default
        for name, default in template.parameters.items()
        if name not in parameters and default is not None
    }


def _check_references(
    steps: list[StackStep], templates: Mapping[str, TemplateInterface | None]
) -> None:
    """Every output a step consumes must be one its source stack's template declares."""
    kinds = {step.stack_name: step.kind for step in steps}
    for step in steps:
        for value in step.parameters.values():
            refs = value.refs if isinstance(value, JoinedRefs) else (value,)
            for ref in refs:
                if not isinstance(ref, OutputRef):
                    continue
                source = templates.get(kinds[ref.stack])
                if source is not None and ref.output not in source.outputs:
                    raise PlanError(
                        f"templates/{kinds[ref.stack]}.yaml has no output {ref.output}, "
                        f"which {step.stack_name} takes"
                    )


def build_plan(
    cluster: Cluster, templates: Mapping[str, TemplateInterface | None] | None = None
) -> Plan:
    """The plan for a validated cluster: KMS stacks in parallel, then Core stacks in parallel.

    With `templates` (each kind's interface, None where not written yet) every step is
    checked against its template and shows its defaults and outputs.
    """
    nodes = cluster.nodes
    known = templates or {}

    def step(node: Node, kind: StackKind) -> StackStep:
        make = kms_parameters if kind == "kms" else core_parameters
        parameters = make(cluster, node)
        template = known.get(kind)
        defaults = _check_against(kind, parameters, template) if template else {}
        depends = (
            tuple(stack_name(cluster.name, n.index, "kms") for n in nodes) if kind == "core" else ()
        )
        return StackStep(
            kind=kind,
            node_index=node.index,
            account=node.account,
            region=node.region,
            access=describe_access(node),
            stack_name=stack_name(cluster.name, node.index, kind),
            template=f"templates/{kind}.yaml",
            parameters=parameters,
            depends_on=depends,
            template_defaults=defaults,
            outputs=template.outputs if template else (),
        )

    phases = [
        Phase(
            "kms",
            "each node's KMS key, generated secrets and shared public facts, all accounts "
            "in parallel",
            tuple(step(node, "kms") for node in nodes),
        )
    ]
    accounts = sorted({node.account for node in nodes})
    if not cluster.same_organization and len(accounts) > 1:
        phases.append(
            Phase(
                "share",
                "accept the peers' RAM resource-share invitations (the accounts are not "
                "one organisation)",
                actions=tuple(f"accept invitations in {account}" for account in accounts),
            )
        )
    phases.append(
        Phase(
            "core",
            "each node's network, load balancer, DNS and TLS, database and compute, wired to "
            "the KMS stacks' outputs, all accounts in parallel",
            tuple(step(node, "core") for node in nodes),
        )
    )
    _check_references([step for phase in phases for step in phase.steps], known)
    return Plan(
        cluster=cluster.name,
        threshold=cluster.threshold,
        source=cluster.source,
        phases=tuple(phases),
        warnings=tuple(cluster.warnings()),
    )
