"""What AWS would refuse is refused by `validate`, offline: specs as real users write them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from tsm_infra.cli import cli
from tsm_infra.limits import (
    CUSTOM_RESOURCE_RESPONSE_BYTES,
    SSM_ADVANCED_VALUE_BYTES,
    STACK_NAME_LENGTH,
    is_graviton,
)
from tsm_infra.spec import json_schema

# Lines: 1 cluster, 4 image, 7 region, 9 role_name, 10 sdk_client_cidrs, nodes at 12, 16, 20
# (account 13/17/21, dns_name 14/18/22, hosted_zone_id 15/19/23).
BASE = """\
cluster: acme-vault
threshold: 1
tsm:
  image: registry.example.com/acme/tsm-node:72.0.0
  sdk_applications: [payments, treasury]
defaults:
  region: eu-west-1
  access:
    role_name: TsmDeployer
  sdk_client_cidrs: [198.51.100.0/24]
nodes:
  - index: 0
    account: "111111111111"
    dns_name: node0.vault.acme.example
    hosted_zone_id: Z01111111111111111111
  - index: 1
    account: "222222222222"
    dns_name: node1.vault.acme.example
    hosted_zone_id: Z02222222222222222222
  - index: 2
    account: "333333333333"
    dns_name: node2.vault.acme.example
    hosted_zone_id: Z03333333333333333333
