"""Test data for the node module: a three-node cluster with fixed P-256 keys, and a fake runner.

The keys are derived from fixed scalars, so every rendered file is stable and can be compared
byte for byte with a golden file.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tsm_infra.node import tsm_node

CLUSTER = "acme-vault"
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1")
ACCOUNTS = ("111111111111", "222222222222", "333333333333")
DER = serialization.Encoding.DER
# Characters that must be percent-encoded in a URL's userinfo, and a space.
# The TSM's own role (its password from the KMS stack) and the RDS-managed master user.
DB_PASSWORD = "p@ss:w/rd?#%2F x"
DB_USER = "tsm_node"
DB_MASTER_USER, DB_MASTER_PASSWORD = "tsm", "rds-rotated-master-Pa55"
ECR_TOKEN = "ecr-token-eyJwYXlsb2FkIjoi"
REGISTRY_USER, REGISTRY_PASSWORD = "robot$acme", "registry-pa55word"
VENDOR_API_KEY, VENDOR_API_KEY_HASH = "apikey0", "IntV2sEZRwwd2F+UkDLC7zmFhwvpxAwb0eQKwdEnSZU="


def private_key(index: int) -> ec.EllipticCurvePrivateKey:
    """Node `index`'s P-256 key, the same at every run."""
    scalar = int.from_bytes(hashlib.sha256(f"tsm-node-{index}".encode()).digest(), "big")
    return ec.derive_private_key(scalar % (2**255) + 1, ec.SECP256R1())


