"""Boot-time setup of one Builder Vault TSM node on EC2: config, secrets, systemd units, health.

cfn-init writes this package (tsm_infra.node, see bundle.py) as a zipapp to
/opt/tsm/tsm_node.pyz: standard library of Python 3.9 (Amazon Linux 2023) only, AWS through the
AWS CLI v2. Secret values pass only through the stdout of `aws`, memory, a 0600 env file on tmpfs
and the stdin of `docker login`; never argv, logs or error messages.

This module holds the command line and the configure step; it also re-exports the boot's public
names, so that `tsm_infra.node.tsm_node` stays the one name callers import.

Usage: python3 tsm_node.pyz {configure|install|wait|bootstrap} /etc/tsm/node.json
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tsm_infra.node.config import Fetched, Rendered, database_dsn, render, toml_string, toml_value
from tsm_infra.node.database import Psql, ensure_database_role, run_psql, scram_verifier
from tsm_infra.node.health import wait_ready, within
from tsm_infra.node.host import (
    COMMAND_TIMEOUT_SECONDS,
    CONFIG_TIMEOUT_SECONDS,
    PULL_TIMEOUT_SECONDS,
    Runner,
    fetch,
    read_value,
    registry_login,
    run_command,
    say,
    write_atomic,
)
from tsm_infra.node.keys import api_key_hash
from tsm_infra.node.settings import (
    FETCHED_SECRETS,
    LAYOUTS,
    PARAMETER_KEYS,
    SECRET_KEYS,
    NodeError,
    Settings,
    load_settings,
    parse_settings,
)
from tsm_infra.node.units import install

__all__ = [
    "COMMANDS",
    "COMMAND_TIMEOUT_SECONDS",
    "CONFIG_TIMEOUT_SECONDS",
    "FETCHED_SECRETS",
    "LAYOUTS",
    "PARAMETER_KEYS",
    "PULL_TIMEOUT_SECONDS",
    "SECRET_KEYS",
    "Fetched",
    "NodeError",
    "Psql",
    "Rendered",
    "Runner",
    "Settings",
    "api_key_hash",
    "configure",
    "database_dsn",
    "ensure_database_role",
    "fetch",
    "install",
    "load_settings",
    "main",
    "parse_settings",
    "read_value",
    "render",
    "run_command",
    "run_psql",
    "scram_verifier",
    "toml_string",
    "toml_value",
    "wait_ready",
    "within",
    "write_atomic",
]

# Paths relative to the root directory ("/" on the instance, a temporary one in tests).
CONFIG_FILE = "etc/tsm/config.toml"
ENV_FILE = "run/tsm/node.env"
RDS_CA_FILE = "etc/tsm/rds-ca.pem"
COMMANDS = ("configure", "install", "wait", "bootstrap")
USAGE = f"usage: tsm_node.pyz {{{'|'.join(COMMANDS)}}} SETTINGS_JSON"
HELP = f"""{USAGE}

  configure  read the secrets, set up the database role, write config.toml and the env file
  install    write the systemd units, then enable and start them
  wait       wait until the TSM answers /ping
  bootstrap  all three in turn, as cfn-init runs them at the first boot
"""


def configure(
    settings_path: str, root: str = "/", runner: Runner = run_command, psql: Psql = run_psql
) -> None:
    """Fetch secrets, set up the database role, write config.toml and the env file, log in."""
    settings = load_settings(settings_path)
    ca, env = Path(root, RDS_CA_FILE), Path(root, ENV_FILE)
    if not ca.is_file() or b"-----BEGIN CERTIFICATE-----" not in ca.read_bytes():
        raise NodeError(f"{ca} is missing or holds no PEM certificate (cfn-init downloads it)")
    say(f"node {settings.index}: reading secrets and parameters")
    fetched = fetch(settings, runner)
    rendered = render(settings, fetched)  # checks every value before the database is touched
    ensure_database_role(settings, fetched.database_password, runner, psql, ca)
    say(f"database role {settings.db_user} is set up")
    env.parent.mkdir(parents=True, exist_ok=True)
    env.parent.chmod(0o700)
    write_atomic(env, rendered.env_file, 0o600)
    write_atomic(Path(root, CONFIG_FILE), rendered.config_toml, 0o644)
    say(f"wrote /{CONFIG_FILE} and /{ENV_FILE}")
    host = registry_login(settings, runner)
    say(f"logged in to {host}" if host else "no registry login needed")


def main(
    argv: Sequence[str], runner: Runner = run_command, root: str = "/", psql: Psql = run_psql
) -> int:
    """Run a subcommand; return 0 on success, 1 after a one-line message on stderr."""
    if list(argv) in (["--help"], ["-h"]):
        print(HELP, end="")
        return 0
    try:
        if len(argv) != 2 or argv[0] not in COMMANDS:
            raise NodeError(USAGE)
        command, path = argv
        if command in ("configure", "bootstrap"):
            within(CONFIG_TIMEOUT_SECONDS, command, lambda: configure(path, root, runner, psql))
        if command in ("install", "bootstrap"):
            install(path, root, runner)
        if command in ("wait", "bootstrap"):
            settings = load_settings(path)
            say(f"waiting up to {settings.ping_timeout} s for /ping on port {settings.sdk_port}")
            wait_ready(settings.sdk_port, settings.ping_timeout)
    except NodeError as err:
        message = str(err)
    except Exception as err:
        # An unexpected error may quote the data it choked on, which could be a secret.
        detail = f": {err}" if isinstance(err, OSError) else " (details withheld)"
        message = f"unexpected {type(err).__name__}{detail}"
    else:
        say(f"{command} done")
        return 0
    print(f"tsm-node: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
