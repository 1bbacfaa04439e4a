"""Boot-time setup of one Builder Vault TSM node on EC2: config, secrets, systemd units, health.

cfn-init writes this file to /opt/tsm/tsm_node.py: standard library of Python 3.9 (Amazon Linux
2023) only, AWS through the AWS CLI v2. Secret values pass only through the stdout of `aws`, memory,
a 0600 env file on tmpfs and the stdin of `docker login`; never argv, logs or error messages.

Usage: tsm_node.py {configure|install|wait|bootstrap} /etc/tsm/node.json
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Paths relative to the root directory ("/" on the instance, a temporary one in tests).
CONFIG_FILE = "etc/tsm/config.toml"
ENV_FILE = "run/tsm/node.env"
RDS_CA_FILE = "etc/tsm/rds-ca.pem"
UNIT_DIR = "etc/systemd/system"
CONFIG_UNIT, NODE_UNIT = "tsm-node-config.service", "tsm-node.service"
COMMANDS = ("configure", "install", "wait", "bootstrap")
# The boot's time budget; tests add it up against the Core template's CreationPolicy.
CONFIG_TIMEOUT_SECONDS = 300  # configure, in bootstrap and as the config unit's TimeoutStartSec
CONFIG_RETRY_SECONDS = 30  # the config unit's RestartSec after a failure
PULL_TIMEOUT_SECONDS = 600  # the node unit's TimeoutStartSec: the image pull
# `systemctl enable --now` waits for the units to start, image pull included (TimeoutStartSec).
COMMAND_TIMEOUT_SECONDS = CONFIG_TIMEOUT_SECONDS + PULL_TIMEOUT_SECONDS + 60
PING_INTERVAL_SECONDS = 5.0
# The container's environment (from the env file); config.toml refers to these names.
ENV_PRIVATE_KEY = "TSM_PLAYER_PRIVATE_KEY"
ENV_DSN = "TSM_DATABASE_DSN"
ENV_MASTER_PASSWORD = "TSM_ENCRYPTOR_MASTER_PASSWORD"  # noqa: S105 - a name, not a value
# What render needs; the RDS-managed master secret is read only by the database step.
FETCHED_SECRETS = (
    "p2p_key",
    "sdk_api_keys",
    "management_api_key",
    "encryptor_master_password",
    "database_password",
)
SECRET_KEYS = (*FETCHED_SECRETS, "database_master")
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
PARAMETER_KEYS = ("sdk_api_key_hashes", "management_api_key_hash")
ADDRESS_SCHEMES = ("tcp", "tcps", "ws", "wss")
MANAGEMENT_PERMISSIONS = ("HEALTH", "TSMINFO", "METRICS")
MAX_IDLE_CONNS, MAX_OPEN_CONNS = 10, 20

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ADDRESS = re.compile(rf"([a-z]+)://({_HOST.pattern}|\[[0-9A-Fa-f:.]+\]):(\d{{1,5}})")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:([a-z]+):([^:]*):\d{12}:\S+")
# Strict character sets: these values end up in systemd unit lines and docker argv.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}")
_LOG_GROUP = re.compile(r"[A-Za-z0-9_./#-]{1,512}")
_CLUSTER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_UNIT_PATH = re.compile(r"/[A-Za-z0-9._/-]+")
_APP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # unquoted-safe PostgreSQL identifiers
_ECR = re.compile(r"\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_STALE = "the KMS stack's parameters are stale: update the KMS stack, then reboot this node"


class NodeError(Exception):
    """A failure the operator can act on; its message names fields, never secret values."""


@dataclass(frozen=True)
class Layout:
    """Section and key names of config.toml in one family of TSM versions."""

    mpc_server: str
    player: str = "Player"
    index: str = "Index"
    private_key: str = "PrivateKey"
    players: str = "Players"
    address: str = "Address"
    public_key: str = "PublicKey"
    database: str = "Database"
    driver_name: str = "DriverName"
    data_source_name: str = "DataSourceName"
    master_password: str = "EncryptorMasterPassword"  # noqa: S105 - a key name
    max_idle_conns: str = "MaxIdleConns"
    max_open_conns: str = "MaxOpenConns"
    port: str = "Port"
    sdk_server: str = "SDKServer"
    management_server: str = "ManagementServer"
    metrics: str = "Metrics"
    prometheus: str = "Prometheus"
    api_keys: str = "APIKeys"
    api_key: str = "APIKey"
    permissions: str = "Permissions"
    authentication: str = "Authentication"
    application_id: str = "ApplicationID"


# The one place where TSM versions differ in names: add a layout here for a new version.
LAYOUTS: dict[str, Layout] = {
    "mpc-tcp": Layout(mpc_server="MPCTCPServer"),
    "mpc-direct": Layout(mpc_server="MPCDirectServer"),  # TSM v73 LTS
}


@dataclass(frozen=True)
class Peer:
    """Another node of the cluster: player index, MPC address, public-key parameter ARN."""

    index: int
    address: str
    public_key_parameter: str


@dataclass(frozen=True)
class Settings:
    """The validated content of /etc/tsm/node.json (no secrets: ARNs and public values)."""

    cluster: str
    index: int
    region: str
    layout: str
    image: str
    registry_credentials_secret: str  # "" when none
    secrets: dict[str, str]  # SECRET_KEYS -> ARN or name
    parameters: dict[str, str]  # PARAMETER_KEYS -> ARN or name
    peers: tuple[Peer, ...]
    db_host: str
    db_port: int
    db_name: str
    db_user: str  # the TSM's own role, created by the database step
    sdk_port: int
    mpc_port: int
    management_port: int
    log_group: str
    ping_timeout: int


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


class Runner(Protocol):
    """Runs a command and returns its stdout; raises NodeError when it fails."""

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> str: ...


# --- settings


def _get(data: Mapping[str, Any], path: str, default: Any = None) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            if default is None:
                raise NodeError(f"settings: {path} is missing")
            return default
        value = value[part]
    return value


def _text(data: Mapping[str, Any], path: str, pattern: re.Pattern[str] | None = None) -> str:
    value = _get(data, path)
    if not isinstance(value, str) or not value:
        raise NodeError(f"settings: {path} must be a non-empty string")
    if pattern and not pattern.fullmatch(value):
        raise NodeError(f"settings: {path} {value!r} does not match {pattern.pattern}")
    return value


def _number(data: Mapping[str, Any], path: str, low: int, high: int, default: Any = None) -> int:
    value = _get(data, path, default)
    # bool is an int in Python, but `true` is no port number.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NodeError(f"settings: {path} must be an integer from {low} to {high}, not {value!r}")
    return value


def _region_of(ref: str, service: str, own_region: str, what: str) -> str:
    """The region to read `ref` in: the ARN's own, or this node's for a plain name."""
    if not ref.startswith("arn:"):
        if not ref or any(c.isspace() for c in ref):
            raise NodeError(f"settings: {what} must be a {service} ARN or name")
        return own_region
    match = _ARN.fullmatch(ref)
    if not match or match[1] != service or not _REGION.fullmatch(match[2]):
        raise NodeError(f"settings: {what} {ref!r} is not a {service} ARN with a region")
    return match[2]


def _parse_peers(data: Mapping[str, Any], own_index: int, region: str) -> tuple[Peer, ...]:
    # CloudFormation cannot zip lists, so the peers arrive as three parallel comma lists.
    names = ("indices", "addresses", "public_key_parameter_arns")
    lists = [[item.strip() for item in _text(data, f"peers.{n}").split(",")] for n in names]
    if len({len(items) for items in lists}) != 1:
        raise NodeError(f"settings: peers.{', peers.'.join(names)} differ in length")
    peers: dict[int, Peer] = {}
    for i, (text, address, arn) in enumerate(zip(*lists)):  # noqa: B905 - strict= needs 3.10
        if not text.isdigit() or int(text) > 999:
            raise NodeError(f"settings: peers.indices[{i}] {text!r} is not an index 0-999")
        if int(text) == own_index or int(text) in peers:
            raise NodeError(f"settings: peers.indices[{i}] repeats {text} (own index {own_index})")
        match = _ADDRESS.fullmatch(address)
        if not match or match[1] not in ADDRESS_SCHEMES or not 0 < int(match[3]) < 65536:
            raise NodeError(
                f"settings: peers.addresses[{i}] {address!r} is not scheme://host:port"
                f" with scheme {', '.join(ADDRESS_SCHEMES)}"
            )
        _region_of(arn, "ssm", region, f"peers.public_key_parameter_arns[{i}]")
        peers[int(text)] = Peer(int(text), address, arn)
    return tuple(peers[index] for index in sorted(peers))


def parse_settings(data: Any) -> Settings:
    """Validate the decoded settings JSON; raise NodeError naming the first bad field."""
    if not isinstance(data, dict):
        raise NodeError("settings: the top level must be a JSON object")
    layout = _text(data, "layout")
    if layout not in LAYOUTS:
        raise NodeError(f"settings: layout {layout!r} is unknown; valid: {', '.join(LAYOUTS)}")
    region = _text(data, "region", _REGION)
    index = _number(data, "index", 0, 999)
    refs: dict[str, dict[str, str]] = {"secrets": {}, "parameters": {}}
    for group, keys, service in (
        ("secrets", SECRET_KEYS, "secretsmanager"),
        ("parameters", PARAMETER_KEYS, "ssm"),
    ):
        for key in keys:
            refs[group][key] = _text(data, f"{group}.{key}")
            _region_of(refs[group][key], service, region, f"{group}.{key}")
    registry = _get(data, "registry_credentials_secret_arn", "")
    if not isinstance(registry, str):
        raise NodeError("settings: registry_credentials_secret_arn must be a string")
    if registry:
        _region_of(registry, "secretsmanager", region, "registry_credentials_secret_arn")
    ports = {
        name: _number(data, f"ports.{name}", 1, 65535) for name in ("sdk", "mpc", "management")
    }
    if len(set(ports.values())) != 3:
        raise NodeError(f"settings: ports must be distinct, not {ports}")
    return Settings(
        cluster=_text(data, "cluster", _CLUSTER),
        index=index,
        region=region,
        layout=layout,
        image=_text(data, "image", _IMAGE),
        registry_credentials_secret=registry,
        secrets=refs["secrets"],
        parameters=refs["parameters"],
        peers=_parse_peers(data, index, region),
        db_host=_text(data, "database.host", _HOST),
        db_port=_number(data, "database.port", 1, 65535),
        db_name=_text(data, "database.name", _DB_NAME),
        db_user=_text(data, "database.user", _DB_NAME),
        sdk_port=ports["sdk"],
        mpc_port=ports["mpc"],
        management_port=ports["management"],
        log_group=_text(data, "container_log_group", _LOG_GROUP),
        ping_timeout=_number(data, "ping_timeout_seconds", 1, 86400, 900),
    )


def load_settings(path: str | Path) -> Settings:
    """Read and validate the settings file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise NodeError(f"settings: cannot read {path}: {err.strerror}") from None
    except ValueError as err:
        raise NodeError(f"settings: {path} is not valid JSON ({err})") from None
    return parse_settings(data)