def sec1_b64(index: int) -> str:
    """The private key as the TSM wants it: base64 SEC1 ECPrivateKey DER."""
    der = private_key(index).private_bytes(
        DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()


def pkcs8_b64(index: int) -> str:
    """The same private key in PKCS#8, which the TSM does not accept."""
    der = private_key(index).private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()


def spki_b64(index: int) -> str:
    """The public key as the TSM wants it: base64 SubjectPublicKeyInfo DER."""
    der = (
        private_key(index)
        .public_key()
        .public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def sha256_b64(key: str) -> str:
    """base64(SHA-256(key)), computed here independently of the module."""
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


def address(index: int) -> str:
    """Node `index`'s MPC address."""
    return f"tcp://node{index}.vault.acme.example:9000"


def public_key_arn(index: int) -> str:
    """ARN of node `index`'s public-key parameter, in its own account and region."""
    return f"arn:aws:ssm:{REGIONS[index]}:{ACCOUNTS[index]}:parameter/{CLUSTER}/{index}/public-key"


def secret_arn(index: int, name: str) -> str:
    """ARN of one of node `index`'s secrets."""
    where = f"{REGIONS[index]}:{ACCOUNTS[index]}"
    return f"arn:aws:secretsmanager:{where}:secret:tsm/{index}/{name}-AbCdEf"


def sdk_api_keys(index: int) -> dict[str, str]:
    """Node `index`'s SDK API keys by application ID (the vendor's example key among them)."""
    return {"demoapp": VENDOR_API_KEY, "wallet": f"wallet-key-{index}-Zm9vYmFy"}


def management_api_key(index: int) -> str:
    """Node `index`'s management API key."""
    return f"mgmt-key-{index}-c2VjcmV0"


def master_password(index: int) -> str:
    """Node `index`'s EncryptorMasterPassword."""
    return f"master-{index}-bWFzdGVyIHBhc3N3b3Jk"


def settings_data(index: int, layout: str = "mpc-tcp", nodes: int = 3) -> dict[str, Any]:
    """The node.json that cfn-init would write for node `index`."""
    peers = [i for i in range(nodes) if i != index]
    return {
        "cluster": CLUSTER,
        "index": index,
        "region": REGIONS[index],
        "layout": layout,
        "image": "registry.example.com/acme/tsm-node:72.0.0",
        "registry_credentials_secret_arn": "",
        "secrets": {key: secret_arn(index, key) for key in tsm_node.SECRET_KEYS},
        "parameters": {
            "sdk_api_key_hashes": f"/tsm/{CLUSTER}/{index}/sdk-api-key-hashes",
            "management_api_key_hash": f"/tsm/{CLUSTER}/{index}/management-api-key-hash",
        },
        "peers": {
            "indices": ",".join(str(i) for i in peers),
            "addresses": ",".join(address(i) for i in peers),
            "public_key_parameter_arns": ",".join(public_key_arn(i) for i in peers),
        },
        "database": {
            "host": f"db{index}.xyz.{REGIONS[index]}.rds.amazonaws.com",
            "port": 5432,
            "name": "tsm",
            "user": DB_USER,
        },
        "ports": {"sdk": 8080, "mpc": 9000, "management": 14401},
        "container_log_group": f"/tsm/{CLUSTER}/node{index}/tsm-node",
        "ping_timeout_seconds": 900,
    }


def aws_values(index: int, data: dict[str, Any] | None = None) -> dict[str, str]:
    """What `aws` answers for node `index`, by the ARN or name the settings give."""
    data = data or settings_data(index)
    secrets, parameters = data["secrets"], data["parameters"]
    values = {
        secrets["p2p_key"]: sec1_b64(index),
        secrets["sdk_api_keys"]: _json(sdk_api_keys(index)),
        secrets["management_api_key"]: management_api_key(index),
        secrets["encryptor_master_password"]: master_password(index),
        secrets["database_password"]: DB_PASSWORD,
        secrets["database_master"]: _json(
            {"username": DB_MASTER_USER, "password": DB_MASTER_PASSWORD}
        ),
        parameters["sdk_api_key_hashes"]: _json(
            {app: sha256_b64(key) for app, key in sdk_api_keys(index).items()}
        ),
        parameters["management_api_key_hash"]: sha256_b64(management_api_key(index)),
    }
    for peer in range(3):
        values[public_key_arn(peer)] = spki_b64(peer)
    return values


def secret_values(index: int) -> list[str]:
    """Every secret value node `index` handles, including parts that could leak alone."""
    return [
        sec1_b64(index),
        *sdk_api_keys(index).values(),
        management_api_key(index),
        master_password(index),
        DB_PASSWORD,
        DB_MASTER_PASSWORD,
        ECR_TOKEN,
        REGISTRY_PASSWORD,
    ]


def fetched(index: int, **changes: str) -> tsm_node.Fetched:
    """The Fetched values of node `index`, with some raw strings replaced."""
    data = settings_data(index)
    values = aws_values(index, data)
    raw = {key: values[data["secrets"][key]] for key in tsm_node.FETCHED_SECRETS}
    raw.update({key: values[ref] for key, ref in data["parameters"].items()})
    raw.update(changes)
    keys = {i: spki_b64(i) for i in range(3) if i != index}
    return tsm_node.Fetched(**raw, peer_public_keys=keys)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


@dataclass
class FakeRunner:
    """Emulates `aws`, `docker` and `systemctl`; records every command and its stdin."""

    values: dict[str, str]
    own_region: str
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> str:
        argv = list(argv)
        self.calls.append((argv, stdin))
        if argv[:2] == ["aws", "ecr"]:
            return ECR_TOKEN + "\n"
        if argv[0] == "aws":
            options = dict(zip(argv[3::2], argv[4::2], strict=True))
            ref = options.get("--secret-id") or options["--name"]
            region = ref.split(":")[3] if ref.startswith("arn:") else self.own_region
            assert options["--region"] == region, argv
            assert options["--output"] == "text", argv
            if ref not in self.values:
                raise tsm_node.NodeError("An error occurred (ResourceNotFoundException)")
            return self.values[ref] + "\n"
        if argv[0] in ("docker", "systemctl"):
            return ""
        raise AssertionError(f"unexpected command {argv}")

    @property
    def argvs(self) -> list[list[str]]:
        """The commands run, without their stdin."""
        return [argv for argv, _ in self.calls]


@dataclass
class FakePsql:
    """Records what the database step sends to psql: argv, SQL and the master password."""

    calls: list[tuple[list[str], str, str]] = field(default_factory=list)
    fail: str = ""

    def __call__(self, argv: Sequence[str], sql: str, password: str) -> str:
        self.calls.append((list(argv), sql, password))
        if self.fail:
            raise tsm_node.NodeError(self.fail)
        return ""


def deep_update(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with the dotted `path` set to `value` (or removed if value is ...)."""
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


@dataclass
class PingServer:
    """An HTTP server on 127.0.0.1 answering /ping with the given statuses, the last repeated."""

    statuses: list[int]
    server: ThreadingHTTPServer
    requests: int = 0

    @property
    def port(self) -> int:
        return self.server.server_address[1]


@contextmanager
def serve_ping() -> Iterator[PingServer]:
    """A PingServer answering 200 until told otherwise, for the length of the block."""
    state = PingServer([200], ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert self.path == "/ping"
            state.requests += 1
            status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    state.server.RequestHandlerClass = Handler
    thread = threading.Thread(
        target=state.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.server.shutdown()
        state.server.server_close()
