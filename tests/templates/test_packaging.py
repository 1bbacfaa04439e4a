"""Rendering: the committed templates hold markers, rendering fills in the code; the body deploy
sends is decoded without cfn-lint into the same JSON cfn-lint's decoder gives."""

from __future__ import annotations

import base64
import gzip
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tsm_infra import cfnyaml
from tsm_infra.cli import cli
from tsm_infra.errors import BadInputError
from tsm_infra.inlining import render
from tsm_infra.templates import (
    TEMPLATE_BODY_LIMIT,
    TEMPLATE_FILES,
    rendered,
    template_body,
    template_path,
)

MODULE = "tsm_infra.functions"
SOURCE = (Path(__file__).resolve().parents[2] / "src/tsm_infra/functions/__init__.py").read_text()
BLOCK_TEMPLATE = f"""\
Resources:
  Fn:
    Code:
      # tsm-infra: inline {MODULE} (filled in when rendered)
      ZipFile: ""

  Next: {{}}
"""


def _fake_bundle(root: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A package `fakeboot` whose bundle.boot_archive() gives a small zip; its bytes."""
    (root / "fakeboot").mkdir()
    (root / "fakeboot" / "__init__.py").write_text("")
    (root / "fakeboot" / "bundle.py").write_text(
        "import io, zipfile\n"
        "def boot_archive() -> bytes:\n"
        "    out = io.BytesIO()\n"
        "    with zipfile.ZipFile(out, 'w') as z:\n"
        "        z.writestr(zipfile.ZipInfo('__main__.py', (1980, 1, 1, 0, 0, 0)), 'print(1)')\n"
        "    return out.getvalue()\n"
    )
    monkeypatch.syspath_prepend(str(root))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("__main__.py", (1980, 1, 1, 0, 0, 0)), "print(1)")
    return buffer.getvalue()


def test_a_block_marker_gets_the_module_and_keeps_the_yaml_around_it() -> None:
    out = render(BLOCK_TEMPLATE, "t.yaml")
    data = yaml.safe_load(out.text)
    assert data["Resources"]["Fn"]["Code"]["ZipFile"] == SOURCE
    assert out.text.endswith("\n\n  Next: {}\n")
    assert render(BLOCK_TEMPLATE, "t.yaml") == out  # the same text on every run


def test_rendered_lines_map_back_to_the_source() -> None:
    out = render(BLOCK_TEMPLATE, "t.yaml")
    added = SOURCE.count("\n")
    [code] = out.inlined
    assert (code.source, code.line, code.added) == (MODULE, 4, added)
    assert [out.source_line(n) for n in (1, 4, 5)] == [1, 4, 5]
    assert out.source_line(6) == out.source_line(5 + added) == 4  # inside the code: its marker
    assert out.text.split("\n")[7 + added - 1] == "  Next: {}"
    assert out.source_line(7 + added) == 7


def test_a_gzip_marker_gets_the_module_compressed() -> None:
    text = f'files:\n  f:\n    # tsm-infra: inline-gzip {MODULE}\n    content: ""\n'
    content = yaml.safe_load(render(text, "t.yaml").text)["files"]["f"]["content"]
    assert gzip.decompress(base64.b64decode(content)).decode() == SOURCE


@pytest.mark.parametrize("mode", ["inline-zipapp", "inline-zipapp-gzip"])
def test_a_zipapp_marker_gets_the_bundles_archive(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _fake_bundle(tmp_path, monkeypatch)
    text = f'files:\n  f:\n    # tsm-infra: {mode} fakeboot\n    content: ""\n'
    out = render(text, "t.yaml").text
    data = base64.b64decode(yaml.safe_load(out)["files"]["f"]["content"])
    assert (gzip.decompress(data) if mode.endswith("gzip") else data) == archive
    assert render(text, "t.yaml").text == out  # a fixed gzip header: the same bytes each time


def test_a_marker_without_its_empty_value_is_an_error() -> None:
    with pytest.raises(BadInputError, match=r"t.yaml:2: `ZipFile: \"\"` or `content: \"\"`"):
        render(f"# tsm-infra: inline {MODULE}\nZipFile: |\n  old\n", "t.yaml")
    with pytest.raises(BadInputError, match=r"t\.yaml:1: not a marker this renderer knows"):
        render(f'# tsm-infra: inline-zip {MODULE}\ncontent: ""\n', "t.yaml")
    with pytest.raises(BadInputError, match="not an importable module"):
        render('# tsm-infra: inline tsm_infra.no_such_module\nZipFile: ""\n', "t.yaml")


@pytest.mark.parametrize("kind", sorted(TEMPLATE_FILES))
def test_the_committed_templates_carry_markers_not_code(kind: str) -> None:
    lines = template_path(kind).read_text().split("\n")
    markers = [i for i, line in enumerate(lines) if "# tsm-infra: inline" in line]
    assert markers
    for i in markers:
        assert lines[i + 1].strip() in ('ZipFile: ""', 'content: ""')
    assert max(len(line) for line in lines) < 400


@pytest.mark.parametrize("kind", sorted(TEMPLATE_FILES))
def test_the_body_is_the_json_cfnlint_decodes(kind: str) -> None:
    from cfnlint.decode.decode import decode_str

    decoded, errors = decode_str(rendered(kind).text)
    assert not errors
    assert template_body(kind) == json.dumps(decoded, separators=(",", ":"))
    assert len(template_body(kind).encode()) <= TEMPLATE_BODY_LIMIT


def test_the_loader_reads_every_short_form() -> None:
    text = (
        "A: !Ref X\nB: !GetAtt R.Attr.With.Dots\nC: !GetAtt [R, Attr]\nD: !Sub ['${a}', {a: 1}]\n"
        "E: !If [C, !Ref Y, !Ref AWS::NoValue]\nF: !Condition C\nG: !GetAZs ''\n"
        'H: !Select [0, !Split [",", !Ref L]]\nI: "2010-09-09"\nJ: !Base64 {Ref: Z}\n'
    )
    assert cfnyaml.load(text) == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["R", "Attr.With.Dots"]},
        "C": {"Fn::GetAtt": ["R", "Attr"]},
        "D": {"Fn::Sub": ["${a}", {"a": 1}]},
        "E": {"Fn::If": ["C", {"Ref": "Y"}, {"Ref": "AWS::NoValue"}]},
        "F": {"Condition": "C"},
        "G": {"Fn::GetAZs": ""},
        "H": {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "L"}]}]},
        "I": "2010-09-09",
        "J": {"Fn::Base64": {"Ref": "Z"}},
    }


def test_the_body_is_made_once_per_process() -> None:
    assert template_body("kms") is template_body("kms")
    assert rendered("core") is rendered("core")


def test_a_body_over_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long = "x" * TEMPLATE_BODY_LIMIT
    (tmp_path / "kms.yaml").write_text(
        f"Resources:\n  T:\n    Type: AWS::SNS::Topic\n    D: {long}\n"
    )
    monkeypatch.setenv("TSM_INFRA_TEMPLATES", str(tmp_path))
    with pytest.raises(BadInputError, match=r"kms.yaml: 512\d\d bytes as JSON, over .* 51200-byte"):
        template_body("kms")


def test_deploy_renders_without_importing_cfnlint() -> None:
    script = (
        "import sys\n"
        "import tsm_infra.run, tsm_infra.stacks, tsm_infra.aws\n"
        "from tsm_infra.templates import template_body, template_interface\n"
        "for kind in ('kms', 'core'):\n"
        "    template_interface(kind)\n"
        "    template_body(kind)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cfnlint', 'moto')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_writes_standalone_templates(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["package", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for kind, name in TEMPLATE_FILES.items():
        written = (tmp_path / "out" / name).read_text()
        assert str(tmp_path / "out" / name) in result.output
        assert json.dumps(cfnyaml.load(written), separators=(",", ":")) == template_body(kind)
        assert "tsm-infra: inline" in written  # the marker stays, as a comment


def test_a_yaml_error_names_the_source_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the error is past the inlined handler; its line is the one in the file, not the rendering
    (tmp_path / "kms.yaml").write_text(
        "Resources:\n  Fn:\n    Code:\n      # tsm-infra: inline tsm_infra.functions.keygen\n"
        '      ZipFile: ""\n  Bad: [unclosed\n'
    )
    monkeypatch.setenv("TSM_INFRA_TEMPLATES", str(tmp_path))
    with pytest.raises(BadInputError, match=r"kms.yaml:[67]: not a readable template"):
        template_body("kms")
