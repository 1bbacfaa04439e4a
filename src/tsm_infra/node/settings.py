"""The node's settings file, /etc/tsm/node.json, read and validated; the error every step raises.

node.json holds no secrets: ARNs and names of secrets and parameters, and public values. Every
field is checked here, so that the later steps can put values into unit files and argv.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What render needs; the RDS-managed master secret is read only by the database step.
FETCHED_SECRETS = (
    "p2p_key",
    "sdk_api_keys",
    "management_api_key",
    "encryptor_master_password",
    "database_password",
)
SECRET_KEYS = (*FETCHED_SECRETS, "database_master")
PARAMETER_KEYS = ("sdk_api_key_hashes", "management_api_key_hash")
ADDRESS_SCHEMES = ("tcp", "tcps", "ws", "wss")

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ADDRESS = re.compile(rf"([a-z]+)://({_HOST.pattern}|\[[0-9A-Fa-f:.]+\]):(\d{{1,5}})")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:([a-z]+):([^:]*):\d{12}:\S+")
# Strict character sets: these values end up in systemd unit lines and docker argv.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}")
_LOG_GROUP = re.compile(r"[A-Za-z0-9_./#-]{1,512}")
_CLUSTER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # unquoted-safe PostgreSQL identifiers


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


def region_of(ref: str, service: str, own_region: str, what: str) -> str:
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
        region_of(arn, "ssm", region, f"peers.public_key_parameter_arns[{i}]")
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
            region_of(refs[group][key], service, region, f"{group}.{key}")
    registry = _get(data, "registry_credentials_secret_arn", "")
    if not isinstance(registry, str):
        raise NodeError("settings: registry_credentials_secret_arn must be a string")
    if registry:
        region_of(registry, "secretsmanager", region, "registry_credentials_secret_arn")
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
