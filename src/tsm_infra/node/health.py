"""The boot's clocks: waiting for the TSM's /ping, and ending a step that overruns its budget."""

from __future__ import annotations

import http.client
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import FrameType

from tsm_infra.node.settings import NodeError

PING_INTERVAL_SECONDS = 5.0


def wait_ready(port: int, timeout: float, interval: float = PING_INTERVAL_SECONDS) -> None:
    """Poll http://127.0.0.1:port/ping until it answers 200; NodeError after `timeout` s."""
    url = f"http://127.0.0.1:{port}/ping"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    deadline, last = time.monotonic() + timeout, "no answer"
    while True:
        try:
            with opener.open(url, timeout=min(5.0, max(0.1, deadline - time.monotonic()))) as got:
                last = f"HTTP {got.status}"
        except urllib.error.HTTPError as err:  # 503 while the node starts
            last = f"HTTP {err.code}"
            err.close()
        except (OSError, http.client.HTTPException) as err:  # refused before it listens
            last = str(getattr(err, "reason", err))
        if last == "HTTP 200":
            return
        if time.monotonic() >= deadline:
            raise NodeError(f"{url} did not answer 200 within {timeout:g} s (last: {last})")
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def within(seconds: float, what: str, work: Callable[[], None]) -> None:
    """Run `work`; NodeError if it takes longer than `seconds` (the boot's time budget)."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise NodeError(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
