"""The names Python shares with the templates (tsm_infra.contract) are the templates' own names.

Each test decodes the templates as deploy sends them and looks for one kind of shared name: the
outputs and parameters Python reads, the logical ids and resource types it acts on, the tag
keys, the prefixes in the templates' Fn::Sub strings, the ports. A last test holds the modules
that use the contract to it: they spell none of its names as literals of their own.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tsm_infra import contract
from tsm_infra.contract import CoreOutputs, CoreParameters, KmsOutputs, KmsParameters, names_of
from tsm_infra.templates import template_body

CLUSTER, INDEX = "c1u5ter", 987654


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {kind: json.loads(template_body(kind)) for kind in contract.STACK_KINDS}


def _placeholders(text: str) -> str:
    """A contract name built for (CLUSTER, INDEX), as the templates write it in Fn::Sub."""
    return text.replace(CLUSTER, "${ClusterName}").replace(str(INDEX), "${NodeIndex}")


def _sub(value: Any) -> str | None:
    """The format string of a `{"Fn::Sub": ...}` (either form), or None."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return None


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if isinstance(resource, dict) and resource.get("Type") == kind
    }


def test_the_outputs_python_reads_are_declared(templates: dict[str, dict[str, Any]]) -> None:
    kms, core = set(templates["kms"]["Outputs"]), set(templates["core"]["Outputs"])
    assert set(names_of(KmsOutputs)) <= kms, set(names_of(KmsOutputs)) - kms
    assert set(contract.OWN_KMS_OUTPUTS) <= kms, set(contract.OWN_KMS_OUTPUTS) - kms
    assert set(names_of(CoreOutputs)) <= core, set(names_of(CoreOutputs)) - core
    assert {o for o in kms if o.endswith(contract.SECRET_ARN_SUFFIX)} >= {
        KmsOutputs.SDK_API_KEYS_SECRET_ARN,
        KmsOutputs.MANAGEMENT_API_KEY_SECRET_ARN,
    }


def test_the_parameters_python_reads_are_declared(templates: dict[str, dict[str, Any]]) -> None:
    kms, core = set(templates["kms"]["Parameters"]), set(templates["core"]["Parameters"])
    assert set(names_of(KmsParameters)) <= kms
    assert set(names_of(CoreParameters)) <= core
    # the Core stack takes its own KMS stack's outputs under the same names
    assert set(contract.OWN_KMS_OUTPUTS) <= core


def test_the_logical_ids_python_looks_up_have_their_types(
    templates: dict[str, dict[str, Any]],
) -> None:
    core, kms = templates["core"]["Resources"], templates["kms"]["Resources"]
    assert core[contract.DATABASE]["Type"] == contract.DB_INSTANCE_TYPE
    assert core[contract.LOAD_BALANCER]["Type"] == contract.LOAD_BALANCER_TYPE
    assert core[contract.LAUNCH_TEMPLATE]["Type"] == "AWS::EC2::LaunchTemplate"
    assert kms[contract.NODE_SECRETS]["Type"] == contract.NODE_SECRETS_TYPE


def test_every_stateful_type_is_a_resource_of_the_templates(
    templates: dict[str, dict[str, Any]],
) -> None:
    types = {
        resource.get("Type")
        for template in templates.values()
        for resource in template["Resources"].values()
        if isinstance(resource, dict)
    }
    assert types >= contract.STATEFUL_TYPES, contract.STATEFUL_TYPES - types


def test_the_templates_tag_only_with_the_contracts_keys(
    templates: dict[str, dict[str, Any]],
) -> None:
    keys = {
        str(node["Key"])
        for template in templates.values()
        for node in _walk(template)
        if isinstance(node, dict) and "Key" in node and "Value" in node
        if str(node["Key"]).startswith("tsm:")
    }
    assert keys == set(contract.RESOURCE_TAGS)
    tags = contract.stack_tags(CLUSTER, INDEX, 3, 1)
    assert set(contract.RESOURCE_TAGS) <= set(tags)
    assert tags[contract.TAG_MANAGED_BY] == contract.MANAGED_BY
    assert contract.TAG_TEMPLATE not in tags
    assert contract.stack_tags(CLUSTER, INDEX, 3, 1, "ab12")[contract.TAG_TEMPLATE] == "ab12"


