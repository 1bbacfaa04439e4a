"""Tests of what runs on the instance: configure, install, wait_ready, main, and its Python rules.

AWS, docker and systemctl are a fake runner (nodehelpers.FakeRunner); files go under a temporary
root; /ping is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nodehelpers as h
import pytest

from tsm_infra.node import tsm_node
from tsm_infra.node.tsm_node import NodeError

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@dataclass
class Node:
    """A node's root directory with its settings file and RDS CA bundle, and a fake runner."""

    root: Path
    settings: Path
    runner: h.FakeRunner
    psql: h.FakePsql = field(default_factory=h.FakePsql)

    @property
    def config(self) -> Path:
        return self.root / "etc/tsm/config.toml"

    @property
    def env(self) -> Path:
        return self.root / "run/tsm/node.env"

    def configure(self) -> None:
        tsm_node.configure(str(self.settings), str(self.root), self.runner, self.psql)

    def main(self, command: str) -> int:
        return tsm_node.main([command, str(self.settings)], self.runner, str(self.root), self.psql)


def make_node(root: Path, data: dict[str, Any] | None = None, index: int = 0) -> Node:
    """Lay out what cfn-init leaves on the instance before the boot archive runs."""
    data = data or h.settings_data(index)
    settings = root / "etc/tsm/node.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(data), encoding="utf-8")
    (root / "etc/tsm/rds-ca.pem").write_text(CA_PEM, encoding="utf-8")
    return Node(root, settings, h.FakeRunner(h.aws_values(index, data), h.REGIONS[index]))


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_no_secret(text: str, index: int = 0) -> None:
    for secret in h.secret_values(index):
        assert secret not in text


def read_aws(service: str, ref: str, region: str) -> list[str]:
    if service == "ssm":
        command, query = ["ssm", "get-parameter", "--name", ref], "Parameter.Value"
    else:
        command = ["secretsmanager", "get-secret-value", "--secret-id", ref]
        query = "SecretString"
    return ["aws", *command, "--region", region, "--query", query, "--output", "text"]


# --- configure


def test_configure_writes_the_files_with_exact_commands(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    node.configure()
    data = h.settings_data(0)
    fetched = [data["secrets"][key] for key in tsm_node.FETCHED_SECRETS]
    assert node.runner.argvs == [
        *(read_aws("secretsmanager", arn, "eu-west-1") for arn in fetched),
        *(read_aws("ssm", name, "eu-west-1") for name in data["parameters"].values()),
        read_aws("ssm", h.public_key_arn(1), "eu-central-1"),
        read_aws("ssm", h.public_key_arn(2), "us-east-1"),
        # the master secret, read at every configure (RDS rotates it), for the database step
        read_aws("secretsmanager", data["secrets"]["database_master"], "eu-west-1"),
    ]
    assert all(stdin is None for _, stdin in node.runner.calls)
    for argv in node.runner.argvs:
        assert_no_secret(" ".join(argv))
    expected = tsm_node.render(tsm_node.parse_settings(data), h.fetched(0))
    assert node.config.read_text(encoding="utf-8") == expected.config_toml
    assert node.env.read_text(encoding="utf-8") == expected.env_file
    assert (mode(node.config), mode(node.env), mode(node.env.parent)) == (0o644, 0o600, 0o700)
    assert sorted(p.name for p in node.env.parent.iterdir()) == ["node.env"]
    out, err = capsys.readouterr()
    assert_no_secret(out + err)
    assert out.splitlines() == [
        "tsm-node: node 0: reading secrets and parameters",
        "tsm-node: database role tsm_node is set up",
        "tsm-node: wrote /etc/tsm/config.toml and /run/tsm/node.env",
        "tsm-node: no registry login needed",
    ]


def test_configure_tightens_a_lax_env_directory(node: Node) -> None:
    node.env.parent.mkdir(parents=True)
    node.env.parent.chmod(0o755)
    node.configure()
    assert mode(node.env.parent) == 0o700


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("registry.example.com/acme/tsm-node:72.0.0", "registry.example.com"),
        ("localhost:5000/tsm-node:72.0.0", "localhost:5000"),
        ("acme/tsm-node:72.0.0", "docker.io"),
    ],
)
def test_registry_password_goes_only_to_stdin(tmp_path: Path, image: str, host: str) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:999999999999:secret:acme/registry-AbCdEf"
    data = {**h.settings_data(0), "image": image, "registry_credentials_secret_arn": arn}
    node = make_node(tmp_path, data)
    node.runner.values[arn] = json.dumps(
        {"username": h.REGISTRY_USER, "password": h.REGISTRY_PASSWORD}
    )
    node.configure()
    assert node.runner.calls[-2:] == [
        (read_aws("secretsmanager", arn, "us-east-1"), None),
        (
            ["docker", "login", "--username", h.REGISTRY_USER, "--password-stdin", host],
            h.REGISTRY_PASSWORD,
        ),
    ]
    for argv in node.runner.argvs:
        assert h.REGISTRY_PASSWORD not in " ".join(argv)