# --- checks of fetched values (messages name the value, never quote it)


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


def _check_private_key(value: str) -> None:
    # SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING, ... }; PKCS#8 has INTEGER 0.
    fields = _sequence(value, "secret p2p_key")
    if len(fields) < 2 or fields[0] != (0x02, b"\x01") or fields[1][0] != 0x04:
        raise NodeError("secret p2p_key is not a base64 SEC1 ECPrivateKey DER (not PKCS#8)")


def _check_public_key(value: str, what: str) -> None:
    # SubjectPublicKeyInfo: SEQUENCE { SEQUENCE algorithm, BIT STRING key }.
    fields = _sequence(value, what)
    if len(fields) != 2 or fields[0][0] != 0x30 or fields[1][0] != 0x03:
        raise NodeError(f"{what} is not a base64 SubjectPublicKeyInfo DER SEQUENCE")


def api_key_hash(key: str) -> str:
    """base64(SHA-256(key)): what config.toml holds instead of an API key."""
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


def _check_hash(hashed: str, key: str, what: str) -> None:
    try:
        size = len(base64.b64decode(hashed, validate=True))
    except (binascii.Error, ValueError):
        size = 0
    if size != 32:
        raise NodeError(f"{what} is not base64 of a 32-byte SHA-256 hash")
    if api_key_hash(key) != hashed:
        raise NodeError(f"{what} is not the hash of the key in Secrets Manager; {_STALE}")


