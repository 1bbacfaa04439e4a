"""Custom resource of a TSM node's KMS stack: generates the node's secrets inside AWS.

Inline Lambda code (index.py, Handler index.handler): standard library and boto3 only. Secret
values go only to Secrets Manager; the response holds public values (public key, hashes, ARNs).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib
import itertools
import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("tsm.keygen")
LOG.setLevel(logging.INFO)

# The response PUT is tried this often, waiting SEND_BACKOFF_SECONDS * 2**n between tries.
SEND_ATTEMPTS, SEND_BACKOFF_SECONDS, SEND_TIMEOUT_SECONDS = 4, 1.0, 5.0
SEND_WORST_SECONDS = SEND_ATTEMPTS * SEND_TIMEOUT_SECONDS + SEND_BACKOFF_SECONDS * (
    2 ** (SEND_ATTEMPTS - 1) - 1
)
# Answer FAILED this long before Lambda kills the function, so that the stack never hangs:
# room for every try of the response PUT.
TIMEOUT_MARGIN_SECONDS = SEND_WORST_SECONDS + 3.0
RESPONSE_LIMIT_BYTES = 4096
API_KEY_BYTES, MASTER_PASSWORD_BYTES = 32, 48
DEFAULT_KEY_SPEC = "ECC_NIST_P256"
P2P, SDK, MGMT, MASTER, DATABASE = (
    "p2p-key",
    "sdk-api-keys",
    "management-api-key",
    "encryptor-master-password",
    "database-password",
)
ROTATABLE = (P2P, SDK, MGMT)
# The node sets its database role's password from the secret at every boot, so a lost one is
# simply generated again; it is never rotated under a running node.
NEVER_ROTATED = {
    MASTER: "the stored key shares would become unreadable",
    DATABASE: "the running node would lose its database connection",
}
SECRET_PROPERTIES = {
    P2P: "P2PKeySecretArn",
    SDK: "SdkApiKeysSecretArn",
    MGMT: "ManagementApiKeySecretArn",
    MASTER: "EncryptorMasterPasswordSecretArn",
    DATABASE: "DatabasePasswordSecretArn",
}
# Staging label on every version this function writes. Only a current version that carries it
# counts as generated: a value CloudFormation or a person put there first is not trusted.
GENERATED_STAGE = "TSMKEYGEN"
APP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_EC_OID = bytes.fromhex("2a8648ce3d0201")  # id-ecPublicKey
# KMS KeyPairSpec -> (named-curve OID contents, field size in bytes)
CURVES = {
    "ECC_NIST_P256": (bytes.fromhex("2a8648ce3d030107"), 32),
    "ECC_NIST_P384": (bytes.fromhex("2b81040022"), 48),
    "ECC_NIST_P521": (bytes.fromhex("2b81040023"), 66),
}


class KeygenError(Exception):
    """A failure an operator can act on; its message is the FAILED reason and holds no secret."""


class DerError(KeygenError, ValueError):
    """Key material is malformed or of an unsupported kind."""


def _tlv(data: bytes, pos: int, what: str) -> tuple[int, bytes, int]:
    if len(data) - pos < 2:
        raise DerError(f"{what}: truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 3 or len(data) - pos < size:
            raise DerError(f"{what}: bad or truncated DER length")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        if length < 0x80 or length >> (8 * size - 8) == 0:
            raise DerError(f"{what}: non-canonical DER length")
    if len(data) - pos < length:
        raise DerError(f"{what}: truncated DER")
    return tag, data[pos : pos + length], pos + length


def _items(data: bytes, what: str, tag: int = 0x30) -> list[tuple[int, bytes]]:
    found, body, end = _tlv(data, 0, what)
    if found != tag or end != len(data):
        raise DerError(f"{what}: expected one DER element with tag 0x{tag:02x}")
    items, pos = [], 0
    while pos < len(body):
        item_tag, content, pos = _tlv(body, pos, what)
        items.append((item_tag, content))
    return items


def _enc(tag: int, content: bytes) -> bytes:
    n = len(content)
    size = (n.bit_length() + 7) // 8
    head = bytes([tag, n]) if n < 0x80 else bytes([tag, 0x80 | size]) + n.to_bytes(size, "big")
    return head + content


def _oid_text(oid: bytes) -> str:
    arcs, value = [], 0
    for byte in oid:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if arcs:
        first = min(arcs[0] // 40, 2)
        arcs[:1] = [first, arcs[0] - 40 * first]
    return ".".join(map(str, arcs)) or "(none)"


def _spki_bits(spki: bytes, key_spec: str, what: str) -> bytes:
    """Validate an EC SubjectPublicKeyInfo on key_spec's curve; return its BIT STRING contents."""
    top = _items(spki, what)
    if len(top) != 2 or top[1][0] != 0x03:
        raise DerError(f"{what}: expected SEQUENCE {{algorithm, BIT STRING}}")
    _check_alg(top[0], key_spec, what)
    if len(top[1][1]) != 2 + 2 * CURVES[key_spec][1] or top[1][1][:2] != b"\x00\x04":
        raise DerError(f"{what}: public key is not an uncompressed {key_spec} point")
    return top[1][1]


