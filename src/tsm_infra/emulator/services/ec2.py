"""EC2: stand-alone egress rules, Elastic IPs, and deleting what a stack's network holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

from tsm_infra.emulator.registry import Context, Installed, Patch, provider
from tsm_infra.emulator.resources import Emulated, EmulatedType, Request
from tsm_infra.emulator.services.common import types


@provider(
    "security-group-egress",
    emulates="Stand-alone security-group egress rules are created in the emulated EC2.",
)
def security_group_egress(ctx: Context) -> Installed:
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

    return [types(AWS__EC2__SecurityGroupEgress=EmulatedType(create))]


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


@provider(
    "network-deletion",
    emulates="Deleting a stack deletes its routes, route tables, gateways, NAT gateways, flow "
    "logs, ingress rules, endpoints, addresses, listeners, target groups and its "
    "instances' network interfaces.",
)
def network_deletion(ctx: Context) -> Installed:
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


@provider(
    "eip-public-ip",
    emulates="Elastic IPs answer GetAtt PublicIp with their emulated address (no traffic leaves "
    "from it).",
)
def eip_public_ip(ctx: Context) -> Installed:
    from moto.ec2.models.elastic_ip_addresses import ElasticAddress  # noqa: PLC0415

    original = ElasticAddress.get_cfn_attribute

    def attr(self: Any, name: str) -> Any:
        if name == "PublicIp":
            return self.public_ip
        return original(self, name)

    return [mock.patch.object(ElasticAddress, "get_cfn_attribute", attr)]
