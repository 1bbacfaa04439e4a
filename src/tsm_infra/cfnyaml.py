"""CloudFormation YAML read into plain data, with every short-form intrinsic in its long form.

`!Ref X` becomes {"Ref": "X"}, `!GetAtt A.B` {"Fn::GetAtt": ["A", "B"]}, `!Sub ...`
{"Fn::Sub": ...} and so on: the same data cfn-lint's decoder gives (a test holds the two to
identical JSON for both templates), without importing cfn-lint, which takes most of a second
and which deploy does not otherwise need.
"""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's loader when PyYAML was built with it (several times faster), else the pure one
_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Tags that keep their name; every other `!Name` is the function `Fn::Name`.
_UNPREFIXED = frozenset({"Ref", "Condition"})


class _Loader(_BASE):  # type: ignore[valid-type, misc]
    """A safe loader that knows the CloudFormation short forms."""


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    if isinstance(node, yaml.ScalarNode):
        # `!GetAtt Resource.Attribute.With.Dots`: the resource name is the part before the first dot
        return str(loader.construct_scalar(node)).split(".", 1)
    if isinstance(node, yaml.SequenceNode):
        return list(loader.construct_sequence(node, deep=True))
    raise yaml.constructor.ConstructorError(
        None, None, "!GetAtt takes Resource.Attribute or [Resource, Attribute]", node.start_mark
    )


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in _UNPREFIXED else f"Fn::{suffix}"
    value: Any
    if name == "Fn::GetAtt":
        value = _get_att(loader, node)
    elif isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no fourth node kind
        raise yaml.constructor.ConstructorError(None, None, f"bad !{suffix}", node.start_mark)
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


def load(text: str) -> Any:
    """The template's data; raises yaml.YAMLError (with its line) when it is not YAML."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