"""
NODE0_END = "    hosted_zone_id: Z01111111111111111111\n"
NODE2_END = "    hosted_zone_id: Z03333333333333333333\n"
ROLE = "    role_name: TsmDeployer\n"
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/tsm-node:72.0.0"
FW3 = "\uff13" * 12  # fullwidth digit three
FW1 = "\uff11" * 12  # fullwidth digit one
FWA = "\uff21"  # fullwidth capital A
SECRET = "arn:aws:secretsmanager:eu-west-1:{}:secret:tsm/registry-AbCdEf"


def _cidrs(count: int) -> str:
    return "[" + ", ".join(f"198.51.{i // 256}.{i % 256}/32" for i in range(count)) + "]"


def _apps(count: int, length: int) -> str:
    return "[" + ", ".join(f"app{i:0{length - 3}d}" for i in range(count)) + "]"


def _run(tmp_path: Path, text: str, *args: str) -> tuple[int, str, str]:
    spec = tmp_path / "s.yaml"
    spec.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(spec), *args])
    out = result.stdout.replace(str(tmp_path) + "/", "")
    return result.exit_code, out, result.stderr.replace(str(tmp_path) + "/", "")


# (id, edits to BASE as (old, new) pairs, a line stderr must hold)
BAD: list[tuple[str, list[tuple[str, str]], str]] = [
    (
        "fullwidth-digits-account",
        [('"333333333333"', f'"{FW3}"')],
        "s.yaml:21 nodes[2].account: must be 12 digits",
    ),
    (
        "arabic-indic-digits-account",
        [('"222222222222"', '"٢٢٢٢٢٢٢٢٢٢٢٢"')],
        "s.yaml:17 nodes[1].account: must be 12 digits",
    ),
    (
        "non-ascii-role-name",
        [(ROLE, "    role_name: TsmDéployer\n")],
        "s.yaml:9 defaults.access.role_name: must be an IAM role name",
    ),
    (
        "non-ascii-external-id",
        [(ROLE, ROLE + "    external_id: geheim-schlüssel\n")],
        "s.yaml:10 defaults.access.external_id: must be 2 to 1224 ASCII",
    ),
    (
        "fullwidth-digits-role-arn",
        [(NODE0_END, NODE0_END + f"    access:\n      role_arn: arn:aws:iam::{FW1}:role/X\n")],
        "s.yaml:17 nodes[0].access.role_arn: must be an IAM role ARN",
    ),
    (
        "fullwidth-digits-secret-arn",
        [
            (
                NODE0_END,
                NODE0_END + f"    registry_credentials_secret_arn: {SECRET.format(FW1)}\n",
            )
        ],
        "s.yaml:16 nodes[0].registry_credentials_secret_arn: must be a Secrets Manager",
    ),
    (
        "non-ascii-hosted-zone-id",
        [("Z03333333333333333333", f"Z0333333333333333333{FWA}")],
        "s.yaml:23 nodes[2].hosted_zone_id: must be a Route 53 hosted zone id",
    ),
    (
        "mixed-partitions",
        [(NODE2_END, NODE2_END + "    region: cn-north-1\n")],
        "s.yaml:24 nodes[2].region: cn-north-1 is in partition aws-cn but nodes[0] is in aws",
    ),
    (
        "role-arn-in-another-partition",
        [
            (
                NODE0_END,
                NODE0_END + "    access:\n      role_arn: arn:aws-cn:iam::111111111111:role/T\n",
            )
        ],
        "s.yaml:17 nodes[0].access.role_arn: the role is in partition aws-cn",
    ),
    (
        "isolated-partition",
        [("region: eu-west-1", "region: us-iso-east-1")],
        "s.yaml:7 defaults.region: 'us-iso-east-1' is in an isolated partition",
    ),
    (
        "isolated-partition-eu",
        [("region: eu-west-1", "region: eu-isoe-west-1")],
        "s.yaml:7 defaults.region: 'eu-isoe-west-1' is in an isolated partition",
    ),
    (
        "secret-in-unknown-region",
        [
            (
                NODE0_END,
                NODE0_END + "    registry_credentials_secret_arn: "
                "arn:aws:secretsmanager:eu-west-9:111111111111:secret:tsm/r-AbCdEf\n",
            )
        ],
        "s.yaml:16 nodes[0].registry_credentials_secret_arn: the secret's region 'eu-west-9' is "
        "not an AWS region",
    ),
    (
        "secret-region-in-other-partition",
        [
            (
                NODE0_END,
                NODE0_END + "    registry_credentials_secret_arn: "
                "arn:aws:secretsmanager:cn-north-1:111111111111:secret:tsm/r-AbCdEf\n",
            )
        ],
        "region cn-north-1 is in partition aws-cn, not aws",
    ),
    (
        "one-secret-for-nodes-in-other-accounts",
        [
            (
                "  sdk_applications",
                f"  registry_credentials_secret_arn: {SECRET.format('111111111111')}\n"
                "  sdk_applications",
            )
        ],
        "s.yaml:5 tsm.registry_credentials_secret_arn: the secret is in account 111111111111 but "
        "nodes[1] is in 222222222222, and a node reads only its own account's secrets: put a "
        "copy of the secret in account 222222222222 and set "
        "nodes[1].registry_credentials_secret_arn to it",
    ),
    (
        "dns-name-over-acm-limit",
        [("node0.vault.acme.example", "node0-" + "a" * 40 + ".vault.acme.example")],
        "s.yaml:14 nodes[0].dns_name: is 65 characters; an ACM certificate's domain name is at "
        "most 64",
    ),
    (
        "hosted-zone-name-elsewhere",
        [(NODE0_END, NODE0_END + "    hosted_zone_name: acme.example.org\n")],
        "s.yaml:16 nodes[0].hosted_zone_name: node0.vault.acme.example is not inside the zone "
        "acme.example.org",
    ),
    (
        "hosted-zone-name-not-at-label-boundary",
        [(NODE0_END, NODE0_END + "    hosted_zone_name: cme.example\n")],
        "s.yaml:16 nodes[0].hosted_zone_name: node0.vault.acme.example is not inside the zone "
        "cme.example",
    ),
    (
        "hosted-zone-shared-by-two-accounts",
        [("Z02222222222222222222", "Z01111111111111111111")],
        "s.yaml:19 nodes[1].hosted_zone_id: Z01111111111111111111 is nodes[0]'s zone in account "
        "111111111111, but nodes[1] is in 222222222222",
    ),
    (
        "too-many-security-group-rules",
        [("[198.51.100.0/24]", _cidrs(59))],
        "s.yaml:10 defaults.sdk_client_cidrs: nodes[0]'s load balancer security group needs 61 "
        "inbound rules (2 peer egress addresses + 59 SDK client CIDRs), over the default 60",
    ),
    (
        "security-group-rules-with-mobile-players",
        [("[198.51.100.0/24]", _cidrs(58) + "\n  allow_mobile_players: true")],
        "needs 61 inbound rules (2 peer egress addresses + 58 SDK client CIDRs + 1 for mobile "
        "players)",
    ),
    (
        "security-group-rules-with-two-nat-gateways",
        [("[198.51.100.0/24]", _cidrs(57) + "\n  nat_gateways: 2")],
        "needs 61 inbound rules (4 peer egress addresses + 57 SDK client CIDRs)",
    ),
    (
        "elastic-ips-in-a-shared-account",
        [
            ("threshold: 1", "threshold: 1\nallow_shared_account: true"),
            ('"222222222222"', '"111111111111"'),
            ('"333333333333"', '"111111111111"'),
            ("Z02222222222222222222", "Z01111111111111111111"),
            ("Z03333333333333333333", "Z01111111111111111111"),
            ("  sdk_client_cidrs", "  nat_gateways: 2\n  sdk_client_cidrs"),
        ],
        "s.yaml:11 defaults.nat_gateways: nodes [0], [1], [2] need 6 Elastic IPs in account "
        "111111111111, eu-west-1; the default quota is 5",
    ),
    (
        "ssm-parameter-too-large",
        [("[payments, treasury]", _apps(80, 64))],
        f"s.yaml:5 tsm.sdk_applications: 80 application ids make the sdk-api-key-hashes SSM "
        f"parameter 9280 bytes, over its {SSM_ADVANCED_VALUE_BYTES}-byte limit",
    ),
    (
        "custom-resource-response-too-large",
        [("[payments, treasury]", _apps(30, 64))],
        f"over CloudFormation's {CUSTOM_RESOURCE_RESPONSE_BYTES}-byte limit for custom resource "
        "responses",
    ),
    (
        "graviton-instance-type",
        [(ROLE, ROLE + "  instance_type: m7g.large\n")],
        "s.yaml:10 defaults.instance_type: m7g.large is a Graviton (arm64) type, but the node AMI "
        "is Amazon Linux 2023 for x86_64",
    ),
    (
        "graviton-instance-type-on-a-node",
        [(NODE2_END, NODE2_END + "    instance_type: c7gn.xlarge\n")],
        "s.yaml:24 nodes[2].instance_type: c7gn.xlarge is a Graviton (arm64) type",
    ),
    (
        "db-class-too-old-for-postgresql-17",
        [(ROLE, ROLE + "  db_instance_class: db.t2.micro\n")],
        "s.yaml:10 defaults.db_instance_class: db.t2.micro is a previous-generation class that "
        "RDS for PostgreSQL 17 does not run on",
    ),
    (
        "db-class-m4",
        [(NODE0_END, NODE0_END + "    db_instance_class: db.m4.large\n")],
        "s.yaml:16 nodes[0].db_instance_class: db.m4.large is a previous-generation class",
    ),
    (
        "octal-looking-account",
        [('"111111111111"', "012345670123")],
        "s.yaml:13 nodes[0].account: must be 12 digits in quotes, got 012345670123 unquoted, "
        "which YAML reads as the number 1402433619 (a leading 0 makes it octal); write "
        '"012345670123"',
    ),
    (
        "cluster-named-no",
        [("cluster: acme-vault", "cluster: no")],
        "s.yaml:1 cluster: must be text, got no unquoted, which YAML reads as false; "
        'quote it: "no"',
    ),
    (
        "external-id-yes",
        [(ROLE, ROLE + "    external_id: on\n")],
        "s.yaml:10 defaults.access.external_id: must be text, got on unquoted, which YAML reads as "
        'true; quote it: "on"',
    ),
    (
        "key-read-as-boolean",
        [(ROLE, ROLE + "  on: true\n")],
        "s.yaml:10 defaults: keys must be names, got on unquoted, which YAML reads as true; quote "
        'it: "on"',
    ),
    (
        "region-in-capitals",
        [("region: eu-west-1", "region: EU-WEST-1")],
        "s.yaml:7 defaults.region: unknown region 'EU-WEST-1'; did you mean 'eu-west-1'?",
    ),
    (
        "two-yaml-documents",
        [(NODE2_END, NODE2_END + "---\ncluster: other\n")],
        "s.yaml:24: holds several YAML documents (a second one starts at this line)",
    ),
    (
        "null-key",
        [(NODE2_END, NODE2_END + "~: forgotten\n")],
        "s.yaml:24: a key is empty (null); write a name before the ':' or remove the line",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused(tmp_path: Path, edits: list[tuple[str, str]], expected: str) -> None:
    text = BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    code, _, err = _run(tmp_path, text)
    assert code == 2, err
    assert expected in err, err
    assert "Traceback" not in err


GOOD: list[tuple[str, list[tuple[str, str]]]] = [
    ("base", []),
    ("ecr-image-needs-no-secret", [("registry.example.com/acme/tsm-node:72.0.0", ECR)]),
    (
        "secret-per-node-in-own-account",
        [
            (
                NODE0_END,
                NODE0_END + f"    registry_credentials_secret_arn: {SECRET.format('1' * 12)}\n",
            ),
            (
                "Z02222222222222222222\n",
                "Z02222222222222222222\n"
                f"    registry_credentials_secret_arn: {SECRET.format('2' * 12)}\n",
            ),
            (
                NODE2_END,
                NODE2_END + "    registry_credentials_secret_arn: "
                "arn:aws:secretsmanager:us-east-1:333333333333:secret:r-AbCdEf\n",
            ),
        ],
    ),
    ("gov-cloud", [("region: eu-west-1", "region: us-gov-west-1")]),
    ("china", [("region: eu-west-1", "region: cn-northwest-1")]),
    ("hosted-zone-name-given", [(NODE0_END, NODE0_END + "    hosted_zone_name: acme.example\n")]),
    ("dns-name-of-64", [("node0.vault.acme.example", "node0-" + "a" * 39 + ".vault.acme.example")]),
    ("sixty-rules-exactly", [("[198.51.100.0/24]", _cidrs(58))]),
    ("x86-instance-types", [(ROLE, ROLE + "  instance_type: m7a.large\n")]),
    ("gpu-type-is-x86", [(NODE0_END, NODE0_END + "    instance_type: g5.xlarge\n")]),
    ("graviton-db-is-fine", [(ROLE, ROLE + "  db_instance_class: db.r7g.large\n")]),
    ("quoted-no", [("cluster: acme-vault", 'cluster: "no"')]),
    ("leading-zero-account-quoted", [('"111111111111"', '"012345670123"')]),
    ("many-short-app-ids", [("[payments, treasury]", _apps(20, 8))]),
    ("role-path", [("role_name: TsmDeployer", "role_name: ops/TsmDeployer")]),
    (
        "x-anchor-idiom",
        [
            ("defaults:", "x-node: &node\n  instance_type: m7i.xlarge\ndefaults:"),
            ("  - index: 0\n", "  - <<: *node\n    index: 0\n"),
        ],
    ),
]


@pytest.mark.parametrize("edits", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_accepted(tmp_path: Path, edits: list[tuple[str, str]]) -> None:
    text = BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    code, _, err = _run(tmp_path, text)
    assert code == 0, err


def test_node_index_over_what_the_templates_accept(tmp_path: Path) -> None:
    nodes = "".join(
        f'  - index: {i}\n    account: "{i + 1:012d}"\n    dns_name: n{i}.vault.acme.example\n'
        f"    hosted_zone_id: Z{i:020d}\n"
        for i in range(101)
    )
    text = BASE[: BASE.index("nodes:\n")] + "nodes:\n" + nodes
    code, _, err = _run(tmp_path, text)
    assert code == 2
    assert "nodes[100].index: the templates accept node indices 0..99 (NodeIndex), got 100" in err


def test_derived_names_fit_for_the_longest_cluster_and_index() -> None:
    # the cluster name (at most 24 characters) and index (at most 99) bound every AWS name the
    # templates derive; stack names are the longest at 40
    cluster = "a" * 24
    assert len(f"tsm-{cluster}-node99-core") <= STACK_NAME_LENGTH
    assert len(f"tsm/{cluster}/node99/encryptor-master-password") <= 512  # secret names
    assert len(f"alias/tsm/{cluster}/node99") <= 256  # KMS alias
    assert len(f"tsm-{cluster}-node99-public") <= 128  # RAM share


@pytest.mark.parametrize(
    ("instance_type", "arm"),
    [
        ("m7g.large", True),
        ("c7gn.xlarge", True),
        ("r8g.large", True),
        ("t4g.medium", True),
        ("m6gd.large", True),
        ("x2gd.large", True),
        ("im4gn.large", True),
        ("g5g.xlarge", True),
        ("m7i.large", False),
        ("g4dn.xlarge", False),
        ("c6in.large", False),
        ("r7iz.large", False),
        ("t3.large", False),
        ("u7i-12tb.224xlarge", False),
    ],
)
def test_graviton_families(instance_type: str, arm: bool) -> None:
    assert is_graviton(instance_type) is arm


WARN: list[tuple[str, list[tuple[str, str]], str]] = [
    (
        "private-client-cidr",
        [("[198.51.100.0/24]", "[10.20.0.0/16]")],
        "nodes[0].sdk_client_cidrs: 10.20.0.0/16 is a private range; the load balancer is "
        "internet-facing",
    ),
    (
        "whole-internet",
        [("[198.51.100.0/24]", "[0.0.0.0/0]")],
        "nodes[0].sdk_client_cidrs: 0.0.0.0/0 opens the SDK API to the whole internet",
    ),
    ("threshold-zero", [("threshold: 1", "threshold: 0")], "threshold: 0 lets any single node"),
    (
        "mobile-players",
        [(NODE0_END, NODE0_END + "    allow_mobile_players: true\n")],
        "nodes[0].allow_mobile_players: the MPC port is open to the whole internet",
    ),
    (
        "tsm-73-with-the-old-layout",
        [("tsm-node:72.0.0", "tsm-node:73.1.0")],
        "tsm.config_layout: the image is TSM 73, which reads the mpc-direct layout",
    ),
    (
        "tsm-72-with-the-new-layout",
        [("  sdk_applications", "  config_layout: mpc-direct\n  sdk_applications")],
        "tsm.config_layout: the image is TSM 72, which reads the mpc-tcp layout",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), [c[1:] for c in WARN], ids=[c[0] for c in WARN])
def test_warned(tmp_path: Path, edits: list[tuple[str, str]], expected: str) -> None:
    text = BASE
    for old, new in edits:
        text = text.replace(old, new)
    code, _, err = _run(tmp_path, text)
    assert code == 0, err
    assert f"warning: {expected}" in err


def test_no_warning_for_a_matching_layout(tmp_path: Path) -> None:
    text = BASE.replace("tsm-node:72.0.0", "tsm-node:73.1.0").replace(
        "  sdk_applications", "  config_layout: mpc-direct\n  sdk_applications"
    )
    code, _, err = _run(tmp_path, text)
    assert code == 0
    assert "warning" not in err


def test_json_output_for_an_invalid_spec(tmp_path: Path) -> None:
    code, out, _ = _run(
        tmp_path, BASE.replace("region: eu-west-1", "region: EU-WEST-1"), "--output", "json"
    )
    assert code == 2
    data = json.loads(out)
    assert data["valid"] is False
    assert data["warnings"] == []
    assert data["problems"] == [
        {
            "path": "defaults.region",
            "line": 7,
            "message": "unknown region 'EU-WEST-1'; did you mean 'eu-west-1'?",
        }
    ]
    assert data["spec"].endswith("s.yaml")


def test_json_output_for_a_valid_spec(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path, BASE.replace("threshold: 1", "threshold: 0"), "--output", "json")
    assert code == 0
    data = json.loads(out)
    assert data["valid"] is True
    assert data["problems"] == []
    assert any("threshold: 0" in w for w in data["warnings"])


def test_spec_from_stdin() -> None:
    result = CliRunner().invoke(cli, ["validate", "-"], input=BASE)
    assert result.exit_code == 0, result.stderr
    bad = CliRunner().invoke(cli, ["validate", "-"], input=BASE.replace("threshold: 1", "x: 1"))
    assert bad.exit_code == 2
    assert "<stdin>:2 x: unknown key" in bad.stderr.splitlines()


def _validate_path(path: str) -> tuple[int, str, float]:
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["validate", path])
    return result.exit_code, result.stderr, time.monotonic() - start


def test_symlink_loop(tmp_path: Path) -> None:
    link = tmp_path / "loop.yaml"
    link.symlink_to(link)
    code, err, _ = _validate_path(str(link))
    assert code == 2
    assert err == f"{link}: is a symbolic link loop; point it at the spec file\n"


def test_fifo_returns_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.fifo"
    os.mkfifo(fifo)
    code, err, took = _validate_path(str(fifo))
    assert code == 2
    assert "is a named pipe; to read a spec from a pipe, pass - for stdin" in err
    assert took < 5


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_return_at_once(device: str) -> None:
    code, err, took = _validate_path(device)
    assert code == 2
    assert err == f"{device}: is a device, not a spec file\n"
    assert took < 5


def test_schema_allows_x_keys_and_ascii_accounts_only() -> None:
    schema = json_schema()
    data = yaml.safe_load(BASE)
    jsonschema.validate({**data, "x-common": {"anything": 1}}, schema)
    data["nodes"][2]["account"] = FW3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_a_default_every_node_inherits_is_one_problem(tmp_path: Path) -> None:
    code, _, err = _run(tmp_path, BASE.replace(ROLE, ROLE + "  instance_type: m7g.large\n"))
    assert code == 2, err
    assert err.count("defaults.instance_type: m7g.large is a Graviton") == 1, err
