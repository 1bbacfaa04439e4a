"""The Core template's user data, run by bash against fake dnf, cfn-init and cfn-signal; the
boot's time budget added up against the CreationPolicy."""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tsm_infra.node import tsm_node
from tsm_infra.node.bundle import boot_archive
from tsm_infra.node.units import BOOT_ARCHIVE
from tsm_infra.templates import template_body, template_path

STACK, REGION = "tsm-acme-node0-core", "eu-west-1"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode.decode import decode_str

    decoded, errors = decode_str(template_path("core").read_text())
    assert not errors, errors
    return json.loads(json.dumps(decoded))


@pytest.fixture(scope="module")
def user_data(template: dict[str, Any]) -> str:
    data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    text = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert isinstance(text, str)
    # Fn::Sub as CloudFormation resolves it; nothing else in the script may look like ${...}
    text = text.replace("${AWS::StackName}", STACK).replace("${AWS::Region}", REGION)
    assert "${" not in text
    return text


def _fake(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$FAKE_LOG"\n{body}\n', encoding="utf-8")
    path.chmod(0o755)


def run_boot(
    tmp_path: Path,
    user_data: str,
    dnf: str = "exit 0",
    cfn_init: str = "exit 0",
    helpers: bool = True,
) -> list[str]:
    """Run the user data with fakes first on PATH; return the commands they saw, in order."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    _fake(fakes, "dnf", dnf)
    _fake(fakes, "systemctl", "exit 0")
    _fake(fakes, "sleep", "exit 0")  # the backoff, without the wait
    _fake(fakes, "cfn-init", cfn_init)
    if helpers:
        _fake(fakes, "cfn-signal", "exit 0")
    _fake(fakes, "curl", "echo i-0123456789abcdef0")
    _fake(fakes, "aws", "exit 0")
    script = tmp_path / "user-data.sh"
    # the helper scripts' directory of AL2023 does not exist here; keep it out of the way
    script.write_text(user_data.replace("/opt/aws/bin", str(tmp_path / "no-opt")), encoding="utf-8")
    log = tmp_path / "log"
    log.touch()
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "FAKE_LOG": str(log), "HOME": str(tmp_path)}
    subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return log.read_text(encoding="utf-8").splitlines()


def _signals(log: list[str]) -> list[str]:
    return [line for line in log if line.startswith(("cfn-signal", "aws cloudformation"))]


def test_success_signals_zero_once(tmp_path: Path, user_data: str) -> None:
    log = run_boot(tmp_path, user_data)
    assert [line.split()[0] for line in log] == ["dnf", "systemctl", "cfn-init", "cfn-signal"]
    assert "postgresql16" in log[0].split()
    [signal] = _signals(log)
    assert signal.startswith("cfn-signal -e 0 --reason node ready")
    assert f"--stack {STACK} --resource NodeGroup --region {REGION}" in signal


def test_dnf_is_retried_then_a_failure_is_signalled_with_a_reason(
    tmp_path: Path, user_data: str
) -> None:
    log = run_boot(tmp_path, user_data, dnf="exit 1")
    assert [line.split()[0] for line in log] == [
        "dnf", "sleep", "dnf", "sleep", "dnf", "cfn-signal",
    ]  # fmt: skip
    assert [line for line in log if line.startswith("sleep")] == ["sleep 20", "sleep 40"]
    [signal] = _signals(log)
    assert signal.startswith("cfn-signal -e 1 --reason boot failed (1) while installing packages")
    assert not any(line.startswith("cfn-init") for line in log)


def test_dnf_succeeding_on_a_retry_boots(tmp_path: Path, user_data: str) -> None:
    flag = tmp_path / "failed-once"
    dnf = f"[ -e {flag} ] && exit 0; touch {flag}; exit 1"
    log = run_boot(tmp_path, user_data, dnf=dnf)
    assert [line.split()[0] for line in log][-2:] == ["cfn-init", "cfn-signal"]
    assert _signals(log)[0].startswith("cfn-signal -e 0 ")


def test_a_cfn_init_failure_is_signalled_with_its_step(tmp_path: Path, user_data: str) -> None:
    log = run_boot(tmp_path, user_data, cfn_init="exit 7")
    [signal] = _signals(log)
    assert signal.startswith("cfn-signal -e 1 --reason boot failed (7) while running cfn-init")


def test_without_helper_scripts_the_cli_signals_failure(tmp_path: Path, user_data: str) -> None:
    log = run_boot(tmp_path, user_data, dnf="exit 1", helpers=False)
    [signal] = _signals(log)
    assert signal == (
        f"aws cloudformation signal-resource --stack-name {STACK} --logical-resource-id "
        f"NodeGroup --unique-id i-0123456789abcdef0 --status FAILURE --region {REGION}"
    )


# ---------------------------------------------------------------- the time budget


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration)
    assert match, duration
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_the_boot_fits_inside_the_creation_policy_with_margin(
    template: dict[str, Any], user_data: str
) -> None:
    names = ("dnf_attempts", "dnf_timeout", "dnf_backoff", "init_timeout")
    numbers = dict(re.findall(rf"\b({'|'.join(names)})=(\d+)", user_data))
    attempts, dnf_timeout, backoff, init_timeout = (int(numbers[name]) for name in names)
    dnf_worst = attempts * dnf_timeout + sum(backoff * i for i in range(1, attempts))
    group = template["Resources"]["NodeGroup"]
    creation = _seconds(group["CreationPolicy"]["ResourceSignal"]["Timeout"])
    pause = _seconds(group["UpdatePolicy"]["AutoScalingRollingUpdate"]["PauseTime"])
    margin = 0.1 * creation  # the signal itself, the instance's launch and its boot
    assert dnf_worst + init_timeout <= creation - margin
    assert pause >= creation
    # what runs inside cfn-init's timeout: its files, then the boot module's bootstrap
    init = template["Resources"]["LaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    settings_text = init["files"]["files"]["/etc/tsm/node.json"]["content"]["Fn::Sub"][0]
    ping = int(re.search(r'"ping_timeout_seconds": (\d+)', settings_text)[1])  # type: ignore[index]
    files = 120  # the RDS CA bundle and the boot archive, written and unpacked by cfn-init
    inside = (
        files
        + tsm_node.CONFIG_TIMEOUT_SECONDS  # bootstrap's configure
        + tsm_node.CONFIG_TIMEOUT_SECONDS  # the config unit's start
        + tsm_node.PULL_TIMEOUT_SECONDS  # the node unit's start: the image pull
        + ping
    )
    assert inside <= init_timeout
    assert tsm_node.COMMAND_TIMEOUT_SECONDS >= (
        tsm_node.CONFIG_TIMEOUT_SECONDS + tsm_node.PULL_TIMEOUT_SECONDS
    )


# ---------------------------------------------------------------- the boot archive

PACKED = "/opt/tsm/tsm_node.pyz.gz"


def test_the_template_asks_for_the_gzipped_boot_archive() -> None:
    lines = template_path("core").read_text(encoding="utf-8").split("\n")
    start = lines.index(f"            {PACKED}:")
    block = [line.strip() for line in lines[start + 1 : start + 5]]
    # the renderer puts base64(gzip(bundle.boot_archive())) after the marker (tsm_infra.inlining)
    assert block == [
        'mode: "000400"',
        "encoding: base64",
        "# tsm-infra: inline-zipapp-gzip tsm_infra.node (filled in when the template is rendered)",
        'content: ""',
    ]


def test_cfn_init_unpacks_the_archive_that_the_boot_and_the_units_run(tmp_path: Path) -> None:
    sent = json.loads(template_body("core"))  # rendered: the archive filled in
    init = sent["Resources"]["LaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    assert init["configSets"]["node"] == ["files", "start"]
    assert init["files"]["files"][PACKED]["encoding"] == "base64"
    commands = init["start"]["commands"]
    assert sorted(commands) == ["00-unpack", "01-logs", "02-node"]  # run in name order
    assert commands["02-node"]["command"] == f"python3 {BOOT_ARCHIVE} bootstrap /etc/tsm/node.json"
    # the unpack command, run on what cfn-init wrote, leaves the archive the config unit runs too
    opt = tmp_path / "opt/tsm"
    opt.mkdir(parents=True)
    packed = base64.b64decode(init["files"]["files"][PACKED]["content"], validate=True)
    (opt / "tsm_node.pyz.gz").write_bytes(packed)
    unpack = commands["00-unpack"]["command"].replace("/opt/tsm/", f"{opt}/")
    subprocess.run([shutil.which("bash") or "/bin/bash", "-c", unpack], check=True, timeout=30)
    archive = opt / "tsm_node.pyz"
    assert archive.read_bytes() == boot_archive()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o400
    done = subprocess.run(
        [sys.executable, "-E", "-s", str(archive), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: tsm_node.pyz {configure|install|wait|bootstrap}")
