"""The boot's database step: the TSM's own role, created with the RDS-managed master user.

Against a real PostgreSQL started here (TLS only, SCRAM only), as the `postgres` user in a
temporary directory on 127.0.0.1; skipped only when the PostgreSQL server binaries are absent.
"""

# ruff: noqa: S608 - the SQL here is built from the tests' own constants
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nodehelpers as h
import pytest

from tsm_infra.node.config import database_dsn
from tsm_infra.node.database import ensure_database_role, run_psql, scram_verifier
from tsm_infra.node.settings import NodeError, Settings, parse_settings

PG_BIN = next(
    (p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
     if (p / "initdb").exists()),
    None,
)  # fmt: skip
PSQL = shutil.which("psql")
MASTER, DATABASE = "tsm_admin", "tsm"


def settings_for(port: int) -> Settings:
    data = h.settings_data(0)
    data["database"] = {"host": "127.0.0.1", "port": port, "name": DATABASE, "user": h.DB_USER}
    return parse_settings(data)


# --- without a server: what goes where


def test_scram_verifier_matches_rfc_7677() -> None:
    # RFC 7677's example: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt, 4096)
    iterations, rest = verifier.removeprefix("SCRAM-SHA-256$").split(":", 1)
    salt_b64, keys = rest.split("$")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    assert (iterations, salt_b64) == ("4096", "W22ZaJ0SNY7soEsUEjb6gQ==")
    # the RFC's ServerSignature is HMAC(ServerKey, AuthMessage)
    auth = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    signature = base64.b64encode(hmac.new(server, auth, "sha256").digest()).decode()
    assert signature == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert len(stored) == len(hashlib.sha256().digest())


def test_the_step_sends_no_secret_in_argv_or_sql(tmp_path: Path) -> None:
    runner = h.FakeRunner(h.aws_values(0), h.REGIONS[0])
    psql = h.FakePsql()
    ca = tmp_path / "rds-ca.pem"
    ensure_database_role(settings_for(5432), h.DB_PASSWORD, runner, psql, ca)
    [(argv, sql, password)] = psql.calls
    assert password == h.DB_MASTER_PASSWORD  # only for PGPASSWORD
    assert argv[:6] == ["psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname"]
    assert argv[6] == (
        f"host='127.0.0.1' port='5432' dbname='tsm' user='{h.DB_MASTER_USER}' "
        f"sslmode='verify-full' sslrootcert='{ca}'"
    )
    for secret in h.secret_values(0):
        assert secret not in " ".join(argv) + sql
    assert "PASSWORD 'SCRAM-SHA-256$4096:" in sql


def test_a_failed_database_step_writes_nothing(tmp_path: Path) -> None:
    from test_bootstrap import make_node

    node = make_node(tmp_path)
    node.psql.fail = "`psql` failed (2): connection refused"
    with pytest.raises(NodeError, match="connection refused"):
        node.configure()
    assert not node.config.exists() and not node.env.exists()


def test_run_psql_keeps_the_password_out_of_argv_and_reports_failure(tmp_path: Path) -> None:
    script = tmp_path / "psql"
    script.write_text(
        '#!/bin/sh\necho "$PGPASSWORD|$*" > "$0.seen"; cat > "$0.sql"; '
        "echo 'psql: error: it broke' >&2; exit 2\n"
    )
    script.chmod(0o755)
    with pytest.raises(NodeError) as caught:
        run_psql([str(script), "--dbname", "x"], "SELECT 1;", "s3cret-master")
    assert str(caught.value) == "`psql` failed (2): psql: error: it broke"
    assert (tmp_path / "psql.seen").read_text() == "s3cret-master|--dbname x\n"
    assert (tmp_path / "psql.sql").read_text() == "SELECT 1;"


@pytest.mark.parametrize(
    "echoed", ["ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$x:y'", "bad s3cret-master"]
)
def test_run_psql_withholds_an_error_line_quoting_a_secret(tmp_path: Path, echoed: str) -> None:
    (tmp_path / "stderr").write_text(f"ERROR: {echoed}\n")
    script = tmp_path / "psql"
    script.write_text('#!/bin/sh\ncat > /dev/null; cat "$(dirname "$0")/stderr" >&2; exit 3\n')
    script.chmod(0o755)
    with pytest.raises(NodeError) as caught:
        run_psql([str(script)], "SELECT 1;", "s3cret-master")
    assert str(caught.value) == "`psql` failed (3): (details withheld)"


# --- against a real PostgreSQL


