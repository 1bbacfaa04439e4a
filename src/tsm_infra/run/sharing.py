"""Accepting the peers' RAM share invitations in one account, for the executor.

A peer's KMS stack shares its public facts (SSM parameters) with the other accounts; where the
accounts are not one organisation each must accept an invitation, in the region of the stack
that shares. RAM is eventually consistent: an invitation may show up some seconds after the
sharing stack completes. So the step knows from the plan which invitations to expect and polls,
with back-off, until every one is accepted (or was accepted before), or until a deadline, and
then says exactly which one never came. One step per account; the accounts run in parallel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tsm_infra.aws import Connector
from tsm_infra.errors import TsmInfraError, describe_error
from tsm_infra.plan import Invitation, ShareStep, Step
from tsm_infra.run.executor import Done, Prepared
from tsm_infra.run.results import Options
from tsm_infra.stacks import Interrupted

WHY = "the peers' shares are not accepted: "


class ShareSteps:
    """The handler of share steps."""

    def __init__(self, *, connector: Connector, options: Options, stop: threading.Event) -> None:
        self._connector = connector
        self._options = options
        self._stop = stop

    def prepare(self, step: Step, inputs: Mapping[str, Mapping[str, str]]) -> Prepared:
        """Nothing to review: acceptance only lets the peers' own facts in."""
        assert isinstance(step, ShareStep)  # noqa: S101 - the executor routes by kind
        return Prepared(run=lambda: self._accept(step))

    def failed(self, step: Step, reason: str) -> Done:
        """Acceptance raised: the account's Core stack is told why."""
        return Done(ok=False, why=WHY + reason)

    def blocked(self, step: Step, causes: Sequence[Step], why: Sequence[str]) -> Done:
        """A peer's KMS stack failed: nothing to accept from it, and so nothing is tried."""
        return Done(ok=False)

    def _accept(self, step: ShareStep) -> Done:
        session = self._connector.for_node(step.node)
        waiting = list(step.expected)
        done: list[str] = []
        deadline = time.monotonic() + self._options.share_timeout
        delay = self._options.poll_interval
        while True:
            for region in sorted({i.region for i in waiting}):
                ram = session.client("ram", region)
                here = [i for i in waiting if i.region == region]
                found, accepted = _accept_in(ram, step.account, region, here)
                done += accepted
                waiting = [i for i in waiting if i not in found]
            if not waiting:
                return Done(ok=True, actions=tuple(done))
            if time.monotonic() >= deadline:
                missing = ", ".join(f"{i.share} from {i.sender} ({i.region})" for i in waiting)
                return Done(
                    ok=False,
                    actions=tuple(done),
                    why=(
                        f"{WHY}account {step.account} saw no invitation to {missing} within "
                        f"{self._options.share_timeout:.0f} s; check that the peer's KMS stack "
                        "shares with this account (its PeerAccountIds), then deploy again"
                    ),
                )
            if self._stop.wait(delay):
                raise Interrupted("interrupted")
            delay = min(delay * 1.5, self._options.poll_interval * 12)


def _accept_in(
    ram: Any, account: str, region: str, expected: Sequence[Invitation]
) -> tuple[list[Invitation], list[str]]:
    """Accept what of `expected` is pending here; returns what is settled and what was done."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        pages = ram.get_paginator("get_resource_share_invitations").paginate()
        invitations = [i for page in pages for i in page["resourceShareInvitations"]]
    except (BotoCoreError, ClientError) as exc:
        raise ShareError(
            f"account {account} ({region}): cannot list RAM invitations: {describe_error(exc)}; "
            "the deploying role needs ram:GetResourceShareInvitations and "
            "ram:AcceptResourceShareInvitation"
        ) from None
    settled: list[Invitation] = []
    done: list[str] = []
    for want in expected:
        matching = [
            i
            for i in invitations
            if i.get("senderAccountId") == want.sender and i.get("resourceShareName") == want.share
        ]
        statuses = {i.get("status") for i in matching}
        for invitation in (i for i in matching if i.get("status") == "PENDING"):
            try:
                ram.accept_resource_share_invitation(
                    resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
                )
            except (BotoCoreError, ClientError) as exc:
                raise ShareError(
                    f"account {account} ({region}): cannot accept {want.share} from "
                    f"{want.sender}: {describe_error(exc)}"
                ) from None
            done.append(f"account {account} accepted {want.share} from {want.sender} ({region})")
        if "PENDING" in statuses or "ACCEPTED" in statuses or _shared_with_us(ram, want):
            settled.append(want)
    return settled, done


def _shared_with_us(ram: Any, want: Invitation) -> bool:
    """True when the share is already active here although no invitation lists it any more."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        shares = ram.get_resource_shares(resourceOwner="OTHER-ACCOUNTS", name=want.share)
    except (BotoCoreError, ClientError):
        return False
    return any(
        share.get("owningAccountId") == want.sender and share.get("status") == "ACTIVE"
        for share in shares.get("resourceShares", [])
    )


class ShareError(TsmInfraError):
    """Listing or accepting invitations failed (the executor reports it as the step's cause)."""
