"""Getting a spec's text: a regular file, or `-` for standard input; never hangs on odd files.

Every refusal is a `SpecError` about the whole file, with the line where one is known.
"""

from __future__ import annotations

import errno
import stat
import sys
from pathlib import Path

from tsm_infra.errors import Problem, SpecError

STDIN = "-"
STDIN_SOURCE = "<stdin>"
# A spec is a few KB; anything this large is the wrong file.
MAX_SPEC_BYTES = 1_000_000


def fail(source: str, message: str, line: int | None = None) -> SpecError:
    """A SpecError about the whole file (no field path)."""
    return SpecError(source, [Problem("", message, line)])


def source_name(path: str | Path) -> str:
    """How messages name the spec: its path, or `<stdin>` for `-`."""
    return STDIN_SOURCE if str(path) == STDIN else str(path)


def decode(raw: bytes, source: str) -> str:
    """UTF-8 text of `raw`, or a SpecError naming the line of the first undecodable byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise fail(
            source,
            f"is not UTF-8 text (byte {byte:#04x}); save the file as UTF-8",
            line,
        ) from None


def read_spec_bytes(path: str | Path) -> tuple[bytes, str]:
    """The raw bytes of the spec at `path` (`-`: standard input) and its source name."""
    source = source_name(path)
    if str(path) == STDIN:
        raw = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            raise fail(source, f"is over {MAX_SPEC_BYTES} bytes; a spec is a few KB")
        return raw, source
    try:
        # stat before opening: opening a FIFO blocks until a writer comes, and a device
        # (/dev/zero) never ends
        info = Path(path).stat()
    except FileNotFoundError:
        raise fail(source, "no such file; check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise fail(source, "is a symbolic link loop; point it at the spec file") from None
        raise fail(source, f"cannot read it: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise fail(source, "is a directory; name the spec file inside it")
    if stat.S_ISFIFO(info.st_mode):
        raise fail(source, "is a named pipe; to read a spec from a pipe, pass - for stdin")
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        raise fail(source, "is a device, not a spec file")
    if not stat.S_ISREG(info.st_mode):
        raise fail(source, "is not a regular file")
    if info.st_size > MAX_SPEC_BYTES:
        raise fail(source, f"is {info.st_size} bytes; a spec is a few KB: is this the right file?")
    try:
        with Path(path).open("rb") as file:
            raw = file.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise fail(source, f"cannot read it: {exc.strerror}") from None
    return raw, source
