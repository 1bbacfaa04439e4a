"""The TSM's own database role, set up with the RDS-managed master user through psql.

The role's password goes to PostgreSQL only as a SCRAM-SHA-256 verifier computed here; the
master password only into psql's PGPASSWORD; the SQL only onto psql's stdin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tsm_infra.node.host import Runner, read_value, run_process
from tsm_infra.node.keys import credentials
from tsm_infra.node.settings import Settings

SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
PSQL_TIMEOUT_SECONDS = 120

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
    role, database = settings.db_user, settings.db_name  # identifiers checked by settings
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
    return run_process(
        argv,
        sql,
        timeout=PSQL_TIMEOUT_SECONDS,
        env={"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"},
        name="psql",
        # psql may echo the failing statement, which holds the verifier
        withhold=("SCRAM-SHA-256$", password),
    )


def ensure_database_role(
    settings: Settings, password: str, runner: Runner, psql: Psql, ca_file: Path
) -> None:
    """Connect as the RDS-managed master user (read now: RDS rotates it) and set up the role."""
    what = "secret database_master"
    raw = read_value(runner, "secretsmanager", settings.secrets["database_master"], settings, what)
    master_user, master_password = credentials(raw, what)
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
