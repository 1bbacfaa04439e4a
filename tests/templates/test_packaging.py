"""Packaging: copying a module into a template as a literal block or as gzip + base64."""

from __future__ import annotations

import base64
import gzip

import pytest

from tests.helpers import REPO
from tsm_infra.errors import BadInputError
from tsm_infra.templates import find_inline_code, inline_source, package

MODULE = "src/tsm_infra/functions/__init__.py"
GZIP_TEMPLATE = f"""\
Resources:
  Files:
    # tsm-infra: inline-gzip {MODULE}
    content: ""
"""
BLOCK_TEMPLATE = f"""\
Resources:
  Fn:
    Code:
      # tsm-infra: inline {MODULE}
      ZipFile: |
        old code

  Next: {{}}
"""


def test_gzip_copy_round_trips_and_is_stable() -> None:
    source = (REPO / MODULE).read_text()
    packaged = package(GZIP_TEMPLATE)
    [code] = find_inline_code(packaged)
    assert code.compressed
    assert inline_source(code, packaged) == source
    data = packaged.split("content: ")[1].strip()
    assert gzip.decompress(base64.b64decode(data)).decode() == source
    assert package(packaged) == packaged  # byte-for-byte the same on a second run


def test_a_damaged_gzip_copy_is_stale() -> None:
    packaged = package(GZIP_TEMPLATE)
    damaged = packaged.replace("content: H4sI", "content: H4sJ")
    [code] = find_inline_code(damaged)
    assert inline_source(code, damaged) != (REPO / MODULE).read_text()
    assert package(damaged) == packaged


def test_block_copy_replaces_only_the_block() -> None:
    packaged = package(BLOCK_TEMPLATE)
    assert "old code" not in packaged
    assert packaged.endswith("\n\n  Next: {}\n")
    [code] = find_inline_code(packaged)
    assert inline_source(code, packaged) == (REPO / MODULE).read_text()


def test_a_marker_without_its_block_is_an_error() -> None:
    with pytest.raises(BadInputError, match="must follow the inline marker"):
        find_inline_code(f"# tsm-infra: inline {MODULE}\nnothing: here\n")
    with pytest.raises(BadInputError, match="must follow the marker"):
        find_inline_code(f"# tsm-infra: inline-gzip {MODULE}\ncontent: |\n")
