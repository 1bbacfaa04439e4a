"""RAM shares of SSM parameters, their invitations, and reading a shared parameter by ARN."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from unittest import mock

from tsm_infra.emulator.registry import Context, Installed, Invitation, provider
from tsm_infra.emulator.resources import Emulated, EmulatedType, Request, ResourceFailed
from tsm_infra.emulator.services.common import truthy, types

_ACCOUNT = re.compile(r"^[0-9]{12}$")
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:([a-z0-9-]+):([0-9]{12}):parameter(/.+)$")


@provider(
    "ram-share",
    emulates="RAM resource shares of SSM parameters with other accounts are created in the "
    "emulated RAM.",
)
def ram_share(ctx: Context) -> Installed:
    from moto.ram.models import ResourceShare, ram_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        props = req.properties
        principals = [str(p) for p in props.get("Principals") or [] if str(p)]
        resources = [str(r) for r in props.get("ResourceArns") or []]
        _check_share(req, principals, resources)
        external = truthy(props.get("AllowExternalPrincipals", True))
        share = ResourceShare(
            req.account, req.region, name=str(props["Name"]), allowExternalPrincipals=external
        )
        share.principals, share.resource_arns = principals, resources
        ram_backends[req.account][req.region].resource_shares.append(share)
        # accounts outside the sharer's organization are invited (moto knows no invitations)
        invitation_arn = f"arn:aws:ram:{req.region}:{req.account}:resource-share-invitation"
        invitations = [
            Invitation(
                arn=f"{invitation_arn}/{uuid.uuid4()}",
                share_arn=share.arn,
                share_name=share.name,
                sender=req.account,
                receiver=principal,
                region=req.region,
            )
            for principal in (principals if external else [])
        ]
        with ctx.lock:
            ctx.invitations.extend(invitations)

        def delete() -> None:
            share.delete()
            with ctx.lock:
                ctx.invitations[:] = [i for i in ctx.invitations if i.share_arn != share.arn]

        return Emulated(share.arn, {"Arn": share.arn}, delete)

    return [types(AWS__RAM__ResourceShare=EmulatedType(create))]


def _check_share(req: Request, principals: list[str], resources: list[str]) -> None:
    """ResourceFailed unless it shares its own account's SSM parameters with accounts only."""
    for principal in principals:
        if not _ACCOUNT.match(principal):
            raise ResourceFailed(
                req.logical_id,
                f"principal {principal} is not an account id (the only kind emulated)",
            )
    for arn in resources:
        match = _SSM_ARN.match(arn)
        # moto's RAM refuses SSM parameters, which AWS shares (Advanced tier only)
        if not match or match.group(2) != req.account or match.group(1) != req.region:
            raise ResourceFailed(
                req.logical_id, f"{arn} is not a parameter of this account and region"
            )


@provider(
    "ram-invitations",
    emulates="RAM invitations to accounts outside an organization are emulated (list and accept).",
)
def ram_invitations(ctx: Context) -> Installed:
    from moto.ram import urls  # noqa: PLC0415
    from moto.ram.exceptions import UnknownResourceException  # noqa: PLC0415
    from moto.ram.responses import ResourceAccessManagerResponse as Response  # noqa: PLC0415

    def get_resource_share_invitations(self: Any) -> str:
        arns = self._get_param("resourceShareInvitationArns") or []
        with ctx.lock:
            found = [
                i.describe()
                for i in ctx.invitations
                if i.receiver == self.current_account
                and i.region == self.region
                and (not arns or i.arn in arns)
            ]
        return json.dumps({"resourceShareInvitations": found})

    def accept_resource_share_invitation(self: Any) -> str:
        arn = self._get_param("resourceShareInvitationArn")
        with ctx.lock:
            for invitation in ctx.invitations:
                if invitation.arn == arn and invitation.receiver == self.current_account:
                    invitation.status = "ACCEPTED"
                    return json.dumps({"resourceShareInvitation": invitation.describe()})
        raise UnknownResourceException(f"ResourceShareInvitation {arn} could not be found.")

    return [
        mock.patch.object(
            Response, "get_resource_share_invitations", get_resource_share_invitations, create=True
        ),
        mock.patch.object(
            Response,
            "accept_resource_share_invitation",
            accept_resource_share_invitation,
            create=True,
        ),
        mock.patch.dict(
            urls.url_paths,
            {
                "{0}/getresourceshareinvitations$": Response.dispatch,
                "{0}/acceptresourceshareinvitation$": Response.dispatch,
            },
        ),
    ]


@provider(
    "ssm-parameter-attributes",
    emulates="SSM parameters answer GetAtt Value and Type.",
)
def ssm_parameter_attributes(ctx: Context) -> Installed:
    from moto.ssm.models import Parameter  # noqa: PLC0415

    def attr(self: Any, name: str) -> Any:
        if name == "Value":
            return self.value
        if name == "Type":
            return self.type
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException  # noqa: PLC0415

        raise UnformattedGetAttTemplateException()

    return [mock.patch.object(Parameter, "get_cfn_attribute", attr, create=True)]


def shared_with(ctx: Context, arn: str, reader: str) -> bool:
    """True when an active RAM share of the parameter's owner lets `reader` read it."""
    from moto.ram.models import ram_backends  # noqa: PLC0415

    match = _SSM_ARN.match(arn)
    if not match:
        return False
    region, owner = match.group(1), match.group(2)
    for share in ram_backends[owner][region].resource_shares:
        if (
            share.status != "ACTIVE"
            or arn not in share.resource_arns
            or reader not in share.principals
        ):
            continue
        with ctx.lock:
            invited = [
                i for i in ctx.invitations if i.share_arn == share.arn and i.receiver == reader
            ]
        if all(i.status == "ACCEPTED" for i in invited):
            return True
    return False


@provider(
    "ssm-cross-account-read",
    emulates="Reading a peer's RAM-shared SSM parameter by ARN is emulated, allowed only through "
    "an active (accepted) share.",
)
def ssm_cross_account_read(ctx: Context) -> Installed:
    from moto.ssm.exceptions import ParameterNotFound  # noqa: PLC0415
    from moto.ssm.models import ssm_backends  # noqa: PLC0415
    from moto.ssm.responses import SimpleSystemManagerResponse as Response  # noqa: PLC0415

    original = Response.get_parameter

    def get_parameter(self: Any) -> Any:
        name = str(self._get_param("Name"))
        match = _SSM_ARN.match(name)
        if not match or match.group(2) == self.current_account:
            return original(self)
        from moto.core.responses import ActionResult  # noqa: PLC0415

        region, owner, path = match.groups()
        bare = f"arn:aws:ssm:{region}:{owner}:parameter{path.split(':')[0]}"
        # AWS answers a parameter the caller may not see exactly like a missing one
        if region != self.region or not shared_with(ctx, bare, self.current_account):
            raise ParameterNotFound(f"Parameter {name} not found.")
        found = ssm_backends[owner][region].get_parameter(path)
        if found is None:
            raise ParameterNotFound(f"Parameter {name} not found.")
        answer = found.response_object(self._get_param("WithDecryption"), region)
        answer["ARN"] = bare
        return ActionResult({"Parameter": answer})

    return [mock.patch.object(Response, "get_parameter", get_parameter)]
