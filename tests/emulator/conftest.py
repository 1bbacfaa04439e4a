"""Fixtures of the emulator tests."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest

from tsm_infra.spec import Cluster, load_spec


@pytest.fixture(scope="session", autouse=True)
def _shared_botocore_loader() -> Iterator[None]:
    """One botocore data loader for every session: each test makes dozens of clients, and
    loading the service models afresh for each would dominate the run time."""
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()

    def register(self: botocore.session.Session) -> None:
        self._components.lazy_register_component("data_loader", lambda: loader)

    with mock.patch.object(botocore.session.Session, "_register_data_loader", register):
        yield


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The cluster of examples/three-nodes.yaml."""
    from tests.helpers import REPO

    return load_spec(REPO / "examples" / "three-nodes.yaml")
