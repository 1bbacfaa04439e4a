"""Code the templates carry inline, filled in when a template is rendered.

A stack's template is its whole definition, so the Lambda handler travels in it (Code.ZipFile)
and so does the boot code that cfn-init writes on the instance. Their single source is Python
under tsm_infra; the committed templates hold only a marker line naming it, followed by an empty
value, and `render` puts the current code in its place:

    # tsm-infra: inline tsm_infra.functions.keygen     ZipFile: ""  the module, as a block
    # tsm-infra: inline-gzip tsm_infra.node.tsm_node   content: ""  gzip + base64, one line
    # tsm-infra: inline-zipapp tsm_infra.node          content: ""  base64 of bundle.boot_archive()
    # tsm-infra: inline-zipapp-gzip tsm_infra.node     content: ""  the same, gzip-compressed

Every output depends on the sources alone (no timestamps), so rendering twice gives the same text.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib
import importlib.util
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tsm_infra.errors import BadInputError

_MARKER = re.compile(
    r"^ *# tsm-infra: (?P<mode>inline|inline-gzip|inline-zipapp|inline-zipapp-gzip)"
    r" (?P<source>[\w.]+)(?: .*)?$"
)
# The empty value a marker announces: Lambda's Code.ZipFile or a cfn-init file's content.
_EMPTY = re.compile(r'^(?P<indent> *)(?P<key>ZipFile|content): ""$')


@dataclass(frozen=True)
class Inlined:
    """One filled-in marker: where it is in the source, and how many lines it added."""

    source: str  # the module or package the marker names
    line: int  # 1-based line of the marker in the source template
    added: int  # lines the rendered text has beyond the source's one value line


@dataclass(frozen=True)
class Rendered:
    """A template's text with its inline code in place, and how its lines map to the source's."""

    text: str
    inlined: tuple[Inlined, ...]

    def source_line(self, line: int) -> int:
        """The source template's line for a line of the rendered text (1-based both).

        A line inside inlined code maps to the marker that asked for it.
        """
        shift = 0
        for code in self.inlined:
            value_line = code.line + 1 + shift  # the rendered line of the value's first line
            if line <= value_line:
                break
            if line <= value_line + code.added:
                return code.line
            shift += code.added
        return line - shift


def _module_source(name: str) -> str:
    """The source of the module named `name` (dotted, as imported)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise BadInputError(f"inline marker names {name}, which is not an importable module")
    return Path(spec.origin).read_text(encoding="utf-8")


def _package_files(package: str) -> list[Path]:
    """What a package's zipapp can be built from: its modules, and its top package's __init__."""
    spec = importlib.util.find_spec(package)
    top = importlib.util.find_spec(package.split(".", maxsplit=1)[0])
    if spec is None or spec.origin is None or top is None or top.origin is None:
        raise BadInputError(f"inline marker names {package}, which is not an importable package")
    return [Path(top.origin), *sorted(Path(spec.origin).parent.rglob("*.py"))]


def _zipapp(package: str) -> bytes:
    """The zipapp a package's `bundle` module builds (`boot_archive()`, deterministic bytes)."""
    bundle = importlib.import_module(f"{package}.bundle")
    archive: Callable[[], bytes] = bundle.boot_archive
    return archive()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # GzipFile writes a fixed header (mtime 0, no name, OS "unknown"): gzip.compress would name
    # the operating system, and the rendered template would differ from macOS to Linux
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def _block(indent: str, key: str, source: str, where: str) -> list[str]:
    if source[:1] in (" ", "\n") or not source.endswith("\n") or source.endswith("\n\n"):
        # a literal block `|` keeps exactly one final newline and cannot start indented
        raise BadInputError(
            f"{where}: cannot inline it as a YAML block; fix its first or last line"
        )
    inner = indent + "  "
    return [
        f"{indent}{key}: |",
        *(inner + line if line else "" for line in source[:-1].split("\n")),
    ]


def _value_lines(mode: str, source: str, indent: str, key: str, where: str) -> list[str]:
    if mode == "inline":
        return _block(indent, key, _module_source(source), where)
    if mode == "inline-gzip":
        data = _gzip(_module_source(source).encode("utf-8"))
    elif mode == "inline-zipapp":
        data = _zipapp(source)
    else:
        data = _gzip(_zipapp(source))
    return [f"{indent}{key}: {base64.b64encode(data).decode('ascii')}"]


def inputs_digest(text: str) -> str:
    """A sha256 of everything `render(text)` is made from, found without rendering.

    That is the text, this module's own code, and the sources each marker names (for a zipapp,
    every module of its package): building a zipapp takes most of a second, hashing its
    sources a few milliseconds, so caches of what a rendering gives key on this.
    """
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(text.encode("utf-8"))
    for line in text.split("\n"):
        marker = _MARKER.match(line)
        if marker is None:
            continue
        digest.update(f"\0{marker['mode']} {marker['source']}\0".encode())
        if marker["mode"].startswith("inline-zipapp"):
            for path in _package_files(marker["source"]):
                digest.update(f"{path.name}\0".encode() + path.read_bytes())
        else:
            digest.update(_module_source(marker["source"]).encode("utf-8"))
    return digest.hexdigest()


def render(text: str, name: str) -> Rendered:
    """`text` (the template file `name`) with the code every marker names filled in."""
    lines = text.split("\n")
    out: list[str] = []
    inlined: list[Inlined] = []
    i = 0
    while i < len(lines):
        marker = _MARKER.match(lines[i])
        if marker is None and lines[i].lstrip().startswith("# tsm-infra:"):
            # a misspelt marker would leave the code out of the stack without a word
            raise BadInputError(
                f"{name}:{i + 1}: not a marker this renderer knows; write "
                "`# tsm-infra: inline|inline-gzip|inline-zipapp|inline-zipapp-gzip <module>`"
            )
        out.append(lines[i])
        i += 1
        if marker is None:
            continue
        value = _EMPTY.match(lines[i]) if i < len(lines) else None
        if value is None:
            raise BadInputError(
                f'{name}:{i + 1}: `ZipFile: ""` or `content: ""` must follow the inline marker'
            )
        code = _value_lines(
            marker["mode"], marker["source"], value["indent"], value["key"], f"{name}:{i}"
        )
        out += code
        inlined.append(Inlined(marker["source"], i, len(code) - 1))
        i += 1
    return Rendered("\n".join(out), tuple(inlined))
