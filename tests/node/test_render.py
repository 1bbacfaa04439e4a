"""Tests of the node module's pure part: settings validation, config.toml, the env file, TOML.

A three-node cluster with fixed P-256 keys (nodehelpers) is rendered for each node and parsed back
with tomllib; node 0's file is also compared byte for byte with a golden file.
"""

from __future__ import annotations

import base64
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import nodehelpers as h
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsm_infra.node.config import Fetched, Rendered, render, toml_string, toml_value
from tsm_infra.node.keys import api_key_hash
from tsm_infra.node.settings import FETCHED_SECRETS, PARAMETER_KEYS, NodeError, parse_settings

GOLDEN = Path(__file__).parent / "golden"


def rendered(index: int = 0, layout: str = "mpc-tcp", **changes: str) -> Rendered:
    """Render node `index` of the test cluster, with some fetched values replaced."""
    settings = parse_settings(h.settings_data(index, layout))
    return render(settings, h.fetched(index, **changes))


def env_lines(env_file: str) -> dict[str, str]:
    """The env file as docker --env-file reads it: KEY=value lines, value taken literally."""
    assert env_file.endswith("\n")
    pairs = [line.split("=", 1) for line in env_file[:-1].split("\n")]
    return dict(pairs)


# --- the rendered cluster


@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_node_lists_exactly_its_peers(index: int) -> None:
    config = tomllib.loads(rendered(index).config_toml)
    others = [i for i in range(3) if i != index]
    assert config["Player"] == {
        "Index": index,
        "PrivateKey": "{{ env `TSM_PLAYER_PRIVATE_KEY` }}",
    }
    assert config["Players"] == {
        str(i): {"Address": h.address(i), "PublicKey": h.spki_b64(i)} for i in others
    }


@pytest.mark.parametrize("index", [0, 1, 2])
def test_database_ports_and_api_keys(index: int) -> None:
    config = tomllib.loads(rendered(index).config_toml)
    assert config["Database"] == {
        "DriverName": "postgres",
        "DataSourceName": "{{ env `TSM_DATABASE_DSN` }}",
        "EncryptorMasterPassword": "{{ env `TSM_ENCRYPTOR_MASTER_PASSWORD` }}",
        "MaxIdleConns": 10,
        "MaxOpenConns": 20,
    }
    assert config["MPCTCPServer"] == {"Port": 9000}
    assert config["SDKServer"] == {"Port": 8080}
    assert config["ManagementServer"] == {
        "Port": 14401,
        "Metrics": {"Prometheus": True},
        "APIKeys": [
            {
                "APIKey": h.sha256_b64(h.management_api_key(index)),
                "Permissions": ["HEALTH", "TSMINFO", "METRICS"],
            }
        ],
    }
    entries = config["Authentication"]["APIKeys"]
    assert entries == [
        {"APIKey": h.sha256_b64(key), "ApplicationID": app}
        for app, key in sorted(h.sdk_api_keys(index).items())
    ]
    # The vendor's own example: the hash of `apikey0`.
    assert {"APIKey": h.VENDOR_API_KEY_HASH, "ApplicationID": "demoapp"} in entries
    assert api_key_hash(h.VENDOR_API_KEY) == h.VENDOR_API_KEY_HASH


def test_node0_matches_the_golden_file() -> None:
    expected = (GOLDEN / "node0-mpc-tcp.toml").read_text(encoding="utf-8")
    assert rendered(0).config_toml == expected


@pytest.mark.parametrize(
    ("layout", "mpc_section", "absent"),
    [
        ("mpc-tcp", "MPCTCPServer", "MPCDirectServer"),
        ("mpc-direct", "MPCDirectServer", "MPCTCPServer"),
    ],
)
def test_layouts_name_the_mpc_section(layout: str, mpc_section: str, absent: str) -> None:
    config = tomllib.loads(rendered(0, layout).config_toml)
    assert config[mpc_section] == {"Port": 9000}
    assert absent not in config
    assert config["ManagementServer"]["Port"] == 14401
    assert set(config) == {
        "Player",
        "Players",
        "Database",
        mpc_section,
        "SDKServer",
        "ManagementServer",
        "Authentication",
    }


def test_the_layout_table_is_the_only_difference() -> None:
    tcp, direct = rendered(1, "mpc-tcp").config_toml, rendered(1, "mpc-direct").config_toml
    assert direct == tcp.replace("[MPCTCPServer]", "[MPCDirectServer]")


