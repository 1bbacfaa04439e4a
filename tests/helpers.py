"""Constants and helpers the tests share."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A valid spec whose line numbers the invalid-spec tests rely on: edit it only with care.
VALID_SPEC = """\
cluster: test-vault
threshold: 1
tsm:
  image: registry.example.com/tsm-node:72.0.0
defaults:
  region: eu-west-1
  hosted_zone_id: Z0123456789ABCDEFGHIJ
  sdk_client_cidrs: [198.51.100.0/24]
nodes:
  - index: 0
    account: "111111111111"
    dns_name: node0.vault.example.com
  - index: 1
    account: "222222222222"
    dns_name: node1.vault.example.com
    hosted_zone_id: Z0222222222222222222
  - index: 2
    account: "333333333333"
    dns_name: node2.vault.example.com
    hosted_zone_id: Z0333333333333333333
"""
