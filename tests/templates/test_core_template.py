"""tsm_infra/cfn/core.yaml: network, load balancer, TLS, database, node and discovery properties."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tsm_infra.resource_graph import substitute
from tsm_infra.templates import template_body, template_path

TEMPLATE_PATH = template_path("core")
INLINE_BODY_LIMIT = 51_200

pytestmark = pytest.mark.skipif(not TEMPLATE_PATH.exists(), reason="core.yaml not written yet")


def _decode(text: str) -> dict[str, Any]:
    from cfnlint.decode.decode import decode_str

    template, errors = decode_str(text)
    assert not errors, errors
    return json.loads(json.dumps(template))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _decode(TEMPLATE_PATH.read_text())


def _select(node: Any, parameters: dict[str, list[str]]) -> Any:
    """Resolve Fn::Select of a literal index from a list parameter, as CloudFormation does."""
    if isinstance(node, dict):
        select = node.get("Fn::Select")
        if isinstance(select, list) and isinstance(select[0], str) and select[0].isdigit():
            listed = select[1]
            if isinstance(listed, dict) and listed.get("Ref") in parameters:
                return parameters[listed["Ref"]][int(select[0])]
        return {key: _select(item, parameters) for key, item in node.items()}
    if isinstance(node, list):
        return [_select(item, parameters) for item in node]
    return node


def expand(resources: dict[str, Any], parameters: dict[str, list[str]]) -> dict[str, Any]:
    """Resources with every Fn::ForEach expanded for the given list parameters."""
    expanded: dict[str, Any] = {}
    for key, value in resources.items():
        if not key.startswith("Fn::ForEach::"):
            expanded[key] = value
            continue
        name, collection, body = value
        items = parameters[collection["Ref"]] if isinstance(collection, dict) else collection
        for item in items:
            for logical_id, resource in substitute(body, name, item).items():
                assert logical_id not in expanded, f"{key}: {logical_id} twice"
                expanded[logical_id] = _select(resource, parameters)
    return expanded


SAMPLE_LISTS = {
    "SdkClientCidrs": ["198.51.100.0/24", "203.0.113.7/32"],
    "SdkClientIndices": ["0", "1"],
    "PeerEgressCidrs": ["192.0.2.10/32", "192.0.2.20/32"],
    "PeerEgressIndices": ["0", "1"],
}


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return expand(template["Resources"], SAMPLE_LISTS)


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


# ---------------------------------------------------------------- network


def test_vpc_spans_two_azs_with_public_and_private_subnets(resources: dict[str, Any]) -> None:
    subnets = _of_type(resources, "AWS::EC2::Subnet")
    assert sorted(subnets) == ["PrivateSubnet1", "PrivateSubnet2", "PublicSubnet1", "PublicSubnet2"]
    azs = {
        name: s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for name, s in subnets.items()
    }
    assert azs == {"PublicSubnet1": 0, "PublicSubnet2": 1, "PrivateSubnet1": 0, "PrivateSubnet2": 1}
    for name, subnet in subnets.items():
        assert subnet["Properties"].get("MapPublicIpOnLaunch", False) is False, name


def test_nat_gateways_leave_from_the_kms_stacks_addresses(resources: dict[str, Any]) -> None:
    nat1 = resources["NatGateway1"]["Properties"]
    nat2 = resources["NatGateway2"]
    assert nat1["AllocationId"] == {"Fn::Select": [0, {"Ref": "EgressAllocationIds"}]}
    assert nat2["Properties"]["AllocationId"] == {"Fn::Select": [1, {"Ref": "EgressAllocationIds"}]}
    assert nat2["Condition"] == "TwoNatGateways"
    route2 = resources["PrivateDefaultRoute2"]["Properties"]["NatGatewayId"]
    assert route2 == {"Fn::If": ["TwoNatGateways", {"Ref": "NatGateway2"}, {"Ref": "NatGateway1"}]}


def test_flow_logs_go_to_an_encrypted_log_group(resources: dict[str, Any]) -> None:
    flow = resources["FlowLog"]["Properties"]
    assert (flow["ResourceType"], flow["TrafficType"]) == ("VPC", "ALL")
    group = resources["FlowLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Ref": "KmsKeyArn"}
    for name, log_group in _of_type(resources, "AWS::Logs::LogGroup").items():
        assert log_group["Properties"]["KmsKeyId"] == {"Ref": "KmsKeyArn"}, name
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        # the KMS stack's key policy lets CloudWatch Logs use the key for /tsm/<cluster>/ only
        name_template, variables = log_group["Properties"]["LogGroupName"]["Fn::Sub"]
        assert name_template.startswith("/tsm/${ClusterName}/node${NodeIndex}/")
        # unique per stack, so that a retained group never blocks a later deployment
        assert name_template.endswith("-${StackUuid}")
        assert variables["StackUuid"] == {
            "Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]
        }


def test_vpc_endpoints_are_optional(resources: dict[str, Any]) -> None:
    endpoints = _of_type(resources, "AWS::EC2::VPCEndpoint")
    assert {
        e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1] for e in endpoints.values()
    } >= {
        "secretsmanager",
        "ssm",
        "kms",
        "logs",
    }
    assert {e["Condition"] for e in endpoints.values()} == {"WithVpcEndpoints"}


# ---------------------------------------------------------------- who may reach what


def _ingress(resources: dict[str, Any], group: str) -> list[dict[str, Any]]:
    rules = [
        r["Properties"]
        for r in _of_type(resources, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Ref": group}
    ]
    inline = resources[group]["Properties"].get("SecurityGroupIngress", [])
    return rules + inline


def _port(rule: dict[str, Any], key: str) -> Any:
    value = rule[key]
    return tuple(value["Fn::FindInMap"][1:]) if isinstance(value, dict) else value


def test_sdk_only_from_client_cidrs_and_mpc_only_from_peers(resources: dict[str, Any]) -> None:
    rules = _ingress(resources, "LoadBalancerSecurityGroup")
    by_port: dict[Any, set[str]] = {}
    for rule in rules:
        assert _port(rule, "FromPort") == _port(rule, "ToPort")
        by_port.setdefault(_port(rule, "FromPort"), set()).add(rule["CidrIp"])
    assert by_port == {
        ("Public", "Sdk"): {"198.51.100.0/24", "203.0.113.7/32"},
        ("Public", "Mpc"): {"192.0.2.10/32", "192.0.2.20/32", "0.0.0.0/0"},
    }
    # the open rule exists only when the spec lets mobile players in
    open_rules = [
        name
        for name, r in _of_type(resources, "AWS::EC2::SecurityGroupIngress").items()
        if r["Properties"].get("CidrIp") == "0.0.0.0/0"
    ]
    assert [resources[name].get("Condition") for name in open_rules] == ["OpenToMobilePlayers"]


def test_node_and_database_are_reachable_only_through_the_chain(resources: dict[str, Any]) -> None:
    node_rules = _ingress(resources, "NodeSecurityGroup")
    assert [r["SourceSecurityGroupId"] for r in node_rules] == [
        {"Ref": "LoadBalancerSecurityGroup"}
    ]
    database_rules = _ingress(resources, "DatabaseSecurityGroup")
    assert [(r["SourceSecurityGroupId"], r["FromPort"]) for r in database_rules] == [
        ({"Ref": "NodeSecurityGroup"}, 5432)
    ]
    for group in ("LoadBalancerSecurityGroup", "NodeSecurityGroup", "DatabaseSecurityGroup"):
        # an explicit egress list replaces the default allow-all
        assert resources[group]["Properties"]["SecurityGroupEgress"], group


def test_port_numbers_follow_the_tsm(template: dict[str, Any]) -> None:
    assert template["Mappings"]["Ports"] == {
        "Node": {"Sdk": 8080, "Mpc": 9000, "Management": 14401},
        "Public": {"Sdk": 443, "Mpc": 9000},
    }


# ---------------------------------------------------------------- load balancer, DNS, TLS


def test_network_load_balancer_with_tls_for_sdk_and_tcp_for_mpc(resources: dict[str, Any]) -> None:
    lb = resources["LoadBalancer"]["Properties"]
    assert (lb["Type"], lb["Scheme"]) == ("network", "internet-facing")
    assert lb["SecurityGroups"] == [{"Ref": "LoadBalancerSecurityGroup"}]
    sdk = resources["SdkListener"]["Properties"]
    assert sdk["Protocol"] == "TLS"
    assert sdk["SslPolicy"].startswith("ELBSecurityPolicy-TLS13-1-2")
    assert sdk["Certificates"] == [{"CertificateArn": {"Ref": "Certificate"}}]
    assert sdk["DefaultActions"][0]["TargetGroupArn"] == {"Ref": "SdkTargetGroup"}
    mpc = resources["MpcListener"]["Properties"]
    assert mpc["Protocol"] == "TCP"
    assert mpc["DefaultActions"][0]["TargetGroupArn"] == {"Ref": "MpcTargetGroup"}
    for name in ("SdkTargetGroup", "MpcTargetGroup"):
        group = resources[name]["Properties"]
        assert (group["HealthCheckProtocol"], group["HealthCheckPath"]) == ("HTTP", "/ping")


def test_certificate_is_validated_by_dns_and_the_name_aliases_the_nlb(
    resources: dict[str, Any],
) -> None:
    cert = resources["Certificate"]["Properties"]
    assert cert["ValidationMethod"] == "DNS"
    assert cert["DomainValidationOptions"] == [
        {"DomainName": {"Ref": "DnsName"}, "HostedZoneId": {"Ref": "HostedZoneId"}}
    ]
    record = resources["DnsRecord"]["Properties"]
    assert (record["Type"], record["Name"]) == ("A", {"Ref": "DnsName"})
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}


# ---------------------------------------------------------------- the key-share database


def test_database_is_private_encrypted_tls_only_backed_up_and_kept(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    database = resources["Database"]
    assert database["DeletionPolicy"] == "Snapshot"
    assert database["UpdateReplacePolicy"] == "Snapshot"
    props = database["Properties"]
    assert props["Engine"] == "postgres"
    assert props["PubliclyAccessible"] is False
    assert props["StorageEncrypted"] is True
    assert props["KmsKeyId"] == {"Ref": "KmsKeyArn"}
    assert props["ManageMasterUserPassword"] is True
    assert props["MasterUserSecret"] == {"KmsKeyId": {"Ref": "KmsKeyArn"}}
    assert "MasterUserPassword" not in props
    assert props["MultiAZ"] == {"Ref": "DbMultiAz"}
    assert props["DeletionProtection"] == {"Ref": "DeletionProtection"}
    assert template["Parameters"]["DeletionProtection"]["Default"] == "true"
    assert props["BackupRetentionPeriod"] == {"Ref": "DbBackupRetentionDays"}
    assert template["Parameters"]["DbBackupRetentionDays"]["MinValue"] >= 7
    assert int(template["Parameters"]["DbEngineVersion"]["Default"]) >= 16
    subnets = resources["DatabaseSubnetGroup"]["Properties"]["SubnetIds"]
    assert subnets == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    parameters = resources["DatabaseParameters"]["Properties"]["Parameters"]
    assert parameters["rds.force_ssl"] == "1"


# ---------------------------------------------------------------- the node


def test_launch_template_requires_imdsv2_encrypts_and_has_no_ssh(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    data = resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert "KeyName" not in data
    volume = data["BlockDeviceMappings"][0]["Ebs"]
    assert volume["Encrypted"] is True
    assert data["IamInstanceProfile"] == {"Name": {"Ref": "NodeInstanceProfileName"}}
    assert data["SecurityGroupIds"] == [{"Ref": "NodeSecurityGroup"}]
    ami = template["Parameters"]["LatestAmiId"]
    assert ami["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert ami["Default"].startswith("/aws/service/ami-amazon-linux-latest/al2023-ami-")


def test_node_is_an_auto_scaling_group_of_one_that_signals(resources: dict[str, Any]) -> None:
    group = resources["NodeGroup"]
    props = group["Properties"]
    assert (props["MinSize"], props["MaxSize"], props["DesiredCapacity"]) == ("1", "1", "1")
    assert props["VPCZoneIdentifier"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    assert props["TargetGroupARNs"] == [{"Ref": "SdkTargetGroup"}, {"Ref": "MpcTargetGroup"}]
    assert props["HealthCheckType"] == "ELB"
    assert group["CreationPolicy"]["ResourceSignal"]["Count"] == 1
    assert group["CreationPolicy"]["ResourceSignal"]["Timeout"].startswith("PT")
    user_data = json.dumps(resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"])
    assert "cfn-signal" in user_data
    assert "--resource NodeGroup" in user_data


def test_boot_writes_the_settings_the_node_module_reads(resources: dict[str, Any]) -> None:
    init = resources["LaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    files = init["files"]["files"]
    text, variables = files["/etc/tsm/node.json"]["content"]["Fn::Sub"]
    sample = re.sub(r"\$\{[A-Za-z0-9:.]+\}", "0", text)
    settings = json.loads(sample)
    named = json.loads(re.sub(r'(?<!")(\$\{[A-Za-z0-9:.]+\})', "0", text))
    assert set(settings) >= {"cluster", "index", "secrets", "peers", "database", "ports", "layout"}
    from tsm_infra.node.tsm_node import SECRET_KEYS

    assert set(settings["secrets"]) == set(SECRET_KEYS)
    # the TSM connects as its own role; the master secret is only for the database step
    assert named["secrets"]["database_password"] == "${DatabasePasswordSecretArn}"
    assert named["database"]["user"] == "tsm_node"
    assert named["secrets"]["database_master"] == "${DatabaseSecret}"
    assert variables["DatabaseSecret"] == {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}
    # secret values never pass through the template: only ARNs and names
    assert "resolve:secretsmanager" not in json.dumps(resources)
    commands = init["start"]["commands"]
    assert commands["02-node"]["command"] == (
        "python3 /opt/tsm/tsm_node.pyz bootstrap /etc/tsm/node.json"
    )


def test_what_deploy_sends_fits_the_inline_body_limit() -> None:
    assert len(template_body("core").encode()) < INLINE_BODY_LIMIT


# ---------------------------------------------------------------- discovery, alarms, outputs


def test_cloud_map_registers_the_sdk_and_mpc_endpoints(resources: dict[str, Any]) -> None:
    registration = resources["NodeRegistration"]["Properties"]
    assert registration["ServiceId"] == {"Ref": "NodeService"}
    assert set(registration["InstanceAttributes"]) >= {"SDK_URL", "MPC_ADDRESS"}
    assert resources["NodeService"]["Properties"]["NamespaceId"] == {"Ref": "Namespace"}


def test_alarms_watch_targets_and_the_database(resources: dict[str, Any]) -> None:
    alarms = _of_type(resources, "AWS::CloudWatch::Alarm")
    metrics = sorted(
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()
    )
    assert metrics == [
        ("AWS/NetworkELB", "HealthyHostCount"),
        ("AWS/NetworkELB", "HealthyHostCount"),
        ("AWS/RDS", "CPUUtilization"),
        ("AWS/RDS", "FreeStorageSpace"),
    ]


def test_outputs_name_endpoints_and_never_credentials(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) >= {
        "SdkEndpoint",
        "MpcEndpoint",
        "LoadBalancerDnsName",
        "DatabaseEndpoint",
        "AutoScalingGroupName",
        "NamespaceId",
    }
    text = json.dumps(outputs)
    assert "MasterUserSecret" not in text
    assert "resolve:" not in text
    for name, parameter in template["Parameters"].items():
        assert "NoEcho" not in parameter, f"{name}: the Core stack takes no secret"


# ---------------------------------------------------------------- sizes and creation order


def fn_cidr(block: str, count: int, host_bits: int) -> list[str]:
    """Fn::Cidr as CloudFormation documents it: `count` blocks with `host_bits` host bits."""
    import ipaddress

    network = ipaddress.ip_network(block)
    subnets = network.subnets(new_prefix=32 - host_bits)
    return [str(next(subnets)) for _ in range(count)]


def test_fn_cidr_model_matches_the_documented_example() -> None:
    # the Fn::Cidr reference: cidrBits 8 gives /24s
    assert fn_cidr("192.168.0.0/24", 6, 5) == [f"192.168.0.{i * 32}/27" for i in range(6)]
    assert fn_cidr("10.0.0.0/16", 2, 8) == ["10.0.0.0/24", "10.0.1.0/24"]


def test_subnets_are_four_disjoint_slash_20s_of_the_vpc(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    import ipaddress

    vpc = template["Parameters"]["VpcCidr"]
    assert re.fullmatch(vpc["AllowedPattern"], vpc["Default"])
    assert not re.fullmatch(vpc["AllowedPattern"], "10.80.0.0/20")  # too small for four /20s
    blocks = []
    for name in ("PublicSubnet1", "PublicSubnet2", "PrivateSubnet1", "PrivateSubnet2"):
        index, cidr_fn = resources[name]["Properties"]["CidrBlock"]["Fn::Select"]
        block, count, host_bits = cidr_fn["Fn::Cidr"]
        assert block == {"Ref": "VpcCidr"}, name
        blocks.append(ipaddress.ip_network(fn_cidr(vpc["Default"], count, host_bits)[index]))
    assert [b.prefixlen for b in blocks] == [20, 20, 20, 20]
    assert len({str(b) for b in blocks}) == 4
    assert all(b.subnet_of(ipaddress.ip_network(vpc["Default"])) for b in blocks)  # type: ignore[arg-type]


def _depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return set(value if isinstance(value, list) else [value])


def test_the_load_balancer_waits_for_the_internet_gateway_and_public_routes(
    resources: dict[str, Any],
) -> None:
    assert _depends_on(resources["LoadBalancer"]) >= {
        "InternetGatewayAttachment",
        "PublicDefaultRoute",
        "PublicSubnet1Routes",
        "PublicSubnet2Routes",
    }


def test_the_node_waits_for_its_private_routes(resources: dict[str, Any]) -> None:
    assert _depends_on(resources["NodeGroup"]) >= {
        "NodeCorePolicy",
        "PrivateDefaultRoute1",
        "PrivateDefaultRoute2",
        "PrivateSubnet1Routes",
        "PrivateSubnet2Routes",
    }


# ---------------------------------------------------------------- logical ids


COLLIDING = ["52.1.23.4/32", "52.12.3.4/32"]  # the same text once non-alphanumerics are gone


def test_rules_are_named_by_position_so_similar_cidrs_do_not_collide(
    template: dict[str, Any],
) -> None:
    lists = {
        "SdkClientCidrs": COLLIDING,
        "SdkClientIndices": ["0", "1"],
        "PeerEgressCidrs": COLLIDING,
        "PeerEgressIndices": ["0", "1"],
    }
    rules = {
        name: r["Properties"]["CidrIp"]
        for name, r in expand(template["Resources"], lists).items()
        if name.startswith(("SdkFrom", "MpcFrom")) and "Condition" not in r
    }
    assert rules == {
        "SdkFrom0": COLLIDING[0],
        "SdkFrom1": COLLIDING[1],
        "MpcFrom0": COLLIDING[0],
        "MpcFrom1": COLLIDING[1],
    }


def test_the_emulators_transform_expands_the_colliding_pair(template: dict[str, Any]) -> None:
    from tsm_infra.emulator.engine.langext import expand as emulator_expand

    parameters = {
        "SdkClientCidrs": ",".join(COLLIDING),
        "SdkClientIndices": "0,1",
        "PeerEgressCidrs": ",".join(COLLIDING),
        "PeerEgressIndices": "0,1",
    }
    expanded = emulator_expand(template, parameters)["Resources"]
    for prefix in ("SdkFrom", "MpcFrom"):
        assert expanded[f"{prefix}1"]["Properties"]["CidrIp"]["Fn::Select"][0] == "1"
        assert f"{prefix}2" not in expanded


def test_cfn_lints_transform_accepts_the_colliding_pair() -> None:
    # cfn-lint expands Fn::ForEach with the parameters' values: give it the colliding pair
    from cfnlint.api import lint as cfn_lint

    text = TEMPLATE_PATH.read_text()
    for name in ("SdkClientCidrs", "PeerEgressCidrs"):
        declared = f"  {name}:\n    Type: CommaDelimitedList\n"
        assert declared in text
        text = text.replace(declared, declared + f'    Default: "{",".join(COLLIDING)}"\n', 1)
    positions = '(one rule each, named by position).\n    Default: "0'
    assert text.count(positions) == 2
    text = text.replace(positions, positions + ",1")
    errors = [m for m in cfn_lint(text, regions=["eu-west-1"]) if m.rule.id.startswith("E")]
    assert [str(m) for m in errors] == []


def test_the_plan_passes_one_position_per_cidr() -> None:
    from tests.helpers import VALID_SPEC
    from tsm_infra.plan import build_plan
    from tsm_infra.spec import load_spec_text

    cluster = load_spec_text(VALID_SPEC, "spec.yaml")
    for step in build_plan(cluster).steps():
        if step.kind != "core":
            continue
        node = cluster.nodes[step.node_index]
        assert step.parameters["SdkClientIndices"] == ",".join(
            str(i) for i in range(len(node.sdk_client_cidrs))
        )
        peers = [p for p in cluster.nodes if p.index != node.index]
        egress = sum(p.nat_gateways for p in peers)
        assert step.parameters["PeerEgressIndices"] == ",".join(str(i) for i in range(egress))


# ---------------------------------------------------------------- the image's registry


@pytest.mark.parametrize(
    ("image", "arn", "port"),
    [
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/tsm-node:72.0.0",
            "arn:aws:ecr:eu-west-1:123456789012:repository/acme/tsm-node",
            "443",
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/tsm@sha256:" + "a" * 64,
            "arn:aws-us-gov:ecr:us-gov-west-1:123456789012:repository/tsm",
            "443",
        ),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/tsm-node:72.0.0",
            "arn:aws-cn:ecr:cn-north-1:123456789012:repository/tsm-node",
            "443",
        ),
        ("registry.vendor.example:5000/tsm-node:72.0.0", "", "5000"),
        ("localhost:5000/tsm-node:72.0.0", "", "5000"),
        ("acme/tsm-node:72.0.0", "", "443"),
        ("tsm-node:72.0.0", "", "443"),
    ],
)
def test_the_plan_reads_the_ecr_repository_and_registry_port(
    image: str, arn: str, port: str
) -> None:
    from tsm_infra.images import registry_port
    from tsm_infra.plan import ecr_repository_arn

    assert (ecr_repository_arn(image), registry_port(image)) == (arn, port)


def test_ecr_pull_permissions_exist_only_for_an_ecr_image(resources: dict[str, Any]) -> None:
    statements = resources["NodeCorePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    conditional = {
        s["Fn::If"][1]["Sid"]: (s["Fn::If"][0], s["Fn::If"][1], s["Fn::If"][2])
        for s in statements
        if "Fn::If" in s
    }
    login_if, login, login_else = conditional["LogInToEcr"]
    pull_if, pull, pull_else = conditional["PullTheImageFromEcr"]
    assert (login_if, pull_if) == ("PullsFromEcr", "PullsFromEcr")
    assert login_else == pull_else == {"Ref": "AWS::NoValue"}
    assert (login["Action"], login["Resource"]) == ("ecr:GetAuthorizationToken", "*")
    assert sorted(pull["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert pull["Resource"] == {"Ref": "EcrRepositoryArn"}


def test_node_egress_reaches_a_registry_on_its_own_port(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    rule = resources["NodeToRegistry"]
    assert rule["Condition"] == "RegistryOnItsOwnPort"
    props = rule["Properties"]
    assert props["GroupId"] == {"Ref": "NodeSecurityGroup"}
    assert props["FromPort"] == props["ToPort"] == {"Ref": "RegistryPort"}
    # not for the ports the node reaches already (a duplicate rule fails the create)
    condition = json.dumps(template["Conditions"]["RegistryOnItsOwnPort"])
    open_ports = [
        rule["FromPort"]
        for rule in resources["NodeSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    ]
    assert open_ports == [443, {"Fn::FindInMap": ["Ports", "Public", "Mpc"]}]
    assert '"Fn::Equals": [{"Ref": "RegistryPort"}, 443]' in condition
    assert '"Fn::Equals": [{"Ref": "RegistryPort"}, 9000]' in condition
