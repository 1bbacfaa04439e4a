"""Sessions per node account: each is checked to act in the account the spec names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from moto import mock_aws

from tests.helpers import REPO
from tsm_infra.aws import AccessError, CallCounter, Connector
from tsm_infra.spec import Access, Node, load_spec


@pytest.fixture
def node() -> Node:
    return load_spec(REPO / "examples" / "three-nodes.yaml").nodes[0]


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # moto in-process: no request leaves this process; its default account is 123456789012
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def test_a_session_in_another_account_than_the_spec_says_is_refused(
    node: Node, fake_aws: None
) -> None:
    default_credentials = replace(node, access=None)
    with pytest.raises(AccessError) as caught:
        Connector().for_node(default_credentials)
    assert str(caught.value) == (
        "nodes[0] (account 111111111111): with the default credentials, tsm-infra acts in "
        "account 123456789012, not 111111111111; fix nodes[].account or the access settings"
    )


def test_assuming_the_role_lands_in_the_nodes_account(node: Node, fake_aws: None) -> None:
    counter = CallCounter()
    session = Connector(counter=counter).for_node(node)
    assert session.account == "111111111111"
    assert counter.counts() == {"sts:GetCallerIdentity": 1}
    # one session per account and region, made once
    assert Connector().for_node(node).account == session.account


def test_a_missing_profile_is_named(node: Node, fake_aws: None) -> None:
    with_profile = replace(node, access=Access(profile="nope"))
    with pytest.raises(AccessError) as caught:
        Connector().for_node(with_profile)
    assert str(caught.value).startswith(
        "nodes[0] (account 111111111111): cannot reach the account with profile 'nope': "
        "ProfileNotFound: "
    )
