"""Spec -> plan: which stacks go into which account, after what, with what parameters.

Pure: no AWS calls, no files. Values that only exist once a stack is deployed (a KMS stack's
outputs feeding a Core stack) appear as `OutputRef`s, which the executor resolves and `plan`
shows symbolically as `${stack.Output}`. A step depends on exactly the steps whose outputs it
takes (and a Core stack on its account's acceptance of the peers' shares), so each starts as
soon as its own inputs exist. This module is also the single statement of how the two
templates are wired together; a test holds the templates' Parameters and Outputs to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from tsm_infra.contract import (
    MPC_PORT,
    OWN_KMS_OUTPUTS,
    share_name,
    stack_name,
    stack_tags,
)
from tsm_infra.errors import TsmInfraError
from tsm_infra.images import ecr_repository, registry_port
from tsm_infra.plan.model import (
    LEFTOVER_SECRETS,
    LIFT_DELETION_PROTECTION,
    STATEFUL_REPLACEMENT,
    Invitation,
    JoinedRefs,
    OutputRef,
    ParamValue,
    Plan,
    ShareStep,
    StackKind,
    StackStep,
    Stage,
    Step,
    references,
)
from tsm_infra.spec import Cluster, Node, partition_of

if TYPE_CHECKING:
    from tsm_infra.templates import TemplateInterface


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
            f"tsm_infra/cfn/{kind}.yaml and the plan disagree: the plan {'; '.join(problems)}"
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
            for ref in references(value):
                source = templates.get(kinds[ref.stack])
                if source is not None and ref.output not in source.outputs:
                    raise PlanError(
                        f"tsm_infra/cfn/{kinds[ref.stack]}.yaml has no output {ref.output}, "
                        f"which {step.stack_name} takes"
                    )


DEPLOY_STAGES = (
    Stage(
        "kms",
        "each node's KMS key, generated secrets and shared public facts, all accounts in parallel",
    ),
    Stage(
        "share",
        "accept the peers' RAM resource-share invitations (the accounts are not one "
        "organisation), each account as soon as its peers' KMS stacks exist",
    ),
    Stage(
        "core",
        "each node's network, load balancer, DNS and TLS, database and compute, wired to the "
        "KMS stacks' outputs, each as soon as the stacks it takes outputs from are complete",
    ),
)
DESTROY_STAGES = (
    Stage("core", "delete each node's Core stack, after lifting its deletion protection"),
    Stage(
        "kms",
        "delete each node's KMS stack once no Core stack takes its outputs; the key and the "
        "secrets are retained",
    ),
)


def build_plan(
    cluster: Cluster, templates: Mapping[str, TemplateInterface | None] | None = None
) -> Plan:
    """The deploy plan of a validated cluster: a graph of stack and share steps.

    With `templates` (each kind's interface, None where not written yet) every step is
    checked against its template and shows its defaults and outputs.
    """
    known = templates or {}
    kms = [_stack_step(cluster, node, "kms", known) for node in cluster.nodes]
    shares = _share_steps(cluster)
    cores = [
        _stack_step(cluster, node, "core", known, shares.get(node.account))
        for node in cluster.nodes
    ]
    _check_references([*kms, *cores], known)
    return Plan(
        command="deploy",
        cluster=cluster.name,
        threshold=cluster.threshold,
        source=cluster.source,
        graph=(*kms, *shares.values(), *cores),
        stages=DEPLOY_STAGES,
        warnings=tuple(cluster.warnings()),
    )


def deploy_plan(cluster: Cluster) -> Plan:
    """The deploy plan, checked against the templates as they are written."""
    from tsm_infra.templates import TEMPLATE_FILES, template_interface  # noqa: PLC0415

    return build_plan(cluster, {kind: template_interface(kind) for kind in TEMPLATE_FILES})


def destroy_plan(cluster: Cluster) -> Plan:
    """The deploy plan reversed: each stack is deleted once nothing that takes from it exists.

    Share steps have nothing to undo (a share goes with the stack that made it); the order they
    imposed is kept, so a KMS stack goes only after every Core stack that relied on it.
    """
    deploy = build_plan(cluster)
    after = _stack_dependencies(deploy.graph)
    users: dict[str, list[str]] = {step.id: [] for step in deploy.steps()}
    order = {step.id: number for number, step in enumerate(deploy.graph)}
    for step_id, needs in after.items():
        for need in needs:
            users[need].append(step_id)
    deletes = [
        StackStep(
            kind=step.kind,
            node=step.node,
            access=step.access,
            stack_name=step.stack_name,
            template=step.template,
            parameters={},
            action="delete",
            tags=step.tags,
            depends_on=tuple(sorted(users[step.id], key=order.__getitem__)),
            guards=(LIFT_DELETION_PROTECTION,) if step.kind == "core" else (),
            stage=step.kind,
        )
        for step in sorted(deploy.steps(), key=lambda s: s.kind != "core")
    ]
    return Plan(
        command="destroy",
        cluster=cluster.name,
        threshold=cluster.threshold,
        source=cluster.source,
        graph=tuple(deletes),
        stages=DESTROY_STAGES,
        warnings=deploy.warnings,
    )


def _stack_dependencies(graph: Iterable[Step]) -> dict[str, set[str]]:
    """For each stack step, the stack steps it depends on, directly or through share steps."""
    direct = {step.id: set(step.depends_on) for step in graph}
    stacks = {step.id for step in graph if isinstance(step, StackStep)}

    def through(step_id: str) -> set[str]:
        found: set[str] = set()
        for need in direct[step_id]:
            found |= {need} if need in stacks else through(need)
        return found

    return {step_id: through(step_id) for step_id in stacks}


def _stack_step(
    cluster: Cluster,
    node: Node,
    kind: StackKind,
    templates: Mapping[str, TemplateInterface | None],
    share: ShareStep | None = None,
) -> StackStep:
    parameters = kms_parameters(cluster, node) if kind == "kms" else core_parameters(cluster, node)
    template = templates.get(kind)
    defaults = _check_against(kind, parameters, template) if template else {}
    needs = sorted({ref.stack for value in parameters.values() for ref in references(value)})
    if share is not None:
        needs.append(share.id)
    return StackStep(
        kind=kind,
        node=node,
        access=describe_access(node),
        stack_name=stack_name(cluster.name, node.index, kind),
        template=f"{kind}.yaml",
        parameters=parameters,
        tags=stack_tags(cluster.name, node.index, len(cluster.nodes), cluster.threshold),
        depends_on=tuple(needs),
        guards=(STATEFUL_REPLACEMENT, LEFTOVER_SECRETS)
        if kind == "kms"
        else (STATEFUL_REPLACEMENT,),
        stage=kind,
        template_defaults=defaults,
        outputs=template.outputs if template else (),
    )


def _share_steps(cluster: Cluster) -> dict[str, ShareStep]:
    """One step per account that must accept its peers' shares (none in one organisation)."""
    accounts = sorted({node.account for node in cluster.nodes})
    if cluster.same_organization or len(accounts) < 2:
        return {}
    steps = {}
    for account in accounts:
        first = next(node for node in cluster.nodes if node.account == account)
        peers = [node for node in cluster.nodes if node.account != account]
        steps[account] = ShareStep(
            node=first,
            access=describe_access(first),
            expected=tuple(
                Invitation(peer.account, share_name(cluster.name, peer.index), peer.region)
                for peer in peers
            ),
            depends_on=tuple(stack_name(cluster.name, peer.index, "kms") for peer in peers),
        )
    return steps
