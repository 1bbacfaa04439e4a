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

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar, overload

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from tsm_infra.errors import BadInputError, TsmInfraError, describe_error
from tsm_infra.spec import Node

if TYPE_CHECKING:
    # The stubs are a development dependency: their types are used only for checking.
    import boto3
    from botocore.client import BaseClient
    from botocore.config import Config
    from botocore.loaders import Loader
    from botocore.model import OperationModel
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_ram import RAMClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_service_quotas import ServiceQuotasClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

    ClientT = TypeVar("ClientT", bound=BaseClient)

# The role local mode assumes in each emulated account (any name works on the emulator).
LOCAL_ROLE_NAME = "tsm-infra-local"
# Credentials for the emulator only; never valid anywhere else.
LOCAL_ACCESS_KEY = "AKIALOCALEMULATOR000"
LOCAL_SECRET_KEY = "local-emulator-only"  # noqa: S105 - not a secret
SESSION_NAME = "tsm-infra"
MAX_ATTEMPTS = 10
# What a call through a botocore client raises: AWS's answer (ClientError, told apart by its
# code), botocore's own failures (no credentials, no connection, a timeout), and an answer it
# cannot parse (an endpoint that is not AWS, such as the emulator's HTML page for an action it
# does not run). Anything else is a bug and is not caught.
AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError, ResponseParserError)


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


@functools.cache
def client_config() -> Config:
    """The botocore Config of every client: adaptive retries, a recognisable user agent.

    Built once and shared: a Config is only read by the clients made with it.
    """
    from botocore.config import Config  # noqa: PLC0415 - boto3 is imported only when used

    return Config(
        retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
        user_agent_extra="tsm-infra",
        connect_timeout=10,
        read_timeout=60,
    )


_LOADER_LOCK = threading.Lock()
# The first client of a service is made by one thread at a time: it parses the service's model
# (the EC2 one is several megabytes), which the shared loader then keeps, so the accounts'
# threads do not each parse it at the same moment.
_FIRST_CLIENT_LOCKS: dict[str, threading.Lock] = {}
_MADE_SERVICES: set[str] = set()


@functools.cache
def _shared_loader() -> Loader:
    """One botocore data loader for every session, so each service model is parsed once.

    A new botocore session would read and parse the JSON service models (and the endpoint
    rules) afresh, 25-90 ms a client; a deploy opens one session per account. The loader only
    caches what it has read, so sharing it across sessions shares nothing but that cache.
    """
    import botocore.session  # noqa: PLC0415

    loader: Loader = botocore.session.Session().get_component("data_loader")
    return loader


def _new_session(**kwargs: str | None) -> boto3.Session:
    """A boto3 session (credentials, profile or region as given) on the shared loader."""
    import boto3  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    core = botocore.session.Session()
    loader = _shared_loader()
    core.register_component("data_loader", loader)
    with _LOADER_LOCK:
        session = boto3.Session(botocore_session=core, **kwargs)
        # every boto3 session appends boto3's own data path to the loader; once is enough
        paths = loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session


