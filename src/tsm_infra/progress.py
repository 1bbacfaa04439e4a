"""How a running deploy or destroy looks: a live table on a terminal, plain lines elsewhere.

Part of the command-line layer (it prints); the deployer only calls `update` with events.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import IO, Any

from tsm_infra.run.results import OK_RESULTS, Event


def _fmt_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class QuietProgress:
    """No progress at all: for JSON output, where the result is the output."""

    def update(self, event: Event) -> None:
        """Ignore the event."""

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Nothing to pause."""
        yield


class PlainProgress:
    """One line per change of a stack's status or resource count: for logs and CI."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._last: dict[str, tuple[str, int, int]] = {}
        self._lock = threading.Lock()

    def update(self, event: Event) -> None:
        """Print the event if it says something new about its stack."""
        key = (event.status, event.done, event.total)
        with self._lock:
            if self._last.get(event.stack) == key:
                return
            self._last[event.stack] = key
            count = f" [{event.done}/{event.total}]" if event.total else ""
            self.stream.write(
                f"{_fmt_elapsed(event.elapsed):>6} {event.stack} ({event.account} "
                f"{event.region}): {event.status}{count}\n"
            )
            self.stream.flush()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the lines back while the operator is asked something."""
        with self._lock:
            yield


class LiveProgress:
    """A table that redraws in place: stack, account, region, status, resources, elapsed."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console  # noqa: PLC0415 - only a terminal needs rich

        self.console = Console(file=stream)
        self._rows: dict[str, Event] = {}
        self._lock = threading.Lock()
        self._live: Any = None

    def _table(self) -> Any:
        from rich.table import Table  # noqa: PLC0415

        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("stack", "account", "region", "status", "resources", "elapsed"):
            table.add_column(column, justify="right" if column == "elapsed" else "left")
        for event in self._rows.values():
            style = (
                "red"
                if "FAILED" in event.status or event.status in ("failed", "refused")
                else "green"
                if event.status.endswith("COMPLETE") or event.status in OK_RESULTS
                else "yellow"
            )
            table.add_row(
                event.stack,
                event.account,
                event.region,
                f"[{style}]{event.status}[/]",
                f"{event.done}/{event.total}" if event.total else "",
                _fmt_elapsed(event.elapsed),
            )
        return table

    def update(self, event: Event) -> None:
        """Record the event and redraw."""
        with self._lock:
            last = self._rows.get(event.stack)
            if last is not None and not event.total:
                # an outcome says how the stack ended, not how many resources it has
                event = replace(event, done=last.done, total=last.total)
            self._rows[event.stack] = event
            if self._live is not None:
                self._live.update(self._table())

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing (leaving the table as it is) while the operator is asked something."""
        with self._lock:
            live, self._live = self._live, None
        if live is None:
            yield
            return
        live.stop()
        try:
            yield
        finally:
            live.start()
            with self._lock:
                self._live = live
                live.update(self._table())

    @contextmanager
    def running(self) -> Iterator[None]:
        """Show the table while the block runs; leave its last state on screen."""
        from rich.live import Live  # noqa: PLC0415

        with Live(self._table(), console=self.console, refresh_per_second=4) as live:
            self._live = live
            try:
                yield
            finally:
                with self._lock:
                    live.update(self._table())
                    self._live = None


View = QuietProgress | PlainProgress | LiveProgress


@contextmanager
def progress_view(mode: str, stream: IO[str] | None = None) -> Iterator[View]:
    """The progress view for `mode` (text or json) on `stream` (stderr by default).

    JSON output shows no progress (the result is the output); text shows a live table when the
    stream is a terminal and plain lines otherwise. `view.update` takes the deployer's events;
    `view.paused()` keeps the screen still while the operator is asked something.
    """
    out = stream or sys.stderr
    if mode == "json":
        yield QuietProgress()
        return
    if out.isatty():
        live = LiveProgress(out)
        with live.running():
            yield live
        return
    yield PlainProgress(out)
