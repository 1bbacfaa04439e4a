"""Reading spec YAML: plain Python data, the line of every key, and no duplicate keys.

PyYAML's own constructor forgets where each value came from and keeps the last of two equal
keys silently. `read_yaml` builds the data from the node tree instead, so every later problem
can name its line, and a duplicate key is a problem of its own rather than a lost setting.
"""

from __future__ import annotations

from typing import Any

import yaml

from tsm_infra.errors import Problem, SpecError
from tsm_infra.specfile import fail as _fail

# A spec is a few dozen lines; this bound stops alias bombs ("billion laughs") long before they
# cost memory or time.
MAX_YAML_NODES = 20_000
MAX_YAML_DEPTH = 40

YamlPath = tuple[str | int, ...]


def show(value: object) -> str:
    """A value as a message quotes it: its repr, cut short after 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_path(path: YamlPath) -> str:
    """`('nodes', 2, 'account')` -> `nodes[2].account`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class LineMap:
    """Remembers the line of every mapping key and sequence item, by YAML path."""

    def __init__(self) -> None:
        self._lines: dict[YamlPath, int] = {(): 1}
        # the text of unquoted scalars YAML read as numbers or booleans, to show what was written
        self.raw: dict[YamlPath, str] = {}

    def add(self, path: YamlPath, line: int) -> None:
        self._lines.setdefault(path, line)

    def line_of(self, path: YamlPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that is in the file."""
        for end in range(len(path), -1, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


class _Reader:
    """Builds plain Python data from a YAML node tree, keeping lines and refusing duplicates."""

    def __init__(self, loader: yaml.SafeLoader, lines: LineMap) -> None:
        self.loader = loader
        self.lines = lines
        self.problems: list[Problem] = []
        self.nodes_seen = 0

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.nodes_seen += 1
        if self.nodes_seen > MAX_YAML_NODES or len(path) > MAX_YAML_DEPTH:
            raise _TooLarge(format_path(path), node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines.add((*path, i), item.start_mark.line + 1)
                items.append(self.build(item, (*path, i)))
            return items
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, bool | int | float) and getattr(node, "style", "") is None:
            self.lines.raw[path] = node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[str, Any]:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node, path)
            line = key_node.start_mark.line + 1
            if key is None:
                continue
            if key in first_line:
                self.problems.append(
                    Problem(
                        format_path((*path, key)),
                        f"duplicate key {key!r} (first at line {first_line[key]}); "
                        "keep one of them",
                        line,
                    )
                )
            else:
                first_line[key] = line
        # merge keys (`<<: *base`) are legitimate; flatten them the way PyYAML does, after the
        # duplicate check so that an explicit key overriding a merged one is not a duplicate
        self.loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path, report=False)
            if key is None:
                continue
            self.lines.add((*path, key), key_node.start_mark.line + 1)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, key_node: yaml.Node, path: YamlPath, *, report: bool = True) -> str | None:
        key = (
            self.loader.construct_object(key_node, deep=True)
            if isinstance(key_node, yaml.ScalarNode)
            else None
        )
        if isinstance(key, str):
            return key
        if report and isinstance(key_node, yaml.ScalarNode) and key is None:
            self.problems.append(
                Problem(
                    format_path(path),
                    "a key is empty (null); write a name before the ':' or remove the line",
                    key_node.start_mark.line + 1,
                )
            )
        elif report:
            got = show(key) if key is not None else "a collection"
            plain = getattr(key_node, "style", "") is None
            if plain and isinstance(key, bool | int | float) and key_node.value != str(key):
                got = (
                    f"{key_node.value} unquoted, which YAML reads as {str(key).lower()}; "
                    f'quote it: "{key_node.value}"'
                )
            self.problems.append(
                Problem(
                    format_path(path),
                    f"keys must be names, got {got}",
                    key_node.start_mark.line + 1,
                )
            )
        return None


class _TooLarge(Exception):
    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line


def read_yaml(text: str, source: str) -> tuple[Any, LineMap]:
    """The data of one YAML document and the lines of its keys; SpecError for any problem."""
    lines = LineMap()
    try:
        # the constructor already rejects characters YAML does not allow
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        at = text[: exc.position].count("\n") + 1
        message = f"character {exc.character:#06x} is not allowed in YAML; remove it"
        raise _fail(source, message, at) from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise _fail(source, "the spec is empty; start from examples/three-nodes.yaml")
        reader = _Reader(loader, lines)
        data = reader.build(root, ())
    except yaml.MarkedYAMLError as exc:
        several = exc.context == "expected a single document in the stream"
        if isinstance(exc, yaml.composer.ComposerError) and several and exc.problem_mark:
            message = (
                "holds several YAML documents (a second one starts at this line); a spec is one "
                "document: remove the extra '---' or split the files"
            )
            raise _fail(source, message, exc.problem_mark.line + 1) from None
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "not valid YAML"
        raise _fail(source, f"YAML syntax error: {what}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise _fail(source, f"not readable as YAML: {exc}") from None
    except (_TooLarge, RecursionError) as exc:
        message = (
            "the spec is nested too deeply or expands to too much data (check anchors and aliases)"
        )
        raise _fail(source, message, exc.line if isinstance(exc, _TooLarge) else None) from None
    finally:
        loader.dispose()
    if reader.problems:
        raise SpecError(source, reader.problems)
    return data, lines