def _check_alg(alg: tuple[int, bytes], key_spec: str, what: str) -> None:
    oids = [content if tag == 0x06 else b"" for tag, content in _items(_enc(*alg), what)]
    if not oids or oids[0] != _EC_OID:
        raise DerError(f"{what}: key algorithm {_oid_text(oids[0] if oids else b'')} is not EC")
    if oids[1:] != [CURVES[key_spec][0]]:
        curve = _oid_text(oids[1]) if len(oids) > 1 else "(none)"
        raise DerError(f"{what}: curve OID {curve} is not the one of {key_spec}")


def _ec_private(der: bytes, what: str) -> dict[int, bytes]:
    """RFC 5915 ECPrivateKey fields by tag: 0x04 private key, 0xA0 curve, 0xA1 public key."""
    items = _items(der, what)
    tags = [tag for tag, _ in items]
    if (
        tags[:2] != [2, 4]
        or items[0][1] != b"\x01"
        or tags[2:] not in ([], [0xA0], [0xA1], [0xA0, 0xA1])
    ):
        raise DerError(f"{what}: not an ECPrivateKey {{1, privateKey, [0] curve, [1] publicKey}}")
    return dict(items[1:])


def pkcs8_to_sec1(pkcs8: bytes, spki: bytes, key_spec: str) -> bytes:
    """Turn KMS's PKCS#8 EC private key into SEC1 ECPrivateKey DER with [0] curve and [1] key."""
    if key_spec not in CURVES:
        raise DerError(f"unsupported key spec {key_spec!r}; use one of {', '.join(CURVES)}")
    curve, size = _enc(0x06, CURVES[key_spec][0]), CURVES[key_spec][1]
    public = _enc(0x03, _spki_bits(spki, key_spec, "SubjectPublicKeyInfo from KMS"))
    what = "PKCS#8 private key from KMS"
    top = _items(pkcs8, what)
    if len(top) < 3 or top[0] not in ((2, b"\x00"), (2, b"\x01")) or top[2][0] != 0x04:
        raise DerError(f"{what}: expected PrivateKeyInfo {{version, algorithm, OCTET STRING}}")
    _check_alg(top[1], key_spec, what)
    fields = _ec_private(top[2][1], what)
    scalar = fields[0x04]
    if not 0 < len(scalar) <= size or not any(scalar):
        raise DerError(f"{what}: private key is not a {size}-byte {key_spec} scalar")
    if fields.get(0xA0, curve) != curve or fields.get(0xA1, public) != public:
        raise DerError(f"{what}: inner curve or public key differs from the SubjectPublicKeyInfo")
    body = _enc(0x02, b"\x01") + _enc(0x04, scalar.rjust(size, b"\x00"))
    return _enc(0x30, body + _enc(0xA0, curve) + _enc(0xA1, public))


