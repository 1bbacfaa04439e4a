"""config.toml and the env file, rendered from the settings and the values read from AWS.

A pure step: it checks every value first, so a bad secret fails the boot before the database or
any file is touched. config.toml holds no secret; it names the env file's variables instead.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tsm_infra.node.keys import STALE, api_keys, check_hash, check_private_key, check_public_key
from tsm_infra.node.settings import LAYOUTS, NodeError, Settings

# The container's environment (from the env file); config.toml refers to these names.
ENV_PRIVATE_KEY = "TSM_PLAYER_PRIVATE_KEY"
ENV_DSN = "TSM_DATABASE_DSN"
ENV_MASTER_PASSWORD = "TSM_ENCRYPTOR_MASTER_PASSWORD"  # noqa: S105 - a name, not a value
MANAGEMENT_PERMISSIONS = ("HEALTH", "TSMINFO", "METRICS")
MAX_IDLE_CONNS, MAX_OPEN_CONNS = 10, 20


@dataclass(frozen=True)
class Fetched:
    """Values read from AWS, as `aws` printed them; repr hides the secret ones."""

    p2p_key: str = field(repr=False)
    sdk_api_keys: str = field(repr=False)
    management_api_key: str = field(repr=False)
    encryptor_master_password: str = field(repr=False)
    database_password: str = field(repr=False)
    sdk_api_key_hashes: str
    management_api_key_hash: str
    peer_public_keys: dict[int, str]  # peer index -> base64 SubjectPublicKeyInfo


@dataclass(frozen=True)
class Rendered:
    """What configure writes: config.toml (no secrets) and the env file (the secrets)."""

    config_toml: str
    env_file: str = field(repr=False)


def database_dsn(settings: Settings, user: str, password: str) -> str:
    """The PostgreSQL URL for the TSM, TLS verified against the RDS CA bundle."""
    quote = urllib.parse.quote
    return (
        f"postgres://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{settings.db_host}:{settings.db_port}/{quote(settings.db_name, safe='')}"
        "?sslmode=verify-full&sslrootcert=/config/rds-ca.pem"
    )


# A TOML basic string escapes the quote, the backslash and every control character.
_TOML_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"})
_TOML_ESCAPES.update({c: f"\\u{c:04X}" for c in (*range(0x20), 0x7F) if c not in _TOML_ESCAPES})


def toml_string(value: str) -> str:
    """A TOML basic string holding exactly `value`."""
    return '"' + value.translate(_TOML_ESCAPES) + '"'


def toml_value(value: Any) -> str:
    """A TOML value for a str, int, bool or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _env_ref(name: str) -> str:
    return "{{ env `" + name + "` }}"


def _check(settings: Settings, fetched: Fetched) -> dict[str, str]:
    """Check every fetched value; return the SDK API key hashes by application ID."""
    check_private_key(fetched.p2p_key)
    keys = api_keys(fetched.sdk_api_keys, "secret sdk_api_keys")
    hashes = api_keys(fetched.sdk_api_key_hashes, "parameter sdk_api_key_hashes")
    if sorted(keys) != sorted(hashes):
        raise NodeError(
            f"parameter sdk_api_key_hashes lists applications {sorted(hashes)}, secret"
            f" sdk_api_keys {sorted(keys)}; {STALE}"
        )
    for app in sorted(keys):
        check_hash(hashes[app], keys[app], f"parameter sdk_api_key_hashes[{app}]")
    check_hash(
        fetched.management_api_key_hash,
        fetched.management_api_key,
        "parameter management_api_key_hash",
    )
    if not fetched.encryptor_master_password:
        raise NodeError("secret encryptor_master_password is empty")
    if not fetched.database_password:
        raise NodeError("secret database_password is empty")
    for peer in settings.peers:
        what = f"public key of peer {peer.index} ({peer.public_key_parameter})"
        check_public_key(fetched.peer_public_keys.get(peer.index, ""), what)
    return hashes


def _env(settings: Settings, fetched: Fetched) -> dict[str, str]:
    """The env file's variables, each checked to survive --env-file and the TOML text."""
    env = {
        ENV_PRIVATE_KEY: fetched.p2p_key,
        ENV_DSN: database_dsn(settings, settings.db_user, fetched.database_password),
        ENV_MASTER_PASSWORD: fetched.encryptor_master_password,
    }
    for name, value in env.items():
        if any(c in value for c in "\r\n\0"):
            raise NodeError(f"env file: {name} would hold a line break, which --env-file forbids")
        # We assume the TSM expands {{ env }} in the text before parsing the TOML: a quote or
        # backslash in the value would then break the file or change its meaning.
        if any(c in '"\\' or (ord(c) < 0x20 and c != "\t") for c in value):
            raise NodeError(f"env file: {name} holds a quote, backslash or control character")
    return env


def render(settings: Settings, fetched: Fetched) -> Rendered:
    """config.toml (secrets only as env references) and the env file; pure, validates values."""
    hashes = _check(settings, fetched)
    env = _env(settings, fetched)
    n = LAYOUTS[settings.layout]
    tables: list[tuple[str, list[tuple[str, Any]]]] = [
        (f"[{n.player}]", [(n.index, settings.index), (n.private_key, _env_ref(ENV_PRIVATE_KEY))])
    ]
    for peer in settings.peers:
        public_key = fetched.peer_public_keys[peer.index]
        tables.append(
            (f"[{n.players}.{peer.index}]", [(n.address, peer.address), (n.public_key, public_key)])
        )
    database = [
        (n.driver_name, "postgres"),
        (n.data_source_name, _env_ref(ENV_DSN)),
        (n.master_password, _env_ref(ENV_MASTER_PASSWORD)),
        (n.max_idle_conns, MAX_IDLE_CONNS),
        (n.max_open_conns, MAX_OPEN_CONNS),
    ]
    management_hash = fetched.management_api_key_hash
    management_key = [(n.api_key, management_hash), (n.permissions, MANAGEMENT_PERMISSIONS)]
    tables += [
        (f"[{n.database}]", database),
        (f"[{n.mpc_server}]", [(n.port, settings.mpc_port)]),
        (f"[{n.sdk_server}]", [(n.port, settings.sdk_port)]),
        (f"[{n.management_server}]", [(n.port, settings.management_port)]),
        (f"[{n.management_server}.{n.metrics}]", [(n.prometheus, True)]),
        (f"[[{n.management_server}.{n.api_keys}]]", management_key),
    ]
    for app in sorted(hashes):
        entry = [(n.api_key, hashes[app]), (n.application_id, app)]
        tables.append((f"[[{n.authentication}.{n.api_keys}]]", entry))
    config = f"# TSM node {settings.index} of {settings.cluster}: written at boot by tsm_node.py\n"
    for header, pairs in tables:
        config += f"\n{header}\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in pairs)
    env_file = "".join(f"{name}={value}\n" for name, value in env.items())
    return Rendered(config_toml=config, env_file=env_file)
