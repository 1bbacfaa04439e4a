"""The node's two systemd units: one writes the configuration at every boot, one runs the TSM.

The env file lives on tmpfs and is lost at reboot, so the config unit runs configure again
before the node unit starts the container.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tsm_infra.node.host import (
    CONFIG_RETRY_SECONDS,
    CONFIG_TIMEOUT_SECONDS,
    PULL_TIMEOUT_SECONDS,
    Runner,
    run_command,
    say,
    write_atomic,
)
from tsm_infra.node.settings import NodeError, load_settings

# Where cfn-init writes the boot archive (this package as a zipapp) on the instance.
BOOT_ARCHIVE = "/opt/tsm/tsm_node.pyz"
UNIT_DIR = "etc/systemd/system"  # relative to the root directory, as in tsm_node
CONFIG_UNIT, NODE_UNIT = "tsm-node-config.service", "tsm-node.service"
_UNIT_PATH = re.compile(r"/[A-Za-z0-9._/-]+")

_CONFIG_UNIT = """\
[Unit]
Description=Write the TSM node configuration (the env file on tmpfs is lost at reboot)
Wants=network-online.target
Requires=docker.service
After=network-online.target docker.service
Before=tsm-node.service
# Keep trying: throttling or a late network must not leave the node down after a reboot.
StartLimitIntervalSec=0

[Service]
Type=oneshot
RemainAfterExit=yes
Restart=on-failure
RestartSec={retry}
TimeoutStartSec={timeout}
ExecStart=/usr/bin/python3 {archive} configure {settings_file}

[Install]
WantedBy=multi-user.target
"""

_NODE_UNIT = """\
[Unit]
Description=Builder Vault TSM node {s.index} of cluster {s.cluster}
Requires=docker.service
# Wants, not Requires: a config unit that fails once and succeeds on its retry must not leave
# this unit failed; until the env file exists, the check below fails and Restart tries again.
Wants=tsm-node-config.service
After=docker.service tsm-node-config.service
# Never give up restarting: the database or the network may come up late.
StartLimitIntervalSec=0

[Service]
Restart=always
RestartSec=5
TimeoutStartSec={pull_timeout}
ExecStartPre=/usr/bin/test -s /run/tsm/node.env
# A container left by a crash would hold the name; a failed pull leaves the cached image.
ExecStartPre=-/usr/bin/docker rm --force tsm-node
ExecStartPre=-/usr/bin/docker pull {s.image}
ExecStart=/usr/bin/docker run --rm --name tsm-node --user 2000:2000 --cap-drop ALL \\
  --security-opt no-new-privileges --read-only --tmpfs /tmp --env-file /run/tsm/node.env \\
  -v /etc/tsm/config.toml:/config/config.toml:ro -v /etc/tsm/rds-ca.pem:/config/rds-ca.pem:ro \\
  -p {s.sdk_port}:{s.sdk_port} -p {s.mpc_port}:{s.mpc_port} \\
  -p {s.management_port}:{s.management_port} --log-driver awslogs \\
  --log-opt awslogs-group={s.log_group} --log-opt awslogs-region={s.region} {s.image}
ExecStop=/usr/bin/docker stop tsm-node

[Install]
WantedBy=multi-user.target
"""


def install(settings_path: str, root: str = "/", runner: Runner = run_command) -> None:
    """Write the systemd units, then enable and start them."""
    settings = load_settings(settings_path)
    # The unit names node.json as the host sees it, wherever `root` puts it (tests).
    host_path = "/" + os.path.relpath(Path(settings_path).resolve(), Path(root).resolve())
    if not _UNIT_PATH.fullmatch(host_path):
        raise NodeError(f"settings path {host_path!r} is unfit for a systemd unit")
    units = {
        CONFIG_UNIT: _CONFIG_UNIT.format(
            archive=BOOT_ARCHIVE,
            settings_file=host_path,
            retry=CONFIG_RETRY_SECONDS,
            timeout=CONFIG_TIMEOUT_SECONDS,
        ),
        NODE_UNIT: _NODE_UNIT.format(s=settings, pull_timeout=PULL_TIMEOUT_SECONDS),
    }
    for name, text in units.items():
        write_atomic(Path(root, UNIT_DIR, name), text, 0o644)
    runner(["systemctl", "daemon-reload"])
    runner(["systemctl", "enable", "--now", CONFIG_UNIT, NODE_UNIT])
    say(f"enabled and started {CONFIG_UNIT} and {NODE_UNIT}")