def test_unknown_layout_lists_the_valid_ones() -> None:
    data = h.deep_update(h.settings_data(0), "layout", "mpc-v99")
    with pytest.raises(NodeError) as caught:
        parse_settings(data)
    assert str(caught.value) == (
        "settings: layout 'mpc-v99' is unknown; valid: mpc-tcp, mpc-direct"
    )


# --- secrets stay in the env file


def test_env_file_holds_the_secrets_and_the_dsn() -> None:
    env = env_lines(rendered(0).env_file)
    assert env == {
        "TSM_PLAYER_PRIVATE_KEY": h.sec1_b64(0),
        "TSM_DATABASE_DSN": (
            # the TSM's own role, never the master user that RDS rotates
            "postgres://tsm_node:p%40ss%3Aw%2Frd%3F%23%252F%20x"
            "@db0.xyz.eu-west-1.rds.amazonaws.com:5432/tsm"
            "?sslmode=verify-full&sslrootcert=/config/rds-ca.pem"
        ),
        "TSM_ENCRYPTOR_MASTER_PASSWORD": h.master_password(0),
    }
    assert h.sec1_b64(0).startswith("MHcCAQEE")  # SEC1 with a named curve, as the vendor has it
    url = urllib.parse.urlsplit(env["TSM_DATABASE_DSN"])
    assert urllib.parse.unquote(url.username or "") == h.DB_USER
    assert urllib.parse.unquote(url.password or "") == h.DB_PASSWORD
    assert (url.hostname, url.port, url.path) == (
        "db0.xyz.eu-west-1.rds.amazonaws.com",
        5432,
        "/tsm",
    )


@pytest.mark.parametrize("index", [0, 1, 2])
def test_no_secret_in_config_toml(index: int) -> None:
    result = rendered(index)
    for secret in h.secret_values(index):
        assert secret not in result.config_toml
    assert urllib.parse.quote(h.DB_PASSWORD, safe="") not in result.config_toml
    for secret in (h.sec1_b64(index), h.master_password(index)):
        assert secret in result.env_file


def test_repr_hides_secret_values() -> None:
    fetched, result = h.fetched(0), rendered(0)
    for text in (repr(fetched), repr(result)):
        for secret in h.secret_values(0):
            assert secret not in text
    assert "TSM_PLAYER_PRIVATE_KEY=" not in repr(result)


# --- settings errors: one message per kind

SETTINGS_ERRORS = [
    ("secrets.database_master", ..., "settings: secrets.database_master is missing"),
    ("secrets.database_password", ..., "settings: secrets.database_password is missing"),
    ("database.user", "TSM-node", "settings: database.user 'TSM-node' does not match"),
    ("database.name", 'tsm"; --', "settings: database.name 'tsm\"; --' does not match"),
    ("cluster", "", "settings: cluster must be a non-empty string"),
    ("index", -1, "settings: index must be an integer from 0 to 999, not -1"),
    ("index", True, "settings: index must be an integer from 0 to 999, not True"),
    ("index", "0", "settings: index must be an integer from 0 to 999, not '0'"),
    ("ports.sdk", 70000, "settings: ports.sdk must be an integer from 1 to 65535, not 70000"),
    ("ports.management", 0, "settings: ports.management must be an integer from 1 to 65535"),
    ("ports.sdk", 9000, "settings: ports must be distinct"),
    ("region", "Europe", "settings: region 'Europe' does not match"),
    ("image", "registry.example.com/tsm node:1", "settings: image 'registry.example.com/tsm"),
    ("container_log_group", "/tsm/a b", "settings: container_log_group '/tsm/a b' does not"),
    ("database.host", "db_host!", "settings: database.host 'db_host!' does not match"),
    ("ping_timeout_seconds", 0, "settings: ping_timeout_seconds must be an integer from 1"),
    ("peers.indices", "", "settings: peers.indices must be a non-empty string"),
    ("peers.indices", "1", "settings: peers.indices, peers.addresses, peers.public_key_"),
    ("peers.indices", "1,x", "settings: peers.indices[1] 'x' is not an index 0-999"),
    ("peers.indices", "1,-2", "settings: peers.indices[1] '-2' is not an index 0-999"),
    ("peers.indices", "1,1", "settings: peers.indices[1] repeats 1 (own index 0)"),
    ("peers.indices", "0,2", "settings: peers.indices[0] repeats 0 (own index 0)"),
    (
        "peers.addresses",
        "http://node1.vault.acme.example:9000,tcp://node2.vault.acme.example:9000",
        "settings: peers.addresses[0] 'http://node1.vault.acme.example:9000' is not "
        "scheme://host:port with scheme tcp, tcps, ws, wss",
    ),
    ("peers.addresses", "tcp://node1,tcp://node2:9000", "settings: peers.addresses[0] 'tcp:"),
    ("peers.addresses", "tcp://n1:9000,tcp://n2:70000", "settings: peers.addresses[1] 'tcp:"),
    ("peers.addresses", "tcp://n1:9000/x,tcp://n2:9000", "settings: peers.addresses[0] 'tcp:"),
    (
        "peers.public_key_parameter_arns",
        "arn:aws:secretsmanager:eu-west-1:111111111111:secret:x,arn:aws:ssm:us-east-1:"
        "333333333333:parameter/tsm/acme-vault/2/public-key",
        "settings: peers.public_key_parameter_arns[0] 'arn:aws:secretsmanager:eu-west-1:"
        "111111111111:secret:x' is not a ssm ARN with a region",
    ),
    (
        "secrets.p2p_key",
        "arn:aws:ssm:eu-west-1:111111111111:parameter/p2p",
        "settings: secrets.p2p_key 'arn:aws:ssm:eu-west-1:111111111111:parameter/p2p' is not a "
        "secretsmanager ARN",
    ),
    ("parameters.management_api_key_hash", "has space", "settings: parameters.management_api"),
    ("registry_credentials_secret_arn", 7, "settings: registry_credentials_secret_arn must be"),
]