def test_ecr_image_logs_in_with_the_instance_role(tmp_path: Path) -> None:
    host = "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
    node = make_node(tmp_path, {**h.settings_data(0), "image": f"{host}/tsm-node:72.0.0"})
    node.configure()
    assert node.runner.calls[-2:] == [
        (["aws", "ecr", "get-login-password", "--region", "eu-central-1"], None),
        (["docker", "login", "--username", "AWS", "--password-stdin", host], h.ECR_TOKEN),
    ]


def test_bad_registry_credentials_are_named(tmp_path: Path) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:registry-AbCdEf"
    node = make_node(tmp_path, {**h.settings_data(0), "registry_credentials_secret_arn": arn})
    node.runner.values[arn] = json.dumps({"username": h.REGISTRY_USER})
    with pytest.raises(NodeError) as caught:
        node.configure()
    assert str(caught.value) == (
        'secret registry_credentials must hold a non-empty "username" and "password"'
    )


BREAKAGES = {
    "stale management hash": ("management_api_key_hash", h.VENDOR_API_KEY_HASH),
    "peer key not SPKI": ("peer 1", h.sec1_b64(1)),
    "missing secret": ("encryptor_master_password", None),
    "master password with a newline": ("encryptor_master_password", "abc\ndef"),
}


def break_value(node: Node, what: str, value: str | None) -> None:
    data = h.settings_data(0)
    ref = (
        h.public_key_arn(1) if what == "peer 1" else {**data["secrets"], **data["parameters"]}[what]
    )
    if value is None:
        del node.runner.values[ref]
    else:
        node.runner.values[ref] = value


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_failed_configure_keeps_the_previous_files(node: Node, breakage: str) -> None:
    node.configure()
    before = {p: p.read_bytes() for p in (node.config, node.env)}
    listing = sorted(node.root.rglob("*"))
    break_value(node, *BREAKAGES[breakage])
    with pytest.raises(NodeError) as caught:
        node.configure()
    assert_no_secret(str(caught.value))
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(node.root.rglob("*")) == listing


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_failed_first_configure_writes_nothing(node: Node, breakage: str) -> None:
    break_value(node, *BREAKAGES[breakage])
    with pytest.raises(NodeError):
        node.configure()
    assert not node.config.exists()
    assert not node.env.exists()


def test_missing_secret_names_it(node: Node) -> None:
    break_value(node, "encryptor_master_password", None)
    with pytest.raises(NodeError) as caught:
        node.configure()
    arn = h.secret_arn(0, "encryptor_master_password")
    assert str(caught.value) == (
        f"reading secret encryptor_master_password ({arn}): "
        "An error occurred (ResourceNotFoundException)"
    )


def test_only_the_newline_aws_adds_is_removed(node: Node) -> None:
    settings = tsm_node.parse_settings(h.settings_data(0))
    node.runner.values["/some/parameter"] = " padded \n"
    value = tsm_node.read_value(node.runner, "ssm", "/some/parameter", settings, "x")
    assert value == " padded \n"
    break_value(node, "encryptor_master_password", h.master_password(0) + "\n")
    with pytest.raises(NodeError, match="TSM_ENCRYPTOR_MASTER_PASSWORD would hold a line break"):
        node.configure()


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_configure_needs_the_rds_ca_bundle(node: Node, content: str | None) -> None:
    ca = node.root / "etc/tsm/rds-ca.pem"
    if content is None:
        ca.unlink()
    else:
        ca.write_text(content, encoding="utf-8")
    with pytest.raises(NodeError) as caught:
        node.configure()
    assert (
        str(caught.value) == f"{ca} is missing or holds no PEM certificate (cfn-init downloads it)"
    )
    assert node.runner.calls == []
    assert not node.config.exists()


# --- install


def unit_words(text: str, key: str) -> list[str]:
    """The words of one `key=` line of a unit file, its continuation lines joined."""
    joined = text.replace("\\\n", " ")
    (line,) = (line for line in joined.splitlines() if line.startswith(f"{key}="))
    return line.split("=", 1)[1].split()