def _json_object(value: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except ValueError:
        data = None  # the decoder's message would quote the (secret) text
    if not isinstance(data, dict) or not data:
        raise NodeError(f"{what} is not a non-empty JSON object")
    return data


def _api_keys(value: str, what: str) -> dict[str, str]:
    data = _json_object(value, what)
    for app, item in data.items():
        if not _APP_ID.fullmatch(app) or not isinstance(item, str) or not item:
            raise NodeError(f"{what}: entry {app[:64]!r} needs an ID {_APP_ID.pattern} and a text")
    return data


def _credentials(value: str, what: str) -> tuple[str, str]:
    data = _json_object(value, what)
    user, password = data.get("username"), data.get("password")
    if not (isinstance(user, str) and user and isinstance(password, str) and password):
        raise NodeError(f'{what} must hold a non-empty "username" and "password"')
    return user, password


# --- rendering


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


def render(settings: Settings, fetched: Fetched) -> Rendered:
    """config.toml (secrets only as env references) and the env file; pure, validates values."""
    _check_private_key(fetched.p2p_key)
    keys = _api_keys(fetched.sdk_api_keys, "secret sdk_api_keys")
    hashes = _api_keys(fetched.sdk_api_key_hashes, "parameter sdk_api_key_hashes")
    if sorted(keys) != sorted(hashes):
        raise NodeError(
            f"parameter sdk_api_key_hashes lists applications {sorted(hashes)}, secret"
            f" sdk_api_keys {sorted(keys)}; {_STALE}"
        )
    for app in sorted(keys):
        _check_hash(hashes[app], keys[app], f"parameter sdk_api_key_hashes[{app}]")
    management_hash = fetched.management_api_key_hash
    _check_hash(management_hash, fetched.management_api_key, "parameter management_api_key_hash")
    if not fetched.encryptor_master_password:
        raise NodeError("secret encryptor_master_password is empty")
    if not fetched.database_password:
        raise NodeError("secret database_password is empty")
    for peer in settings.peers:
        what = f"public key of peer {peer.index} ({peer.public_key_parameter})"
        _check_public_key(fetched.peer_public_keys.get(peer.index, ""), what)
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


# --- AWS, docker and files


def run_command(argv: Sequence[str], stdin: str | None = None) -> str:
    """The real Runner: run argv (never holding a secret), feed stdin, return stdout."""
    try:
        done = subprocess.run(  # noqa: S603 - a list built from validated settings, no shell
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            env={**os.environ, "AWS_PAGER": ""},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NodeError(f"`{argv[0]}` could not run: {type(err).__name__}") from None
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1][:300]
        raise NodeError(f"`{' '.join(argv[:3])}` failed ({done.returncode}): {last}")
    return done.stdout


def read_value(runner: Runner, service: str, ref: str, settings: Settings, what: str) -> str:
    """A secret ("secretsmanager") or parameter ("ssm") value, by ARN or by name."""
    if service == "secretsmanager":
        command, query = ["get-secret-value", "--secret-id", ref], "SecretString"
    else:
        command, query = ["get-parameter", "--name", ref], "Parameter.Value"
    region = _region_of(ref, service, settings.region, what)
    try:
        out = runner(
            ["aws", service, *command, "--region", region, "--query", query, "--output", "text"]
        )
    except NodeError as err:
        raise NodeError(f"reading {what} ({ref}): {err}") from None
    # `--output text` ends the value with one newline; any other belongs to the value.
    return out[:-1] if out.endswith("\n") else out


def fetch(settings: Settings, runner: Runner) -> Fetched:
    """This node's secrets and parameters and its peers' public keys, read through `aws`."""
    found = {}
    for key in FETCHED_SECRETS:
        ref = settings.secrets[key]
        found[key] = read_value(runner, "secretsmanager", ref, settings, f"secret {key}")
    for key, ref in settings.parameters.items():
        found[key] = read_value(runner, "ssm", ref, settings, f"parameter {key}")
    peer_keys = {
        p.index: read_value(runner, "ssm", p.public_key_parameter, settings, f"peer {p.index} key")
        for p in settings.peers
    }
    return Fetched(**found, peer_public_keys=peer_keys)


def registry_login(settings: Settings, runner: Runner) -> str:
    """Log docker in to the image's registry when needed; return its host, or ""."""
    first, slash, _ = settings.image.partition("/")
    host = first if slash and ("." in first or ":" in first or first == "localhost") else ""
    ecr = _ECR.fullmatch(host)
    if ecr:  # ECR: a 12-hour token for the instance role instead of a stored password
        user = "AWS"
        password = runner(["aws", "ecr", "get-login-password", "--region", ecr[1]]).strip()
    elif settings.registry_credentials_secret:
        what = "secret registry_credentials"
        raw = read_value(
            runner, "secretsmanager", settings.registry_credentials_secret, settings, what
        )
        user, password = _credentials(raw, what)
        host = host or "docker.io"
    else:
        return ""
    runner(["docker", "login", "--username", user, "--password-stdin", host], stdin=password)
    return host


# --- the TSM's own database role

# Runs psql: argv (no secret), SQL on stdin, the master password for PGPASSWORD only.
Psql = Callable[[Sequence[str], str, str], str]


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of `password`, computed here (RFC 5802/7677)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    stored = b64(hashlib.sha256(client_key).digest()).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${stored}:{b64(server_key).decode()}"


def role_sql(settings: Settings, verifier: str) -> str:
    """Create the TSM's role if missing, (re)set its password verifier, grant what it needs."""
    role, database = settings.db_user, settings.db_name  # identifiers checked by _DB_NAME
    return (
        "DO $$BEGIN\n"
        f"  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN\n"
        f'    CREATE ROLE "{role}" LOGIN;\n'
        "  END IF;\nEND$$;\n"
        f"ALTER ROLE \"{role}\" WITH LOGIN PASSWORD '{verifier}';\n"
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO "{role}";\n'
        # PostgreSQL 15 and later no longer grant CREATE on schema public to everyone
        f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}";\n'
    )


