"""A CloudFormation template's resources and what each needs first, without deploying it.

The resources a stack will hold (Fn::ForEach expanded, resources whose Condition is false left
out) and, for each, the resources it names through Ref, Fn::GetAtt, Fn::Sub (`${X}`,
`${X.Attr}`) or DependsOn. Pure: no AWS, no files. The Fn::ForEach expansion is a small one of
its own, because the emulator's (tsm_infra.emulator.langext) is reached through a package that
imports moto, and the emulator's latency model imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def parameter_values(
    template: Mapping[str, Any], given: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each parameter's value as the stack sees it: given, else the template's default."""
    values: dict[str, str] = {}
    for name, slot in (template.get("Parameters") or {}).items():
        if given is not None and name in given:
            values[name] = given[name]
        elif isinstance(slot, Mapping) and "Default" in slot:
            values[name] = str(slot["Default"])
    return values


def resources(
    template: Mapping[str, Any], parameters: Mapping[str, str] | None = None
) -> dict[str, Mapping[str, Any]]:
    """The resources the stack will hold: Fn::ForEach expanded, false Conditions left out.

    A condition this module cannot evaluate (a parameter without a value, a function it does
    not know) counts as true.
    """
    values = parameter_values(template, parameters)
    declared = template.get("Resources") or {}
    expanded = _expand(declared, values)
    conditions = Conditions(template.get("Conditions") or {}, values)
    return {
        logical_id: body
        for logical_id, body in expanded.items()
        if isinstance(body, Mapping) and conditions.holds(body.get("Condition"))
    }


def dependencies(
    template: Mapping[str, Any], parameters: Mapping[str, str] | None = None
) -> dict[str, frozenset[str]]:
    """Each resource's logical id -> the resources it needs created first.

    A resource needs every resource it names through Ref, Fn::GetAtt, Fn::Sub (`${X}` and
    `${X.Attr}`) or DependsOn; names of parameters, pseudo parameters and resources that are not
    created are not resources. Only the taken branch of an Fn::If counts when its condition can
    be evaluated.
    """
    values = parameter_values(template, parameters)
    present = resources(template, parameters)
    conditions = Conditions(template.get("Conditions") or {}, values)
    result: dict[str, frozenset[str]] = {}
    for logical_id, body in present.items():
        named = set(references(body, conditions))
        depends = body.get("DependsOn", ())
        named.update([depends] if isinstance(depends, str) else depends)
        result[logical_id] = frozenset(name for name in named if name in present)
    return result


def references(node: Any, conditions: Conditions | None = None) -> set[str]:
    """Every name an expression refers to: Ref, Fn::GetAtt and Fn::Sub targets."""
    found: set[str] = set()
    _collect(node, conditions, found)
    return found


_SUB_NAME = re.compile(r"\$\{([^}!][^}]*)\}")


def _collect(node: Any, conditions: Conditions | None, found: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, conditions, found)
        return
    if not isinstance(node, Mapping):
        return
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str):
            found.add(value)
            return
        if key == "Fn::GetAtt":
            target = value.split(".", 1)[0] if isinstance(value, str) else _getatt_target(value)
            if target:
                found.add(target)
            return
        if key == "Fn::Sub":
            _collect_sub(value, conditions, found)
            return
        if key == "Fn::If" and isinstance(value, list) and len(value) == 3:
            taken = conditions.evaluate(value[0]) if conditions else None
            branches = value[1:] if taken is None else [value[1] if taken else value[2]]
            _collect(branches, conditions, found)
            return
    for key, value in node.items():
        if key not in ("DependsOn", "Condition", "Type", "DeletionPolicy", "UpdateReplacePolicy"):
            _collect(value, conditions, found)


def _getatt_target(value: Any) -> str:
    if not isinstance(value, list) or not value:
        return ""
    first = value[0]
    if isinstance(first, Mapping) and isinstance(first.get("Fn::Sub"), str):
        first = first["Fn::Sub"]  # the expanded form of a ForEach's GetAtt of `X${Id}`
    return first if isinstance(first, str) and "${" not in first else ""


