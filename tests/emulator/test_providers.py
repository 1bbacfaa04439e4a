"""Every emulator provider is load-bearing: without it, a deployment or a check of it fails."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.emulator import scenarios
from tests.emulator.stacks import client
from tsm_infra.emulator import PROVIDERS, SUPPORTED_MOTO, LocalAws
from tsm_infra.emulator.constraints import CONSTRAINTS
from tsm_infra.emulator.limits import ENFORCED_BY_MOTO, LIMITS
from tsm_infra.emulator.server import NOT_ENFORCED, NOTES, PREPARED, EmulatorError
from tsm_infra.spec import Cluster, Node

# ------------------------------------------------------------------------ load-bearing providers

# provider -> (scenario, check that fails without it)
WITHOUT: dict[str, tuple[str, str]] = {
    "language-extensions": ("core", "core-complete"),
    "stack-delete-order": ("kms", "kms-deletes-in-order"),
    "stack-resource-detail": ("core", "launch-template-metadata"),
    "no-value-in-lists": ("core", "core-complete"),
    "stack-parameter-values": ("core", "parameters-as-given"),
    "resume-failed-stack": ("resume", "resume-adds-missing"),
    "change-set-replacement": ("core", "db-rename-replaces"),
    "empty-change-set": ("resume", "empty-change-set-fails"),
    "stack-failure-status": ("keygen-failure", "keygen-failure-fails-stack"),
    "change-set-outputs": ("kms", "kms-outputs"),
    "kms-key-properties": ("kms", "kms-complete"),
    "kms-generate-data-key-pair": ("kms", "kms-complete"),
    "secretsmanager-secret": ("kms", "secret-generated"),
    "secretsmanager-resource-policy": ("kms", "secret-policy"),
    "keygen-custom-resource": ("kms", "kms-complete"),
    "ssm-parameter-attributes": ("kms", "kms-outputs"),
    "ram-share": ("kms", "ram-share"),
    "ram-invitations": ("share", "invitation-accepted"),
    "ssm-cross-account-read": ("share", "peer-reads-shared-parameter"),
    "sub-dotted-attributes": ("core", "core-complete"),
    "fn-cidr": ("core", "core-complete"),
    "security-group-egress": ("core", "sg-egress-rule"),
    "network-deletion": ("core", "core-deletes"),
    "eip-public-ip": ("kms", "kms-complete"),
    "nlb-type-and-tls": ("core", "nlb-network-tls"),
    "acm-certificate": ("core", "certificate-issued"),
    "cloudmap": ("core", "cloudmap-instance"),
    "cloudwatch-alarm": ("core", "alarms"),
    "rds-instance-properties": ("core", "core-complete"),
    "rds-managed-master-secret": ("core", "db-managed-secret"),
    "rds-snapshot-on-delete": ("core", "db-snapshot-on-delete"),
}


def test_every_provider_has_a_check() -> None:
    assert sorted(WITHOUT) == sorted(PROVIDERS)


@pytest.mark.parametrize("scenario", sorted(scenarios.SCENARIOS))
def test_scenario_checks_pass_with_every_provider(cluster: Cluster, scenario: str) -> None:
    checks = scenarios.run(scenario, cluster)
    assert checks and all(checks.values()), checks


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_is_load_bearing(cluster: Cluster, provider: str) -> None:
    scenario, check = WITHOUT[provider]
    checks = scenarios.run(scenario, cluster, disabled=(provider,), until=check)
    assert not checks.get(check, False), checks


# ------------------------------------------------------------------------------------ the server


def test_server_listens_on_loopback_and_is_undone_on_stop() -> None:
    from moto.cloudformation import parsing
    from moto.kms.responses import KmsResponse

    before = parsing.resource_class_from_type
    local = LocalAws()
    url = local.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        assert hasattr(KmsResponse, "generate_data_key_pair")
        with pytest.raises(EmulatorError):
            LocalAws().start()  # one at a time: moto's state is process-wide
        sentences = local.emulated()
        rules = len(CONSTRAINTS) + len(LIMITS)
        assert len(sentences) == len(PROVIDERS) + rules + len(
            NOTES + PREPARED + ENFORCED_BY_MOTO + NOT_ENFORCED
        )
        assert any("TSM container does not run" in s for s in sentences)
    finally:
        local.stop()
    assert parsing.resource_class_from_type is before
    assert not hasattr(KmsResponse, "generate_data_key_pair")


def _share_with(endpoint: str, owner: Node, peer: Node) -> list[dict[str, Any]]:
    """Share a new parameter of the owner with the peer; the invitations the peer then sees."""
    template = {
        "Resources": {
            "Parameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/restart/p", "Type": "String", "Value": "v"},
            },
            "Share": {
                "Type": "AWS::RAM::ResourceShare",
                "DependsOn": "Parameter",
                "Properties": {
                    "Name": "restart",
                    "Principals": [peer.account],
                    "ResourceArns": [
                        f"arn:aws:ssm:{owner.region}:{owner.account}:parameter/restart/p"
                    ],
                },
            },
        }
    }
    cfn = client(endpoint, owner, "cloudformation")
    cfn.create_stack(StackName="restart", TemplateBody=json.dumps(template))
    ram = client(endpoint, peer, "ram", region=owner.region)
    return list(ram.get_resource_share_invitations()["resourceShareInvitations"])


def test_restart_keeps_nothing_of_the_earlier_run(cluster: Cluster) -> None:
    owner, peer = cluster.nodes[0], cluster.nodes[1]
    local = LocalAws()
    try:
        local.start()
        assert len(_share_with(local.endpoint_url, owner, peer)) == 1
        local.stop()
        local.start()
        ram = client(local.endpoint_url, peer, "ram", region=owner.region)
        assert ram.get_resource_share_invitations()["resourceShareInvitations"] == []
        assert len(_share_with(local.endpoint_url, owner, peer)) == 1
    finally:
        local.stop()


def test_unknown_provider_and_moto_version_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmulatorError, match="unknown emulator provider"):
        LocalAws(disabled=["no-such-provider"])
    monkeypatch.setattr("importlib.metadata.version", lambda name: "5.3.0")
    with pytest.raises(EmulatorError, match=re.escape(SUPPORTED_MOTO)):
        LocalAws().start()
