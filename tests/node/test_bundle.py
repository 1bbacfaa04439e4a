"""The boot archive (bundle.py) and the rules its modules keep: Python 3.9, stdlib only, small.

The archive is built, written to a temporary directory and run as cfn-init runs it, under a
Python 3.9 interpreter when the machine has one (Amazon Linux 2023's), else under this one.
"""

from __future__ import annotations

import ast
import base64
import gzip
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nodehelpers as h
import pytest
from test_bootstrap import make_node

from tsm_infra.node import bundle

NODE_DIR = Path(bundle.__file__).parent
PACKAGE_INIT = NODE_DIR.parent / "__init__.py"
NODE_SOURCES = sorted(NODE_DIR.glob("*.py"))


def find_python39() -> str | None:
    """A Python 3.9 interpreter if this machine has one."""
    pyenv = Path("/root/.pyenv/versions")
    candidates = [shutil.which("python3.9"), *map(str, pyenv.glob("3.9*/bin/python3.9"))]
    for candidate in filter(None, candidates):
        check = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, check=False
        )
        if check.returncode == 0 and check.stdout.startswith("Python 3.9"):
            return candidate
    return None


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("opt") / "tsm_node.pyz"
    path.write_bytes(bundle.boot_archive())
    return path


@pytest.fixture
def ping_server() -> Iterator[h.PingServer]:
    with h.serve_ping() as server:
        yield server


