"""The limits that keep the package readable: file and class sizes, and no import cycles.

The checker reads every Python file under a package with `ast` and reports, by file and line,
each source file over 600 lines, each class over 250 lines, and each cycle among the package's
own modules. Imports count wherever they are written, at module level or inside a function
(a lazy import still ties the two modules together), except under `if TYPE_CHECKING:`, which
never runs. An import names the module it loads: `from pkg.spec import models` is an edge to
`pkg.spec.models`, `from pkg.spec import Node` one to `pkg.spec`. The parent packages Python
initialises on the way are not edges of their own: a package that re-exports its parts from
`__init__.py` is not in a cycle with them unless a part imports the package back.

The fixture tests prove the checker on small trees in `tmp_path`; the last test holds
`src/tsm_infra` to it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from tests.helpers import REPO

MAX_FILE_LINES = 600
MAX_CLASS_LINES = 250


@dataclass(frozen=True)
class Module:
    """One parsed source file, with its dotted name."""

    name: str
    path: Path
    is_package: bool
    lines: int
    tree: ast.Module = field(repr=False)

    @property
    def package(self) -> str:
        """The package a relative import in this module starts from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def read_modules(root: Path, package: str) -> dict[str, Module]:
    """Every `.py` file under `root` (the directory of `package`), by dotted module name."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name = ".".join(parts)
        tree = ast.parse(text, filename=str(path))
        modules[name] = Module(name, path, is_package, len(text.splitlines()), tree)
    return modules


def _where(module: Module, base: Path, line: int | None = None) -> str:
    shown = module.path.relative_to(base).as_posix()
    return f"{shown}:{line}" if line is not None else shown


def oversized_files(modules: dict[str, Module], base: Path) -> list[str]:
    """A line for each file over MAX_FILE_LINES lines."""
    return [
        f"{_where(m, base)}: {m.lines} lines (at most {MAX_FILE_LINES}); split it"
        for m in modules.values()
        if m.lines > MAX_FILE_LINES
    ]


def oversized_classes(modules: dict[str, Module], base: Path) -> list[str]:
    """A line for each class (nested ones included) over MAX_CLASS_LINES lines."""
    found: list[str] = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.ClassDef) or node.end_lineno is None:
                continue
            # decorators are part of the class as a reader sees it
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            size = node.end_lineno - start + 1
            if size > MAX_CLASS_LINES:
                found.append(
                    f"{_where(module, base, node.lineno)}: class {node.name} is {size} lines "
                    f"(at most {MAX_CLASS_LINES}); split it"
                )
    return found


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`, the imports only type checkers run."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node` that can run, at any depth."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            # the body never runs; an else branch does
            yield from _runtime_imports(ast.Module(body=child.orelse, type_ignores=[]))
        else:
            yield from _runtime_imports(child)


def _targets(module: Module, node: ast.Import | ast.ImportFrom, known: set[str]) -> Iterator[str]:
    """The package's modules one import statement loads, by dotted name."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    if node.level:
        base = module.package.split(".")
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in known:
            yield submodule
        elif source in known:
            yield source


