"""ACM: certificates issued at once when their hosted zone can hold the validation record."""

from __future__ import annotations

import uuid
from typing import Any

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.resources import Emulated, EmulatedType, Request, ResourceFailed
from tsm_infra.emulator.services.common import tags, types


@provider(
    "acm-certificate",
    emulates="ACM certificates are issued at once when their hosted zone is in the account and "
    "its name holds the domain (no DNS validation happens).",
)
def acm_certificate(ctx: Context) -> Installed:
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
            tags(props.get("Tags")),
        )
        certificate = backend.get_certificate(arn)
        certificate.status = "ISSUED"  # DNS validation in the account's own zone succeeds

        def delete() -> None:
            backend.delete_certificate(arn)

        return Emulated(arn, {}, delete)

    return [types(AWS__CertificateManager__Certificate=EmulatedType(create))]