def test_install_writes_units_and_starts_them(node: Node) -> None:
    tsm_node.install(str(node.settings), str(node.root), node.runner)
    assert node.runner.argvs == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "tsm-node-config.service", "tsm-node.service"],
    ]
    units = node.root / "etc/systemd/system"
    config_unit = (units / "tsm-node-config.service").read_text(encoding="utf-8")
    node_unit = (units / "tsm-node.service").read_text(encoding="utf-8")
    assert (mode(units / "tsm-node.service"), mode(units / "tsm-node-config.service")) == (
        0o644,
        0o644,
    )
    assert "Type=oneshot" in config_unit.splitlines()
    # a failed configure (throttling, a late network) is retried without end
    for line in ("Restart=on-failure", "RestartSec=30", "StartLimitIntervalSec=0"):
        assert line in config_unit.splitlines()
    assert f"TimeoutStartSec={tsm_node.CONFIG_TIMEOUT_SECONDS}" in config_unit.splitlines()
    assert unit_words(config_unit, "ExecStart") == [
        "/usr/bin/python3",
        "/opt/tsm/tsm_node.pyz",
        "configure",
        "/etc/tsm/node.json",
    ]
    assert "WantedBy=multi-user.target" in config_unit.splitlines()
    lines = node_unit.splitlines()
    for line in (
        "Requires=docker.service",
        # Wants: a config unit that succeeds on a retry must not leave the node unit failed
        "Wants=tsm-node-config.service",
        "After=docker.service tsm-node-config.service",
        "ExecStartPre=/usr/bin/test -s /run/tsm/node.env",
        f"TimeoutStartSec={tsm_node.PULL_TIMEOUT_SECONDS}",
        "Restart=always",
        "RestartSec=5",
        "WantedBy=multi-user.target",
    ):
        assert line in lines
    image = "registry.example.com/acme/tsm-node:72.0.0"
    # Both may fail ("-"): no stale container to remove; a failed pull keeps the cached image.
    assert "ExecStartPre=-/usr/bin/docker rm --force tsm-node" in lines
    assert f"ExecStartPre=-/usr/bin/docker pull {image}" in lines
    assert unit_words(node_unit, "ExecStart") == [
        "/usr/bin/docker",
        "run",
        "--rm",
        "--name",
        "tsm-node",
        "--user",
        "2000:2000",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--tmpfs",
        "/tmp",  # noqa: S108 - the container's own tmpfs
        "--env-file",
        "/run/tsm/node.env",
        "-v",
        "/etc/tsm/config.toml:/config/config.toml:ro",
        "-v",
        "/etc/tsm/rds-ca.pem:/config/rds-ca.pem:ro",
        "-p",
        "8080:8080",
        "-p",
        "9000:9000",
        "-p",
        "14401:14401",
        "--log-driver",
        "awslogs",
        "--log-opt",
        "awslogs-group=/tsm/acme-vault/node0/tsm-node",
        "--log-opt",
        "awslogs-region=eu-west-1",
        image,
    ]
    assert unit_words(node_unit, "ExecStop") == ["/usr/bin/docker", "stop", "tsm-node"]
    assert_no_secret(config_unit + node_unit)


def test_install_refuses_a_settings_path_unfit_for_a_unit(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    odd = node.settings.with_name("node settings.json")
    node.settings.rename(odd)
    with pytest.raises(NodeError, match="unfit for a systemd unit"):
        tsm_node.install(str(odd), str(node.root), node.runner)
    assert node.runner.calls == []


# --- wait_ready


@pytest.fixture
def ping_server() -> Iterator[h.PingServer]:
    with h.serve_ping() as server:
        yield server


def test_wait_ready_waits_through_503(ping_server: h.PingServer) -> None:
    ping_server.statuses[:] = [503, 503, 200]
    tsm_node.wait_ready(ping_server.port, timeout=5, interval=0.01)
    assert ping_server.requests == 3


def test_wait_ready_times_out_on_503(ping_server: h.PingServer) -> None:
    ping_server.statuses[:] = [503]
    with pytest.raises(NodeError) as caught:
        tsm_node.wait_ready(ping_server.port, timeout=0.3, interval=0.05)
    assert str(caught.value) == (
        f"http://127.0.0.1:{ping_server.port}/ping did not answer 200 within 0.3 s (last: HTTP 503)"
    )
    assert ping_server.requests >= 3


def test_wait_ready_times_out_when_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NodeError, match=r"within 0\.2 s \(last: .*refused"):
        tsm_node.wait_ready(port, timeout=0.2, interval=0.05)


def test_within_ends_work_that_overruns_its_budget() -> None:
    import time

    with pytest.raises(NodeError, match=r"^configure did not finish within 0\.2 s$"):
        tsm_node.within(0.2, "configure", lambda: time.sleep(5))
    tsm_node.within(5, "configure", lambda: None)  # and leaves no alarm behind
    time.sleep(0.01)


