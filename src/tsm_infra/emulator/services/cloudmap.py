"""Cloud Map: HTTP namespaces, services and instances in the emulated service discovery."""

from __future__ import annotations

import uuid
from typing import Any

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.resources import Emulated, EmulatedType, Request
from tsm_infra.emulator.services.common import tags, types


@provider(
    "cloudmap",
    emulates="Cloud Map namespaces, services and instances are created in the emulated Cloud Map.",
)
def cloudmap(ctx: Context) -> Installed:
    from moto.servicediscovery.models import servicediscovery_backends  # noqa: PLC0415

    def namespace(req: Request) -> Emulated:
        backend: Any = servicediscovery_backends[req.account][req.region]
        p = req.properties
        operation = backend.create_http_namespace(
            str(p["Name"]), str(uuid.uuid4()), p.get("Description", ""), tags(p.get("Tags"))
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
            tags=tags(p.get("Tags")),
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
        types(
            AWS__ServiceDiscovery__HttpNamespace=EmulatedType(namespace),
            AWS__ServiceDiscovery__Service=EmulatedType(service),
            AWS__ServiceDiscovery__Instance=EmulatedType(instance),
        )
    ]