def run_archive(
    archive: Path, *args: str, python: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python3 tsm_node.pyz ARGS` in an empty directory, without the user's site or env."""
    return subprocess.run(
        [python or find_python39() or sys.executable, "-E", "-s", str(archive), *args],
        capture_output=True,
        text=True,
        cwd=archive.parent,
        timeout=60,
        check=False,
    )


# --- the archive


def test_two_builds_are_byte_identical() -> None:
    assert bundle.boot_archive() == bundle.boot_archive()
    with zipfile.ZipFile(io.BytesIO(bundle.boot_archive())) as built:
        infos = built.infolist()
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(info.external_attr >> 16, info.create_system) for info in infos} == {(0o644, 3)}
    # stored: the gzip around the whole archive compresses better than one stream per module
    assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED}


def test_the_archive_holds_the_boot_modules_and_nothing_else() -> None:
    with zipfile.ZipFile(io.BytesIO(bundle.boot_archive())) as built:
        names = built.namelist()
        main = built.read("__main__.py").decode()
    boot = [f"tsm_infra/node/{p.name}" for p in NODE_SOURCES if p.name != "bundle.py"]
    assert names == ["__main__.py", "tsm_infra/__init__.py", *boot]
    assert "from tsm_infra.node.tsm_node import main" in main


def test_the_gzipped_archive_fits_the_template_body_budget() -> None:
    # core.yaml's JSON body was 49,833 bytes with the 15,979 base64 characters of the one
    # module gzipped; CloudFormation's limit is 51,200, so the archive must not grow past that.
    packed = gzip.compress(bundle.boot_archive(), 9, mtime=0)
    assert len(base64.b64encode(packed)) <= 15_979


def test_the_archive_answers_help(archive: Path) -> None:
    done = run_archive(archive, "--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(
        "usage: tsm_node.pyz {configure|install|wait|bootstrap} SETTINGS_JSON\n"
    )
    done = run_archive(archive)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "tsm-node: usage: tsm_node.pyz {configure|install|wait|bootstrap} SETTINGS_JSON\n"
    )


def test_the_archive_runs_a_subcommand(
    archive: Path, tmp_path: Path, ping_server: h.PingServer
) -> None:
    data = h.settings_data(0)
    data["ports"]["sdk"] = ping_server.port
    node = make_node(tmp_path, data)
    done = run_archive(archive, "wait", str(node.settings))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f"tsm-node: waiting up to 900 s for /ping on port {ping_server.port}",
        "tsm-node: wait done",
    ]
    assert ping_server.requests == 1


PY39_SCRIPT = """
import json, sys
archive = sys.argv[2]
sys.path.insert(0, archive)
from tsm_infra.node import tsm_node
values = json.load(sys.stdin)
def runner(argv, stdin=None):
    return values[argv[argv.index("--name" if "--name" in argv else "--secret-id") + 1]] + "\\n" \\
        if argv[0] == "aws" else ""
root = sys.argv[1]
settings = root + "/etc/tsm/node.json"
def psql(argv, sql, password):
    return ""
codes = [tsm_node.main([c, settings], runner, root, psql) for c in ("configure", "install")]
try:
    tsm_node.wait_ready(1, 0.05, 0.01)  # nothing listens on port 1
except tsm_node.NodeError as err:
    codes.append(str(err).startswith("http://127.0.0.1:1/ping did not answer 200"))
loaded = {name: getattr(module, "__file__", "") for name, module in sys.modules.items()}
ours = sorted(name for name in loaded if name.split(".")[0] == "tsm_infra")
print(json.dumps([codes, ours, all(loaded[name].startswith(archive) for name in ours)]))
"""


def test_the_archive_runs_alone_under_python39(archive: Path, tmp_path: Path) -> None:
    python39 = find_python39()
    if python39 is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    node = make_node(tmp_path / "py39", index=2)
    done = subprocess.run(
        [python39, "-E", "-s", "-c", PY39_SCRIPT, str(node.root), str(archive)],
        input=json.dumps(node.runner.values),
        capture_output=True,
        text=True,
        cwd=archive.parent,
        check=True,
    )
    codes, loaded, from_archive = json.loads(done.stdout.splitlines()[-1])
    assert codes == [0, 0, True], done.stderr
    boot = {f"tsm_infra.node.{p.stem}" for p in NODE_SOURCES if p.name != "bundle.py"}
    assert set(loaded) <= {"tsm_infra", "tsm_infra.node", *boot}
    assert from_archive
    reference = make_node(tmp_path / "py311", index=2)
    assert reference.main("configure") == 0
    assert reference.main("install") == 0
    for path in ("etc/tsm/config.toml", "run/tsm/node.env", "etc/systemd/system/tsm-node.service"):
        assert (node.root / path).read_bytes() == (reference.root / path).read_bytes()


# --- stripping docstrings and comments

SAMPLE = '''"""A module docstring."""

from __future__ import annotations

# a comment line
UNIT = """\\
[Unit]

# not a comment: part of the text
"""
NAME = "x"  # a trailing comment
HELP = f"""{NAME}

  two blank-separated lines # kept
"""


class Empty(Exception):
    """Only a docstring."""


def f() -> str:
    """A docstring, then code."""
    return "#" + UNIT
'''


def test_stripped_drops_docstrings_and_comments_only() -> None:
    out = bundle.stripped(SAMPLE, "sample.py")
    assert out == (
        "from __future__ import annotations\n"
        'UNIT = """\\\n[Unit]\n\n# not a comment: part of the text\n"""\n'
        'NAME = "x"\n'
        'HELP = f"""{NAME}\n\n  two blank-separated lines # kept\n"""\n'
        "class Empty(Exception):\n"
        "    ...\n"
        "def f() -> str:\n"
        '    return "#" + UNIT\n'
    )
    namespace: dict[str, object] = {}
    exec(compile(out, "sample.py", "exec"), namespace)  # noqa: S102 - the test's own text
    assert namespace["HELP"] == "x\n\n  two blank-separated lines # kept\n"


def test_every_boot_module_strips_to_the_same_code() -> None:
    for path in NODE_SOURCES:
        source = path.read_text(encoding="utf-8")
        out = bundle.stripped(source, path.name)  # raises if the code changed
        assert len(out) < len(source)


# --- the rules the boot modules keep


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for item in ast.walk(tree):  # function-level imports count too
        if isinstance(item, ast.Import):
            found |= {alias.name for alias in item.names}
        elif isinstance(item, ast.ImportFrom):
            assert item.level == 0 and item.module, "absolute imports only"
            found.add(item.module)
    return found


def test_the_boot_modules_are_python39_syntax_and_stdlib_only() -> None:
    allowed = {f"tsm_infra.node.{p.stem}" for p in NODE_SOURCES} | {"tsm_infra.node"}
    for path in NODE_SOURCES:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, path.name, feature_version=(3, 9))
        outside = {
            name
            for name in _imports(tree)
            if name.split(".")[0] not in {*sys.stdlib_module_names, "__future__"}
        }
        assert outside <= allowed, f"{path.name} imports {sorted(outside - allowed)}"
        # annotations such as `str | None` stay strings, which Python 3.9 needs
        assert "from __future__ import annotations" in source or not tree.body[1:], path.name
        assert not any(isinstance(item, ast.Match) for item in ast.walk(tree)), path.name


def test_the_package_inits_import_nothing() -> None:
    # tsm_infra/__init__.py goes into the archive: an import there would need the whole tool
    for path in (PACKAGE_INIT, NODE_DIR / "__init__.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert _imports(tree) == set(), path
        assert [type(item) for item in tree.body] == [ast.Expr], path  # a docstring only


def test_the_boot_modules_are_small_and_free_of_cycles() -> None:
    graph = {}
    for path in NODE_SOURCES:
        source = path.read_text(encoding="utf-8")
        assert source.count("\n") <= 600, path.name
        tree = ast.parse(source)
        for item in ast.walk(tree):
            if isinstance(item, ast.ClassDef):
                assert (item.end_lineno or 0) - item.lineno < 250, f"{path.name}: {item.name}"
        graph[path.stem] = {
            name.rsplit(".", 1)[1] for name in _imports(tree) if name.startswith("tsm_infra.node.")
        }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