class CallCounter:
    """Counts the AWS API calls made through the clients it is attached to, by operation."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def attach(self, client: ClientT) -> ClientT:
        """Count every call `client` makes from now on; returns the client."""
        client.meta.events.register("before-call.*.*", self._count)
        return client

    def _count(self, model: OperationModel, **kwargs: object) -> None:
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
    """A session acting in one node's account and region, and the clients made from it.

    `client` is typed per service (the stubs' client classes) and makes each client once per
    region: botocore clients are safe to share between threads, sessions are not, so the
    clients are made under a lock and then handed out to every thread that asks.
    """

    account: str
    region: str
    session: boto3.Session
    endpoint_url: str | None = None
    counter: CallCounter | None = None
    _clients: dict[tuple[str, str], BaseClient] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @overload
    def client(
        self, service: Literal["cloudformation"], region: str | None = None
    ) -> CloudFormationClient: ...
    @overload
    def client(self, service: Literal["ec2"], region: str | None = None) -> EC2Client: ...
    @overload
    def client(self, service: Literal["ecr"], region: str | None = None) -> ECRClient: ...
    @overload
    def client(
        self, service: Literal["elbv2"], region: str | None = None
    ) -> ElasticLoadBalancingv2Client: ...
    @overload
    def client(self, service: Literal["iam"], region: str | None = None) -> IAMClient: ...
    @overload
    def client(self, service: Literal["kms"], region: str | None = None) -> KMSClient: ...
    @overload
    def client(self, service: Literal["ram"], region: str | None = None) -> RAMClient: ...
    @overload
    def client(self, service: Literal["rds"], region: str | None = None) -> RDSClient: ...
    @overload
    def client(self, service: Literal["route53"], region: str | None = None) -> Route53Client: ...
    @overload
    def client(
        self, service: Literal["secretsmanager"], region: str | None = None
    ) -> SecretsManagerClient: ...
    @overload
    def client(
        self, service: Literal["service-quotas"], region: str | None = None
    ) -> ServiceQuotasClient: ...
    @overload
    def client(self, service: Literal["ssm"], region: str | None = None) -> SSMClient: ...
    @overload
    def client(self, service: Literal["sts"], region: str | None = None) -> STSClient: ...

    def client(self, service: str, region: str | None = None) -> BaseClient:
        """The client of `service` in this account (in its region unless told another one)."""
        key = (service, region or self.region)
        with self._lock:
            made = self._clients.get(key)
            if made is None:
                # what boto3.Session.client does, without its per-service overloads: the
                # overloads above give each caller its service's type
                made = self._create(service, key[1])
                if self.counter is not None:
                    self.counter.attach(made)
                self._clients[key] = made
            return made

    def _create(self, service: str, region: str) -> BaseClient:
        def create() -> BaseClient:
            return self.session._session.create_client(
                service, region_name=region, endpoint_url=self.endpoint_url, config=client_config()
            )

        if service in _MADE_SERVICES:
            return create()
        with _LOADER_LOCK:
            first = _FIRST_CLIENT_LOCKS.setdefault(service, threading.Lock())
        with first:
            made = create()
            _MADE_SERVICES.add(service)
        return made


def _assume(
    base: boto3.Session,
    role_arn: str,
    external_id: str | None,
    region: str,
    endpoint_url: str | None,
) -> boto3.Session:
    sts = base.client("sts", region_name=region, endpoint_url=endpoint_url, config=client_config())
    if external_id:
        assumed = sts.assume_role(
            RoleArn=role_arn, RoleSessionName=SESSION_NAME, ExternalId=external_id
        )
    else:
        assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)
    credentials = assumed["Credentials"]
    return _new_session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def local_base_session(region: str) -> boto3.Session:
    """A session with the emulator's fixed credentials; never the user's own."""
    return _new_session(
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
    """Hands out one checked session per node account and region, opening each once.

    Thread-safe, and accounts open in parallel: each (account, region) has a lock of its own,
    so the threads of different accounts never wait for each other's AssumeRole.
    """

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
        self._opening: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()  # guards the two dicts, never held while opening

    @property
    def local(self) -> bool:
        """True when every account is reached on an emulator endpoint."""
        return self.endpoint_url is not None

    def for_node(self, node: Node) -> AccountSession:
        """The session of a node's account and region; AccessError says what to fix."""
        key = (node.account, node.region)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
            opening = self._opening.setdefault(key, threading.Lock())
        with opening:
            with self._lock:
                if key in self._sessions:  # opened by the thread this one waited for
                    return self._sessions[key]
            opened = self._open(node)
            with self._lock:
                self._sessions[key] = opened
            return opened

    def _open(self, node: Node) -> AccountSession:
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
        except AWS_ERRORS as exc:
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
        if node.access is not None and node.access.profile:
            return _new_session(profile_name=node.access.profile, region_name=node.region)
        base = self._base(node.region) if self._base else _new_session(region_name=node.region)
        role = node.role_arn
        if role is None:
            return base
        external = node.access.external_id if node.access else None
        return _assume(base, role, external, node.region, self.endpoint_url)
