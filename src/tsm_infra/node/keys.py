"""Checks of the values read from AWS before anything is written: keys, hashes, JSON secrets.

The messages name the value (which secret, which parameter), never quote it: a malformed secret
is still a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from tsm_infra.node.settings import NodeError

STALE = "the KMS stack's parameters are stale: update the KMS stack, then reboot this node"
_APP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, content) of the DER elements that exactly fill `data`; [] if they do not."""
    items, pos = [], 0
    while pos + 2 <= len(data):
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[pos : pos + size], "big") if 0 < size < 5 else len(data)
            pos += size
        if pos + length > len(data):
            return []
        items.append((tag, data[pos : pos + length]))
        pos += length
    return items if pos == len(data) else []


def _sequence(value: str, what: str) -> list[tuple[int, bytes]]:
    """The elements of the DER SEQUENCE that base64 `value` decodes to; [] if it is not one."""
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NodeError(f"{what} is not base64") from None
    outer = _der_items(der)
    return _der_items(outer[0][1]) if len(outer) == 1 and outer[0][0] == 0x30 else []


def check_private_key(value: str) -> None:
    """Accept only what the TSM takes for its P2P key: base64 SEC1 ECPrivateKey DER."""
    # SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING, ... }; PKCS#8 has INTEGER 0.
    fields = _sequence(value, "secret p2p_key")
    if len(fields) < 2 or fields[0] != (0x02, b"\x01") or fields[1][0] != 0x04:
        raise NodeError("secret p2p_key is not a base64 SEC1 ECPrivateKey DER (not PKCS#8)")


def check_public_key(value: str, what: str) -> None:
    """Accept only a base64 SubjectPublicKeyInfo DER, the form of a peer's public key."""
    # SubjectPublicKeyInfo: SEQUENCE { SEQUENCE algorithm, BIT STRING key }.
    fields = _sequence(value, what)
    if len(fields) != 2 or fields[0][0] != 0x30 or fields[1][0] != 0x03:
        raise NodeError(f"{what} is not a base64 SubjectPublicKeyInfo DER SEQUENCE")


def api_key_hash(key: str) -> str:
    """base64(SHA-256(key)): what config.toml holds instead of an API key."""
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


def check_hash(hashed: str, key: str, what: str) -> None:
    """Accept `hashed` only if it is the API key hash of `key` (else the KMS stack is stale)."""
    try:
        size = len(base64.b64decode(hashed, validate=True))
    except (binascii.Error, ValueError):
        size = 0
    if size != 32:
        raise NodeError(f"{what} is not base64 of a 32-byte SHA-256 hash")
    if api_key_hash(key) != hashed:
        raise NodeError(f"{what} is not the hash of the key in Secrets Manager; {STALE}")


def _json_object(value: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except ValueError:
        data = None  # the decoder's message would quote the (secret) text
    if not isinstance(data, dict) or not data:
        raise NodeError(f"{what} is not a non-empty JSON object")
    return data


def api_keys(value: str, what: str) -> dict[str, str]:
    """A JSON object of API keys (or their hashes) by application ID."""
    data = _json_object(value, what)
    for app, item in data.items():
        if not _APP_ID.fullmatch(app) or not isinstance(item, str) or not item:
            raise NodeError(f"{what}: entry {app[:64]!r} needs an ID {_APP_ID.pattern} and a text")
    return data


def credentials(value: str, what: str) -> tuple[str, str]:
    """The user name and password of a JSON secret {"username": ..., "password": ...}."""
    data = _json_object(value, what)
    user, password = data.get("username"), data.get("password")
    if not (isinstance(user, str) and user and isinstance(password, str) and password):
        raise NodeError(f'{what} must hold a non-empty "username" and "password"')
    return user, password
