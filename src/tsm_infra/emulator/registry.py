"""What every provider is made of: its name, its one-sentence description and its patches.

A provider is a function from the emulator's shared `Context` to the patches that add one missing
behaviour to moto. The `@provider(name, emulates=...)` decorator turns such a function into a
`Provider`, so that the sentence the rehearsal report shows sits next to the code it describes.
Where several providers change the same moto function, each returns a `Layer` for that function's
`Hook` (see `hooks.py`) instead of a patch of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsm_infra.emulator.hooks import Layer

Patch = AbstractContextManager[Any]


@dataclass
class Invitation:
    """A RAM invitation to an account outside the sharer's organization."""

    arn: str
    share_arn: str
    share_name: str
    sender: str
    receiver: str
    region: str
    status: str = "PENDING"

    def describe(self) -> dict[str, Any]:
        """The invitation as RAM's API returns it."""
        return {
            "resourceShareInvitationArn": self.arn,
            "resourceShareName": self.share_name,
            "resourceShareArn": self.share_arn,
            "senderAccountId": self.sender,
            "receiverAccountId": self.receiver,
            "status": self.status,
        }


@dataclass
class Context:
    """What the providers share while the emulator runs."""

    endpoint_url: str = ""
    invitations: list[Invitation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # clients the emulator itself uses, by (account, region, service): creating one takes 0.1 s
    clients: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def client(self, account: str, region: str, service: str) -> Any:
        """A client acting in `account` on this emulator, made once."""
        from tsm_infra import aws  # noqa: PLC0415

        key = (account, region, service)
        with self.lock:
            if key not in self.clients:
                from botocore.config import Config  # noqa: PLC0415

                opened = aws.local_session(account, region, self.endpoint_url)
                # in-process calls: an error is final, retrying only slows the stack down
                self.clients[key] = opened.session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"mode": "standard", "max_attempts": 1}),
                )
            return self.clients[key]


Installed = list["Patch | Layer"]
Install = Callable[[Context], Installed]


@dataclass(frozen=True)
class Provider:
    """One gap in moto and how the emulator fills it."""

    name: str
    emulates: str  # one plain sentence for the rehearsal report and `tsm-infra emulator`
    install: Install


def provider(name: str, *, emulates: str) -> Callable[[Install], Provider]:
    """Make the decorated install function the provider `name`, which `emulates` describes."""

    def made(install: Install) -> Provider:
        return Provider(name, emulates, install)

    return made
