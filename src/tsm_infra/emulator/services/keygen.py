"""The key-generation custom resource, run in-process through tsm_infra.functions.keygen."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any
from unittest import mock

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.resources import (
    CUSTOM,
    TYPES,
    Emulated,
    EmulatedType,
    Request,
    ResourceFailed,
)


def _stringify(value: Any) -> Any:
    # CloudFormation hands custom resources every scalar property as a string
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


@provider(
    "keygen-custom-resource",
    emulates="The key-generation custom resource runs tsm_infra.functions.keygen in-process (the "
    "Lambda function is created but never run).",
)
def keygen_custom_resource(ctx: Context) -> Installed:
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
