"""Elastic Load Balancing v2: network load balancers with their type, attributes and names."""

from __future__ import annotations

from typing import Any
from unittest import mock

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.services.common import tags, updated_in_place

# AWS's fixed hosted zones of network load balancers in the regions the examples use
_NLB_ZONES = {
    "eu-west-1": "Z2IFOLAFXWLO4F",
    "eu-central-1": "Z3F0SRJ5LGBH90",
    "us-east-1": "Z26RNL4JYFTOTI",
}


@provider(
    "nlb-type-and-tls",
    emulates="Network load balancers keep their type (so they take TLS listeners) and attributes; "
    "nothing listens or forwards traffic.",
)
def nlb_type_and_tls(ctx: Context) -> Installed:
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
            tags=tags(props.get("Tags")) or None,
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
            updated_in_place(set_attributes),
            create=True,
        ),
        mock.patch.object(FakeTargetGroup, "get_cfn_attribute", tg_attr, create=True),
    ]
