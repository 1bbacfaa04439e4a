"""The boot archive: the boot modules as a zipapp, which cfn-init writes to /opt/tsm/tsm_node.pyz.

It holds tsm_infra/__init__.py (which imports nothing), the boot modules of tsm_infra/node/ and a
__main__.py that runs tsm_node.main, and nothing else of tsm_infra: on the instance only the
standard library is there to import. This module builds it on the operator's machine, when a
template is rendered; it is not part of the archive.

The Core template carries the archive gzip-compressed (marker `inline-zipapp-gzip`, see
tsm_infra.inlining): CloudFormation takes a TemplateBody of at most 51,200 bytes, and a zip
compresses each module on its own, so the entries are stored and one gzip stream spans them all.
The archived sources leave out docstrings and comments (a third of their size); `stripped` proves
the code itself unchanged.

The bytes depend on the sources alone (fixed order, timestamps and attributes), so a template
rendered twice from the same checkout is the same text, on any machine.
"""

from __future__ import annotations

import ast
import io
import tokenize
import zipfile
from pathlib import Path

_NODE_DIR = Path(__file__).resolve().parent
_PACKAGE_INIT = _NODE_DIR.parent / "__init__.py"
# The zip format's earliest date; any fixed one would do, the files' mtimes would not.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MAIN = """\
import sys

from tsm_infra.node.tsm_node import main

sys.exit(main(sys.argv[1:]))
"""
_SCOPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def boot_modules() -> list[Path]:
    """The source files of tsm_infra.node that run on the instance, in archive order."""
    return sorted(p for p in _NODE_DIR.glob("*.py") if p.name != Path(__file__).name)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def stripped(source: str, name: str) -> str:
    """`source` without docstrings, comments and blank lines: the same code, line for line.

    A docstring that is a body's only statement becomes `...`. Lines inside multi-line strings
    are kept as they are. Raises ValueError if the result parses to a different program.
    """
    tree = ast.parse(source, name)
    lines = dict(enumerate(source.split("\n"), start=1))
    dropped: set[int] = set()
    inside_strings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, _SCOPES) and node.body and _is_docstring(node.body[0]):
            doc = node.body[0]
            dropped.update(range(doc.lineno, (doc.end_lineno or doc.lineno) + 1))
            if len(node.body) == 1:  # a body cannot be empty
                dropped.discard(doc.lineno)
                lines[doc.lineno] = " " * doc.col_offset + "..."
            node.body = node.body[1:] or [ast.Expr(ast.Constant(...))]
        elif isinstance(node, (ast.Constant, ast.JoinedStr)) and node.end_lineno:
            inside_strings.update(range(node.lineno + 1, node.end_lineno + 1))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row] = lines[row][:column].rstrip()
    kept = (
        text
        for number, text in lines.items()
        if number not in dropped and (text.strip() or number in inside_strings)
    )
    result = "\n".join(kept) + "\n"
    if ast.dump(ast.parse(result, name)) != ast.dump(tree):
        raise ValueError(f"{name}: stripping docstrings and comments changed the code")
    return result


def boot_archive() -> bytes:
    """The zipapp's bytes: `python3 archive.pyz COMMAND SETTINGS_JSON` runs the boot."""
    entries = [
        ("__main__.py", _MAIN),
        ("tsm_infra/__init__.py", _PACKAGE_INIT.read_text(encoding="utf-8")),
        *(
            (f"tsm_infra/node/{path.name}", path.read_text(encoding="utf-8"))
            for path in boot_modules()
        ),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED  # the template's gzip compresses them all
            info.create_system = 3  # Unix, wherever it is built, for the mode bits below
            info.external_attr = 0o644 << 16
            archive.writestr(info, stripped(source, name).encode("utf-8"))
    return buffer.getvalue()
