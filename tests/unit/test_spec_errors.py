"""Every way a spec can be wrong gives one exact line per problem and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import VALID_SPEC
from tsm_infra.cli import cli

NODE2_ACCOUNT = '    account: "333333333333"\n'

# (test id, edit to VALID_SPEC as (old, new), the exact stderr lines)
CASES: list[tuple[str, tuple[str, str], list[str]]] = [
    (
        "account-too-short",
        ('"333333333333"', '"12345"'),
        ["s.yaml:18 nodes[2].account: must be 12 digits, got '12345'"],
    ),
    (
        "account-unquoted",
        ('"333333333333"', "333333333333"),
        [
            "s.yaml:18 nodes[2].account: must be 12 digits in quotes, got 333333333333 unquoted "
            "(YAML reads it as a number and drops leading zeros)"
        ],
    ),
    (
        "missing-required-field",
        (NODE2_ACCOUNT, ""),
        ["s.yaml:17 nodes[2].account: required"],
    ),
    (
        "wrong-type-threshold",
        ("threshold: 1", "threshold: one"),
        ["s.yaml:2 threshold: must be a whole number, got 'one' (text)"],
    ),
    (
        "wrong-type-bool-index",
        ("index: 2", "index: true"),
        ["s.yaml:17 nodes[2].index: must be a whole number, got True (true/false)"],
    ),
    (
        "wrong-type-list",
        ("[198.51.100.0/24]", "198.51.100.0/24"),
        ["s.yaml:8 defaults.sdk_client_cidrs: must be a list, got '198.51.100.0/24' (text)"],
    ),
    (
        "empty-section",
        ("  image: registry.example.com/tsm-node:72.0.0\n", ""),
        ["s.yaml:3 tsm: must be a mapping of keys to values, got nothing"],
    ),
    (
        "unknown-key-with-hint",
        ("  region: eu-west-1", "  regoin: eu-west-1"),
        ["s.yaml:6 defaults.regoin: unknown key; did you mean 'region'?"],
    ),
    (
        "unknown-key-without-hint",
        ("threshold: 1", "threshold: 1\nflavour: vanilla"),
        ["s.yaml:3 flavour: unknown key"],
    ),
    (
        "duplicate-key",
        (NODE2_ACCOUNT, NODE2_ACCOUNT + NODE2_ACCOUNT),
        [
            "s.yaml:19 nodes[2].account: duplicate key 'account' (first at line 18); "
            "keep one of them"
        ],
    ),
    (
        "duplicate-index",
        ("index: 2", "index: 1"),
        ["s.yaml:17 nodes[2].index: 1 is already nodes[1]'s index"],
    ),
    (
        "index-gap",
        ("index: 2", "index: 3"),
        ["s.yaml:17 nodes[2].index: must be between 0 and 2 (indices are 0..n-1), got 3"],
    ),
    (
        "threshold-too-high",
        ("threshold: 1", "threshold: 3"),
        [
            "s.yaml:2 threshold: signing needs threshold + 1 of the 3 nodes, so the threshold "
            "must be between 0 and 2, got 3"
        ],
    ),
    (
        "threshold-negative",
        ("threshold: 1", "threshold: -1"),
        [
            "s.yaml:2 threshold: signing needs threshold + 1 of the 3 nodes, so the threshold "
            "must be between 0 and 2, got -1"
        ],
    ),
    (
        "one-node",
        (VALID_SPEC[VALID_SPEC.index("  - index: 1") :], ""),
        [
            "s.yaml:9 nodes: a cluster needs at least 2 nodes, got 1",
            "s.yaml:2 threshold: signing needs threshold + 1 of the 1 nodes, so the threshold "
            "must be between 0 and 0, got 1",
        ],
    ),
    (
        "shared-account",
        ('"333333333333"', '"111111111111"'),
        [
            "s.yaml:18 nodes[2].account: 111111111111 is also nodes[0]'s account; give each "
            "node its own account (allow_shared_account: true is for development only)"
        ],
    ),
    (
        "duplicate-dns-name",
        ("node2.vault", "node1.vault"),
        ["s.yaml:19 nodes[2].dns_name: node1.vault.example.com is also nodes[1]'s name"],
    ),
    (
        "bad-dns-name",
        ("node2.vault.example.com", "node_2.vault.example.com"),
        [
            "s.yaml:19 nodes[2].dns_name: must be a DNS name such as 'node0.vault.example.com' "
            "(labels of a-z, 0-9 and inner '-', at most 63 characters each), "
            "got 'node_2.vault.example.com'"
        ],
    ),
    (
        "upper-case-dns-name",
        ("node2.vault.example.com", "Node2.vault.example.com"),
        ["s.yaml:19 nodes[2].dns_name: must be lower case, got 'Node2.vault.example.com'"],
    ),
    (
        "unknown-region",
        ("region: eu-west-1", "region: eu-wset-1"),
        ["s.yaml:6 defaults.region: unknown region 'eu-wset-1'; did you mean 'eu-west-1'?"],
    ),
    (
        "region-missing-everywhere",
        ("  region: eu-west-1\n", ""),
        [
            f"s.yaml:{line} nodes[{i}].region: required: set it on the node or under defaults"
            for i, line in ((0, 9), (1, 12), (2, 16))
        ],
    ),
    (
        "cidr-host-bits",
        ("198.51.100.0/24", "198.51.100.7/24"),
        [
            "s.yaml:8 defaults.sdk_client_cidrs[0]: has host bits set: '198.51.100.7/24'; "
            "did you mean '198.51.100.0/24'?"
        ],
    ),
    (
        "cidr-unparseable",
        ("198.51.100.0/24", "198.51.300.0/24"),
        [
            "s.yaml:8 defaults.sdk_client_cidrs[0]: must be a CIDR block such as "
            "'203.0.113.0/24', got '198.51.300.0/24'"
        ],
    ),
    (
        "cidr-ipv6",
        ("198.51.100.0/24", "2001:db8::/32"),
        [
            "s.yaml:8 defaults.sdk_client_cidrs[0]: must be an IPv4 CIDR (the load balancer is "
            "IPv4), got '2001:db8::/32'"
        ],
    ),
    (
        "config-layout",
        ("tsm-node:72.0.0", "tsm-node:72.0.0\n  config_layout: mpc-udp"),
        ["s.yaml:5 tsm.config_layout: must be 'mpc-tcp' or 'mpc-direct', got 'mpc-udp' (text)"],
    ),
    (
        "cidr-listed-twice",
        ("[198.51.100.0/24]", "[198.51.100.0/24, 198.51.100.0/24]"),
        ["s.yaml:8 defaults.sdk_client_cidrs: '198.51.100.0/24' is listed twice"],
    ),
    (
        "image-without-version",
        ("tsm-node:72.0.0", "tsm-node"),
        [
            "s.yaml:4 tsm.image: must pin a version with a tag or digest (e.g. "
            "registry.example.com/tsm-node:72.0.0), got 'registry.example.com/tsm-node'"
        ],
    ),
    (
        "image-latest",
        ("tsm-node:72.0.0", "tsm-node:latest"),
        [
            "s.yaml:4 tsm.image: must pin a version: 'latest' changes under you, so dev, test "
            "and prod could run different nodes; name the version (e.g. :72.0.0)"
        ],
    ),
    (
        "image-malformed",
        ("registry.example.com/tsm-node:72.0.0", "registry.example.com/TSM node:1"),
        [
            "s.yaml:4 tsm.image: must be an image reference such as "
            "'registry.example.com/tsm-node:72.0.0', got 'registry.example.com/TSM node:1'"
        ],
    ),
    (
        "hosted-zone-id",
        ("Z0123456789ABCDEFGHIJ", "/hostedzone/Z0123"),
        [
            "s.yaml:7 defaults.hosted_zone_id: must be a Route 53 hosted zone id such as "
            "'Z0123456789ABCDEFGHIJ', got '/hostedzone/Z0123'"
        ],
    ),
    (
        "cluster-name",
        ("cluster: test-vault", "cluster: Test_Vault"),
        [
            "s.yaml:1 cluster: must be 2 to 24 characters of a-z, 0-9 and '-', starting with "
            "a letter, got 'Test_Vault'"
        ],
    ),
    (
        "access-two-ways",
        ("defaults:", "defaults:\n  access: {profile: a, role_name: b}"),
        [
            "s.yaml:6 defaults.access: give exactly one of profile, role_arn or role_name, "
            "got profile and role_name"
        ],
    ),
    (
        "role-in-another-account",
        (
            NODE2_ACCOUNT,
            NODE2_ACCOUNT + '    access: {role_arn: "arn:aws:iam::999999999999:role/Deploy"}\n',
        ),
        [
            "s.yaml:19 nodes[2].access.role_arn: the role is in account 999999999999 but "
            "nodes[2] is in 333333333333; name a role in the node's account (role_name "
            "resolves against each node's account)"
        ],
    ),
    (
        "nat-gateways",
        ("defaults:", "defaults:\n  nat_gateways: 3"),
        ["s.yaml:6 defaults.nat_gateways: must be 1 or 2, got 3 (a number)"],
    ),
    (
        "yaml-syntax",
        ("  image: registry.example.com/tsm-node:72.0.0", "  image: [registry"),
        ["s.yaml:5: YAML syntax error: expected ',' or ']', but got ':'"],
    ),
    (
        "not-a-mapping",
        (VALID_SPEC, "- just\n- a list\n"),
        ["s.yaml:1: the spec must be a mapping of keys to values, got a list"],
    ),
    (
        "empty-file",
        (VALID_SPEC, ""),
        ["s.yaml: the spec is empty; start from examples/three-nodes.yaml"],
    ),
    (
        "comments-only",
        (VALID_SPEC, "# nothing here yet\n"),
        ["s.yaml: the spec is empty; start from examples/three-nodes.yaml"],
    ),
    (
        "non-string-key",
        ("threshold: 1", "threshold: 1\n7: seven"),
        ["s.yaml:3: keys must be names, got 7"],
    ),
]


def _run(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["validate", str(path), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_spec(tmp_path: Path, edit: tuple[str, str], expected: list[str]) -> None:
    old, new = edit
    assert old in VALID_SPEC, "the edit must apply to the valid spec"
    spec = tmp_path / "s.yaml"
    spec.write_text(VALID_SPEC.replace(old, new, 1))
    code, out, err = _run(spec)
    # messages name the spec as the user gave it: here the full temporary path
    assert [line.replace(str(tmp_path) + "/", "") for line in err.splitlines()] == expected
    assert code == 2
    assert out == ""
    assert "Traceback" not in err


def test_the_valid_spec_is_valid(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(VALID_SPEC)
    code, out, err = _run(spec)
    assert code == 0, err
    assert out.endswith(
        "valid: cluster test-vault, 3 nodes in 3 accounts (eu-west-1), threshold 1 "
        "(any 2 of 3 sign)\n"
    )


def test_missing_file(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path / "nope.yaml")
    assert (code, out) == (2, "")
    assert err == f"{tmp_path}/nope.yaml: no such file; check the path\n"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    code, _, err = _run(tmp_path)
    assert code == 2
    assert err == f"{tmp_path}: is a directory; name the spec file inside it\n"


def test_not_utf8(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_bytes(b"threshold: 1\ncluster: \xff\xfe\n")
    code, _, err = _run(spec)
    assert code == 2
    # the line of the first bad byte
    assert err == f"{spec}:2: is not UTF-8 text (byte 0xff); save the file as UTF-8\n"


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    spec = tmp_path / "s.yaml"
    spec.write_text("\n".join(lines) + "\n")
    code, _, err = _run(spec)
    assert code == 2
    assert "expands to too much data (check anchors and aliases)" in err


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        VALID_SPEC.replace('"111111111111"', '"1"').replace("region: eu-west-1", "region: mars")
    )
    code, _, err = _run(spec)
    assert code == 2
    assert [line.split(" ", 1)[1].split(":")[0] for line in err.splitlines()] == [
        "defaults.region",
        "nodes[0].account",
    ]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("")
    result = CliRunner().invoke(cli, ["--debug", "validate", str(spec)])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "SpecError"


def test_control_character(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(VALID_SPEC.replace("threshold: 1", "threshold: 1\x1f"))
    code, _, err = _run(spec)
    assert code == 2
    assert err == f"{spec}:2: character 0x001f is not allowed in YAML; remove it\n"
