"""The only place that creates boto3 sessions: one per node account, however it is reached.

A node's account is reached with a named profile, by assuming a role from the default
credentials (optionally with an external id), or with the default credentials themselves. With an
endpoint URL (an emulator) every account is reached by assuming a role in it on that endpoint,
with fixed local credentials: nothing then touches real AWS or the user's credentials.

Every client gets botocore's adaptive retries, so that throttling across parallel accounts slows
the deploy down instead of failing it. Each session is checked once: the account it really acts
in must be the one the spec names for the node.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tsm_infra.errors import BadInputError, TsmInfraError, describe_error
from tsm_infra.spec import Node

if TYPE_CHECKING:
    import boto3

# The role local mode assumes in each emulated account (any name works on the emulator).
LOCAL_ROLE_NAME = "tsm-infra-local"
# Credentials for the emulator only; never valid anywhere else.
LOCAL_ACCESS_KEY = "AKIALOCALEMULATOR000"
LOCAL_SECRET_KEY = "local-emulator-only"  # noqa: S105 - not a secret
SESSION_NAME = "tsm-infra"
MAX_ATTEMPTS = 10


class AccessError(TsmInfraError):
    """A node's account cannot be reached with the access the spec gives."""


class EndpointError(BadInputError):
    """The --endpoint-url given does not answer: an input problem, nothing was attempted."""


# A dead endpoint must fail at once, not after adaptive retries of a 10 s connect timeout.
ENDPOINT_CONNECT_TIMEOUT = 3.0


def check_endpoint(endpoint_url: str, timeout: float = ENDPOINT_CONNECT_TIMEOUT) -> None:
    """Open (and close) one TCP connection to the endpoint; EndpointError when that fails."""
    import socket  # noqa: PLC0415
    from urllib.parse import urlsplit  # noqa: PLC0415

    try:
        parts = urlsplit(endpoint_url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EndpointError(f"--endpoint-url {endpoint_url}: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise EndpointError(
            f"--endpoint-url {endpoint_url}: not an http(s) URL; give one such as "
            "http://127.0.0.1:4566 (`tsm-infra emulator` prints its own)"
        )
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or type(exc).__name__
        raise EndpointError(
            f"--endpoint-url {endpoint_url}: cannot connect to {host}:{port} ({why} after at "
            f"most {timeout:.0f} s); is the emulator (`tsm-infra emulator`) running there? "
            "Nothing was attempted"
        ) from None


def client_config() -> Any:
    """botocore Config shared by every client: adaptive retries, a recognisable user agent."""
    from botocore.config import Config  # noqa: PLC0415 - boto3 is imported only when used

    return Config(
        retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
        user_agent_extra="tsm-infra",
        connect_timeout=10,
        read_timeout=60,
    )


class CallCounter:
    """Counts the AWS API calls made through the clients it is attached to, by operation."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        """Count every call `client` makes from now on; returns the client."""
        client.meta.events.register("before-call.*.*", self._count)
        return client

    def _count(self, model: Any, **kwargs: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + 1

    def counts(self) -> dict[str, int]:
        """Calls so far, by `service:Operation`."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def total(self) -> int:
        """Every call so far."""
        with self._lock:
            return sum(self._counts.values())


@dataclass(frozen=True)
class AccountSession:
    """A session acting in one node's account and region, and how to make clients from it."""

    account: str
    region: str
    session: boto3.Session
    endpoint_url: str | None = None
    counter: CallCounter | None = None

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of `service` in this account (in its region unless told another one)."""
        client = self.session.client(
            service,  # type: ignore[call-overload]
            region_name=region or self.region,
            endpoint_url=self.endpoint_url,
            config=client_config(),
        )
        return self.counter.attach(client) if self.counter is not None else client


def _assume(
    base: boto3.Session,
    role_arn: str,
    external_id: str | None,
    region: str,
    endpoint_url: str | None,
) -> boto3.Session:
    import boto3  # noqa: PLC0415

    sts = base.client("sts", region_name=region, endpoint_url=endpoint_url, config=client_config())
    kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME}
    if external_id:
        kwargs["ExternalId"] = external_id
    credentials = sts.assume_role(**kwargs)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def local_base_session(region: str) -> boto3.Session:
    """A session with the emulator's fixed credentials; never the user's own."""
    import boto3  # noqa: PLC0415

    return boto3.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
        region_name=region,
    )


def local_session(account: str, region: str, endpoint_url: str) -> AccountSession:
    """A session acting as `account` on an emulator at `endpoint_url`."""
    role = f"arn:aws:iam::{account}:role/{LOCAL_ROLE_NAME}"
    session = _assume(local_base_session(region), role, None, region, endpoint_url)
    return AccountSession(account, region, session, endpoint_url)


class Connector:
    """Hands out one checked session per node, creating each once (thread-safe)."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        base_session: Callable[[str], boto3.Session] | None = None,
        counter: CallCounter | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.counter = counter
        self._base = base_session
        self._sessions: dict[tuple[str, str], AccountSession] = {}
        self._lock = threading.Lock()

    @property
    def local(self) -> bool:
        """True when every account is reached on an emulator endpoint."""
        return self.endpoint_url is not None

    def for_node(self, node: Node) -> AccountSession:
        """The session of a node's account and region; AccessError says what to fix."""
        key = (node.account, node.region)
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = self._open(node)
            return self._sessions[key]

    def _open(self, node: Node) -> AccountSession:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        where = f"nodes[{node.index}] (account {node.account})"
        try:
            if self.local:
                assert self.endpoint_url is not None  # noqa: S101 - narrowed by self.local
                session = local_session(node.account, node.region, self.endpoint_url).session
            else:
                session = self._real_session(node)
            opened = AccountSession(
                node.account, node.region, session, self.endpoint_url, self.counter
            )
            actual = opened.client("sts").get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as exc:
            raise AccessError(
                f"{where}: cannot reach the account with {self._how(node)}: {describe_error(exc)}; "
                "check the spec's access settings and your credentials"
            ) from None
        if actual != node.account:
            raise AccessError(
                f"{where}: with {self._how(node)}, tsm-infra acts in account {actual}, not "
                f"{node.account}; "
                "fix nodes[].account or the access settings"
            )
        return opened

    def _how(self, node: Node) -> str:
        if self.local:
            return f"the local emulator at {self.endpoint_url}"
        if node.access is None:
            return "the default credentials"
        if node.access.profile:
            return f"profile {node.access.profile!r}"
        return f"role {node.role_arn}"

    def _real_session(self, node: Node) -> boto3.Session:
        import boto3  # noqa: PLC0415

        make_base = self._base or (lambda region: boto3.Session(region_name=region))
        if node.access is not None and node.access.profile:
            return boto3.Session(profile_name=node.access.profile, region_name=node.region)
        base = make_base(node.region)
        role = node.role_arn
        if role is None:
            return base
        external = node.access.external_id if node.access else None
        return _assume(base, role, external, node.region, self.endpoint_url)
