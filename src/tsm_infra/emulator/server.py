"""LocalAws: moto's server on 127.0.0.1, in this process, with the emulator's providers applied."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Collection
from contextlib import ExitStack
from types import TracebackType
from unittest import mock

from tsm_infra.emulator import hooks
from tsm_infra.emulator.catalog import PROVIDER_LIST, PROVIDERS, RULES
from tsm_infra.emulator.engine.latency import latency_model
from tsm_infra.emulator.limits import ENFORCED_BY_MOTO
from tsm_infra.emulator.registry import Context, Patch, Provider
from tsm_infra.emulator.resources import lookup_hook
from tsm_infra.errors import TsmInfraError

SUPPORTED_MOTO = ">=5.2,<5.3"
HOST = "127.0.0.1"

NOTES = (
    "Everything is emulated in memory by moto on 127.0.0.1; nothing reaches AWS.",
    "The licensed TSM container does not run, and EC2 instances do not boot.",
)
# what `prepare_account` and `prepare_registry_secret` put into an account before a deploy
PREPARED = (
    "Each account is prepared as the spec says a real one is: its hosted zone, and its registry "
    "credentials secret holding emulator-only credentials for a registry that does not exist.",
)
# what a prepared registry secret holds: no registry accepts it
EMULATED_REGISTRY_CREDENTIALS = '{"username": "tsm-infra-emulator", "password": "not-a-registry"}'


# what AWS checks that the emulator does not, in the same list as what it emulates
NOT_ENFORCED = (
    "Not enforced: IAM identity, key, secret and resource policies are stored, not evaluated; "
    "every call in an account is allowed.",
    "Not enforced: service quotas other than security-group rules (Elastic IPs, VPCs, NAT "
    "gateways, instances per account and region), and which instance types, DB classes and "
    "engine versions a region offers.",
    "Not enforced: AWS-specific parameter types other than AWS::Route53::HostedZone::Id "
    "(VPC, subnet, key-pair ids) are not checked to exist; templates from TemplateURL are not "
    "size-limited.",
    "Not enforced: resource property values beyond the names above (CloudFormation's resource "
    "schemas); cfn-lint checks those offline.",
    "Not enforced: that a hosted zone is delegated from its parent domain (no DNS is served).",
)

# moto keeps its state and our patches in module globals: one emulator per process at a time
_RUNNING = threading.Lock()


class EmulatorError(TsmInfraError):
    """The local emulator cannot start or do what was asked."""


def check_moto() -> str:
    """The installed moto version; EmulatorError unless it is within SUPPORTED_MOTO."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        found = version("moto")
    except PackageNotFoundError:
        raise EmulatorError(
            f"--local needs moto[server]{SUPPORTED_MOTO}: "
            f"pip install 'moto[server]{SUPPORTED_MOTO}'"
        ) from None
    parts = tuple(int(p) for p in found.split(".")[:2] if p.isdigit())
    if len(parts) != 2 or not (5, 2) <= parts < (5, 3):
        raise EmulatorError(
            f"moto {found} is installed; the emulator is written for moto{SUPPORTED_MOTO} "
            "(its providers patch that version's internals): "
            f"pip install 'moto[server]{SUPPORTED_MOTO}'"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def active(disabled: Collection[str] = (), latency_scale: float | None = None) -> list[Provider]:
    """The providers and rules in use, in the order the emulator lists them; then the latency
    model when it is on."""
    found = [p for p in (*PROVIDER_LIST, *RULES) if p.name not in disabled]
    return found if latency_scale is None else [*found, latency_model(latency_scale)]


def patches(
    context: Context, disabled: Collection[str] = (), latency_scale: float | None = None
) -> list[Patch]:
    """Every patch the emulator enters, one per moto attribute: the lookup of emulated resource
    types, then each active provider's and rule's (hooks.PatchConflict if two would collide)."""
    from moto.cloudformation import parsing  # noqa: PLC0415

    lookup = mock.patch.object(
        parsing, "resource_class_from_type", lookup_hook(parsing.resource_class_from_type)
    )
    installed: list[tuple[str, Patch | hooks.Layer]] = [("resource-types", lookup)]
    for provider in active(disabled, latency_scale):
        installed.extend((provider.name, item) for item in provider.install(context))
    return hooks.assemble(installed)


class LocalAws:
    """An emulated AWS endpoint for `deploy --local`: moto plus the providers it lacks.

    With `latency_scale`, stack operations take AWS's typical durations times that factor (see
    engine/latency.py); None answers at once, as moto does.
    """

    def __init__(
        self, *, disabled: Collection[str] = (), latency_scale: float | None = None
    ) -> None:
        known = (*PROVIDERS, *(rule.name for rule in RULES))
        unknown = sorted(set(disabled) - set(known))
        if unknown:
            raise EmulatorError(
                f"unknown emulator provider(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        if latency_scale is not None and not latency_scale > 0:
            raise EmulatorError(
                f"latency scale {latency_scale} is not a positive number: give e.g. 0.01 "
                "(a hundredth of AWS's typical durations), or none for instant answers"
            )
        self.disabled = frozenset(disabled)
        self.latency_scale = latency_scale
        self.endpoint_url = ""
        self._stack: ExitStack | None = None

    def start(self) -> str:
        """Start the server on a free 127.0.0.1 port with every enabled provider; its URL."""
        check_moto()
        if not _RUNNING.acquire(blocking=False):
            raise EmulatorError("another local emulator runs in this process; stop it first")
        stack = ExitStack()
        stack.callback(_RUNNING.release)
        try:
            from moto.moto_api._internal.models import moto_api_backend  # noqa: PLC0415
            from moto.server import ThreadedMotoServer  # noqa: PLC0415

            moto_api_backend.reset()  # fresh accounts, whatever ran in this process before
            stack.callback(moto_api_backend.reset)
            # werkzeug logs every request line (and tracebacks holding request data): keep it quiet
            werkzeug = logging.getLogger("werkzeug")
            stack.enter_context(mock.patch.object(werkzeug, "disabled", True))
            # a fresh context each start: invitations and clients of an earlier run are gone
            context = Context()
            for patch in patches(context, self.disabled, self.latency_scale):
                stack.enter_context(patch)
            port = _free_port()
            self.endpoint_url = context.endpoint_url = f"http://{HOST}:{port}"
            server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
            server.start()
            stack.callback(server.stop)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self.endpoint_url

    def stop(self) -> None:
        """Stop the server and undo every patch; all emulated state is gone."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()

    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def prepare_account(
        self, account: str, region: str, hosted_zone_id: str, zone_name: str
    ) -> None:
        """Create what a real account has before a deploy: the hosted zone with the given id.

        Once per (account, zone id): nodes sharing a zone share it. The zone is the user's own,
        named as the spec names it; nothing else in the emulator makes zones.
        """
        if self._stack is None:
            raise EmulatorError("start the emulator before preparing accounts")
        from moto.route53.models import route53_backends  # noqa: PLC0415

        backend = route53_backends[account]["aws"]
        zone_id = hosted_zone_id.removeprefix("/hostedzone/")
        name = zone_name if zone_name.endswith(".") else f"{zone_name}."
        if zone_id in backend.zones:
            existing = backend.zones[zone_id].name
            if existing.rstrip(".").lower() != name.rstrip(".").lower():
                raise EmulatorError(
                    f"hosted zone {zone_id} of account {account} is {existing.rstrip('.')}; "
                    f"a zone has one name, not also {name.rstrip('.')}: give the nodes sharing "
                    "it the same hosted_zone_name"
                )
            return
        zone = backend.create_hosted_zone(
            name, private_zone=False, caller_reference=f"tsm-infra-{zone_id}"
        )
        # moto draws its own ids; the spec names the real one, so re-key the zone under it
        backend.zones.pop(zone.resource_id)
        zone.resource_id = zone_id
        backend.zones[zone_id] = zone

    def prepare_registry_secret(self, account: str, secret_arn: str) -> None:
        """Create the registry credentials secret a spec names, as its account would hold it.

        moto takes the last part of a full ARN (suffix included) as the name, so the secret is
        created under that name and the spec's ARN finds it. Once per secret.
        """
        if self._stack is None:
            raise EmulatorError("start the emulator before preparing accounts")
        from tsm_infra.aws import local_session  # noqa: PLC0415

        region, name = secret_arn.split(":")[3], secret_arn.split(":secret:", 1)[1]
        sm = local_session(account, region, self.endpoint_url).client("secretsmanager")
        if not sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]:
            sm.create_secret(Name=name, SecretString=EMULATED_REGISTRY_CREDENTIALS)

    def emulated(self) -> list[str]:
        """For the CLI: the general notes, one plain sentence per active provider and rule of
        what AWS refuses, then what the emulator does not enforce."""
        described = [p.emulates for p in active(self.disabled, self.latency_scale)]
        return [*NOTES, *PREPARED, *described, *ENFORCED_BY_MOTO, *NOT_ENFORCED]
