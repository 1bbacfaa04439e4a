"""What moto 5.2 lacks for the tsm-infra templates, one named provider per gap.

Every provider is a function returning the patches (context managers) that add its behaviour to
moto; `LocalAws` enters them on start and leaves them on stop, so that nothing outlives the
emulator and a provider can be left out by name to show what it carries.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any
from unittest import mock

from tsm_infra.emulator import cfn, langext
from tsm_infra.emulator.resources import (
    CUSTOM,
    LOG,
    TYPES,
    Emulated,
    EmulatedType,
    Request,
    ResourceFailed,
)

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
        """As RAM's API returns it."""
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
    """What providers share while the emulator runs."""

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


@dataclass(frozen=True)
class Provider:
    """One gap in moto and how the emulator fills it."""

    name: str
    emulates: str  # one plain sentence for the CLI
    install: Callable[[Context], list[Patch]]


def _types(**types: EmulatedType) -> Patch:
    return mock.patch.dict(TYPES, {name.replace("__", "::"): t for name, t in types.items()})


def _updated_in_place(change: Callable[[Any, dict[str, Any], str, str], None]) -> Any:
    """A moto update_from_cloudformation_json that applies `change` to the resource itself.

    For moto classes that cannot update, which would otherwise drop the resource from the stack.
    `change` gets the resource, the new properties, the account and the region.
    """

    def update(  # noqa: PLR0917 - moto's signature
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        change(original_resource, cloudformation_json["Properties"], account_id, region_name)
        return original_resource

    return classmethod(update)


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def _tags(value: Any) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in value or []]


# ------------------------------------------------------------------------------------------ KMS


def _kms_key_properties(ctx: Context) -> list[Patch]:
    from moto.kms.models import Key  # noqa: PLC0415

    original = Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any
    ) -> Any:
        props = dict(cfn["Properties"])
        # CloudFormation takes the policy as a JSON object and tags as Key/Value; moto's KMS
        # backend wants a policy document string and TagKey/TagValue.
        if isinstance(props.get("KeyPolicy"), dict):
            props["KeyPolicy"] = json.dumps(props["KeyPolicy"])
        # KeyPolicy is optional: without one AWS (and moto, given None) applies the default
        # policy, which lets the account's IAM policies grant use of the key
        props.setdefault("KeyPolicy", None)
        props["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(props.get("Tags"))
        ]
        key = original(cls, name, {**cfn, "Properties": props}, account, region, **kw)
        key.key_rotation_status = _truthy(props.get("EnableKeyRotation", False))
        return key

    return [mock.patch.object(Key, "create_from_cloudformation_json", classmethod(create))]


_CURVES = {"ECC_NIST_P256": "SECP256R1", "ECC_NIST_P384": "SECP384R1", "ECC_NIST_P521": "SECP521R1"}


def _kms_generate_data_key_pair(ctx: Context) -> list[Patch]:
    from moto.kms.responses import KmsResponse  # noqa: PLC0415

    def generate_data_key_pair(self: Any) -> str:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from moto.kms.exceptions import ValidationException  # noqa: PLC0415

        key_id, spec = self._get_param("KeyId"), self._get_param("KeyPairSpec")
        context = self._get_param("EncryptionContext", {})
        self._validate_key_id(key_id)
        if spec not in _CURVES:
            # RSA specs exist in AWS too; the templates use only the NIST curves
            raise ValidationException(
                f"KeyPairSpec {spec} is not emulated; use {', '.join(_CURVES)}"
            )
        private = ec.generate_private_key(getattr(ec, _CURVES[spec])())
        pkcs8 = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        spki = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        blob, arn = self.kms_backend.encrypt(
            key_id=key_id, plaintext=pkcs8, encryption_context=context
        )
        return json.dumps(
            {
                "PrivateKeyCiphertextBlob": base64.b64encode(blob).decode(),
                "PrivateKeyPlaintext": base64.b64encode(pkcs8).decode(),
                "PublicKey": base64.b64encode(spki).decode(),
                "KeyId": arn,
                "KeyPairSpec": spec,
            }
        )

    return [
        mock.patch.object(
            KmsResponse, "generate_data_key_pair", generate_data_key_pair, create=True
        )
    ]


# ------------------------------------------------------------------------------ Secrets Manager