def import_graph(modules: dict[str, Module]) -> dict[str, dict[str, int]]:
    """For each module, the package's modules it imports, each with the line of its first import."""
    known = set(modules)
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, module in modules.items():
        for node in _runtime_imports(module.tree):
            for target in _targets(module, node, known):
                if target != name:
                    graph[name].setdefault(target, node.lineno)
    return graph


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components of the graph, each sorted, the ones of two or more modules only."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _shortest_cycle(graph: dict[str, dict[str, int]], members: list[str]) -> list[str]:
    """The shortest way from the component's first module back to itself.

    Every module on a path that returns to the start is in the start's component, so the search
    needs no bound beyond the graph.
    """
    start = members[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{members} is not a cycle")  # a component always has one


def import_cycles(modules: dict[str, Module], base: Path) -> list[str]:
    """A line for each group of modules that import each other, showing one cycle in it."""
    graph = import_graph(modules)
    found: list[str] = []
    for members in _strongly_connected(graph):
        cycle = _shortest_cycle(graph, members)
        hops = ", ".join(
            f"{_where(modules[a], base, graph[a][b])} imports {b}" for a, b in pairwise(cycle)
        )
        # a larger group holds more cycles than the one shown: name all its modules
        also = (
            f" (one of the cycles among {', '.join(members)})" if len(members) >= len(cycle) else ""
        )
        found.append(f"import cycle {' -> '.join(cycle)}: {hops}{also}")
    return found


def layout_problems(root: Path, package: str, base: Path) -> list[str]:
    """Every file, class and import-cycle problem of `package` at `root`, paths from `base`."""
    modules = read_modules(root, package)
    return (
        oversized_files(modules, base)
        + oversized_classes(modules, base)
        + import_cycles(modules, base)
    )


# --------------------------------------------------------------------------- the checker


def write(root: Path, files: dict[str, str]) -> Path:
    """Write a package tree `pkg` under `root` and return the package's directory."""
    for relative, text in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return layout_problems(write(tmp_path, {"__init__.py": "", **files}), "pkg", tmp_path)


def cycles_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    package = write(tmp_path, {"__init__.py": "", **files})
    return import_cycles(read_modules(package, "pkg"), tmp_path)


def _class(name: str, lines: int) -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 1))
    return f"class {name}:\n{body}"


def test_a_file_over_600_lines_is_named_with_its_size(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"big.py": "x = 1\n" * 601, "fits.py": "x = 1\n" * 600})
    assert problems == ["pkg/big.py: 601 lines (at most 600); split it"]


def test_a_class_over_250_lines_is_named_with_its_file_line_and_size(tmp_path: Path) -> None:
    text = "import dataclasses\n\n" + _class("Fits", 250) + "\n@dataclasses.dataclass\n"
    text += _class("Big", 250)  # 251 lines with its decorator
    assert problems_of(tmp_path, {"m.py": text}) == [
        "pkg/m.py:255: class Big is 251 lines (at most 250); split it"
    ]


def test_a_nested_class_counts_on_its_own(tmp_path: Path) -> None:
    inner = "".join(f"    {line}\n" for line in _class("Inner", 251).splitlines())
    text = "def factory():\n" + inner
    assert problems_of(tmp_path, {"m.py": text}) == [
        "pkg/m.py:2: class Inner is 251 lines (at most 250); split it"
    ]


def test_two_modules_importing_each_other_are_a_cycle(tmp_path: Path) -> None:
    files = {"a.py": "import os\nimport pkg.b\n", "b.py": "from pkg.a import name\n"}
    assert cycles_of(tmp_path, files) == [
        "import cycle pkg.a -> pkg.b -> pkg.a: pkg/a.py:2 imports pkg.b, pkg/b.py:1 imports pkg.a"
    ]


def test_an_import_inside_a_function_counts(tmp_path: Path) -> None:
    files = {
        "a.py": "from pkg import b\n",
        "b.py": "class C:\n    def run(self):\n        if True:\n            from pkg.a import x\n",
    }
    assert cycles_of(tmp_path, files) == [
        "import cycle pkg.a -> pkg.b -> pkg.a: pkg/a.py:1 imports pkg.b, pkg/b.py:4 imports pkg.a"
    ]


def test_imports_for_type_checkers_only_do_not_count(tmp_path: Path) -> None:
    files = {
        "a.py": "from pkg import b\n",
        "b.py": (
            "import typing\nfrom typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg.a import x\n"
            "if typing.TYPE_CHECKING:\n    import pkg.a\n"
            "def f():\n    if TYPE_CHECKING:\n        from pkg import a\n"
        ),
    }
    assert cycles_of(tmp_path, files) == []


def test_the_else_branch_of_type_checking_runs(tmp_path: Path) -> None:
    files = {
        "a.py": "from pkg import b\n",
        "b.py": "if TYPE_CHECKING:\n    pass\nelse:\n    from pkg.a import x\n",
    }
    assert cycles_of(tmp_path, files) == [
        "import cycle pkg.a -> pkg.b -> pkg.a: pkg/a.py:1 imports pkg.b, pkg/b.py:4 imports pkg.a"
    ]


