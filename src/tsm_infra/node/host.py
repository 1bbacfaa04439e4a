"""What the boot does on the host: commands (the AWS CLI, docker, systemctl), files, the log.

Secret values pass only through the stdout of `aws`, memory, a 0600 env file on tmpfs and the
stdin of a command (`docker login`, psql's SQL); never argv, logs or error messages.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tsm_infra.node.config import Fetched
from tsm_infra.node.keys import credentials
from tsm_infra.node.settings import FETCHED_SECRETS, NodeError, Settings, region_of

# The boot's time budget; tests add it up against the Core template's CreationPolicy.
CONFIG_TIMEOUT_SECONDS = 300  # configure, in bootstrap and as the config unit's TimeoutStartSec
CONFIG_RETRY_SECONDS = 30  # the config unit's RestartSec after a failure
PULL_TIMEOUT_SECONDS = 600  # the node unit's TimeoutStartSec: the image pull
# `systemctl enable --now` waits for the units to start, image pull included (TimeoutStartSec).
COMMAND_TIMEOUT_SECONDS = CONFIG_TIMEOUT_SECONDS + PULL_TIMEOUT_SECONDS + 60

_ECR = re.compile(r"\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")


class Runner(Protocol):
    """Runs a command and returns its stdout; raises NodeError when it fails."""

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> str: ...


def run_process(
    argv: Sequence[str],
    stdin: str | None,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    name: str = "",
    withhold: Sequence[str] = (),
) -> str:
    """Run argv (never holding a secret) with `stdin` and extra `env`; return its stdout.

    A failure raises NodeError with the last line of stderr, unless that line holds one of the
    `withhold` texts (a secret the command was given, say); `name` replaces argv in the message.
    """
    try:
        done = subprocess.run(  # noqa: S603 - a list built from validated settings, no shell
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "AWS_PAGER": "", **(env or {})},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NodeError(f"`{argv[0]}` could not run: {type(err).__name__}") from None
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1][:300]
        if any(text and text in last for text in withhold):
            last = "(details withheld)"
        raise NodeError(f"`{name or ' '.join(argv[:3])}` failed ({done.returncode}): {last}")
    return done.stdout


def run_command(argv: Sequence[str], stdin: str | None = None) -> str:
    """The real Runner: run argv (never holding a secret), feed stdin, return stdout."""
    return run_process(argv, stdin, timeout=COMMAND_TIMEOUT_SECONDS)


def read_value(runner: Runner, service: str, ref: str, settings: Settings, what: str) -> str:
    """A secret ("secretsmanager") or parameter ("ssm") value, by ARN or by name."""
    if service == "secretsmanager":
        command, query = ["get-secret-value", "--secret-id", ref], "SecretString"
    else:
        command, query = ["get-parameter", "--name", ref], "Parameter.Value"
    region = region_of(ref, service, settings.region, what)
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
        user, password = credentials(raw, what)
        host = host or "docker.io"
    else:
        return ""
    runner(["docker", "login", "--username", user, "--password-stdin", host], stdin=password)
    return host


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


def say(message: str) -> None:
    """One line of progress on stdout (cfn-init's log); never a secret."""
    print(f"tsm-node: {message}", flush=True)
