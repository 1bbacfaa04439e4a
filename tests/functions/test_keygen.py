"""Tests of the keygen custom resource: DER conversion, the handler contract, failure paths.

moto provides KMS and Secrets Manager; GenerateDataKeyPair, which moto lacks, comes from a
botocore before-call hook returning a real key pair made with `cryptography`. Responses go to a
real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from moto import mock_aws

from tsm_infra.functions import keygen

REGION = "eu-west-1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/tsm-node-1-kms/0f3c2d7e-1111"
CURVES = {
    "ECC_NIST_P256": ec.SECP256R1(),
    "ECC_NIST_P384": ec.SECP384R1(),
    "ECC_NIST_P521": ec.SECP521R1(),
}
P2P, SDK, MGMT, MASTER = keygen.P2P, keygen.SDK, keygen.MGMT, keygen.MASTER
P256, P384 = "ECC_NIST_P256", "ECC_NIST_P384"
DER = serialization.Encoding.DER
# Standard OIDs (RFC 5480), as DER contents.
EC_OID = bytes.fromhex("2a8648ce3d0201")
P256_OID = bytes.fromhex("2a8648ce3d030107")


def key_pair_der(curve: ec.EllipticCurve) -> tuple[bytes, bytes]:
    """A fresh EC key pair as KMS returns it: (PKCS#8 DER private key, SPKI DER public key)."""
    key = ec.generate_private_key(curve)
    private = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


class FakeContext:
    """The part of the Lambda context the handler uses: the time left before the deadline."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Received:
    """One PUT the response server received."""

    path: str
    headers: dict[str, str]
    raw: bytes
    at: float

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.raw))


class ResponseServer:
    """A real HTTP server on 127.0.0.1 standing in for CloudFormation's presigned response URL."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.signature = f"sig-{uuid.uuid4().hex}"
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(Received(self.path, dict(self.headers), raw, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/cfn-response") -> str:
        port = self.httpd.server_address[1]
        return f"http://127.0.0.1:{port}{path}?X-Amz-Signature={self.signature}&X-Amz-Expires=7200"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeKeyPairs:
    """KMS GenerateDataKeyPair for moto (which lacks it), as a botocore before-call hook."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.private_keys: list[bytes] = []
        self.delay = 0.0
        self.error_code = ""

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        request = json.loads(params["body"])
        self.calls.append(request)
        if self.delay:
            time.sleep(self.delay)
        if self.error_code:
            error: Any = {"Error": {"Code": self.error_code, "Message": "denied by the test"}}
            raise ClientError(error, "GenerateDataKeyPair")
        private, public = key_pair_der(CURVES[request["KeyPairSpec"]])
        self.private_keys.append(private)
        response = {
            "KeyId": request["KeyId"],
            "KeyPairSpec": request["KeyPairSpec"],
            "PrivateKeyPlaintext": private,
            "PrivateKeyCiphertextBlob": b"ciphertext",
            "PublicKey": public,
        }
        return SimpleNamespace(status_code=200), response


@dataclass
class Node:
    """One node's KMS stack in moto: a KMS key, four empty secrets, clients and recorders."""

    clients: keygen.Clients
    kms_key: str
    arns: dict[str, str]
    server: ResponseServer
    key_pairs: FakeKeyPairs
    puts: list[str] = field(default_factory=list)
    counter: int = 0

    def props(self, **overrides: Any) -> dict[str, Any]:
        """ResourceProperties as CloudFormation sends them (the optional ones left out)."""
        props: dict[str, Any] = {
            "ServiceToken": f"arn:aws:lambda:{REGION}:123456789012:function:keygen",
            "KmsKeyId": self.kms_key,
            "SdkApplicationIds": ["wallet-api", "signer"],
        }
        props.update({name: self.arns[item] for item, name in keygen.SECRET_PROPERTIES.items()})
        props.update(overrides)
        return {key: value for key, value in props.items() if value is not None}

    def event(
        self,
        request_type: str,
        props: dict[str, Any] | None = None,
        old: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """A custom-resource event whose ResponseURL points at the local server."""
        self.counter += 1
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": f"arn:aws:lambda:{REGION}:123456789012:function:keygen",
            "ResponseURL": self.server.url(),
            "StackId": STACK_ID,
            "RequestId": request_id or f"request-{self.counter}-{uuid.uuid4()}",
            "ResourceType": "Custom::TsmKeygen",
            "LogicalResourceId": "NodeSecrets",
            "ResourceProperties": props if props is not None else self.props(),
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = "tsm-node-1-kms-NodeSecrets"
        if request_type == "Update":
            event["OldResourceProperties"] = old if old is not None else self.props()
        return event

    def run(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Handle the event; check that exactly one response arrived and return its body."""
        before = len(self.server.received)
        keygen.handle(event, context or FakeContext(60), self.clients)
        assert len(self.server.received) == before + 1, "expected exactly one response"
        return self.server.received[-1].body

    def value(self, item: str) -> str | None:
        """The current SecretString of an item's secret, None if it has no value."""
        sm = self.clients.secretsmanager
        described = sm.describe_secret(SecretId=self.arns[item])
        if not described.get("VersionIdsToStages"):
            return None
        return str(sm.get_secret_value(SecretId=self.arns[item])["SecretString"])

    def values(self) -> dict[str, str | None]:
        """Current values of all four secrets."""
        return {item: self.value(item) for item in keygen.SECRET_PROPERTIES}

    def all_versions(self) -> list[str]:
        """Every version's SecretString of every secret (current and previous)."""
        sm = self.clients.secretsmanager
        found = []
        for arn in self.arns.values():
            for version in sm.list_secret_version_ids(SecretId=arn)["Versions"]:
                got = sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
                found.append(str(got["SecretString"]))
        return found


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for all AWS calls, with fake credentials so nothing can reach a real account."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def server() -> Iterator[ResponseServer]:
    """The local stand-in for CloudFormation's response URL."""
    srv = ResponseServer()
    yield srv
    srv.close()


def hook_clients(kms: Any, sm: Any, key_pairs: FakeKeyPairs, puts: list[str]) -> None:
    """Add GenerateDataKeyPair to a moto KMS client and count PutSecretValue calls."""
    kms.meta.events.register("before-call.kms.GenerateDataKeyPair", key_pairs)

    def count(params: dict[str, Any], **_: Any) -> None:
        puts.append(json.loads(params["body"])["SecretId"])

    sm.meta.events.register("before-call.secretsmanager.PutSecretValue", count)


@pytest.fixture
def node(aws: None, server: ResponseServer) -> Node:
    """A KMS key and the four empty secrets the KMS stack's template creates."""
    kms = boto3.client("kms", region_name=REGION)
    sm = boto3.client("secretsmanager", region_name=REGION)
    key = kms.create_key(Description="tsm node key")["KeyMetadata"]["Arn"]
    arns = {
        item: sm.create_secret(Name=f"tsm/node-1/{item}", KmsKeyId=key)["ARN"]
        for item in keygen.SECRET_PROPERTIES
    }
    key_pairs, puts = FakeKeyPairs(), list[str]()
    hook_clients(kms, sm, key_pairs, puts)
    return Node(keygen.Clients(kms, sm), key, arns, server, key_pairs, puts)


@pytest.fixture
def created(node: Node) -> tuple[Node, dict[str, Any]]:
    """A node whose Create succeeded; returns it with the Create response body."""
    body = node.run(node.event("Create"))
    assert body["Status"] == "SUCCESS", body["Reason"]
    node.puts.clear()
    return node, body


def der(tag: int, content: bytes) -> bytes:
    """An independent DER encoder for building test inputs."""
    if len(content) < 128:
        return bytes([tag, len(content)]) + content
    length = len(content).to_bytes(2, "big")
    return bytes([tag, 0x82]) + length + content


def sec1_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    """What openssl ecparam -genkey -outform DER writes: SEC1 with curve and public key."""
    return key.private_bytes(
        DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def spki_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """SubjectPublicKeyInfo DER of a key's public half."""
    return key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pkcs8_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 DER, the form KMS returns."""
    return key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def reference_hash(key: str) -> str:
    """echo -n KEY | openssl dgst -sha256 -binary | openssl base64."""
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- Pure functions ------------------------------------------------------------------------------


def test_api_key_hash_matches_the_vendor_vector() -> None:
    assert keygen.api_key_hash("apikey0") == "IntV2sEZRwwd2F+UkDLC7zmFhwvpxAwb0eQKwdEnSZU="
    assert reference_hash("apikey0") == keygen.api_key_hash("apikey0")


@pytest.mark.parametrize("spec", list(CURVES))
def test_pkcs8_to_sec1_matches_openssl_sec1(spec: str) -> None:
    key = ec.generate_private_key(CURVES[spec])
    sec1 = keygen.pkcs8_to_sec1(pkcs8_of(key), spki_of(key), spec)
    assert sec1 == sec1_of(key)
    assert keygen.sec1_public_key(sec1) == (spki_of(key), spec)
    if spec == P256:
        assert len(sec1) == 121
        assert base64.b64encode(sec1).startswith(b"MHcCAQEE")
        assert base64.b64encode(spki_of(key)).startswith(b"MFkwEwYHKoZIzj0CAQYI")


def test_pkcs8_without_optional_fields_and_with_a_short_scalar() -> None:
    # A small private value: a DER writer may encode it without its leading zero bytes.
    key = ec.derive_private_key(0x4242, ec.SECP256R1())
    algorithm = der(0x30, der(0x06, EC_OID) + der(0x06, P256_OID))
    inner = der(0x30, der(0x02, b"\x01") + der(0x04, b"\x42\x42"))
    pkcs8 = der(0x30, der(0x02, b"\x00") + algorithm + der(0x04, inner))
    assert keygen.pkcs8_to_sec1(pkcs8, spki_of(key), P256) == sec1_of(key)


def _compressed_spki() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    algorithm = der(0x30, der(0x06, EC_OID) + der(0x06, P256_OID))
    return pkcs8_of(key), der(0x30, algorithm + der(0x03, b"\x00" + point))


def _bad_inputs() -> list[tuple[str, bytes, bytes, str, str]]:
    p256 = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    k1 = ec.generate_private_key(ec.SECP256K1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs8, spki = pkcs8_of(p256), spki_of(p256)
    inner_v2 = pkcs8.replace(bytes.fromhex("020101"), bytes.fromhex("020102"), 1)
    return [
        (
            "rsa pkcs8",
            pkcs8_of(rsa_key),
            spki,
            P256,
            "key algorithm 1.2.840.113549.1.1.1 is not EC",
        ),
        ("rsa spki", pkcs8, spki_of(rsa_key), P256, "1.2.840.113549.1.1.1 is not EC"),
        ("secp256k1", pkcs8_of(k1), spki_of(k1), P256, "curve OID 1.3.132.0.10 is not the one"),
        ("wrong curve", pkcs8_of(p384), spki_of(p384), P256, "curve OID 1.3.132.0.34"),
        ("unsupported spec", pkcs8, spki, "ECC_SECG_P256K1", "unsupported key spec"),
        ("truncated", pkcs8[:-5], spki, P256, "truncated DER"),
        ("truncated spki", pkcs8, spki[:20], P256, "truncated DER"),
        ("empty", b"", spki, P256, "truncated DER"),
        ("trailing bytes", pkcs8 + b"\x00", spki, P256, "expected one DER element"),
        ("non-canonical", b"\x30\x81\x05" + bytes(5), spki, P256, "non-canonical DER length"),
        ("other public key", pkcs8, spki_of(other), P256, "inner curve or public key differs"),
        ("compressed point", *_compressed_spki(), P256, "not an uncompressed"),
        ("inner version 2", inner_v2, spki, P256, "not an ECPrivateKey"),
    ]


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize(
    ("pkcs8", "spki", "spec", "expected"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_pkcs8_to_sec1_rejects_bad_input(
    pkcs8: bytes, spki: bytes, spec: str, expected: str
) -> None:
    with pytest.raises(keygen.DerError, match=re.escape(expected)) as caught:
        keygen.pkcs8_to_sec1(pkcs8, spki, spec)
    assert isinstance(caught.value, keygen.KeygenError)
    # No key material in the message: nothing that looks like base64 or hex of key bytes.
    assert not re.search(r"[A-Za-z0-9+/]{24,}", str(caught.value))


def test_sec1_public_key_rejects_bad_input() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(keygen.DerError, match="not an ECPrivateKey"):
        keygen.sec1_public_key(pkcs8_of(key))
    with pytest.raises(keygen.DerError, match=re.escape("unsupported curve OID 1.3.132.0.10")):
        keygen.sec1_public_key(sec1_of(ec.generate_private_key(ec.SECP256K1())))
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    no_public = der(0x30, der(0x02, b"\x01") + der(0x04, scalar) + der(0xA0, der(0x06, P256_OID)))
    with pytest.raises(keygen.DerError, match="publicKey missing"):
        keygen.sec1_public_key(no_public)
    with pytest.raises(keygen.DerError, match="truncated DER"):
        keygen.sec1_public_key(sec1_of(key)[:-1])


def test_parse_rotation_token() -> None:
    parse = keygen.parse_rotation_token
    assert parse("p2p-key=2025-01, sdk-api-keys = b ,") == {
        "p2p-key": "2025-01",
        "sdk-api-keys": "b",
    }
    assert parse("") == {}
    assert parse(None) == {}
    for bad, message in [
        ("p2p-key", "not a new item=token"),
        ("=x", "not a new item=token"),
        ("p2p-key=a,p2p-key=b", "not a new item=token"),
        ("hsm-key=1", "valid: p2p-key, sdk-api-keys, management-api-key"),
        ("encryptor-master-password=1", "cannot be rotated"),
    ]:
        with pytest.raises(keygen.KeygenError, match=message):
            parse(bad)
    # Old properties of a failed update are read leniently: bad entries are ignored.
    assert parse("hsm-key=1,p2p-key=a,junk", strict=False) == {"p2p-key": "a"}


# --- Create --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(CURVES))
def test_create_stores_the_p2p_key_as_sec1(node: Node, spec: str) -> None:
    # The default key spec is exercised by leaving P2PKeySpec out.
    props = node.props(P2PKeySpec=None if spec == P256 else spec)
    body = node.run(node.event("Create", props))
    assert body["Status"] == "SUCCESS", body["Reason"]
    stored = node.value(P2P)
    assert stored is not None
    sec1 = base64.b64decode(stored, validate=True)
    key = serialization.load_der_private_key(sec1, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == CURVES[spec].name
    assert sec1_of(key) == sec1
    assert spki_of(key) == base64.b64decode(body["Data"]["PublicKey"])
    assert node.key_pairs.calls == [{"KeyId": node.kms_key, "KeyPairSpec": spec}]
    if spec == P256:
        assert stored.startswith("MHcCAQEE")
        assert body["Data"]["PublicKey"].startswith("MFkwEwYHKoZIzj0CAQYI")


def test_create_writes_every_secret_and_answers_public_values(node: Node) -> None:
    event = node.event("Create")
    body = node.run(event)
    assert body["Status"] == "SUCCESS", body["Reason"]
    values = node.values()
    sdk = json.loads(values[SDK] or "")
    mgmt, master = values[MGMT] or "", values[MASTER] or ""
    assert list(sdk) == ["wallet-api", "signer"]
    for api_key in [*sdk.values(), mgmt]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", api_key)
        assert len(b64url_decode(api_key)) == 32
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", master)
    assert len(b64url_decode(master)) == 48
    assert len({*sdk.values(), mgmt, master}) == 4

    data = body["Data"]
    assert set(data) == {
        "PublicKey",
        "SdkApiKeyHashes",
        "ManagementApiKeyHash",
        *keygen.SECRET_PROPERTIES.values(),
    }
    assert all(isinstance(value, str) for value in data.values())
    assert json.loads(data["SdkApiKeyHashes"]) == {app: reference_hash(k) for app, k in sdk.items()}
    assert data["ManagementApiKeyHash"] == reference_hash(mgmt)
    for item, name in keygen.SECRET_PROPERTIES.items():
        assert data[name] == node.arns[item]

    assert body["PhysicalResourceId"] == "tsm-node-1-kms-NodeSecrets"
    for name in ("StackId", "RequestId", "LogicalResourceId"):
        assert body[name] == event[name]
    received = node.server.received[-1]
    assert received.headers["Content-Type"] == ""
    assert received.path == "/cfn-response?" + event["ResponseURL"].split("?", 1)[1]
    assert sorted(node.puts) == sorted(node.arns.values())
    assert "generated" in body["Reason"]


def test_client_request_tokens_are_deterministic(node: Node) -> None:
    event = node.event("Create")
    assert node.run(event)["Status"] == "SUCCESS"
    sm = node.clients.secretsmanager
    first = {
        item: sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        for item, arn in node.arns.items()
    }
    # The same request against fresh secrets must write the same version ids.
    fresh = {
        item: sm.create_secret(Name=f"tsm/node-2/{item}", KmsKeyId=node.kms_key)["ARN"]
        for item in keygen.SECRET_PROPERTIES
    }
    props = {**event["ResourceProperties"]}
    props.update({name: fresh[item] for item, name in keygen.SECRET_PROPERTIES.items()})
    assert node.run({**event, "ResourceProperties": props})["Status"] == "SUCCESS"
    second = {
        item: sm.describe_secret(SecretId=arn)["VersionIdsToStages"] for item, arn in fresh.items()
    }
    assert second == first
    versions = [next(iter(stages)) for stages in first.values()]
    assert len(set(versions)) == len(keygen.SECRET_PROPERTIES)
    assert all(uuid.UUID(version) for version in versions)


def test_retried_create_keeps_existing_values(created: tuple[Node, dict[str, Any]]) -> None:
    node, first = created
    before = node.values()
    # The same request retried, then a new Create finding the retained secrets.
    for request_id in (first["RequestId"], None):
        body = node.run(node.event("Create", request_id=request_id))
        assert body["Status"] == "SUCCESS", body["Reason"]
        assert body["Data"] == first["Data"]
        assert "generated" not in body["Reason"]
    assert node.puts == []
    assert node.values() == before
    assert len(node.key_pairs.calls) == 1


def _put_generated(node: Node, item: str, value: str) -> None:
    """A value as an earlier run of the function left it: staged AWSCURRENT and TSMKEYGEN."""
    node.clients.secretsmanager.put_secret_value(
        SecretId=node.arns[item],
        SecretString=value,
        VersionStages=["AWSCURRENT", keygen.GENERATED_STAGE],
    )
    node.puts.clear()


def test_create_fills_only_the_empty_secrets(node: Node) -> None:
    _put_generated(node, MGMT, "retained-management-key")
    body = node.run(node.event("Create"))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert node.value(MGMT) == "retained-management-key"
    assert body["Data"]["ManagementApiKeyHash"] == reference_hash("retained-management-key")
    assert sorted(node.puts) == sorted(arn for item, arn in node.arns.items() if item != MGMT)
    assert f"{MGMT} kept" in body["Reason"]


def test_create_replaces_a_value_the_function_did_not_generate(node: Node) -> None:
    # CloudFormation, or a person, may have put a value into a secret before the function ran;
    # only versions staged TSMKEYGEN are the function's own.
    sm = node.clients.secretsmanager
    for item in keygen.SECRET_PROPERTIES:
        sm.put_secret_value(SecretId=node.arns[item], SecretString="initial-value-not-ours")
    body = node.run(node.event("Create"))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert "initial-value-not-ours" not in node.values().values()
    for item, arn in node.arns.items():
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        current = [v for v, s in stages.items() if "AWSCURRENT" in s]
        assert keygen.GENERATED_STAGE in stages[current[0]], item
    assert body["Data"]["ManagementApiKeyHash"] == reference_hash(str(node.value(MGMT)))


# --- Update --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({}, {}),
        ({}, {"P2PKeySpec": P256, "RotationToken": ""}),
        (
            {"RotationToken": "p2p-key=a,sdk-api-keys=b"},
            {"RotationToken": " sdk-api-keys=b , p2p-key=a"},
        ),
        ({"RotationToken": "p2p-key=a"}, {}),
    ],
    ids=["identical", "defaults spelled out", "same tokens reordered", "token removed"],
)
def test_update_without_change_writes_nothing(
    created: tuple[Node, dict[str, Any]], old: dict[str, str], new: dict[str, str]
) -> None:
    node, first = created
    before = node.values()
    body = node.run(node.event("Update", node.props(**new), node.props(**old)))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert node.puts == []
    assert body["Data"] == first["Data"]
    assert body["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert node.values() == before


@pytest.mark.parametrize("item", keygen.ROTATABLE)
def test_update_rotates_only_the_named_item(
    created: tuple[Node, dict[str, Any]], item: str
) -> None:
    node, _ = created
    old = node.props(RotationToken="p2p-key=2024")
    baseline = node.run(node.event("Update", old, node.props()))
    node.puts.clear()
    before = node.values()
    # p2p-key's token changes; the others' tokens are added.
    token = "p2p-key=2025" if item == P2P else f"p2p-key=2024,{item}=2025"
    event = node.event("Update", node.props(RotationToken=token), old)
    body = node.run(event)
    assert body["Status"] == "SUCCESS", body["Reason"]
    after = node.values()
    assert {name for name in before if before[name] != after[name]} == {item}
    assert node.puts == [node.arns[item]]
    assert f"{item} rotated" in body["Reason"]
    previous = node.clients.secretsmanager.get_secret_value(
        SecretId=node.arns[item], VersionStage="AWSPREVIOUS"
    )
    assert previous["SecretString"] == before[item]

    changed = {key for key in body["Data"] if baseline["Data"][key] != body["Data"][key]}
    expected = {P2P: "PublicKey", SDK: "SdkApiKeyHashes", MGMT: "ManagementApiKeyHash"}[item]
    assert changed == {expected}
    if item == SDK:
        assert list(json.loads(after[SDK] or "")) == ["wallet-api", "signer"]

    # CloudFormation retrying the same update must not rotate again.
    node.puts.clear()
    again = node.run(event)
    assert again["Data"] == body["Data"]
    assert node.puts == []


def test_update_adds_and_drops_application_ids(created: tuple[Node, dict[str, Any]]) -> None:
    node, first = created
    before = node.values()
    keys_before = json.loads(before[SDK] or "")
    new = node.props(SdkApplicationIds=["signer", "reporting"])
    body = node.run(node.event("Update", new, node.props()))
    assert body["Status"] == "SUCCESS", body["Reason"]
    keys = json.loads(node.value(SDK) or "")
    assert list(keys) == ["signer", "reporting"]
    assert keys["signer"] == keys_before["signer"]
    assert keys["reporting"] not in keys_before.values()
    hashes = json.loads(body["Data"]["SdkApiKeyHashes"])
    assert hashes == {app: reference_hash(key) for app, key in keys.items()}
    assert hashes["signer"] == json.loads(first["Data"]["SdkApiKeyHashes"])["signer"]
    assert node.puts == [node.arns[SDK]]
    assert {k: v for k, v in node.values().items() if k != SDK} == {
        k: v for k, v in before.items() if k != SDK
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"RotationToken": "p2p-key=1,hsm-key=1"},
            "valid: p2p-key, sdk-api-keys, management-api-key",
        ),
        (
            {"RotationToken": "encryptor-master-password=1"},
            "cannot be rotated (the stored key shares",
        ),
        ({"P2PKeySpec": P384}, "P2PKeySpec changed from ECC_NIST_P256 to ECC_NIST_P384 without"),
        (
            {"P2PKeySpec": P384, "RotationToken": "sdk-api-keys=1"},
            "'p2p-key=<token>' in RotationToken",
        ),
        ({"P2PKeySpec": "ECC_SECG_P256K1"}, "is not one of ECC_NIST_P256, ECC_NIST_P384"),
        ({"SdkApplicationIds": ["ok", "bad id!"]}, "'bad id!' is not [A-Za-z0-9_.-]{1,64}"),
        ({"SdkApplicationIds": []}, "non-empty list"),
        ({"SdkApplicationIds": ["a", "a"]}, "distinct"),
        ({"KmsKeyId": ""}, "property KmsKeyId is missing or empty"),
        ({"SdkApiKeysSecretArn": None}, "property SdkApiKeysSecretArn is missing"),
        ({"RotationToken": "p2p-key"}, "is not a new item=token"),
    ],
)
def test_update_refusals_change_nothing(
    created: tuple[Node, dict[str, Any]], change: dict[str, Any], expected: str
) -> None:
    node, first = created
    before = node.values()
    body = node.run(node.event("Update", node.props(**change), node.props()))
    assert body["Status"] == "FAILED"
    assert expected in body["Reason"]
    assert body["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert node.puts == []
    assert node.values() == before


def test_key_spec_change_with_rotation_and_its_rollback(
    created: tuple[Node, dict[str, Any]],
) -> None:
    node, _ = created
    original, changed = node.props(), node.props(P2PKeySpec=P384, RotationToken="p2p-key=1")
    body = node.run(node.event("Update", changed, original))
    assert body["Status"] == "SUCCESS", body["Reason"]
    key = serialization.load_der_private_key(base64.b64decode(node.value(P2P) or ""), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp384r1"
    assert spki_of(key) == base64.b64decode(body["Data"]["PublicKey"])
    assert node.puts == [node.arns[P2P]]
    # A later resource fails: CloudFormation rolls back with the properties swapped.
    node.puts.clear()
    rollback = node.run(node.event("Update", original, changed))
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert rollback["Data"] == body["Data"]
    assert node.puts == []


def test_rollback_of_a_refused_update_succeeds(created: tuple[Node, dict[str, Any]]) -> None:
    node, first = created
    original, refused = node.props(), node.props(P2PKeySpec=P384, RotationToken="hsm=1")
    assert node.run(node.event("Update", refused, original))["Status"] == "FAILED"
    body = node.run(node.event("Update", original, refused))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"] == first["Data"]
    assert node.puts == []


def test_update_refuses_to_replace_a_missing_master_password(
    created: tuple[Node, dict[str, Any]],
) -> None:
    node, _ = created
    empty = node.clients.secretsmanager.create_secret(Name="tsm/node-1/new", KmsKeyId=node.kms_key)
    new = node.props(EncryptorMasterPasswordSecretArn=empty["ARN"])
    body = node.run(node.event("Update", new, node.props()))
    assert body["Status"] == "FAILED"
    assert "has no generated value on Update" in body["Reason"]
    assert "restore the node's password" in body["Reason"]
    assert node.puts == []


def test_database_password_is_generated_and_never_rotated(
    created: tuple[Node, dict[str, Any]],
) -> None:
    node, first = created
    password = node.value(keygen.DATABASE)
    assert password and re.fullmatch(r"[A-Za-z0-9_-]{43}", password)  # 32 random bytes
    assert first["Data"]["DatabasePasswordSecretArn"] == node.arns[keygen.DATABASE]
    refused = node.props(RotationToken="database-password=1")
    body = node.run(node.event("Update", refused, node.props()))
    assert body["Status"] == "FAILED"
    assert "database-password cannot be rotated (the running node would lose" in body["Reason"]
    assert node.value(keygen.DATABASE) == password


def test_update_generates_a_database_password_the_stack_did_not_have(
    created: tuple[Node, dict[str, Any]],
) -> None:
    # a KMS stack deployed before the secret existed gets it on its next update
    node, _ = created
    empty = node.clients.secretsmanager.create_secret(Name="tsm/node-1/db", KmsKeyId=node.kms_key)
    new = node.props(DatabasePasswordSecretArn=empty["ARN"])
    body = node.run(node.event("Update", new, node.props()))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert "database-password generated" in body["Reason"]
    got = node.clients.secretsmanager.get_secret_value(SecretId=empty["ARN"])["SecretString"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", got)


# --- Delete and failures -------------------------------------------------------------------------


def test_delete_changes_nothing(created: tuple[Node, dict[str, Any]]) -> None:
    node, first = created
    before = node.values()
    versions = node.all_versions()
    for props in (node.props(), {"Garbage": True}):
        body = node.run(node.event("Delete", props))
        assert body["Status"] == "SUCCESS", body["Reason"]
        assert body["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert node.values() == before
    assert node.all_versions() == versions
    assert node.puts == []
    key = node.clients.kms.describe_key(KeyId=node.kms_key)["KeyMetadata"]
    assert key["KeyState"] == "Enabled"


def test_missing_secret_fails_with_an_actionable_reason(node: Node) -> None:
    missing = node.arns[P2P].replace("p2p-key", "no-such-secret")
    body = node.run(node.event("Create", node.props(P2PKeySecretArn=missing)))
    assert body["Status"] == "FAILED"
    assert (
        f"describing secret p2p-key ({missing}) failed: ResourceNotFoundException" in body["Reason"]
    )
    assert "check the ARN" in body["Reason"]
    assert body["PhysicalResourceId"] == "tsm-node-1-kms-NodeSecrets"
    assert node.puts == []


def test_kms_failure_fails_with_an_actionable_reason(node: Node) -> None:
    node.key_pairs.error_code = "AccessDeniedException"
    body = node.run(node.event("Create"))
    assert body["Status"] == "FAILED"
    assert "generating p2p-key failed: AccessDeniedException: denied by the test" in body["Reason"]
    assert "permissions" in body["Reason"]
    assert node.puts == []


def test_unexpected_error_still_answers(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    broken = keygen.Clients(kms=object(), secretsmanager=node.clients.secretsmanager)
    keygen.handle(node.event("Create"), FakeContext(60), broken)
    body = node.server.received[-1].body
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "unexpected AttributeError; see the function's log"
    assert "Traceback" in caplog.text


def test_corrupt_stored_p2p_key_fails_with_an_actionable_reason(node: Node) -> None:
    sm = node.clients.secretsmanager
    sm.put_secret_value(
        SecretId=node.arns[P2P],
        SecretString="bm90IGEga2V5",
        VersionStages=["AWSCURRENT", keygen.GENERATED_STAGE],
    )
    body = node.run(node.event("Create"))
    assert body["Status"] == "FAILED"
    assert f"secret p2p-key ({node.arns[P2P]}) is unusable" in body["Reason"]
    assert "rotate p2p-key" in body["Reason"]


def test_unknown_request_type_fails(node: Node) -> None:
    body = node.run(node.event("Replace"))
    assert body["Status"] == "FAILED"
    assert "unsupported RequestType 'Replace'" in body["Reason"]


# --- Timeouts and the single response ------------------------------------------------------------


@pytest.mark.parametrize(("margin", "remaining"), [(0.25, 0.5), (10.0, 0.5)])
def test_timeout_answers_failed_before_the_deadline(
    node: Node,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    margin: float,
    remaining: float,
) -> None:
    monkeypatch.setattr(keygen, "TIMEOUT_MARGIN_SECONDS", margin)
    node.key_pairs.delay = remaining + 0.2
    context = FakeContext(remaining)
    result = keygen.handle(node.event("Create"), context, node.clients)
    time.sleep(0.1)
    assert len(node.server.received) == 1
    received = node.server.received[0]
    assert received.at < context.deadline
    body = received.body
    assert body["Status"] == "FAILED"
    assert re.match(r"timed out after 0\.\d s while generating p2p-key", body["Reason"])
    assert "raise its Timeout" in body["Reason"]
    assert result == body
    # The work that outlived the answer wrote nothing and its late answer was dropped.
    assert node.puts == []
    assert node.value(P2P) is None
    assert "not sending FAILED: FAILED was sent already" in caplog.text


def test_responder_sends_exactly_once_under_a_race() -> None:
    sent: list[bytes] = []

    def slow_send(url: str, body: bytes) -> None:
        time.sleep(0.05)
        sent.append(body)

    responder = keygen.Responder({"ResponseURL": "http://127.0.0.1:9/x"}, slow_send)
    start = threading.Barrier(8)
    results: list[tuple[bool, int]] = []

    def race(index: int) -> None:
        start.wait()
        won = responder.respond("SUCCESS" if index % 2 else "FAILED", f"r{index}", "id", {})
        # Whoever returns, the one send has finished by then (Lambda may freeze after return).
        results.append((won, len(sent)))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 1
    assert sorted(won for won, _ in results) == [False] * 7 + [True]
    assert all(count == 1 for _, count in results)
    assert json.loads(sent[0]) == responder.sent


def test_reason_is_one_line_and_truncated_under_the_limit() -> None:
    sent: list[bytes] = []
    responder = keygen.Responder({"ResponseURL": "http://x/"}, lambda url, body: sent.append(body))
    reason = "first line\nsecond " + "é" * 1000 + "x" * 10_000
    responder.respond("FAILED", reason, "id", {})
    body = json.loads(sent[0])
    assert len(sent[0]) <= 4096
    assert body["Reason"].startswith("first line second é")
    assert body["Reason"].endswith("...")


def test_too_many_application_ids_fail_clearly(node: Node) -> None:
    apps = [f"application-{i:02d}-" + "x" * 49 for i in range(40)]
    body = node.run(node.event("Create", node.props(SdkApplicationIds=apps)))
    assert body["Status"] == "FAILED"
    assert "too big: use fewer SdkApplicationIds" in body["Reason"]
    assert len(node.server.received[-1].raw) <= 4096


def test_send_failure_is_logged_without_the_presigned_query(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    event = node.event("Delete")
    event["ResponseURL"] = f"http://127.0.0.1:{port}/r?X-Amz-Signature=presigned-secret"
    result = keygen.handle(event, None, node.clients)
    assert result["Status"] == "SUCCESS"
    assert f"could not send SUCCESS to http://127.0.0.1:{port}/r:" in caplog.text

    def leaky_send(url: str, body: bytes) -> None:
        raise RuntimeError(f"cannot PUT {url}")

    keygen.handle(event, None, node.clients, send=leaky_send)
    assert f"cannot PUT http://127.0.0.1:{port}/r" in caplog.text
    assert "presigned-secret" not in caplog.text


# --- Secrets stay secret -------------------------------------------------------------------------


def test_no_secret_value_in_responses_logs_or_reasons(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rotate_all = node.props(RotationToken="p2p-key=1,sdk-api-keys=1,management-api-key=1")
    events = [
        node.event("Create"),
        node.event("Update", rotate_all, node.props()),
        node.event("Update", node.props(RotationToken="nope=1"), rotate_all),
        node.event("Update", node.props(P2PKeySpec=P384), rotate_all),
        node.event("Delete"),
    ]
    for event in events:
        node.run(event)
    node.key_pairs.error_code = "AccessDeniedException"
    node.run(node.event("Update", node.props(RotationToken="p2p-key=2"), rotate_all))

    secrets = node.all_versions()
    for value in list(secrets):
        if value.startswith("{"):
            secrets.extend(json.loads(value).values())
    secrets.extend(base64.b64encode(der).decode() for der in node.key_pairs.private_keys)
    secrets.extend(der.hex() for der in node.key_pairs.private_keys)
    assert len(secrets) >= 14
    texts = [received.raw.decode() for received in node.server.received]
    texts += [caplog.text, *(record.getMessage() for record in caplog.records)]
    for secret in secrets:
        for text in texts:
            assert secret not in text
    assert node.server.signature not in caplog.text
    # The logs do say what happened, by item name.
    assert "p2p-key generated" in caplog.text
    assert "sdk-api-keys rotated" in caplog.text


# --- The Lambda entry point and the shipped source -----------------------------------------------


def test_lambda_entry_point_uses_adaptive_retries(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs: list[Any] = []
    real_client: Any = boto3.client

    def spy(service: str, **kwargs: Any) -> Any:
        configs.append(kwargs["config"])
        client = real_client(service, **kwargs)
        hook_clients(client, client, node.key_pairs, node.puts)
        return client

    monkeypatch.setattr(boto3, "client", spy)
    result = keygen.handler(node.event("Create"), FakeContext(60))
    assert result["Status"] == "SUCCESS", result["Reason"]
    assert node.server.received[-1].body == result
    assert [config.retries["mode"] for config in configs] == ["adaptive", "adaptive"]


def test_shipped_source_is_self_contained(tmp_path: Path) -> None:
    source = Path(keygen.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    assert set(re.findall(r'import_module\("([\w.]+)"\)', source)) <= {"boto3", "botocore.config"}
    # Lambda saves Code.ZipFile as index.py; it must import alone, without tsm_infra.
    (tmp_path / "index.py").write_text(source, encoding="utf-8")
    check = (
        "import index, sys; assert callable(index.handler); assert 'tsm_infra' not in sys.modules"
    )
    subprocess.run([sys.executable, "-E", "-s", "-c", check], cwd=tmp_path, check=True)


# --- the response PUT ----------------------------------------------------------------------------


class FlakyServer:
    """Answers the first `failures` PUTs with 503, then 200; counts them."""

    def __init__(self, failures: int) -> None:
        self.puts = 0
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                state.puts += 1
                self.send_response(503 if state.puts <= failures else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/r?X-Amz-Signature=s"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_response_put_is_retried_with_backoff() -> None:
    server, waits = FlakyServer(failures=2), []
    try:
        keygen.put_response(server.url(), b"{}", sleep=waits.append)
    finally:
        server.close()
    assert server.puts == 3
    assert waits == [keygen.SEND_BACKOFF_SECONDS, 2 * keygen.SEND_BACKOFF_SECONDS]


def test_the_response_put_gives_up_after_its_attempts() -> None:
    server, waits = FlakyServer(failures=99), []
    try:
        with pytest.raises(urllib.error.HTTPError):
            keygen.put_response(server.url(), b"{}", sleep=waits.append)
    finally:
        server.close()
    assert server.puts == keygen.SEND_ATTEMPTS
    assert len(waits) == keygen.SEND_ATTEMPTS - 1


def test_every_try_of_the_put_fits_before_lambda_ends_the_function() -> None:
    assert 3 <= keygen.SEND_ATTEMPTS <= 5
    assert keygen.TIMEOUT_MARGIN_SECONDS > keygen.SEND_WORST_SECONDS
