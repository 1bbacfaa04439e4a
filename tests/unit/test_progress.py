"""The progress views: plain lines off a terminal, a live table on one, nothing for JSON."""

from __future__ import annotations

import io

from tsm_infra.progress import progress_view
from tsm_infra.run import Event


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _event(status: str, done: int = 0, total: int = 0) -> Event:
    return Event("tsm-v-node0-kms", 0, "111111111111", "eu-west-1", status, done, total, 75.0)


def test_plain_lines_only_when_something_changes() -> None:
    stream = io.StringIO()
    with progress_view("text", stream) as view:
        for event in (
            _event("creating change set"),
            _event("CREATE_IN_PROGRESS", 3, 26),
            _event("CREATE_IN_PROGRESS", 3, 26),
            _event("created"),
        ):
            view.update(event)
    assert stream.getvalue().splitlines() == [
        "  1:15 tsm-v-node0-kms (111111111111 eu-west-1): creating change set",
        "  1:15 tsm-v-node0-kms (111111111111 eu-west-1): CREATE_IN_PROGRESS [3/26]",
        "  1:15 tsm-v-node0-kms (111111111111 eu-west-1): created",
    ]


def test_a_terminal_gets_a_table_with_every_column() -> None:
    stream = _Terminal()
    with progress_view("text", stream) as view:
        view.update(_event("CREATE_IN_PROGRESS", 3, 26))
        view.update(_event("created"))
    text = stream.getvalue()
    # the last frame keeps the resource count of the finished stack
    assert "created" in text.rsplit("stack", 1)[1] and "3/26" in text.rsplit("stack", 1)[1]
    for column in ("stack", "account", "region", "status", "resources", "elapsed"):
        assert column in text
    assert "tsm-v-node0-kms" in text and "3/26" in text and "1:15" in text


def test_json_output_shows_no_progress() -> None:
    stream = io.StringIO()
    with progress_view("json", stream) as view:
        view.update(_event("created"))
    assert stream.getvalue() == ""