def sec1_public_key(sec1: bytes) -> tuple[bytes, str]:
    """(SubjectPublicKeyInfo DER, key spec) read from a SEC1 ECPrivateKey's [0] and [1] fields."""
    what = "stored P2P key (SEC1 ECPrivateKey)"
    fields = _ec_private(sec1, what)
    if 0xA0 not in fields or 0xA1 not in fields:
        raise DerError(f"{what}: [0] curve or [1] publicKey missing")
    spec = next((s for s, (oid, _) in CURVES.items() if _enc(0x06, oid) == fields[0xA0]), "")
    if not spec:
        raise DerError(f"{what}: unsupported curve OID {_oid_text(fields[0xA0][2:])}")
    spki = _enc(0x30, _enc(0x30, _enc(0x06, _EC_OID) + fields[0xA0]) + fields[0xA1])
    _spki_bits(spki, spec, what)
    if len(fields[0x04]) != CURVES[spec][1]:
        raise DerError(f"{what}: private key is not a {CURVES[spec][1]}-byte {spec} scalar")
    return spki, spec


def api_key_hash(key: str) -> str:
    """base64(SHA-256(key)): what the TSM config holds instead of an API key."""
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


def parse_rotation_token(value: object, strict: bool = True) -> dict[str, str]:
    """Parse 'item=token,...'; strict mode rejects bad entries and unknown or refused items."""
    tokens: dict[str, str] = {}
    for entry in str(value or "").split(","):
        item, _, token = (part.strip() for part in entry.partition("="))
        problem = ""
        if not item or not token or item in tokens:
            problem = f"RotationToken entry {entry.strip()[:80]!r} is not a new item=token pair"
        elif item in NEVER_ROTATED:
            problem = f"{item} cannot be rotated ({NEVER_ROTATED[item]})"
        elif item not in ROTATABLE:
            problem = f"unknown RotationToken item {item[:80]!r}; valid: {', '.join(ROTATABLE)}"
        if not problem:
            tokens[item] = token
        elif strict and entry.strip():
            raise KeygenError(problem + "; fix RotationToken")
    return tokens


@dataclass(frozen=True)
class _Config:
    kms_key: str
    arns: dict[str, str]
    app_ids: list[str]
    key_spec: str
    tokens: dict[str, str]


def _config(props: Mapping[str, Any]) -> _Config:
    def required(name: str) -> str:
        value = props.get(name)
        if not isinstance(value, str) or not value.strip():
            raise KeygenError(f"property {name} is missing or empty; pass it from the template")
        return value.strip()

    apps = props.get("SdkApplicationIds")
    if not isinstance(apps, list) or not apps or len(set(map(str, apps))) != len(apps):
        raise KeygenError("SdkApplicationIds must be a non-empty list of distinct application ids")
    for app in apps:
        if not isinstance(app, str) or not APP_ID.fullmatch(app):
            raise KeygenError(f"SdkApplicationIds: {str(app)[:80]!r} is not {APP_ID.pattern}")
    spec = str(props.get("P2PKeySpec") or DEFAULT_KEY_SPEC)
    if spec not in CURVES:
        raise KeygenError(f"P2PKeySpec {spec[:40]!r} is not one of {', '.join(CURVES)}")
    arns = {item: required(name) for item, name in SECRET_PROPERTIES.items()}
    tokens = parse_rotation_token(props.get("RotationToken"))
    return _Config(required("KmsKeyId"), arns, apps, spec, tokens)


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the handler uses, injected so that tests can supply their own."""

    kms: Any
    secretsmanager: Any


class _Run:
    """AWS calls of one Create or Update, with actionable errors and progress for the timer."""

    def __init__(self, clients: Clients, request_id: str, responder: Responder) -> None:
        self.kms, self.sm = clients.kms, clients.secretsmanager
        self.request_id, self.responder = request_id, responder

    def call(self, what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """Call AWS; re-raise a failure as a KeygenError saying what failed and what to check."""
        self.responder.step = what
        try:
            return method(**kwargs)
        except Exception as exc:
            response = getattr(exc, "response", None)
            error = response.get("Error") or {} if isinstance(response, dict) else {}
            code = str(error.get("Code") or type(exc).__name__)
            detail = str(error.get("Message") or exc)[:300]
            hint = "the ARN, the function role's permissions and the key and secret policies"
            raise KeygenError(f"{what} failed: {code}: {detail}; check {hint}") from None

    def token(self, item: str) -> str:
        """PutSecretValue ClientRequestToken: the same when CloudFormation retries the request."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tsm-keygen:{self.request_id}:{item}"))

    def current(self, item: str, arn: str) -> tuple[str, str] | None:
        """(VersionId, SecretString) of the current generated version; None when there is none."""
        info = self.call(f"describing secret {item} ({arn})", self.sm.describe_secret, SecretId=arn)
        stages = (info.get("VersionIdsToStages") or {}).values()
        if not any("AWSCURRENT" in v and GENERATED_STAGE in v for v in stages):
            return None
        got = self.call(f"reading secret {item} ({arn})", self.sm.get_secret_value, SecretId=arn)
        if not got.get("SecretString"):
            raise KeygenError(f"secret {item} ({arn}) has no SecretString; fix or rotate it")
        return str(got["VersionId"]), str(got["SecretString"])

    def put(self, item: str, arn: str, value: str) -> None:
        """Write a new current version, unless the timeout answer has gone out already."""
        if self.responder.sent:
            raise KeygenError(f"abandoned before writing {item}: the timeout answer was sent")
        args = {
            "SecretId": arn,
            "SecretString": value,
            "ClientRequestToken": self.token(item),
            "VersionStages": ["AWSCURRENT", GENERATED_STAGE],
        }
        self.call(f"writing secret {item} ({arn})", self.sm.put_secret_value, **args)

    def random(self, item: str, size: int) -> str:
        """base64url (no padding) of size bytes from KMS GenerateRandom."""
        data = self.call(f"generating {item}", self.kms.generate_random, NumberOfBytes=size)
        if len(data["Plaintext"]) != size:
            raise KeygenError(f"KMS GenerateRandom returned the wrong length for {item}")
        return base64.urlsafe_b64encode(data["Plaintext"]).rstrip(b"=").decode()

    def key_pair(self, kms_key: str, spec: str) -> str:
        """A new P2P key from KMS GenerateDataKeyPair, as base64 of its SEC1 DER."""
        args = {"KeyId": kms_key, "KeyPairSpec": spec}
        pair = self.call(f"generating {P2P}", self.kms.generate_data_key_pair, **args)
        sec1 = pkcs8_to_sec1(pair["PrivateKeyPlaintext"], pair["PublicKey"], spec)
        return base64.b64encode(sec1).decode()


