"""check_endpoint: a dead or malformed --endpoint-url is an input problem, said at once."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from tsm_infra.aws import EndpointError, check_endpoint
from tsm_infra.errors import EXIT_BAD_INPUT


def test_a_silent_address_times_out_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []

    def silent(address: Any, timeout: float) -> Any:
        seen.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    with pytest.raises(EndpointError) as caught:
        check_endpoint("http://10.255.255.1:4566")
    assert seen == [3.0]  # one attempt, no retries: under 5 s whatever the network does
    assert "cannot connect to 10.255.255.1:4566 (timed out after at most 3 s)" in str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_a_refused_port_fails_at_once() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(EndpointError, match=f"127.0.0.1:{port} \\(Connection refused"):
        check_endpoint(f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 1


def test_a_listening_endpoint_passes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_endpoint(f"http://127.0.0.1:{server.getsockname()[1]}")


@pytest.mark.parametrize("url", ["127.0.0.1:4566", "ftp://127.0.0.1:21", "http://"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(EndpointError, match="not an http"):
        check_endpoint(url)