def _collect_sub(value: Any, conditions: Conditions | None, found: set[str]) -> None:
    text, local = (
        (value[0], value[1]) if isinstance(value, list) and len(value) == 2 else (value, {})
    )
    local = local if isinstance(local, Mapping) else {}
    _collect(list(local.values()), conditions, found)
    if isinstance(text, str):
        for name in _SUB_NAME.findall(text):
            target = name.strip().split(".", 1)[0]
            if target not in local:
                found.add(target)


class Conditions:
    """A template's Conditions, evaluated against the parameter values where possible."""

    def __init__(self, declared: Mapping[str, Any], values: Mapping[str, str]) -> None:
        self._declared = declared
        self._values = values

    def holds(self, name: Any) -> bool:
        """False only for a condition known to be false."""
        return name is None or self.evaluate(name) is not False

    def evaluate(self, name: Any) -> bool | None:
        """The named condition's value; None when it cannot be known before deploying."""
        if not isinstance(name, str) or name not in self._declared:
            return None
        return self._value(self._declared[name], depth=0)

    def _value(self, node: Any, depth: int) -> bool | None:
        if depth > 20 or not isinstance(node, Mapping) or len(node) != 1:
            return None
        ((key, args),) = node.items()
        if key == "Condition":
            return self._value(self._declared.get(args), depth + 1)
        if key == "Fn::Equals" and isinstance(args, list) and len(args) == 2:
            left, right = (self._scalar(arg) for arg in args)
            return None if left is None or right is None else left == right
        if key == "Fn::Not" and isinstance(args, list) and len(args) == 1:
            inner = self._value(args[0], depth + 1)
            return None if inner is None else not inner
        if key in ("Fn::And", "Fn::Or") and isinstance(args, list):
            parts = [self._value(arg, depth + 1) for arg in args]
            if key == "Fn::And":
                return False if False in parts else (None if None in parts else True)
            return True if True in parts else (None if None in parts else False)
        return None

    def _scalar(self, node: Any) -> str | None:
        if isinstance(node, Mapping):
            if set(node) == {"Ref"}:
                return self._values.get(str(node["Ref"]))
            return None
        return str(node).lower() if isinstance(node, bool) else str(node)


# --------------------------------------------------------------------------- Fn::ForEach

_FOR_EACH = "Fn::ForEach::"


def _expand(section: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The section with every Fn::ForEach entry replaced by the entries it stands for."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key.startswith(_FOR_EACH):
            out.update(_for_each(key, value, values))
        else:
            out[key] = value
    return out


def _for_each(key: str, value: Any, values: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(value, list) or len(value) != 3 or not isinstance(value[2], Mapping):
        raise ValueError(f"{key}: expected [Identifier, Collection, {{OutputKey: Body}}]")
    identifier, collection, fragment = value
    out: dict[str, Any] = {}
    for item in _collection(key, collection, values):
        for template_key, body in fragment.items():
            substituted = substitute(body, identifier, item)
            if template_key.startswith(_FOR_EACH):
                out.update(_for_each(template_key, substituted, values))
            else:
                out[substitute_key(template_key, identifier, item)] = substituted
    return out


def _collection(key: str, collection: Any, values: Mapping[str, str]) -> list[str]:
    if isinstance(collection, Mapping) and set(collection) == {"Ref"}:
        name = str(collection["Ref"])
        if name not in values:
            raise ValueError(f"{key}: the collection parameter {name} has no value")
        collection = values[name].split(",")
    if not isinstance(collection, list):
        raise ValueError(f"{key}: the collection must be a list or a Ref to a list parameter")
    return [str(item).strip() for item in collection if str(item).strip()]


def substitute_key(key: str, identifier: str, item: str) -> str:
    """A logical id or string of an Fn::ForEach fragment with the loop's item put in."""
    # &{Id} keeps only the characters a logical id may hold; ${Id} inserts the value as is
    key = key.replace(f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", item))
    return key.replace(f"${{{identifier}}}", item)


def substitute(node: Any, identifier: str, item: str) -> Any:
    """An Fn::ForEach fragment with the loop's item put in wherever the identifier stands."""
    if isinstance(node, Mapping):
        if set(node) == {"Ref"} and node["Ref"] == identifier:
            return item
        return {
            substitute_key(k, identifier, item): substitute(v, identifier, item)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [substitute(v, identifier, item) for v in node]
    if isinstance(node, str):
        return substitute_key(node, identifier, item)
    return node