def _conninfo(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_psql(argv: Sequence[str], sql: str, password: str) -> str:
    """The real Psql: the password only in the child's PGPASSWORD, the SQL on its stdin."""
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    try:
        done = subprocess.run(  # noqa: S603 - argv built from validated settings, no shell
            argv, input=sql, capture_output=True, text=True, timeout=120, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NodeError(f"`{argv[0]}` could not run: {type(err).__name__}") from None
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1][:300]
        if "SCRAM-SHA-256$" in last or password in last:
            last = "(details withheld)"
        raise NodeError(f"`psql` failed ({done.returncode}): {last}")
    return done.stdout


def ensure_database_role(
    settings: Settings, password: str, runner: Runner, psql: Psql, ca_file: Path
) -> None:
    """Connect as the RDS-managed master user (read now: RDS rotates it) and set up the role."""
    what = "secret database_master"
    raw = read_value(runner, "secretsmanager", settings.secrets["database_master"], settings, what)
    master_user, master_password = _credentials(raw, what)
    conninfo = " ".join(
        f"{key}={_conninfo(value)}"
        for key, value in (
            ("host", settings.db_host),
            ("port", str(settings.db_port)),
            ("dbname", settings.db_name),
            ("user", master_user),
            ("sslmode", "verify-full"),
            ("sslrootcert", str(ca_file)),
        )
    )
    argv = ["psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", conninfo]
    psql(argv, role_sql(settings, scram_verifier(password, os.urandom(16))), master_password)


def write_atomic(path: Path, text: str, mode: int) -> None:
    """Replace `path` by `text` at once: a failure leaves any previous file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)  # before the data: mkstemp made the file 0600
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink()
        raise


def _say(message: str) -> None:
    print(f"tsm-node: {message}", flush=True)


def configure(
    settings_path: str, root: str = "/", runner: Runner = run_command, psql: Psql = run_psql
) -> None:
    """Fetch secrets, set up the database role, write config.toml and the env file, log in."""
    settings = load_settings(settings_path)
    ca, env = Path(root, RDS_CA_FILE), Path(root, ENV_FILE)
    if not ca.is_file() or b"-----BEGIN CERTIFICATE-----" not in ca.read_bytes():
        raise NodeError(f"{ca} is missing or holds no PEM certificate (cfn-init downloads it)")
    _say(f"node {settings.index}: reading secrets and parameters")
    fetched = fetch(settings, runner)
    rendered = render(settings, fetched)  # checks every value before the database is touched
    ensure_database_role(settings, fetched.database_password, runner, psql, ca)
    _say(f"database role {settings.db_user} is set up")
    env.parent.mkdir(parents=True, exist_ok=True)
    env.parent.chmod(0o700)
    write_atomic(env, rendered.env_file, 0o600)
    write_atomic(Path(root, CONFIG_FILE), rendered.config_toml, 0o644)
    _say(f"wrote /{CONFIG_FILE} and /{ENV_FILE}")
    host = registry_login(settings, runner)
    _say(f"logged in to {host}" if host else "no registry login needed")


# --- systemd

_CONFIG_UNIT = """\
[Unit]
Description=Write the TSM node configuration (the env file on tmpfs is lost at reboot)
Wants=network-online.target
Requires=docker.service
After=network-online.target docker.service
Before=tsm-node.service
# Keep trying: throttling or a late network must not leave the node down after a reboot.
StartLimitIntervalSec=0

[Service]
Type=oneshot
RemainAfterExit=yes
Restart=on-failure
RestartSec={retry}
TimeoutStartSec={timeout}
ExecStart=/usr/bin/python3 /opt/tsm/tsm_node.py configure {settings_file}

[Install]
WantedBy=multi-user.target
"""

_NODE_UNIT = """\
[Unit]
Description=Builder Vault TSM node {s.index} of cluster {s.cluster}
Requires=docker.service
# Wants, not Requires: a config unit that fails once and succeeds on its retry must not leave
# this unit failed; until the env file exists, the check below fails and Restart tries again.
Wants=tsm-node-config.service
After=docker.service tsm-node-config.service
# Never give up restarting: the database or the network may come up late.
StartLimitIntervalSec=0

[Service]
Restart=always
RestartSec=5
TimeoutStartSec={pull_timeout}
ExecStartPre=/usr/bin/test -s /run/tsm/node.env
# A container left by a crash would hold the name; a failed pull leaves the cached image.
ExecStartPre=-/usr/bin/docker rm --force tsm-node
ExecStartPre=-/usr/bin/docker pull {s.image}
ExecStart=/usr/bin/docker run --rm --name tsm-node --user 2000:2000 --cap-drop ALL \\
  --security-opt no-new-privileges --read-only --tmpfs /tmp --env-file /run/tsm/node.env \\
  -v /etc/tsm/config.toml:/config/config.toml:ro -v /etc/tsm/rds-ca.pem:/config/rds-ca.pem:ro \\
  -p {s.sdk_port}:{s.sdk_port} -p {s.mpc_port}:{s.mpc_port} \\
  -p {s.management_port}:{s.management_port} --log-driver awslogs \\
  --log-opt awslogs-group={s.log_group} --log-opt awslogs-region={s.region} {s.image}
ExecStop=/usr/bin/docker stop tsm-node

[Install]
WantedBy=multi-user.target
"""


def install(settings_path: str, root: str = "/", runner: Runner = run_command) -> None:
    """Write the systemd units, then enable and start them."""
    settings = load_settings(settings_path)
    # The unit names node.json as the host sees it, wherever `root` puts it (tests).
    host_path = "/" + os.path.relpath(Path(settings_path).resolve(), Path(root).resolve())
    if not _UNIT_PATH.fullmatch(host_path):
        raise NodeError(f"settings path {host_path!r} is unfit for a systemd unit")
    units = {
        CONFIG_UNIT: _CONFIG_UNIT.format(
            settings_file=host_path, retry=CONFIG_RETRY_SECONDS, timeout=CONFIG_TIMEOUT_SECONDS
        ),
        NODE_UNIT: _NODE_UNIT.format(s=settings, pull_timeout=PULL_TIMEOUT_SECONDS),
    }
    for name, text in units.items():
        write_atomic(Path(root, UNIT_DIR, name), text, 0o644)
    runner(["systemctl", "daemon-reload"])
    runner(["systemctl", "enable", "--now", CONFIG_UNIT, NODE_UNIT])
    _say(f"enabled and started {CONFIG_UNIT} and {NODE_UNIT}")


# --- health and command line


def wait_ready(port: int, timeout: float, interval: float = PING_INTERVAL_SECONDS) -> None:
    """Poll http://127.0.0.1:port/ping until it answers 200; NodeError after `timeout` s."""
    url = f"http://127.0.0.1:{port}/ping"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    deadline, last = time.monotonic() + timeout, "no answer"
    while True:
        try:
            with opener.open(url, timeout=min(5.0, max(0.1, deadline - time.monotonic()))) as got:
                last = f"HTTP {got.status}"
        except urllib.error.HTTPError as err:  # 503 while the node starts
            last = f"HTTP {err.code}"
            err.close()
        except (OSError, http.client.HTTPException) as err:  # refused before it listens
            last = str(getattr(err, "reason", err))
        if last == "HTTP 200":
            return
        if time.monotonic() >= deadline:
            raise NodeError(f"{url} did not answer 200 within {timeout:g} s (last: {last})")
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def within(seconds: float, what: str, work: Callable[[], None]) -> None:
    """Run `work`; NodeError if it takes longer than `seconds` (the boot's time budget)."""

    def expired(signum: int, frame: Any) -> None:
        raise NodeError(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def main(
    argv: Sequence[str], runner: Runner = run_command, root: str = "/", psql: Psql = run_psql
) -> int:
    """Run a subcommand; return 0 on success, 1 after a one-line message on stderr."""
    try:
        if len(argv) != 2 or argv[0] not in COMMANDS:
            raise NodeError(f"usage: tsm_node.py {{{'|'.join(COMMANDS)}}} SETTINGS_JSON")
        command, path = argv
        if command in ("configure", "bootstrap"):
            within(CONFIG_TIMEOUT_SECONDS, command, lambda: configure(path, root, runner, psql))
        if command in ("install", "bootstrap"):
            install(path, root, runner)
        if command in ("wait", "bootstrap"):
            settings = load_settings(path)
            _say(f"waiting up to {settings.ping_timeout} s for /ping on port {settings.sdk_port}")
            wait_ready(settings.sdk_port, settings.ping_timeout)
    except NodeError as err:
        message = str(err)
    except Exception as err:
        # An unexpected error may quote the data it choked on, which could be a secret.
        detail = f": {err}" if isinstance(err, OSError) else " (details withheld)"
        message = f"unexpected {type(err).__name__}{detail}"
    else:
        _say(f"{command} done")
        return 0
    print(f"tsm-node: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
