"""`Transform: AWS::LanguageExtensions` as CloudFormation applies it, for the templates' forms.

moto ignores the transform, so a `Fn::ForEach::Name` entry would reach it as a resource without a
Type. The expansion below runs where moto turns a template body into a dict, with the stack's
parameters at hand, as CloudFormation's transform does before it builds the change set.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from unittest import mock

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.resource_graph import substitute, substitute_key

TRANSFORM = "AWS::LanguageExtensions"
FOR_EACH = "Fn::ForEach::"


class LanguageExtensionsError(ValueError):
    """The template uses the transform in a way this expansion does not support."""


def uses_transform(template: Mapping[str, Any]) -> bool:
    """True when the template declares the AWS::LanguageExtensions transform."""
    declared = template.get("Transform")
    names = declared if isinstance(declared, list) else [declared]
    return TRANSFORM in names


def expand(template: dict[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The template with every Fn::ForEach expanded; unchanged if it does not use the transform."""
    if not isinstance(template, dict) or not uses_transform(template):
        return template
    result = copy.deepcopy(template)
    values = _parameter_values(result, parameters)
    for section in ("Resources", "Outputs", "Conditions"):
        if isinstance(result.get(section), dict):
            result[section] = _expand_section(result[section], values)
    declared = result.pop("Transform")
    if isinstance(declared, list) and len(declared) > 1:
        result["Transform"] = [name for name in declared if name != TRANSFORM]
    return result


def _parameter_values(template: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values as the transform sees them: given, else default; lists split."""
    values: dict[str, Any] = {}
    for name, slot in (template.get("Parameters") or {}).items():
        value = given.get(name, slot.get("Default"))
        if value is None:
            continue
        kind = str(slot.get("Type", "String"))
        if kind.startswith("List<") or kind == "CommaDelimitedList":
            value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        values[name] = value
    return values


def _expand_section(section: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    expanded: dict[str, Any] = {}
    for key, value in section.items():
        if key.startswith(FOR_EACH):
            for logical_id, body in _for_each(key, value, params).items():
                if logical_id in expanded or logical_id in section:
                    raise LanguageExtensionsError(f"{key}: logical id {logical_id} is used twice")
                expanded[logical_id] = body
        else:
            expanded[key] = value
    return expanded


def _for_each(key: str, value: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, list) or len(value) != 3 or not isinstance(value[2], dict):
        raise LanguageExtensionsError(f"{key}: expected [Identifier, Collection, OutputKey: Body]")
    identifier, collection, fragment = value
    items = _collection(key, collection, params)
    out: dict[str, Any] = {}
    for item in items:
        for template_key, body in fragment.items():
            if template_key.startswith(FOR_EACH):
                nested = substitute(body, identifier, item)
                out.update(_for_each(template_key, nested, params))
                continue
            logical_id = substitute_key(template_key, identifier, item)
            out[logical_id] = _simplify(substitute(body, identifier, item))
    return out


def _collection(key: str, collection: Any, params: Mapping[str, Any]) -> list[str]:
    if isinstance(collection, dict) and set(collection) == {"Ref"}:
        name = collection["Ref"]
        if name not in params:
            raise LanguageExtensionsError(f"{key}: collection Ref {name} is not a parameter")
        collection = params[name]
    if not isinstance(collection, list) or not all(isinstance(i, str) for i in collection):
        raise LanguageExtensionsError(f"{key}: the collection must be a list of strings")
    return [item for item in collection if item != ""]


def _simplify(node: Any) -> Any:
    """Fn::GetAtt's logical id may be an Fn::Sub inside the transform: resolve literal ones."""
    if isinstance(node, dict):
        getatt = node.get("Fn::GetAtt")
        if isinstance(getatt, list) and getatt and isinstance(getatt[0], dict):
            sub = getatt[0].get("Fn::Sub")
            if isinstance(sub, str) and "${" not in sub:
                return {"Fn::GetAtt": [sub, *getatt[1:]]}
        return {k: _simplify(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_simplify(v) for v in node]
    return node


@provider(
    "language-extensions",
    emulates="The AWS::LanguageExtensions transform (Fn::ForEach) is expanded by the emulator, "
    "which moto ignores.",
)
def language_extensions(ctx: Context) -> Installed:
    """Templates are expanded where moto parses a change set's template or builds a stack's map."""
    from moto.cloudformation.models import ChangeSet  # noqa: PLC0415
    from moto.cloudformation.parsing import ResourceMap  # noqa: PLC0415

    original_parse = ChangeSet._parse_template
    original_init = ResourceMap.__init__

    def parse(self: Any) -> None:
        original_parse(self)
        self.template_dict = expand(self.template_dict, self.parameters or {})

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        # create_stack hands moto the template dict here, with its parameters
        names = (
            "stack_id",
            "stack_name",
            "parameters",
            "tags",
            "region_name",
            "account_id",
            "template",
        )
        given = dict(zip(names, args, strict=False)) | kwargs
        given["template"] = expand(given["template"], given["parameters"] or {})
        original_init(self, **given)

    return [
        mock.patch.object(ChangeSet, "_parse_template", parse),
        mock.patch.object(ResourceMap, "__init__", init),
    ]