@pytest.mark.parametrize(("path", "value", "message"), SETTINGS_ERRORS)
def test_bad_settings_are_named(path: str, value: Any, message: str) -> None:
    data = h.deep_update(h.settings_data(0), path, value)
    with pytest.raises(NodeError) as caught:
        parse_settings(data)
    assert str(caught.value).startswith(message)


def test_settings_must_be_an_object() -> None:
    with pytest.raises(NodeError, match=r"^settings: the top level must be a JSON object$"):
        parse_settings([h.settings_data(0)])


def test_settings_defaults_and_peer_order() -> None:
    data = h.settings_data(2)
    del data["ping_timeout_seconds"]
    settings = parse_settings(data)
    assert settings.ping_timeout == 900
    assert [p.index for p in settings.peers] == [0, 1]
    reversed_peers = {
        "indices": "1, 0",
        "addresses": f"{h.address(1)}, {h.address(0)}",
        "public_key_parameter_arns": f"{h.public_key_arn(1)},{h.public_key_arn(0)}",
    }
    settings = parse_settings({**data, "peers": reversed_peers})
    assert [(p.index, p.address) for p in settings.peers] == [(0, h.address(0)), (1, h.address(1))]


# --- errors in fetched values: named, never quoted

B64_SEQUENCE = base64.b64encode(bytes.fromhex("3003020101")).decode()
TRUNCATED_SPKI = base64.b64encode(base64.b64decode(h.spki_b64(1))[:-1]).decode()
STALE = "the KMS stack's parameters are stale"
FETCHED_ERRORS = [
    ("p2p_key", "not base64!", "secret p2p_key is not base64"),
    (
        "p2p_key",
        h.pkcs8_b64(0),
        "secret p2p_key is not a base64 SEC1 ECPrivateKey DER (not PKCS#8)",
    ),
    ("p2p_key", h.spki_b64(0), "secret p2p_key is not a base64 SEC1 ECPrivateKey DER"),
    ("p2p_key", base64.b64encode(b"hello").decode(), "secret p2p_key is not a base64 SEC1"),
    # SEQUENCE { INTEGER 0, OCTET STRING }: the shape of SEC1 but not its version
    ("p2p_key", base64.b64encode(bytes.fromhex("3006020100040100")).decode(), "secret p2p_key"),
    ("sdk_api_keys", "{not json", "secret sdk_api_keys is not a non-empty JSON object"),
    ("sdk_api_keys", "{}", "secret sdk_api_keys is not a non-empty JSON object"),
    ("sdk_api_keys", '["apikey0"]', "secret sdk_api_keys is not a non-empty JSON object"),
    ("sdk_api_keys", '{"bad id": "k"}', "secret sdk_api_keys: entry 'bad id' needs an ID"),
    ("sdk_api_keys", '{"demoapp": 5}', "secret sdk_api_keys: entry 'demoapp' needs an ID"),
    (
        "sdk_api_key_hashes",
        f'{{"demoapp": "{h.VENDOR_API_KEY_HASH}"}}',
        "parameter sdk_api_key_hashes lists applications ['demoapp'], secret sdk_api_keys "
        f"['demoapp', 'wallet']; {STALE}",
    ),
    (
        "sdk_api_key_hashes",
        f'{{"demoapp": "{h.VENDOR_API_KEY_HASH}", "wallet": "{h.VENDOR_API_KEY_HASH}"}}',
        "parameter sdk_api_key_hashes[wallet] is not the hash of the key in Secrets Manager; "
        + STALE,
    ),
    (
        "sdk_api_key_hashes",
        '{"demoapp": "c2hvcnQ=", "wallet": "c2hvcnQ="}',
        "parameter sdk_api_key_hashes[demoapp] is not base64 of a 32-byte SHA-256 hash",
    ),
    ("management_api_key_hash", "***", "parameter management_api_key_hash is not base64 of a"),
    (
        "management_api_key_hash",
        h.VENDOR_API_KEY_HASH,
        "parameter management_api_key_hash is not the hash",
    ),
    ("management_api_key", "", "parameter management_api_key_hash is not the hash"),
    ("encryptor_master_password", "", "secret encryptor_master_password is empty"),
    (
        "encryptor_master_password",
        "two\nlines",
        "env file: TSM_ENCRYPTOR_MASTER_PASSWORD would hold a line break",
    ),
    ("encryptor_master_password", 'a"b', "env file: TSM_ENCRYPTOR_MASTER_PASSWORD holds a quote"),
    ("encryptor_master_password", "a\\b", "env file: TSM_ENCRYPTOR_MASTER_PASSWORD holds a quote"),
    ("database_password", "", "secret database_password is empty"),
]