def test_bootstrap_ends_a_configure_that_overruns(
    node: Node, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    monkeypatch.setattr(tsm_node, "CONFIG_TIMEOUT_SECONDS", 0.2)

    def slow(argv: Any, stdin: str | None = None) -> str:
        time.sleep(5)
        return ""

    assert tsm_node.main(["bootstrap", str(node.settings)], slow, str(node.root), node.psql) == 1
    err = capsys.readouterr().err
    assert err.startswith("tsm-node: reading secret p2p_key (")  # says where it was stuck
    assert err.endswith(": bootstrap did not finish within 0.2 s\n")


# --- main


def test_main_bootstrap(
    tmp_path: Path, ping_server: h.PingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = h.settings_data(1)
    data["ports"]["sdk"] = ping_server.port
    node = make_node(tmp_path, data, index=1)
    assert node.main("bootstrap") == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert_no_secret(out, 1)
    assert out.splitlines() == [
        "tsm-node: node 1: reading secrets and parameters",
        "tsm-node: database role tsm_node is set up",
        "tsm-node: wrote /etc/tsm/config.toml and /run/tsm/node.env",
        "tsm-node: no registry login needed",
        "tsm-node: enabled and started tsm-node-config.service and tsm-node.service",
        f"tsm-node: waiting up to 900 s for /ping on port {ping_server.port}",
        "tsm-node: bootstrap done",
    ]
    assert [argv[0] for argv in node.runner.argvs] == ["aws"] * 10 + ["systemctl"] * 2
    assert len(node.psql.calls) == 1
    assert mode(node.env) == 0o600
    assert (node.root / "etc/systemd/system/tsm-node.service").is_file()


@pytest.mark.parametrize("command", ["configure", "install"])
def test_main_single_commands(node: Node, command: str) -> None:
    assert node.main(command) == 0
    assert node.config.exists() == (command == "configure")
    assert (node.root / "etc/systemd/system/tsm-node.service").exists() == (command == "install")


def test_main_failure_is_one_line_without_secrets(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    node.runner.values[h.settings_data(0)["parameters"]["management_api_key_hash"]] = "x" * 44
    assert node.main("bootstrap") == 1
    out, err = capsys.readouterr()
    assert err == (
        "tsm-node: parameter management_api_key_hash is not base64 of a 32-byte SHA-256 hash\n"
    )
    assert_no_secret(out + err)
    assert not node.config.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "tsm-node: usage: tsm_node.pyz {configure|install|wait|bootstrap} SETTINGS_JSON\n"),
        (["start", "/etc/tsm/node.json"], "tsm-node: usage: tsm_node.pyz {configure|install|"),
        (["configure", "/nonexistent/node.json"], "tsm-node: settings: cannot read /nonexistent/"),
    ],
)
def test_main_usage_and_missing_file(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tsm_node.main(argv, h.FakeRunner({}, "eu-west-1")) == 1
    assert capsys.readouterr().err.startswith(message)


def test_main_reports_bad_json(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    node.settings.write_text('{"cluster": ', encoding="utf-8")
    assert node.main("configure") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tsm-node: settings: {node.settings} is not valid JSON (")
    assert err.count("\n") == 1


def test_main_withholds_details_of_unexpected_errors(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    def leaky(argv: Any, stdin: str | None = None) -> str:
        raise ValueError(f"cannot parse {h.master_password(0)}")

    assert tsm_node.main(["configure", str(node.settings)], leaky, str(node.root), node.psql) == 1
    assert capsys.readouterr().err == "tsm-node: unexpected ValueError (details withheld)\n"


# --- the real runner


def test_run_command_feeds_stdin_and_returns_stdout() -> None:
    script = "import sys; print(sys.stdin.read().upper())"
    assert tsm_node.run_command([sys.executable, "-c", script], stdin="secret") == "SECRET\n"


def test_run_command_reports_failure_without_stdin() -> None:
    script = "import sys; sys.stdin.read(); print('first', file=sys.stderr); sys.exit('last line')"
    with pytest.raises(NodeError) as caught:
        tsm_node.run_command([sys.executable, "-c", script], stdin="hunter2")
    assert str(caught.value) == f"`{sys.executable} -c {script}` failed (1): last line"
    assert "hunter2" not in str(caught.value)


def test_run_command_reports_a_missing_program() -> None:
    with pytest.raises(
        NodeError, match=r"^`no-such-program-tsm` could not run: FileNotFoundError$"
    ):
        tsm_node.run_command(["no-such-program-tsm", "x"])