def _stored_p2p(value: str, arn: str) -> tuple[bytes, str]:
    try:
        return sec1_public_key(base64.b64decode(value, validate=True))
    except ValueError as exc:  # binascii.Error or DerError
        # Name the secret: the DER message alone does not say where the bad key is.
        raise KeygenError(f"secret {P2P} ({arn}) is unusable ({exc}); rotate {P2P}") from None


def _process(event: Mapping[str, Any], run: _Run) -> tuple[dict[str, str], str]:
    """Create or update the secrets; return the response Data and a summary by item name."""
    cfg = _config(event.get("ResourceProperties") or {})
    update = event.get("RequestType") == "Update"
    old = (event.get("OldResourceProperties") or {}) if update else {}
    # On rollback the old properties are the failed update's: read them leniently.
    old_tokens = parse_rotation_token(old.get("RotationToken"), strict=False)
    old_spec = str(old.get("P2PKeySpec") or DEFAULT_KEY_SPEC) if update else cfg.key_spec
    rotate = {item for item, tok in cfg.tokens.items() if update and old_tokens.get(item) != tok}
    stored = {item: run.current(item, arn) for item, arn in cfg.arns.items()}
    # A current version carrying this request's token means a retry of it already rotated the item.
    kept = {
        item: current[1]
        for item, current in stored.items()
        if current and (item not in rotate or current[0] == run.token(item))
    }

    # Check everything before writing anything, so that a refused request changes nothing.
    spec = _stored_p2p(kept[P2P], cfg.arns[P2P])[1] if P2P in kept else cfg.key_spec
    # Another curve is let through when the p2p-key token was removed: a rotation's rollback.
    if spec != cfg.key_spec and (P2P not in old_tokens or P2P in cfg.tokens):
        raise KeygenError(
            f"P2PKeySpec changed from {old_spec} to {cfg.key_spec} without rotating {P2P}: add or "
            f"change '{P2P}=<token>' in RotationToken in the same update (peers must then pin the "
            f"new PublicKey), or keep {old_spec}"
            if old_spec != cfg.key_spec
            else f"secret {P2P} holds a {spec} key, not {cfg.key_spec}: set P2PKeySpec to {spec}"
        )
    if update and MASTER not in kept:
        raise KeygenError(
            f"secret {MASTER} has no generated value on Update; a new password would make the "
            "node's database unreadable: restore the node's password as a version staged "
            f"AWSCURRENT and {GENERATED_STAGE}, then retry"
        )
    try:
        sdk_keys = json.loads(kept.get(SDK, "{}"))
    except ValueError:
        sdk_keys = None
    if not isinstance(sdk_keys, dict) or not all(
        isinstance(k, str) and k for k in sdk_keys.values()
    ):
        raise KeygenError(f"secret {SDK} is not a JSON object of app id to key; rotate {SDK}")

    values, actions = dict(kept), dict.fromkeys(SECRET_PROPERTIES, "kept")
    for item in (P2P, MGMT, MASTER, DATABASE):
        if item not in kept:
            size = MASTER_PASSWORD_BYTES if item == MASTER else API_KEY_BYTES
            new = run.key_pair(cfg.kms_key, cfg.key_spec) if item == P2P else run.random(item, size)
            run.put(item, cfg.arns[item], new)
            values[item], actions[item] = new, "rotated" if stored[item] else "generated"
    apps = {a: sdk_keys.get(a) or run.random(SDK, API_KEY_BYTES) for a in cfg.app_ids}
    if SDK not in kept:
        actions[SDK] = "rotated" if stored[SDK] else "generated"
    elif apps != sdk_keys:
        changed = sorted(set(apps) ^ set(sdk_keys))
        actions[SDK] = f"updated (added or removed: {', '.join(changed)})"
    if actions[SDK] != "kept":
        run.put(SDK, cfg.arns[SDK], json.dumps(apps))

    data = {
        "PublicKey": base64.b64encode(_stored_p2p(values[P2P], cfg.arns[P2P])[0]).decode(),
        "SdkApiKeyHashes": json.dumps({app: api_key_hash(key) for app, key in apps.items()}),
        "ManagementApiKeyHash": api_key_hash(values[MGMT]),
    }
    data.update({name: cfg.arns[item] for item, name in SECRET_PROPERTIES.items()})
    return data, "; ".join(f"{item} {action}" for item, action in actions.items())