@dataclass
class Server:
    """A PostgreSQL on 127.0.0.1 that takes only TLS and SCRAM; its CA and master password."""

    port: int
    ca: Path
    master_password: str
    root: Path

    def sql(self, user: str, password: str, query: str, dbname: str = DATABASE) -> str:
        conninfo = (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} "
            f"sslmode=verify-full sslrootcert={self.ca}"
        )
        done = subprocess.run(
            [PSQL or "psql", "--no-psqlrc", "-qAtX", "-v", "ON_ERROR_STOP=1", "-d", conninfo],
            input=query,
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": password},
            timeout=30,
            check=False,
        )
        if done.returncode:
            raise AssertionError(done.stderr)
        return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificate(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _as_postgres(*argv: str, stdin: str | None = None) -> None:
    prefix = (
        [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
        if os.geteuid() == 0
        else []
    )
    subprocess.run([*prefix, *argv], input=stdin, text=True, check=True, capture_output=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    if PG_BIN is None or PSQL is None:
        pytest.skip("PostgreSQL server binaries are absent (make setup installs postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            subprocess.run([useradd, "--system", "--no-create-home", "postgres"], check=True)
    root = Path(tempfile.mkdtemp(prefix="tsm-pg-"))
    data, port, master_password = root / "data", _free_port(), "master-Pa55-" + os.urandom(6).hex()
    _certificate(root)
    (root / "server.key").chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for name in ("server.crt", "server.key"):
            shutil.chown(root / name, "postgres")
    (root / "pw").write_text("bootstrap-superuser-" + os.urandom(6).hex())
    if os.geteuid() == 0:
        shutil.chown(root / "pw", "postgres")
    _as_postgres(
        str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
        f"--pwfile={root / 'pw'}", "--no-sync",
    )  # fmt: skip
    (data / "pg_hba.conf").write_text(
        # TLS and SCRAM only; the socket (peer) is for this fixture's own setup
        "local all postgres peer\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {port}\nssl = on\n"
            f"ssl_cert_file = '{root / 'server.crt'}'\nssl_key_file = '{root / 'server.key'}'\n"
            f"unix_socket_directories = '{root}'\npassword_encryption = 'scram-sha-256'\n"
        )
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start")
    try:
        # an RDS-like master: not a superuser, may create roles, owns the database
        setup = (
            f"CREATE ROLE {MASTER} LOGIN CREATEROLE CREATEDB PASSWORD '{master_password}';\n"
            f"CREATE DATABASE {DATABASE} OWNER {MASTER};\n"
        )
        _as_postgres(str(PSQL), "-h", str(root), "-p", str(port), "-U", "postgres",
                     "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", stdin=setup)  # fmt: skip
        yield Server(port, root / "server.crt", master_password, root)
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _bootstrap(server: Server, master_password: str) -> None:
    secret = {"username": MASTER, "password": master_password}
    settings = settings_for(server.port)
    runner = h.FakeRunner({settings.secrets["database_master"]: json.dumps(secret)}, "eu-west-1")
    ensure_database_role(settings, h.DB_PASSWORD, runner, run_psql, server.ca)


def _connect_with_the_dsn(server: Server, table: str) -> str:
    """Use the DSN the TSM gets (its user, password, verify-full) to create and use a table."""
    import urllib.parse

    settings = settings_for(server.port)
    dsn = database_dsn(settings, settings.db_user, h.DB_PASSWORD)
    url = urllib.parse.urlsplit(dsn)
    assert urllib.parse.parse_qs(url.query)["sslmode"] == ["verify-full"]
    user, password = (urllib.parse.unquote(x or "") for x in (url.username, url.password))
    query = (
        f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (7);"
        f"SELECT current_user, id FROM {table};"
    )
    return server.sql(user, password, query).strip()


def test_the_role_is_created_once_and_its_dsn_works(server: Server) -> None:
    _bootstrap(server, server.master_password)
    _bootstrap(server, server.master_password)  # a second boot changes nothing
    roles = server.sql(
        MASTER,
        server.master_password,
        f"SELECT count(*) FROM pg_roles WHERE rolname = '{h.DB_USER}'",
    )
    assert roles.strip() == "1"
    stored = server.sql(
        MASTER, server.master_password, "SELECT rolsuper, rolcreaterole FROM pg_roles "
        f"WHERE rolname = '{h.DB_USER}'"
    )  # fmt: skip
    assert stored.strip() == "f|f"
    assert _connect_with_the_dsn(server, "shares_a") == f"{h.DB_USER}|7"
    # plain-text connections are refused: the server takes TLS only
    done = subprocess.run(
        [PSQL or "psql", "-qAtX", "-d",
         f"host=127.0.0.1 port={server.port} dbname={DATABASE} user={h.DB_USER} sslmode=disable",
         "-c", "SELECT 1"],
        env={**os.environ, "PGPASSWORD": h.DB_PASSWORD}, capture_output=True, text=True,
        check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert "no pg_hba.conf entry" in done.stderr


def test_rotating_the_master_password_does_not_touch_the_tsm(server: Server) -> None:
    _bootstrap(server, server.master_password)
    rotated = "rotated-" + os.urandom(8).hex()
    server.sql(MASTER, server.master_password, f"ALTER ROLE {MASTER} PASSWORD '{rotated}';")
    assert _connect_with_the_dsn(server, "shares_b") == f"{h.DB_USER}|7"
    # and the next boot, with the rotated master secret, still sets up the same role
    _bootstrap(server, rotated)
    assert _connect_with_the_dsn(server, "shares_c") == f"{h.DB_USER}|7"
    with pytest.raises(NodeError, match="password authentication failed"):
        _bootstrap(server, server.master_password)  # the old master password is gone
    server.sql(MASTER, rotated, f"ALTER ROLE {MASTER} PASSWORD '{server.master_password}';")


def test_the_password_never_reaches_the_server_log(server: Server) -> None:
    _bootstrap(server, server.master_password)
    log = (server.root / "log").read_text(errors="replace")
    assert h.DB_PASSWORD not in log
