"""What an image reference says about where the node pulls it from: one reading for all modules.

Docker's rule: the part before the first `/` is a registry host when it holds a `.` or a `:`
or is `localhost`; otherwise the image is on Docker Hub. (The boot module, which must stand
alone on the instance, reads the host the same way in `registry_login`.)
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ECR_HOST = re.compile(
    r"([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?", re.ASCII
)


class EcrRepository(NamedTuple):
    """An Amazon ECR repository: the registry's account and region, and the repository name."""

    account: str
    region: str
    name: str


def registry_host(image: str) -> str:
    """The image's registry host[:port] as docker reads it; "" for Docker Hub."""
    first, slash, _ = image.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else ""


def ecr_repository(image: str) -> EcrRepository | None:
    """The ECR repository of an `<acct>.dkr.ecr.<region>.amazonaws.com/<repo>:tag` image."""
    host = registry_host(image)
    match = _ECR_HOST.fullmatch(host)
    if not match:
        return None
    name = re.split(r"[@:]", image[len(host) + 1 :], maxsplit=1)[0]
    return EcrRepository(match[1], match[2], name)


def registry_port(image: str) -> str:
    """The TCP port the node pulls `image` from: the host's explicit port, else 443."""
    host = registry_host(image)
    port = host.rpartition(":")[2] if ":" in host else ""
    return port if port.isdigit() else "443"