def test_relative_imports_resolve_from_the_module_and_from_a_package(tmp_path: Path) -> None:
    files = {
        "sub/__init__.py": "from . import a\n",  # pkg.sub -> pkg.sub.a
        "sub/a.py": "from ..c import x\n",  # pkg.sub.a -> pkg.c
        "c.py": "def f():\n    from .sub import a\n",  # pkg.c -> pkg.sub.a
    }
    assert cycles_of(tmp_path, files) == [
        "import cycle pkg.c -> pkg.sub.a -> pkg.c: "
        "pkg/c.py:2 imports pkg.sub.a, pkg/sub/a.py:1 imports pkg.c"
    ]


def test_a_name_from_a_package_is_an_edge_to_the_package_not_its_parts(tmp_path: Path) -> None:
    files = {
        "spec/__init__.py": "from pkg.spec.models import Node\nfrom pkg.spec.reader import read\n",
        "spec/models.py": "from pkg.spec.reader import show\n",
        "spec/reader.py": "",
        "user.py": "from pkg.spec import Node\n",
    }
    modules = read_modules(write(tmp_path, {"__init__.py": "", **files}), "pkg")
    graph = import_graph(modules)
    assert graph["pkg.user"] == {"pkg.spec": 1}
    assert graph["pkg.spec"] == {"pkg.spec.models": 1, "pkg.spec.reader": 2}
    assert import_cycles(modules, tmp_path) == []  # re-exporting its parts is no cycle


def test_a_part_importing_its_own_package_back_is_a_cycle(tmp_path: Path) -> None:
    files = {
        "spec/__init__.py": "from pkg.spec.models import Node\n",
        "spec/models.py": "from pkg.spec import format_path\n",
    }
    assert cycles_of(tmp_path, files) == [
        "import cycle pkg.spec -> pkg.spec.models -> pkg.spec: "
        "pkg/spec/__init__.py:1 imports pkg.spec.models, pkg/spec/models.py:1 imports pkg.spec"
    ]


def test_a_longer_cycle_is_shown_in_order_and_outside_imports_are_ignored(tmp_path: Path) -> None:
    files = {
        "a.py": "import json\nfrom pkg.b import x\n",
        "b.py": "from pkg.c import y\nimport pkg.d\n",
        "c.py": "from pkg import a, missing\nimport yaml\n",
        "d.py": "from pkg.a import z\n",
    }
    assert cycles_of(tmp_path, files) == [
        "import cycle pkg.a -> pkg.b -> pkg.c -> pkg.a: pkg/a.py:2 imports pkg.b, "
        "pkg/b.py:1 imports pkg.c, pkg/c.py:1 imports pkg.a "
        "(one of the cycles among pkg.a, pkg.b, pkg.c, pkg.d)"
    ]


def test_a_tree_within_the_limits_has_no_problems(tmp_path: Path) -> None:
    files = {"a.py": "from pkg import b\n", "b.py": "import pkg.c\n", "c.py": _class("C", 250)}
    assert problems_of(tmp_path, files) == []


def test_the_checker_reads_the_real_package() -> None:
    # the last test holds src/tsm_infra to the checker, so the checker must see the whole tree
    modules = read_modules(REPO / "src" / "tsm_infra", "tsm_infra")
    graph = import_graph(modules)
    assert {"tsm_infra", "tsm_infra.cli", "tsm_infra.spec.reader"} <= set(modules)
    assert "tsm_infra.spec" in graph["tsm_infra.cli"]  # imported inside a command function
    assert "tsm_infra.spec.reader" in graph["tsm_infra.spec.models"]
    assert "tsm_infra.spec" not in graph["tsm_infra.limits"]  # under TYPE_CHECKING only


def test_the_package_keeps_its_layout_limits() -> None:
    problems = layout_problems(REPO / "src" / "tsm_infra", "tsm_infra", REPO)
    assert problems == [], "\n".join(problems)
