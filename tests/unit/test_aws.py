"""Sessions per node account: checked, opened in parallel, sharing what can be shared."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from moto import mock_aws

from tests.helpers import REPO
from tsm_infra import aws
from tsm_infra.aws import AccessError, AccountSession, CallCounter, Connector
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


def test_each_client_is_made_once_per_service_and_region(node: Node, fake_aws: None) -> None:
    counter = CallCounter()
    session = Connector(counter=counter).for_node(node)
    cfn = session.client("cloudformation")
    assert session.client("cloudformation") is cfn
    assert session.client("cloudformation", session.region) is cfn
    assert session.client("cloudformation", "us-east-1") is not cfn
    cfn.describe_stacks()
    # counted once, although asked for three times
    assert counter.counts()["cloudformation:DescribeStacks"] == 1


def test_sessions_share_one_loader_and_one_config() -> None:
    first, second = aws._new_session(region_name="eu-west-1"), aws._new_session()
    loader = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is loader
    # boto3 adds its data path for every session; the shared loader keeps it once
    assert len(loader.search_paths) == len(set(loader.search_paths))
    assert aws.client_config() is aws.client_config()


def test_accounts_open_in_parallel_and_each_once(node: Node) -> None:
    active, most, opened = [0], [0], []
    lock = threading.Lock()

    class Slow(Connector):
        def _open(self, node: Node) -> AccountSession:
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
                opened.append(node.account)
            time.sleep(0.2)
            with lock:
                active[0] -= 1
            return AccountSession(node.account, node.region, None)  # type: ignore[arg-type]

    nodes = [replace(node, account=f"{i:012d}") for i in range(3)] * 2
    connector = Slow()
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        sessions = list(pool.map(connector.for_node, nodes))
    assert most[0] == 3  # the three accounts opened at the same time
    assert sorted(opened) == sorted({n.account for n in nodes})  # each once
    assert sessions[0] is sessions[3]
