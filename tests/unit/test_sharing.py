"""Accepting the peers' share invitations: retried until every expected one is accepted."""

from __future__ import annotations

import threading
from typing import Any

from tests.helpers import VALID_SPEC
from tsm_infra.plan import ShareStep, build_plan
from tsm_infra.run.results import Options
from tsm_infra.run.sharing import ShareSteps
from tsm_infra.spec import load_spec_text


class FakeRam:
    """RAM in one account: invitations appear after `late` listings (eventual consistency)."""

    def __init__(self, invitations: list[dict[str, Any]], late: int = 0) -> None:
        self.invitations = invitations
        self.late = late
        self.listed = 0
        self.accepted: list[str] = []

    def get_paginator(self, name: str) -> Any:
        ram = self

        class Pages:
            def paginate(self) -> list[dict[str, Any]]:
                ram.listed += 1
                shown = ram.invitations if ram.listed > ram.late else []
                return [{"resourceShareInvitations": shown}]

        return Pages()

    def accept_resource_share_invitation(self, resourceShareInvitationArn: str) -> None:
        self.accepted.append(resourceShareInvitationArn)
        for invitation in self.invitations:
            if invitation["resourceShareInvitationArn"] == resourceShareInvitationArn:
                invitation["status"] = "ACCEPTED"

    def get_resource_shares(self, **kwargs: Any) -> dict[str, Any]:
        return {"resourceShares": []}


class FakeConnector:
    def __init__(self, ram: dict[str, FakeRam]) -> None:
        self.ram = ram

    def for_node(self, node: Any) -> Any:
        ram = self.ram

        class Session:
            def client(self, service: str, region: str | None = None) -> Any:
                return ram[region or ""]

        return Session()


def _share() -> ShareStep:
    steps = build_plan(load_spec_text(VALID_SPEC)).graph
    return next(s for s in steps if isinstance(s, ShareStep) and s.account == "111111111111")


def _invitation(share: ShareStep, index: int, status: str = "PENDING") -> dict[str, Any]:
    want = share.expected[index]
    return {
        "resourceShareInvitationArn": f"arn:inv/{index}",
        "resourceShareName": want.share,
        "senderAccountId": want.sender,
        "status": status,
    }


def _run(ram: dict[str, FakeRam], timeout: float = 5.0) -> Any:
    handler = ShareSteps(
        connector=FakeConnector(ram),  # type: ignore[arg-type]
        options=Options(poll_interval=0.01, share_timeout=timeout),
        stop=threading.Event(),
    )
    prepared = handler.prepare(_share(), {})
    assert prepared.run is not None
    return prepared.run()


def test_a_late_invitation_is_waited_for_and_accepted() -> None:
    share = _share()
    (region,) = {i.region for i in share.expected}  # the peers share from one region
    ram = {region: FakeRam([_invitation(share, 0), _invitation(share, 1)], late=3)}
    done = _run(ram)
    assert done.ok, done.why
    assert ram[region].accepted == ["arn:inv/0", "arn:inv/1"]
    assert len(done.actions) == 2
    assert ram[region].listed == 4  # three empty listings, then both invitations


def test_an_invitation_accepted_before_is_settled_without_a_new_acceptance() -> None:
    share = _share()
    (region,) = {i.region for i in share.expected}
    ram = {region: FakeRam([_invitation(share, 0, "ACCEPTED"), _invitation(share, 1, "ACCEPTED")])}
    done = _run(ram)
    assert done.ok
    assert done.actions == ()


def test_an_invitation_that_never_comes_fails_naming_it() -> None:
    share = _share()
    first, second = share.expected
    ram = {first.region: FakeRam([_invitation(share, 0)])}
    done = _run(ram, timeout=0.2)
    assert not done.ok
    assert f"{second.share} from {second.sender} ({second.region})" in done.why
    assert "PeerAccountIds" in done.why
    assert ram[first.region].accepted == ["arn:inv/0"]  # what came was accepted