@pytest.mark.parametrize(("name", "value", "message"), FETCHED_ERRORS)
def test_bad_fetched_values_are_named_not_quoted(name: str, value: str, message: str) -> None:
    with pytest.raises(NodeError) as caught:
        rendered(0, **{name: value})
    text = str(caught.value)
    assert text.startswith(message)
    for secret in [*h.secret_values(0), *([value] if len(value) > 3 else [])]:
        assert secret not in text


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "is not a base64 SubjectPublicKeyInfo DER SEQUENCE"),
        ("MFkw***", "is not base64"),
        (B64_SEQUENCE, "is not a base64 SubjectPublicKeyInfo DER SEQUENCE"),
        (
            base64.b64encode(b"\x04\x02ab").decode(),
            "is not a base64 SubjectPublicKeyInfo DER SEQUENCE",
        ),
        (TRUNCATED_SPKI, "is not a base64 SubjectPublicKeyInfo DER SEQUENCE"),
        (h.sec1_b64(1), "is not a base64 SubjectPublicKeyInfo DER SEQUENCE"),
    ],
)
def test_bad_peer_public_key_is_named(key: str, message: str) -> None:
    settings = parse_settings(h.settings_data(0))
    good = h.fetched(0)
    fetched = Fetched(
        **{f: getattr(good, f) for f in (*FETCHED_SECRETS, *PARAMETER_KEYS)},
        peer_public_keys={1: key, 2: h.spki_b64(2)},
    )
    with pytest.raises(NodeError) as caught:
        render(settings, fetched)
    assert str(caught.value) == f"public key of peer 1 ({h.public_key_arn(1)}) {message}"


# --- the TOML writer


@given(st.text())
def test_toml_strings_round_trip(value: str) -> None:
    assert tomllib.loads(f"k = {toml_string(value)}")["k"] == value


@pytest.mark.parametrize(
    "value", ['quote " and \\ backslash', "tab\tnew\nline\r", "\x00\x1f\x7f", "é ☃ 𝄞", "{{ env }}"]
)
def test_toml_values_round_trip(value: str) -> None:
    document = {"s": value, "n": 5, "b": False, "list": [value, "x"]}
    text = "".join(f"{k} = {toml_value(v)}\n" for k, v in document.items())
    assert tomllib.loads(text) == document
    assert "\n" not in toml_string(value)


def test_toml_value_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="no TOML form for float"):
        toml_value(1.5)


def test_every_secret_is_only_an_env_reference() -> None:
    config = rendered(0).config_toml
    references = re.findall(r"\{\{.*?\}\}", config)
    assert references == [
        "{{ env `TSM_PLAYER_PRIVATE_KEY` }}",
        "{{ env `TSM_DATABASE_DSN` }}",
        "{{ env `TSM_ENCRYPTOR_MASTER_PASSWORD` }}",
    ]
    assert set(env_lines(rendered(0).env_file)) == {
        "TSM_PLAYER_PRIVATE_KEY",
        "TSM_DATABASE_DSN",
        "TSM_ENCRYPTOR_MASTER_PASSWORD",
    }