def test_every_secret_is_named_under_the_secret_prefix(
    templates: dict[str, dict[str, Any]],
) -> None:
    prefix = _placeholders(contract.secret_prefix(CLUSTER, INDEX))
    secrets = _resources(templates["kms"], "AWS::SecretsManager::Secret")
    assert secrets
    for name, secret in secrets.items():
        assert (_sub(secret["Properties"]["Name"]) or "").startswith(prefix), name


def test_every_log_group_is_named_under_the_log_prefix(
    templates: dict[str, dict[str, Any]],
) -> None:
    prefix = _placeholders(contract.log_prefix(CLUSTER, INDEX))
    for kind, template in templates.items():
        groups = _resources(template, "AWS::Logs::LogGroup")
        assert groups, kind
        for name, group in groups.items():
            assert (_sub(group["Properties"]["LogGroupName"]) or "").startswith(prefix), name


def test_every_public_parameter_is_under_the_public_path(
    templates: dict[str, dict[str, Any]],
) -> None:
    path = _placeholders(contract.public_parameters_path(CLUSTER, INDEX))
    kms = templates["kms"]
    assert _sub(kms["Outputs"]["PublicParametersPath"]["Value"]) == path
    parameters = _resources(kms, "AWS::SSM::Parameter")
    assert parameters
    for name, parameter in parameters.items():
        assert (_sub(parameter["Properties"]["Name"]) or "").startswith(path + "/"), name


def test_the_share_is_named_as_the_contract_finds_it(
    templates: dict[str, dict[str, Any]],
) -> None:
    (share,) = _resources(templates["kms"], "AWS::RAM::ResourceShare").values()
    assert _sub(share["Properties"]["Name"]) == _placeholders(contract.share_name(CLUSTER, INDEX))
    assert contract.is_cluster_share(CLUSTER, contract.share_name(CLUSTER, 12))
    assert not contract.is_cluster_share(CLUSTER, contract.share_name(CLUSTER + "x", 0))
    assert not contract.is_cluster_share("c", contract.share_name("c", 0) + "-2")


def test_the_ports_are_the_templates_public_ports(templates: dict[str, dict[str, Any]]) -> None:
    public = templates["core"]["Mappings"]["Ports"]["Public"]
    assert (public["Mpc"], public["Sdk"]) == (contract.MPC_PORT, contract.SDK_PORT)
    # the KMS stack publishes the MPC address with the same port
    address = {
        text
        for node in _walk(templates["kms"])
        if (text := _sub(node)) is not None and text.startswith("tcp://")
    }
    assert address == {f"tcp://${{NodeDnsName}}:{contract.MPC_PORT}"}


def test_the_load_balancer_protection_attribute_is_the_templates(
    templates: dict[str, dict[str, Any]],
) -> None:
    balancer = templates["core"]["Resources"][contract.LOAD_BALANCER]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    assert attributes[contract.LB_DELETION_PROTECTION] == {"Ref": "DeletionProtection"}


def test_stack_names_are_per_cluster_node_and_kind() -> None:
    assert contract.stack_name("prod", 2, "core") == "tsm-prod-node2-core"
    assert len({contract.stack_name("c", i, k) for i in (0, 1) for k in contract.STACK_KINDS}) == 4


# Modules that take every shared name from the contract (the others follow as they are reworked).
# plan/build.py is left out: the parameter names it passes are held to each template's
# Parameters whenever a plan is built (plan.build._check_against), and the test of the plan.
USERS = (
    "status.py",
    "stacks.py",
    "protection.py",
    "preflight.py",
    "rehearsal.py",
    "plan/model.py",
    "run/__init__.py",
    "run/executor.py",
    "run/guards.py",
    "run/sharing.py",
    "run/stack_steps.py",
)
SRC = Path(contract.__file__).parent


def _literals(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_the_contract_users_spell_no_shared_name_themselves() -> None:
    shared = (
        {getattr(contract, n) for n in dir(contract) if n.isupper()}
        | set(names_of(KmsOutputs))
        | set(names_of(CoreOutputs))
        | set(names_of(KmsParameters))
        | set(names_of(CoreParameters))
        | set(contract.OWN_KMS_OUTPUTS)
        | set(contract.STATEFUL_TYPES)
    )
    shared = {value for value in shared if isinstance(value, str)}
    # the start of a name built in an f-string: f"tsm/{cluster}/...", f"tsm-{cluster}-..."
    prefixes = ("tsm/", "/tsm/", "tsm:")
    found = [
        f"{module}:{line}: {value!r}"
        for module in USERS
        for line, value in _literals(SRC / module)
        if value in shared or value.startswith(prefixes) or value == "tsm-"
    ]
    assert not found, found
