"""Every name the Python code shares with the two templates, stated once.

The templates (kms and core) and the deployer meet at names: the stacks' names and tags, the
prefixes under which the templates name secrets, SSM parameters and log groups, the RAM share,
the logical ids and resource types Python looks up, the ports, and the outputs and parameters
Python reads back. A template that renames one of them breaks a command at run time; the
contract test (tests/unit/test_contract.py) decodes both templates and holds them to this module,
so that the break shows at test time instead. Pure: no AWS, no files.
"""

from __future__ import annotations

import re
from typing import Final, Literal

StackKind = Literal["kms", "core"]
STACK_KINDS: Final[tuple[StackKind, ...]] = ("kms", "core")


def stack_name(cluster: str, index: int, kind: StackKind) -> str:
    """The CloudFormation stack name of one node's stack of one kind."""
    return f"tsm-{cluster}-node{index}-{kind}"


# --------------------------------------------------------------------------- stack tags

TAG_CLUSTER: Final = "tsm:cluster"
TAG_NODE: Final = "tsm:node"
TAG_NODES: Final = "tsm:nodes"
TAG_THRESHOLD: Final = "tsm:threshold"
TAG_MANAGED_BY: Final = "tsm:managed-by"
# The SHA-256 of the template body a stack was last deployed with: a redeploy whose template,
# parameters and tags are unchanged can skip the change set.
TAG_TEMPLATE: Final = "tsm:template-sha256"
MANAGED_BY: Final = "tsm-infra"
# The tags the templates also set on resources themselves (the rest are stack tags only).
RESOURCE_TAGS: Final = (TAG_CLUSTER, TAG_NODE)


def stack_tags(
    cluster: str, index: int, nodes: int, threshold: int, template_sha256: str = ""
) -> dict[str, str]:
    """The tags every stack of a node carries, in the order CloudFormation is sent them.

    The template digest is added only when given, so that callers which do not track it send
    exactly the tags they always did.
    """
    tags = {
        TAG_CLUSTER: cluster,
        TAG_NODE: str(index),
        TAG_NODES: str(nodes),
        TAG_THRESHOLD: str(threshold),
        TAG_MANAGED_BY: MANAGED_BY,
    }
    if template_sha256:
        tags[TAG_TEMPLATE] = template_sha256
    return tags


# --------------------------------------------------------------------------- names in the accounts


def secret_prefix(cluster: str, index: int) -> str:
    """The prefix of every Secrets Manager secret a node's KMS stack makes: `tsm/c/node0/`."""
    return f"tsm/{cluster}/node{index}/"


def log_prefix(cluster: str, index: int) -> str:
    """The prefix of every CloudWatch log group a node's stacks make: `/tsm/c/node0/`."""
    return f"/tsm/{cluster}/node{index}/"


def public_parameters_path(cluster: str, index: int) -> str:
    """The SSM path under which a node publishes its public facts: `/tsm/c/0`."""
    return f"/tsm/{cluster}/{index}"


def share_name(cluster: str, index: int) -> str:
    """The name of the RAM share through which a node's public facts reach its peers."""
    return f"tsm-{cluster}-node{index}-public"


def share_pattern(cluster: str) -> re.Pattern[str]:
    """Matches (with fullmatch) the RAM share name of any node of the cluster."""
    return re.compile(rf"tsm-{re.escape(cluster)}-node\d+-public")


def is_cluster_share(cluster: str, name: str) -> bool:
    """True when `name` is the RAM share of one of the cluster's nodes."""
    return share_pattern(cluster).fullmatch(name) is not None


# --------------------------------------------------------------------------- resources

# Logical ids Python looks up in a stack.
DATABASE: Final = "Database"
LAUNCH_TEMPLATE: Final = "LaunchTemplate"
LOAD_BALANCER: Final = "LoadBalancer"
NODE_SECRETS: Final = "NodeSecrets"

# Resource types Python acts on.
DB_INSTANCE_TYPE: Final = "AWS::RDS::DBInstance"
LOAD_BALANCER_TYPE: Final = "AWS::ElasticLoadBalancingV2::LoadBalancer"
NODE_SECRETS_TYPE: Final = "Custom::NodeSecrets"
# Resources that hold what cannot be made again: key shares, the key, the generated secrets.
STATEFUL_TYPES: Final = frozenset(
    {
        DB_INSTANCE_TYPE,
        "AWS::KMS::Key",
        "AWS::SecretsManager::Secret",
        NODE_SECRETS_TYPE,
    }
)
# The load balancer attribute that holds its deletion protection (core.yaml sets it).
LB_DELETION_PROTECTION: Final = "deletion_protection.enabled"

# Ports of the TSM node as the world reaches it (core.yaml's Ports mapping, `Public`).
MPC_PORT: Final = 9000
SDK_PORT: Final = 443


# --------------------------------------------------------------------------- outputs and parameters


class KmsOutputs:
    """Outputs of the KMS stack that Python reads (status, manifest, destroy, rehearsal)."""

    KMS_KEY_ARN: Final = "KmsKeyArn"
    PUBLIC_KEY: Final = "PublicKey"
    PUBLIC_KEY_PARAMETER_ARN: Final = "PublicKeyParameterArn"
    EGRESS_CIDRS: Final = "EgressCidrs"
    SDK_API_KEYS_SECRET_ARN: Final = "SdkApiKeysSecretArn"  # noqa: S105 - a name
    MANAGEMENT_API_KEY_SECRET_ARN: Final = "ManagementApiKeySecretArn"  # noqa: S105 - a name


# Every KMS output whose name ends so is a secret's ARN (destroy lists them as retained).
SECRET_ARN_SUFFIX: Final = "SecretArn"  # noqa: S105 - a name, not a secret


class CoreOutputs:
    """Outputs of the Core stack that Python reads (manifest, destroy's retained report)."""

    SDK_ENDPOINT: Final = "SdkEndpoint"
    MPC_ENDPOINT: Final = "MpcEndpoint"
    CERTIFICATE_ARN: Final = "CertificateArn"
    NAMESPACE_ID: Final = "NamespaceId"
    DATABASE_INSTANCE_ID: Final = "DatabaseInstanceId"


# KMS stack outputs a node's own Core stack takes, under the same names.
OWN_KMS_OUTPUTS: Final = (
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


class KmsParameters:
    """Parameters of the KMS stack that Python reads back from a deployed stack."""

    EGRESS_ADDRESS_COUNT: Final = "EgressAddressCount"


class CoreParameters:
    """Parameters of the Core stack that Python reads back from a deployed stack."""

    NODE_INDEX: Final = "NodeIndex"
    PEER_INDICES: Final = "PeerIndices"
    PEER_PUBLIC_KEY_PARAMETER_ARNS: Final = "PeerPublicKeyParameterArns"
    PEER_EGRESS_CIDRS: Final = "PeerEgressCidrs"


def names_of(namespace: type) -> tuple[str, ...]:
    """The values of a namespace class's upper-case attributes (the contract test walks them)."""
    return tuple(
        value for key, value in vars(namespace).items() if key.isupper() and isinstance(value, str)
    )