def _secretsmanager_secret(ctx: Context) -> list[Patch]:
    from moto.secretsmanager.models import secretsmanager_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        backend: Any = secretsmanager_backends[req.account][req.region]
        props = req.properties
        name = str(props.get("Name") or req.name)
        value = props.get("SecretString")
        if value is None and isinstance(props.get("GenerateSecretString"), dict):
            value = _random_password(32)
        backend.create_secret(
            name=name,
            secret_string=value,
            secret_binary=None,
            description=props.get("Description"),
            tags=_tags(props.get("Tags")),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        arn = backend.describe_secret(name).arn

        def delete() -> None:
            backend.delete_secret(
                arn, recovery_window_in_days=None, force_delete_without_recovery=True
            )

        return Emulated(arn, {"Id": arn}, delete)

    def update(original: Emulated, req: Request) -> Emulated:
        old, new = original.properties, req.properties
        if (old.get("Name") or "") != (new.get("Name") or ""):
            made = create(req)
            original.delete(req.account, req.region)
            return made
        secret: Any = secretsmanager_backends[req.account][req.region].describe_secret(
            original.physical_id
        )
        secret.description = new.get("Description")
        secret.kms_key_id = new.get("KmsKeyId")
        return Emulated(original.physical_id, original.attributes, original.on_delete)

    return [_types(AWS__SecretsManager__Secret=EmulatedType(create, update))]


def _random_password(size: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(size))


def _secretsmanager_resource_policy(ctx: Context) -> list[Patch]:
    from moto.secretsmanager.models import secretsmanager_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        backend: Any = secretsmanager_backends[req.account][req.region]
        secret_id = str(req.properties["SecretId"])
        policy = req.properties["ResourcePolicy"]
        backend.put_resource_policy(
            secret_id, policy if isinstance(policy, str) else json.dumps(policy)
        )
        arn = backend.describe_secret(secret_id).arn

        def delete() -> None:
            backend.delete_resource_policy(arn)

        return Emulated(arn, {"Id": arn}, delete)

    def update(original: Emulated, req: Request) -> Emulated:
        return create(req)  # PutResourcePolicy replaces the policy in place

    return [_types(AWS__SecretsManager__ResourcePolicy=EmulatedType(create, update))]


# ---------------------------------------------------------------------- custom resource (keygen)


def _stringify(value: Any) -> Any:
    # CloudFormation hands custom resources every scalar property as a string
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


def _keygen_custom_resource(ctx: Context) -> list[Patch]:
    def invoke(
        req: Request, kind: str, physical: str | None, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        from moto.awslambda.utils import get_backend  # noqa: PLC0415

        from tsm_infra.functions import keygen  # noqa: PLC0415

        token = str(req.properties.get("ServiceToken", ""))
        try:
            get_backend(req.account, req.region).get_function(token)
        except Exception:
            raise ResourceFailed(
                req.logical_id, f"ServiceToken {token} is not a function in this account and region"
            ) from None
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": kind,
            "ServiceToken": token,
            # never fetched: the response is captured by `send` below
            "ResponseURL": f"{ctx.endpoint_url}/emulated-custom-resource-response/{request_id}",
            "StackId": req.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": req.logical_id,
            "ResourceType": req.resource_type,
            "ResourceProperties": _stringify(req.properties),
        }
        if physical is not None:
            event["PhysicalResourceId"] = physical
        if old is not None:
            event["OldResourceProperties"] = _stringify(old)
        answers: list[dict[str, Any]] = []

        def clients() -> Any:
            kms = ctx.client(req.account, req.region, "kms")
            return keygen.Clients(kms, ctx.client(req.account, req.region, "secretsmanager"))

        keygen.handle(
            event, None, clients, send=lambda _url, body: answers.append(json.loads(body))
        )
        if not answers:
            raise ResourceFailed(req.logical_id, "the function sent no response")
        answer = answers[0]
        if answer.get("Status") != "SUCCESS":
            raise ResourceFailed(req.logical_id, str(answer.get("Reason") or "FAILED"))
        return answer

    def made(req: Request, answer: dict[str, Any]) -> Emulated:
        resource = Emulated(str(answer["PhysicalResourceId"]), dict(answer.get("Data") or {}))

        def delete() -> None:
            # with the properties it has now, as an update may have changed them
            invoke(
                replace(req, properties=resource.properties), "Delete", resource.physical_id, None
            )

        resource.on_delete = delete
        return resource

    def create(req: Request) -> Emulated:
        return made(req, invoke(req, "Create", None, None))

    def update(original: Emulated, req: Request) -> Emulated:
        answer = invoke(req, "Update", original.physical_id, original.properties)
        new = made(req, answer)
        if new.physical_id != original.physical_id:
            # a new physical id is a replacement: CloudFormation then deletes the old resource
            original.delete(req.account, req.region)
        return new

    return [mock.patch.dict(TYPES, {CUSTOM: EmulatedType(create, update)})]


# ---------------------------------------------------------------------- stack failure statuses


class _FrozenOutputs(dict[str, Any]):
    """A stack's outputs as they were, standing in for moto's OutputMap."""

    exports: list[Any] = []  # noqa: RUF012 - read-only, as the (export-less) stacks here


def _stack_failure_status(ctx: Context) -> list[Patch]:
    from moto.cloudformation.models import CloudFormationBackend  # noqa: PLC0415

    def fail(stack: Any, exc: Exception, operation: str) -> None:
        LOG.debug(
            "%s of %s failed", operation, stack.name, exc_info=not isinstance(exc, ResourceFailed)
        )
        if isinstance(exc, ResourceFailed):
            logical, reason = exc.logical_id, exc.reason
            # stack deletion writes each failed resource's event itself (several may fail)
            if logical and not exc.recorded:
                kind = stack.resource_map._resource_json_map.get(logical, {}).get("Type", "")
                cfn.resource_event(
                    stack, logical, None, str(kind), f"{operation}_FAILED", reason=reason
                )
        else:
            logical, reason = "", f"{type(exc).__name__}: {exc}"[:400]
        summary = (
            f"The following resource(s) failed to {operation.lower()}: [{logical}]."
            if logical
            else reason
        )
        stack._add_stack_event(f"{operation}_FAILED", resource_status_reason=summary)
        stack.status = f"{operation}_FAILED"
        stack.status_reason = summary

    original_execute = CloudFormationBackend.execute_change_set

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        try:
            original_execute(self, change_set_name, stack_name)
        except Exception as exc:
            change_set = self.describe_change_set(change_set_name)
            change_set.execution_status = "EXECUTE_FAILED"
            fail(self.stacks[change_set.stack_id], exc, change_set.change_set_type)

    original_delete = CloudFormationBackend.delete_stack

    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        stacks = [s for s in self.stacks.values() if name_or_stack_id in (s.name, s.stack_id)]
        # outputs are computed from the resources, some of which a failed delete removes
        frozen = {
            s.stack_id: _FrozenOutputs((k, s.output_map[k]) for k in s.output_map) for s in stacks
        }
        try:
            original_delete(self, name_or_stack_id)
        except Exception as exc:
            for stack in stacks:
                self.stacks[stack.stack_id] = stack  # moto popped it before deleting
                self.deleted_stacks.pop(stack.stack_id, None)
                stack.output_map = frozen[stack.stack_id]
                fail(stack, exc, "DELETE")

    return [
        mock.patch.object(CloudFormationBackend, "execute_change_set", execute_change_set),
        mock.patch.object(CloudFormationBackend, "delete_stack", delete_stack),
    ]


def _change_set_outputs(ctx: Context) -> list[Patch]:
    from moto.cloudformation.models import CloudFormationBackend  # noqa: PLC0415

    original = CloudFormationBackend.execute_change_set

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks.get(change_set.stack_id)
        if stack is None or change_set.execution_status != "EXECUTE_COMPLETE":
            return
        # moto keeps the stack's pre-change-set template, parameters and (so) outputs
        stack.template_dict = change_set.template_dict
        stack.description = change_set.template_dict.get("Description")
        stack.parameters = dict(change_set.parameters)
        stack.output_map = stack._create_output_map()

    return [mock.patch.object(CloudFormationBackend, "execute_change_set", execute_change_set)]


# ----------------------------------------------------------------------------------------- RAM

_ACCOUNT = re.compile(r"^[0-9]{12}$")
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:([a-z0-9-]+):([0-9]{12}):parameter(/.+)$")


def _ram_share(ctx: Context) -> list[Patch]:
    from moto.ram.models import ResourceShare, ram_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        props = req.properties
        principals = [str(p) for p in props.get("Principals") or [] if str(p)]
        resources = [str(r) for r in props.get("ResourceArns") or []]
        _check_share(req, principals, resources)
        external = _truthy(props.get("AllowExternalPrincipals", True))
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

    return [_types(AWS__RAM__ResourceShare=EmulatedType(create))]


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


def _ram_invitations(ctx: Context) -> list[Patch]:
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


def _ssm_parameter_attributes(ctx: Context) -> list[Patch]:
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


def _ssm_cross_account_read(ctx: Context) -> list[Patch]:
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


# ------------------------------------------------------------------------- language extensions


def _language_extensions(ctx: Context) -> list[Patch]:
    from moto.cloudformation.models import ChangeSet  # noqa: PLC0415
    from moto.cloudformation.parsing import ResourceMap  # noqa: PLC0415

    original_parse = ChangeSet._parse_template
    original_init = ResourceMap.__init__

    def parse(self: Any) -> None:
        original_parse(self)
        self.template_dict = langext.expand(self.template_dict, self.parameters or {})

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        # create_stack hands moto the template dict here, with its parameters
        names = (
            "stack_id",
            "stack_name",
            "parameters",
            "tags",
            "region_name",
            "account_id",
            "template",
        )
        given = dict(zip(names, args, strict=False)) | kwargs
        given["template"] = langext.expand(given["template"], given["parameters"] or {})
        original_init(self, **given)

    return [
        mock.patch.object(ChangeSet, "_parse_template", parse),
        mock.patch.object(ResourceMap, "__init__", init),
    ]


def _sub_dotted_attributes(ctx: Context) -> list[Patch]:
    from moto.cloudformation import parsing  # noqa: PLC0415

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        getatt = resource_json.get("Fn::GetAtt") if isinstance(resource_json, dict) else None
        if isinstance(getatt, list) and len(getatt) > 2:
            # moto's Fn::Sub splits ${Database.Endpoint.Address} at every dot
            resource_json = {"Fn::GetAtt": [getatt[0], ".".join(map(str, getatt[1:]))]}
        return original(resource_json, resources_map)

    return [mock.patch.object(parsing, "clean_json", clean_json)]


# ----------------------------------------------------------------------------------------- EC2


def _fn_cidr(ctx: Context) -> list[Patch]:
    import ipaddress  # noqa: PLC0415

    from moto.cloudformation import parsing  # noqa: PLC0415

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and set(resource_json) == {"Fn::Cidr"}:
            block, count, bits = (original(v, resources_map) for v in resource_json["Fn::Cidr"])
            network = ipaddress.ip_network(str(block), strict=True)
            # cidrBits is the size of each subnet's host part, as in CloudFormation
            prefix = network.max_prefixlen - int(bits)
            subnets = network.subnets(new_prefix=prefix)
            return [str(next(subnets)) for _ in range(int(count))]
        return original(resource_json, resources_map)

    return [mock.patch.object(parsing, "clean_json", clean_json)]


def _security_group_egress(ctx: Context) -> list[Patch]:
    from moto.ec2.models import ec2_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        backend: Any = ec2_backends[req.account][req.region]
        p = req.properties
        ranges = (
            [{"CidrIp": p["CidrIp"], "Description": p.get("Description", "")}]
            if p.get("CidrIp")
            else []
        )
        groups = (
            [{"GroupId": p["DestinationSecurityGroupId"]}]
            if p.get("DestinationSecurityGroupId")
            else []
        )
        args = (
            str(p["GroupId"]),
            str(p["IpProtocol"]),
            str(p.get("FromPort")),
            str(p.get("ToPort")),
            ranges,
        )
        rules, _ = backend.authorize_security_group_egress(*args, source_groups=groups)
        rule_id = rules[0].id

        def delete() -> None:
            backend.revoke_security_group_egress(*args, source_groups=groups)

        return Emulated(rule_id, {"Id": rule_id}, delete)

    return [_types(AWS__EC2__SecurityGroupEgress=EmulatedType(create))]


# moto's CloudFormation calls `delete(account, region)` on what a stack deletes; the types below
# have none, so moto silently leaves them (and, through them, the VPC) behind


def _ec2(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends  # noqa: PLC0415

    return ec2_backends[account][region]


def _elbv2(account: str, region: str) -> Any:
    from moto.elbv2.models import elbv2_backends  # noqa: PLC0415

    return elbv2_backends[account][region]


def _delete_route(self: Any, account: str, region: str) -> None:
    prefix_list = self.destination_prefix_list
    _ec2(account, region).delete_route(
        self.route_table.id,
        self.destination_cidr_block,
        self.destination_ipv6_cidr_block,
        prefix_list.id if prefix_list is not None else None,
    )


def _delete_association(self: Any, account: str, region: str) -> None:
    # moto's association object does not keep its id: find it in the route table
    backend = _ec2(account, region)
    table = backend.get_route_table(self.route_table_id)
    for association_id, subnet_id in list(table._associations.items()):
        if subnet_id == self.subnet_id:
            backend.disassociate_route_table(association_id)


def _delete_attachment(self: Any, account: str, region: str) -> None:
    backend = _ec2(account, region)
    if str(self.gateway_id).startswith("igw-"):
        backend.detach_internet_gateway(self.gateway_id, self.vpc_id)
    else:
        backend.detach_vpn_gateway(self.gateway_id, self.vpc_id)


def _delete_nat_gateway(self: Any, account: str, region: str) -> None:
    backend = _ec2(account, region)
    backend.delete_nat_gateway(self.id)
    # as in AWS, the gateway's address is disassociated and its interface deleted
    for address in list(backend.addresses):
        if address.eni is self._eni:
            backend.disassociate_address(address=address.public_ip)
    backend.enis.pop(self._eni.id, None)


def _delete_ingress(self: Any, account: str, region: str) -> None:
    # the rule as moto's create_from_cloudformation_json authorized it
    p = self.properties
    source = {}
    if p.get("SourceSecurityGroupId"):
        source["GroupId"] = p["SourceSecurityGroupId"]
    if p.get("SourceSecurityGroupName"):
        source["GroupName"] = p["SourceSecurityGroupName"]
    cidr = p.get("CidrIp")
    _ec2(account, region).revoke_security_group_ingress(
        self.security_group.id,
        p["IpProtocol"],
        p.get("FromPort"),
        p.get("ToPort"),
        [{"CidrIp": cidr, "Description": p.get("Description")}] if cidr else [],
        source_groups=[source] if source else [],
    )


def _ec2_deletions() -> dict[str, Callable[[Any, str, str], None]]:
    """moto class (module path) -> how the stack deletes an object of it."""
    return {
        "route_tables.Route": _delete_route,
        "route_tables.RouteTable": lambda o, a, r: _ec2(a, r).delete_route_table(o.id),
        "subnets.SubnetRouteTableAssociation": _delete_association,
        "internet_gateways.InternetGateway": (
            lambda o, a, r: _ec2(a, r).delete_internet_gateway(o.id)
        ),
        "vpn_gateway.VPCGatewayAttachment": _delete_attachment,
        "nat_gateways.NatGateway": _delete_nat_gateway,
        "flow_logs.FlowLogs": lambda o, a, r: _ec2(a, r).delete_flow_logs([o.id]),
        "security_groups.SecurityGroupIngress": _delete_ingress,
        "vpcs.VPCEndPoint": lambda o, a, r: _ec2(a, r).delete_vpc_endpoints([o.id]),
        "elastic_ip_addresses.ElasticAddress": (
            lambda o, a, r: _ec2(a, r).release_address(allocation_id=o.allocation_id)
        ),
    }


def _network_deletion(ctx: Context) -> list[Patch]:
    import importlib  # noqa: PLC0415

    from moto.ec2.models.instances import Instance  # noqa: PLC0415
    from moto.elbv2.models import FakeListener, FakeTargetGroup  # noqa: PLC0415

    patches: list[Patch] = []
    for path, delete in _ec2_deletions().items():
        module, name = path.rsplit(".", 1)
        cls = getattr(importlib.import_module(f"moto.ec2.models.{module}"), name)
        patches.append(mock.patch.object(cls, "delete", delete, create=True))

    def listener(self: Any, account: str, region: str) -> None:
        _elbv2(account, region).delete_listener(self.arn)

    def target_group(self: Any, account: str, region: str) -> None:
        _elbv2(account, region).delete_target_group(self.arn)

    original_prep_nics = Instance.prep_nics

    def prep_nics(self: Any, nic_spec: list[dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        given = {int(n.get("DeviceIndex", 0)): n for n in nic_spec or []}
        original_prep_nics(self, nic_spec, *args, **kwargs)
        for index, nic in self.nics.items():
            spec = given.get(index, {})
            # AWS deletes an interface made at launch with its instance unless told otherwise
            # (moto keeps it, and with it the subnet's and so the VPC's last dependency)
            if not spec.get("NetworkInterfaceId") and spec.get("DeleteOnTermination") is not False:
                nic.delete_on_termination = True

    return [
        *patches,
        mock.patch.object(FakeListener, "delete", listener, create=True),
        mock.patch.object(FakeTargetGroup, "delete", target_group, create=True),
        mock.patch.object(Instance, "prep_nics", prep_nics),
    ]


def _eip_public_ip(ctx: Context) -> list[Patch]:
    from moto.ec2.models.elastic_ip_addresses import ElasticAddress  # noqa: PLC0415

    original = ElasticAddress.get_cfn_attribute

    def attr(self: Any, name: str) -> Any:
        if name == "PublicIp":
            return self.public_ip
        return original(self, name)

    return [mock.patch.object(ElasticAddress, "get_cfn_attribute", attr)]


# --------------------------------------------------------------------------------------- ELBv2


# AWS's fixed hosted zones of network load balancers in the regions the examples use
_NLB_ZONES = {
    "eu-west-1": "Z2IFOLAFXWLO4F",
    "eu-central-1": "Z3F0SRJ5LGBH90",
    "us-east-1": "Z26RNL4JYFTOTI",
}


def _nlb_type_and_tls(ctx: Context) -> list[Patch]:
    from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup, elbv2_backends  # noqa: PLC0415

    def set_attributes(balancer: Any, props: dict[str, Any], account: str, region: str) -> None:
        attributes = {a["Key"]: str(a["Value"]) for a in props.get("LoadBalancerAttributes") or []}
        if attributes:
            backend: Any = elbv2_backends[account][region]
            backend.modify_load_balancer_attributes(balancer.arn, attributes)

    def create_lb(
        cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any
    ) -> Any:
        props = cfn["Properties"]
        backend: Any = elbv2_backends[account][region]
        balancer = backend.create_load_balancer(
            name,
            props.get("SecurityGroups") or [],
            props.get("Subnets") or [],
            scheme=props.get("Scheme", "internet-facing"),
            loadbalancer_type=props.get("Type", "application"),
            tags=_tags(props.get("Tags")) or None,
        )
        set_attributes(balancer, props, account, region)
        return balancer

    original_lb_attr = FakeLoadBalancer.get_cfn_attribute
    original_tg_attr = getattr(FakeTargetGroup, "get_cfn_attribute", None)

    def lb_attr(self: Any, name: str) -> Any:
        if name == "LoadBalancerFullName":
            return self.arn.split(":loadbalancer/", 1)[1]
        if name == "CanonicalHostedZoneID":
            region = self.arn.split(":")[3]
            return (
                _NLB_ZONES.get(region, "ZEMULATEDNLBZONE")
                if self.type == "network"
                else "ZEMULATEDALBZONE"
            )
        if name == "SecurityGroups":
            return list(self.security_groups)
        return original_lb_attr(self, name)

    def tg_attr(self: Any, name: str) -> Any:
        if name == "TargetGroupFullName":
            return self.arn.split(":", 5)[5]
        if original_tg_attr is not None:
            return original_tg_attr(self, name)
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException  # noqa: PLC0415

        raise UnformattedGetAttTemplateException()

    return [
        mock.patch.object(
            FakeLoadBalancer, "create_from_cloudformation_json", classmethod(create_lb)
        ),
        mock.patch.object(FakeLoadBalancer, "get_cfn_attribute", lb_attr),
        # an update changes the attributes only
        mock.patch.object(
            FakeLoadBalancer,
            "update_from_cloudformation_json",
            _updated_in_place(set_attributes),
            create=True,
        ),
        mock.patch.object(FakeTargetGroup, "get_cfn_attribute", tg_attr, create=True),
    ]


# ----------------------------------------------------------------------------------------- ACM


def _acm_certificate(ctx: Context) -> list[Patch]:
    from moto.acm.models import acm_backends  # noqa: PLC0415
    from moto.route53.models import route53_backends  # noqa: PLC0415

    def create(req: Request) -> Emulated:
        props = req.properties
        domain = str(props["DomainName"])
        for option in props.get("DomainValidationOptions") or []:
            zone = option.get("HostedZoneId")
            try:
                found = route53_backends[req.account]["aws"].get_hosted_zone(str(zone))
            except Exception:
                # in AWS the stack waits for validation records it cannot write, then times out
                raise ResourceFailed(
                    req.logical_id,
                    f"hosted zone {zone} is not in account {req.account}; "
                    "DNS validation cannot complete",
                ) from None
            zone_name = str(found.name).rstrip(".").lower()
            record = str(option.get("DomainName") or domain).rstrip(".").lower()
            if record != zone_name and not record.endswith(f".{zone_name}"):
                # Route 53 refuses a validation record outside the zone's name
                raise ResourceFailed(
                    req.logical_id,
                    f"hosted zone {zone} is {zone_name}, which cannot hold the DNS validation "
                    f"record of {record}",
                )
        backend: Any = acm_backends[req.account][req.region]
        arn = backend.request_certificate(
            domain,
            str(uuid.uuid4()),
            props.get("SubjectAlternativeNames") or [],
            _tags(props.get("Tags")),
        )
        certificate = backend.get_certificate(arn)
        certificate.status = "ISSUED"  # DNS validation in the account's own zone succeeds

        def delete() -> None:
            backend.delete_certificate(arn)

        return Emulated(arn, {}, delete)

    return [_types(AWS__CertificateManager__Certificate=EmulatedType(create))]


# ------------------------------------------------------------------------------------ Cloud Map


def _cloudmap(ctx: Context) -> list[Patch]:
    from moto.servicediscovery.models import servicediscovery_backends  # noqa: PLC0415

    def namespace(req: Request) -> Emulated:
        backend: Any = servicediscovery_backends[req.account][req.region]
        p = req.properties
        operation = backend.create_http_namespace(
            str(p["Name"]), str(uuid.uuid4()), p.get("Description", ""), _tags(p.get("Tags"))
        )
        ns_id = backend.operations[operation].targets["NAMESPACE"]
        made = backend.get_namespace(ns_id)
        return Emulated(
            ns_id, {"Id": ns_id, "Arn": made.arn}, lambda: backend.delete_namespace(ns_id)
        )

    def service(req: Request) -> Emulated:
        backend: Any = servicediscovery_backends[req.account][req.region]
        p = req.properties
        made = backend.create_service(
            name=str(p["Name"]),
            namespace_id=p.get("NamespaceId"),
            creator_request_id=str(uuid.uuid4()),
            description=p.get("Description", ""),
            dns_config=p.get("DnsConfig"),
            health_check_config=p.get("HealthCheckConfig"),
            health_check_custom_config=p.get("HealthCheckCustomConfig"),
            tags=_tags(p.get("Tags")),
            service_type=p.get("Type"),
        )
        return Emulated(
            made.id,
            {"Id": made.id, "Arn": made.arn, "Name": made.name},
            lambda: backend.delete_service(made.id),
        )

    def instance(req: Request) -> Emulated:
        backend: Any = servicediscovery_backends[req.account][req.region]
        p = req.properties
        service_id, instance_id = str(p["ServiceId"]), str(p.get("InstanceId") or req.name)
        attributes = {k: str(v) for k, v in (p.get("InstanceAttributes") or {}).items()}
        backend.register_instance(service_id, instance_id, str(uuid.uuid4()), attributes)
        return Emulated(
            instance_id, {}, lambda: backend.deregister_instance(service_id, instance_id)
        )

    return [
        _types(
            AWS__ServiceDiscovery__HttpNamespace=EmulatedType(namespace),
            AWS__ServiceDiscovery__Service=EmulatedType(service),
            AWS__ServiceDiscovery__Instance=EmulatedType(instance),
        )
    ]


# ---------------------------------------------------------------------------------- CloudWatch


def _cloudwatch_alarm(ctx: Context) -> list[Patch]:
    from moto.cloudwatch.models import cloudwatch_backends  # noqa: PLC0415

    def put(req: Request, name: str) -> Emulated:
        backend: Any = cloudwatch_backends[req.account][req.region]
        p = req.properties
        backend.put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p.get("ComparisonOperator"),
            evaluation_periods=int(p.get("EvaluationPeriods", 1)),
            period=int(p.get("Period", 60)),
            threshold=float(p.get("Threshold", 0)),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=[
                {"Name": d["Name"], "Value": str(d["Value"])} for d in p.get("Dimensions") or []
            ],
            alarm_actions=list(p.get("AlarmActions") or []),
            treat_missing_data=p.get("TreatMissingData"),
        )
        arn = f"arn:aws:cloudwatch:{req.region}:{req.account}:alarm:{name}"
        return Emulated(name, {"Arn": arn}, lambda: backend.delete_alarms([name]))

    def create(req: Request) -> Emulated:
        return put(req, str(req.properties.get("AlarmName") or req.name))

    def update(original: Emulated, req: Request) -> Emulated:
        name = str(req.properties.get("AlarmName") or original.physical_id)
        if name != original.physical_id:
            made = put(req, name)
            original.delete(req.account, req.region)
            return made
        return put(req, name)  # PutMetricAlarm overwrites in place

    return [_types(AWS__CloudWatch__Alarm=EmulatedType(create, update))]


# ----------------------------------------------------------------------------------------- RDS


def _rds_managed_master_secret(ctx: Context) -> list[Patch]:
    from moto.rds.models import DBInstance, MasterUserSecret  # noqa: PLC0415

    original_create = DBInstance.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    original_attr = DBInstance.get_cfn_attribute

    def create(
        cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any
    ) -> Any:
        props = cfn["Properties"]
        database = original_create(cls, name, cfn, account, region, **kw)
        if _truthy(props.get("ManageMasterUserPassword")):
            backend: Any = database.backend
            key = (props.get("MasterUserSecret") or {}).get("KmsKeyId")
            value = json.dumps(
                {"username": props.get("MasterUsername"), "password": _random_password(40)}
            )
            secret = backend.secretsmanager.create_managed_secret(
                service_name="rds",
                secret_id=f"rds!db-{uuid.uuid4()}",
                secret_string=value,
                description=(
                    f"The secret associated with the primary RDS DB instance: {database.arn}"
                ),
                tags=[{"Key": "aws:rds:primaryDBInstanceArn", "Value": database.arn}],
                kms_key_id=key,
            )
            # moto's own MasterUserSecret would hold a fixed password; this one holds a random one
            managed = MasterUserSecret.__new__(MasterUserSecret)
            managed.resource, managed.kms, managed.secretsmanager = (
                database,
                backend.kms,
                backend.secretsmanager,
            )
            managed.secret, managed._status = secret, "active"
            database.manage_master_user_password = True
            database.master_user_secret = managed
            database.master_user_password = None
        return database

    def attr(self: Any, name: str) -> Any:
        if name == "MasterUserSecret.SecretArn" and getattr(self, "master_user_secret", None):
            return self.master_user_secret.secret_arn
        if name == "DBInstanceArn":
            return self.arn
        return original_attr(self, name)

    return [
        mock.patch.object(DBInstance, "create_from_cloudformation_json", classmethod(create)),
        mock.patch.object(DBInstance, "get_cfn_attribute", attr),
    ]


def _rds_instance_properties(ctx: Context) -> list[Patch]:
    from moto.rds.models import DBInstance, DBParameterGroup  # noqa: PLC0415

    original = DBInstance.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def protect(database: Any, props: dict[str, Any], account: str, region: str) -> None:
        database.deletion_protection = _truthy(props.get("DeletionProtection", False))

    def create(
        cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any
    ) -> Any:
        props = dict(cfn["Properties"])
        # moto's CloudFormation gives every engine MySQL's port 3306
        props.setdefault("Port", DBInstance.default_port(str(props.get("Engine", "")).lower()))
        database = original(cls, name, {**cfn, "Properties": props}, account, region, **kw)
        # and ignores DeletionProtection, which AWS enforces on stack deletion too
        protect(database, props, account, region)
        return database

    return [
        # an update changes deletion protection only (the rest would need a real modification)
        mock.patch.object(
            DBInstance, "update_from_cloudformation_json", _updated_in_place(protect), create=True
        ),
        # without it moto's Ref hands the group object itself to the DB instance, which then fails
        mock.patch.object(
            DBParameterGroup, "physical_resource_id", property(lambda self: self.name), create=True
        ),
        mock.patch.object(DBInstance, "create_from_cloudformation_json", classmethod(create)),
    ]


def _rds_snapshot_on_delete(ctx: Context) -> list[Patch]:
    from moto.cloudformation.parsing import ResourceMap  # noqa: PLC0415
    from moto.rds.models import DBInstance  # noqa: PLC0415

    original = ResourceMap._delete_resource

    def delete_resource(self: Any, parsed: Any, resource_json: dict[str, Any]) -> None:
        if isinstance(parsed, DBInstance) and resource_json.get("DeletionPolicy") == "Snapshot":
            # CloudFormation's DeletionPolicy Snapshot: a final snapshot named after the resource
            logical = str(getattr(parsed, "logical_resource_id", "db")).lower()
            snapshot = f"{logical}-final-{uuid.uuid4().hex[:8]}"
            parsed.backend.delete_db_instance(
                parsed.db_instance_identifier, final_db_snapshot_identifier=snapshot
            )
            return
        original(self, parsed, resource_json)

    return [mock.patch.object(ResourceMap, "_delete_resource", delete_resource)]


PROVIDER_LIST: tuple[Provider, ...] = (
    Provider(
        "language-extensions",
        (
            "The AWS::LanguageExtensions transform (Fn::ForEach) is expanded by the emulator, "
            "which moto ignores."
        ),
        _language_extensions,
    ),
    Provider(
        "stack-failure-status",
        (
            "A resource that fails puts its stack in *_FAILED with the resource's reason; "
            "nothing is rolled back, so created resources stay."
        ),
        _stack_failure_status,
    ),
    Provider(
        "stack-delete-order",
        (
            "Stack deletion deletes each resource after everything that depends on it, skips "
            "retained ones and keeps what a failed resource needs, with per-resource events."
        ),
        cfn.stack_delete_order,
    ),
    Provider(
        "stack-resource-detail",
        (
            "DescribeStackResource(s) give each resource's own status and its Metadata with "
            "intrinsics resolved (as cfn-init reads it)."
        ),
        cfn.stack_resource_detail,
    ),
    Provider(
        "no-value-in-lists",
        "List elements that resolve to AWS::NoValue are dropped, as CloudFormation drops them.",
        cfn.no_value_in_lists,
    ),
    Provider(
        "stack-parameter-values",
        (
            "DescribeStacks shows parameters as they were given: lists comma-joined, SSM-typed "
            "ones by parameter name, NoEcho ones masked."
        ),
        cfn.stack_parameter_values,
    ),
    Provider(
        "resume-failed-stack",
        (
            "Change sets diff against the resources that exist, so that one on a stack left "
            "*_FAILED (rollback off) adds what failed or was never reached, and nothing else."
        ),
        cfn.resume_failed_stack,
    ),
    Provider(
        "change-set-replacement",
        (
            "Change sets say whether a Modify replaces the resource, from the create-only "
            "properties in cfn-lint's resource schemas."
        ),
        cfn.change_set_replacement,
    ),
    Provider(
        "empty-change-set",
        (
            "A change set without changes is created FAILED with AWS's reason instead of being "
            "refused."
        ),
        cfn.empty_change_set,
    ),
    Provider(
        "change-set-outputs",
        "Executing a change set gives the stack its new template, parameters and outputs.",
        _change_set_outputs,
    ),
    Provider(
        "kms-key-properties",
        (
            "KMS keys take their tags, JSON key policy (or the default one) and rotation setting "
            "from the template."
        ),
        _kms_key_properties,
    ),
    Provider(
        "kms-generate-data-key-pair",
        (
            "KMS GenerateDataKeyPair (NIST P-256/384/521) runs in the emulator with a locally "
            "generated key pair."
        ),
        _kms_generate_data_key_pair,
    ),
    Provider(
        "secretsmanager-secret",
        (
            "Secrets Manager secrets of the templates are created in the emulated Secrets "
            "Manager (GenerateSecretString gives a random 32-character value)."
        ),
        _secretsmanager_secret,
    ),
    Provider(
        "secretsmanager-resource-policy",
        "Secret resource policies are stored but not enforced.",
        _secretsmanager_resource_policy,
    ),
    Provider(
        "keygen-custom-resource",
        (
            "The key-generation custom resource runs tsm_infra.functions.keygen in-process (the "
            "Lambda function is created but never run)."
        ),
        _keygen_custom_resource,
    ),
    Provider(
        "ssm-parameter-attributes",
        "SSM parameters answer GetAtt Value and Type.",
        _ssm_parameter_attributes,
    ),
    Provider(
        "ram-share",
        (
            "RAM resource shares of SSM parameters with other accounts are created in the "
            "emulated RAM."
        ),
        _ram_share,
    ),
    Provider(
        "ram-invitations",
        "RAM invitations to accounts outside an organization are emulated (list and accept).",
        _ram_invitations,
    ),
    Provider(
        "ssm-cross-account-read",
        (
            "Reading a peer's RAM-shared SSM parameter by ARN is emulated, allowed only through "
            "an active (accepted) share."
        ),
        _ssm_cross_account_read,
    ),
    Provider(
        "sub-dotted-attributes",
        "Fn::Sub reads attributes whose names hold dots (${Database.Endpoint.Address}).",
        _sub_dotted_attributes,
    ),
    Provider(
        "fn-cidr",
        "Fn::Cidr is computed by the emulator.",
        _fn_cidr,
    ),
    Provider(
        "security-group-egress",
        "Stand-alone security-group egress rules are created in the emulated EC2.",
        _security_group_egress,
    ),
    Provider(
        "network-deletion",
        (
            "Deleting a stack deletes its routes, route tables, gateways, NAT gateways, flow "
            "logs, ingress rules, endpoints, addresses, listeners, target groups and its "
            "instances' network interfaces."
        ),
        _network_deletion,
    ),
    Provider(
        "eip-public-ip",
        (
            "Elastic IPs answer GetAtt PublicIp with their emulated address (no traffic leaves "
            "from it)."
        ),
        _eip_public_ip,
    ),
    Provider(
        "nlb-type-and-tls",
        (
            "Network load balancers keep their type (so they take TLS listeners) and attributes; "
            "nothing listens or forwards traffic."
        ),
        _nlb_type_and_tls,
    ),
    Provider(
        "acm-certificate",
        (
            "ACM certificates are issued at once when their hosted zone is in the account and "
            "its name holds the domain (no DNS validation happens)."
        ),
        _acm_certificate,
    ),
    Provider(
        "cloudmap",
        "Cloud Map namespaces, services and instances are created in the emulated Cloud Map.",
        _cloudmap,
    ),
    Provider(
        "cloudwatch-alarm",
        "CloudWatch alarms are created but never evaluated.",
        _cloudwatch_alarm,
    ),
    Provider(
        "rds-instance-properties",
        (
            "DB instances get their parameter group by Ref, their engine's default port and "
            "their deletion protection, which an update changes in place."
        ),
        _rds_instance_properties,
    ),
    Provider(
        "rds-managed-master-secret",
        (
            "The database's managed master password is a random value in the emulated Secrets "
            "Manager; no database runs."
        ),
        _rds_managed_master_secret,
    ),
    Provider(
        "rds-snapshot-on-delete",
        "DeletionPolicy Snapshot of the database leaves an (empty) emulated DB snapshot.",
        _rds_snapshot_on_delete,
    ),
)

PROVIDERS: tuple[str, ...] = tuple(p.name for p in PROVIDER_LIST)
