"""The plan: order, stack names, parameters and the KMS -> Core wiring, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import VALID_SPEC
from tsm_infra.cli import cli
from tsm_infra.plan import (
    OWN_KMS_OUTPUTS,
    JoinedRefs,
    OutputRef,
    PlanError,
    build_plan,
    kms_parameters,
)
from tsm_infra.spec import load_spec, load_spec_text
from tsm_infra.templates import TemplateInterface


def test_three_node_example_as_json(repo: Path) -> None:
    result = CliRunner().invoke(
        cli, ["plan", str(repo / "examples/three-nodes.yaml"), "--output", "json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["deployed"] is False
    stacks = data["stacks"]
    assert len(stacks) == 6
    assert [(s["stack_name"], s["order"]) for s in stacks] == [
        ("tsm-acme-vault-node0-kms", 1),
        ("tsm-acme-vault-node1-kms", 1),
        ("tsm-acme-vault-node2-kms", 1),
        ("tsm-acme-vault-node0-core", 3),
        ("tsm-acme-vault-node1-core", 3),
        ("tsm-acme-vault-node2-core", 3),
    ]
    assert [p["name"] for p in data["phases"]] == ["kms", "share", "core"]
    assert {s["account"] for s in stacks} == {"111111111111", "222222222222", "333333333333"}
    core2 = stacks[5]["parameters"]
    assert core2["KmsKeyArn"] == "${tsm-acme-vault-node2-kms.KmsKeyArn}"
    assert core2["PeerPublicKeyParameterArns"] == (
        "${tsm-acme-vault-node0-kms.PublicKeyParameterArn},"
        "${tsm-acme-vault-node1-kms.PublicKeyParameterArn}"
    )
    assert core2["PeerMpcAddresses"] == (
        "tcp://node0.vault.acme.example:9000,tcp://node1.vault.acme.example:9000"
    )
    assert stacks[0]["parameters"]["PeerAccountIds"] == "222222222222,333333333333"
    assert [t["kind"] for t in data["templates"]] == ["kms", "core"]
    # the KMS stacks show the written template's own interface
    kms0 = stacks[0]
    assert {"PublicKey", "PublicKeyParameterArn", "EgressCidrs", "KmsKeyArn"} <= set(
        kms0["outputs"]
    )
    assert kms0["template_defaults"]["P2PKeySpec"] == "ECC_NIST_P256"
    assert kms0["template_defaults"]["KeyDeletionWindowDays"] == "30"
    assert data["templates"][0] == {
        "kind": "kms",
        "path": "src/tsm_infra/cfn/kms.yaml",
        "exists": True,
        "clean": True,
        "findings": [],
    }


def test_core_stacks_wait_for_every_kms_stack() -> None:
    plan = build_plan(load_spec_text(VALID_SPEC))
    kms = [s.stack_name for s in plan.steps() if s.kind == "kms"]
    for step in plan.steps():
        if step.kind == "core":
            # every KMS stack's outputs, and its account's acceptance of the peers' shares
            assert step.depends_on == (*kms, f"share:{step.account}")
        else:
            assert step.depends_on == ()


def test_each_core_stack_is_wired_to_its_own_kms_stack_and_only_its_peers() -> None:
    plan = build_plan(load_spec_text(VALID_SPEC))
    for step in (s for s in plan.steps() if s.kind == "core"):
        own = f"tsm-test-vault-node{step.node_index}-kms"
        key = step.parameters["KmsKeyArn"]
        assert key == OutputRef(own, "KmsKeyArn")
        peers = step.parameters["PeerEgressCidrs"]
        assert isinstance(peers, JoinedRefs)
        assert {ref.stack for ref in peers.refs} == {
            f"tsm-test-vault-node{i}-kms" for i in range(3) if i != step.node_index
        }
        assert step.parameters["PeerIndices"] == ",".join(
            str(i) for i in range(3) if i != step.node_index
        )


def test_same_organization_needs_no_invitations_and_no_external_principals() -> None:
    cluster = load_spec_text(
        VALID_SPEC.replace("threshold: 1", "threshold: 1\nsame_organization: true")
    )
    plan = build_plan(cluster)
    assert [p.name for p in plan.phases] == ["kms", "core"]
    assert {s.parameters["AllowExternalPrincipals"] for s in plan.steps() if s.kind == "kms"} == {
        "false"
    }


def test_node_settings_override_defaults() -> None:
    text = VALID_SPEC.replace(
        '    account: "222222222222"\n',
        '    account: "222222222222"\n    region: us-east-1\n    multi_az: true\n'
        "    nat_gateways: 2\n    instance_type: c7i.xlarge\n",
    )
    steps = {(s.node_index, s.kind): s for s in build_plan(load_spec_text(text)).steps()}
    assert steps[1, "core"].region == "us-east-1"
    assert steps[1, "core"].parameters["DbMultiAz"] == "true"
    assert steps[1, "core"].parameters["InstanceType"] == "c7i.xlarge"
    assert steps[1, "kms"].parameters["EgressAddressCount"] == "2"
    assert steps[0, "core"].region == "eu-west-1"
    assert steps[0, "core"].parameters["DbMultiAz"] == "false"
    assert steps[0, "core"].parameters["InstanceType"] == "m7i.large"


def test_plan_text_says_nothing_was_deployed(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", str(repo / "examples/three-nodes.yaml"), "--no-lint"])
    assert result.exit_code == 0, result.stderr
    assert "Nothing has been deployed" in result.stdout
    assert "${tsm-acme-vault-node1-kms.EgressCidrs}" in result.stdout
    assert "deployed successfully" not in result.stdout.lower()


def test_dev_example_warns_about_the_shared_account(repo: Path) -> None:
    result = CliRunner().invoke(
        cli, ["plan", str(repo / "examples/dev-single-account.yaml"), "--no-lint"]
    )
    assert result.exit_code == 0, result.stderr
    assert "warning: allow_shared_account:" in result.stderr
    steps = build_plan(load_spec(repo / "examples/dev-single-account.yaml")).steps()
    assert {s.parameters.get("PeerAccountIds") for s in steps if s.kind == "kms"} == {""}


def test_every_example_is_valid(repo: Path) -> None:
    examples = sorted((repo / "examples").glob("*.yaml"))
    assert len(examples) >= 2
    for example in examples:
        assert load_spec(example).nodes


def test_plan_shows_the_templates_defaults_and_outputs() -> None:
    kms = TemplateInterface(
        parameters={**dict.fromkeys(kms_parameters_names()), "Extra": "7"},
        outputs=(*OWN_KMS_OUTPUTS, "PublicKeyParameterArn", "EgressCidrs", "Other"),
    )
    plan = build_plan(load_spec_text(VALID_SPEC), {"kms": kms, "core": None})
    step = plan.steps()[0].to_dict()
    assert step["template_defaults"] == {"Extra": "7"}
    assert step["outputs"][-1] == "Other"


def kms_parameters_names() -> list[str]:
    cluster = load_spec_text(VALID_SPEC)
    return list(kms_parameters(cluster, cluster.nodes[0]))


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"Only": None},
            "tsm_infra/cfn/kms.yaml and the plan disagree: the plan passes "
            "AllowExternalPrincipals, ClusterName, EgressAddressCount, NodeDnsName, NodeIndex, "
            "PeerAccountIds, "
            "SdkApplicationIds, which it does not declare; does not pass required Only",
        ),
    ],
)
def test_plan_refuses_a_template_it_does_not_fit(parameters: dict[str, None], message: str) -> None:
    kms = TemplateInterface(parameters=parameters, outputs=())
    with pytest.raises(PlanError) as raised:
        build_plan(load_spec_text(VALID_SPEC), {"kms": kms})
    assert str(raised.value) == message


def test_plan_refuses_a_core_input_the_kms_template_does_not_output() -> None:
    kms = TemplateInterface(parameters=dict.fromkeys(kms_parameters_names()), outputs=())
    with pytest.raises(PlanError) as raised:
        build_plan(load_spec_text(VALID_SPEC), {"kms": kms})
    assert str(raised.value) == (
        "tsm_infra/cfn/kms.yaml has no output KmsKeyArn, which tsm-test-vault-node0-core takes"
    )


def test_destroy_is_the_deploy_plan_reversed() -> None:
    from tsm_infra.plan import destroy_plan

    cluster = load_spec_text(VALID_SPEC)
    deploy = build_plan(cluster)
    destroy = destroy_plan(cluster)
    assert destroy.command == "destroy"
    assert {s.stack_name for s in destroy.steps()} == {s.stack_name for s in deploy.steps()}
    assert {s.action for s in destroy.steps()} == {"delete"}
    cores = sorted(s.stack_name for s in deploy.steps() if s.kind == "core")
    for step in destroy.steps():
        if step.kind == "kms":
            # every Core stack took this KMS stack's outputs (its own, or as a peer)
            assert sorted(step.depends_on) == cores
            assert step.guards == ()
        else:
            assert step.depends_on == ()
            assert step.guards == ("lift-deletion-protection",)
    assert [p.name for p in destroy.phases] == ["core", "kms"]


def test_each_account_expects_one_invitation_per_peer_in_the_peers_region() -> None:
    cluster = load_spec_text(VALID_SPEC)
    shares = [s for s in build_plan(cluster).graph if s.kind == "share"]
    assert [s.id for s in shares] == [f"share:{n.account}" for n in cluster.nodes]
    for share in shares:
        peers = [n for n in cluster.nodes if n.account != share.account]
        assert [(i.sender, i.share, i.region) for i in share.expected] == [
            (p.account, f"tsm-test-vault-node{p.index}-public", p.region) for p in peers
        ]
        assert share.depends_on == tuple(f"tsm-test-vault-node{p.index}-kms" for p in peers)


def test_the_plan_json_shows_the_graph() -> None:
    data = build_plan(load_spec_text(VALID_SPEC)).to_dict()
    steps = {s["id"]: s for s in data["steps"]}
    assert steps["share:111111111111"]["after"] == [
        "tsm-test-vault-node1-kms",
        "tsm-test-vault-node2-kms",
    ]
    assert "share:111111111111" in steps["tsm-test-vault-node0-core"]["after"]
    assert data["stacks"][0]["tags"]["tsm:cluster"] == "test-vault"