def put_response(
    url: str,
    body: bytes,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = SEND_ATTEMPTS,
) -> None:
    """PUT a response body to CloudFormation's presigned ResponseURL, retrying with backoff."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("ResponseURL is not an http(s) URL")
    # The presigned URL is signed for an empty Content-Type.
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    for attempt in range(attempts):
        request = urllib.request.Request(url, body, headers, method="PUT")  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=SEND_TIMEOUT_SECONDS
            ) as response:
                response.read()
            return
        except (OSError, http.client.HTTPException) as exc:  # URLError and HTTPError included
            if attempt + 1 == attempts:
                raise
            where = url.split("?", 1)[0]  # the query string is a presigned credential
            LOG.warning("PUT to %s failed (%s); trying again", where, type(exc).__name__)
            sleep(SEND_BACKOFF_SECONDS * 2**attempt)


class Responder:
    """Sends the one response of an invocation, from whichever thread gets there first."""

    def __init__(self, event: Mapping[str, Any], send: Callable[[str, bytes], None]) -> None:
        self.event, self.send, self.lock = event, send, threading.Lock()
        self.sent: dict[str, Any] = {}
        self.step = "starting"

    def respond(self, status: str, reason: str, physical_id: str, data: dict[str, str]) -> bool:
        """Send the response unless one has been sent; True if this call sent it."""
        # Held while sending, so that the handler cannot return (and Lambda freeze) mid-send.
        with self.lock:
            if self.sent:
                LOG.warning("not sending %s: %s was sent already", status, self.sent["Status"])
                return False
            ids = ("StackId", "RequestId", "LogicalResourceId")
            body = {key: str(self.event.get(key, "")) for key in ids}
            body.update(
                Status=status, Reason=" ".join(reason.split()), PhysicalResourceId=physical_id
            )
            size = len(json.dumps({**body, "Data": data}))
            if size > RESPONSE_LIMIT_BYTES and data:
                body["Status"], data = "FAILED", {}
                body["Reason"] = f"response of {size} bytes is too big: use fewer SdkApplicationIds"
            if len(json.dumps({**body, "Data": data})) > RESPONSE_LIMIT_BYTES:
                # Cut by the size each character takes in the ASCII-escaped JSON.
                room = RESPONSE_LIMIT_BYTES - len(json.dumps({**body, "Reason": "...", "Data": {}}))
                sizes = itertools.accumulate(len(json.dumps(c)) - 2 for c in body["Reason"])
                body["Reason"] = body["Reason"][: sum(size <= room for size in sizes)] + "..."
            self.sent = {**body, "Data": data}
            url = str(self.event.get("ResponseURL", ""))
            where = url.split("?", 1)[0]  # the query string is a presigned credential
            try:
                self.send(url, json.dumps(self.sent).encode())
                LOG.info("sent %s to %s", status, where)
            except Exception as exc:
                message = str(exc).replace(url, where)[:300]
                LOG.error(
                    "could not send %s to %s: %s: %s", status, where, type(exc).__name__, message
                )
            return True


def _start_timer(context: Any, responder: Responder, physical_id: str) -> threading.Timer | None:
    if not hasattr(context, "get_remaining_time_in_millis"):
        return None
    remaining, started = context.get_remaining_time_in_millis() / 1000, time.monotonic()

    def fire() -> None:
        reason = (
            f"timed out after {time.monotonic() - started:.1f} s while {responder.step}: check "
            "that the function reaches KMS and Secrets Manager (VPC endpoints or NAT) and raise "
            "its Timeout, then retry; secrets already written are kept"
        )
        responder.respond("FAILED", reason, physical_id, {})

    # Short function timeouts still leave half of the time for the work.
    timer = threading.Timer(max(remaining - TIMEOUT_MARGIN_SECONDS, remaining / 2), fire)
    timer.daemon = True
    timer.start()
    return timer


def handle(
    event: Mapping[str, Any],
    context: Any,
    clients: Clients | Callable[[], Clients],
    send: Callable[[str, bytes], None] = put_response,
) -> dict[str, Any]:
    """Process one custom-resource event, answer its ResponseURL exactly once, return the answer."""
    # botocore logs request and response bodies, secret values included, at DEBUG: never let it.
    if logging.getLogger("botocore").getEffectiveLevel() < logging.INFO:
        logging.getLogger("botocore").setLevel(logging.INFO)
    request, logical = str(event.get("RequestType")), str(event.get("LogicalResourceId"))
    stack = f"{event.get('StackId')}//".split("/")[1]
    physical_id = str(event.get("PhysicalResourceId") or f"{stack}-{logical}")
    responder = Responder(event, send)
    timer = _start_timer(context, responder, physical_id)
    LOG.info("%s %s (%s)", request, logical, physical_id)
    try:
        data: dict[str, str] = {}
        summary = "nothing deleted: the secrets and the KMS key are retained"
        if request in ("Create", "Update"):
            resolved = clients() if callable(clients) else clients
            data, summary = _process(event, _Run(resolved, str(event.get("RequestId")), responder))
        elif request != "Delete":
            raise KeygenError(f"unsupported RequestType {request[:40]!r}")
        LOG.info("%s %s: %s", request, logical, summary)
        responder.respond("SUCCESS", summary, physical_id, data)
    except Exception as exc:
        reason = str(exc)
        if not isinstance(exc, KeygenError):
            LOG.exception("%s %s: unexpected error", request, logical)
            # its message could hold anything; the log has the traceback
            reason = f"unexpected {type(exc).__name__}; see the function's log"
        LOG.error("%s %s failed: %s", request, logical, reason)
        responder.respond("FAILED", reason, physical_id, {})
    finally:
        if timer:
            timer.cancel()
    return responder.sent


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: build boto3 clients with adaptive retries and handle the event."""

    def clients() -> Clients:
        # Imported by name so that mypy --strict passes with or without boto3 stubs.
        boto3 = importlib.import_module("boto3")
        config = importlib.import_module("botocore.config").Config(
            retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=5, read_timeout=20
        )
        return Clients(
            boto3.client("kms", config=config), boto3.client("secretsmanager", config=config)
        )

    return handle(event, context, clients)
