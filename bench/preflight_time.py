"""How long preflight of the bundled three-node example takes on the embedded emulator.

Run: .venv/bin/python bench/preflight_time.py (prints seconds per run; the issue asks < 10 s).
"""

from __future__ import annotations

import time
from pathlib import Path

from tsm_infra.aws import Connector
from tsm_infra.emulator import LocalAws
from tsm_infra.preflight import preflight
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Preflight the example three times on one emulator, each with fresh sessions."""
    cluster = load_spec(REPO / "examples" / "three-nodes.yaml")
    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        for run in range(3):
            started = time.monotonic()
            result = preflight(cluster, Connector(endpoint_url=aws.endpoint_url))
            seconds = time.monotonic() - started
            print(
                f"run {run + 1}: {len(cluster.nodes)} nodes, {len(result.findings)} findings, "
                f"{len(result.notes)} notes, {seconds:.2f} s"
            )


if __name__ == "__main__":
    main()
