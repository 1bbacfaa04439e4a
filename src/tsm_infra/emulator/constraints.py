"""What CloudFormation refuses before it starts, which moto 5.2 accepts: one rule each.

Each rule is a `Provider` (installed by `LocalAws` with the others, listed by `emulated()`) whose
handlers run first in the moto functions where CloudFormation checks a request: CreateStack,
CreateChangeSet and UpdateStack (one `Hook` each, shared by the rules). A refusal is
CloudFormation's: a ValidationError with AWS's wording, before any stack or change set exists.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

from tsm_infra.emulator import hooks
from tsm_infra.emulator.hooks import Handler
from tsm_infra.emulator.registry import Context, Installed, Provider, provider

# CloudFormation's limits (CloudFormation User Guide, "Quotas"; API reference, CreateStack)
TEMPLATE_BODY_BYTES = 51_200
STACK_NAME_LENGTH = 128
_STACK_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]*")
ZONE_ID_TYPE = "AWS::Route53::HostedZone::Id"


def _refused(message: str) -> Exception:
    from moto.cloudformation.exceptions import ValidationError  # noqa: PLC0415

    return ValidationError(message=message)


def _template(body: Any) -> dict[str, Any]:
    """The template as moto reads it; {} when it does not parse (moto then refuses it itself)."""
    if isinstance(body, dict):
        return body
    from moto.cloudformation.models import Stack  # noqa: PLC0415

    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        try:
            parsed = Stack.parse_template(body)
        except Exception:
            return {}
    return parsed if isinstance(parsed, dict) else {}


def _effective(template: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, str]:
    """Each declared parameter's value as CloudFormation checks it: given, else its default."""
    values: dict[str, str] = {}
    for name, slot in (template.get("Parameters") or {}).items():
        if not isinstance(slot, dict):
            continue
        value = given.get(name, slot.get("Default"))
        if value is None:
            continue
        values[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return values


def _number(text: str) -> float | None:
    try:
        found = float(text.strip())
    except ValueError:
        return None
    return found if math.isfinite(found) else None


def parameter_problem(name: str, slot: Mapping[str, Any], value: str) -> str | None:
    """CloudFormation's message when `value` breaks parameter `name`'s constraints, else None.

    AllowedPattern must match the whole value; a CommaDelimitedList (or List<...>) is checked
    element by element; lengths apply to strings, bounds to numbers.
    """
    kind = str(slot.get("Type", "String"))
    is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
    numeric = kind in ("Number", "List<Number>")
    items = [v.strip() for v in value.split(",")] if is_list else [value]
    described = slot.get("ConstraintDescription")
    failed = f"Parameter '{name}' failed to satisfy constraint: {described}" if described else None
    for item in items:
        number = _number(item) if numeric else None
        if numeric and number is None:
            return f"Parameter '{name}' must be a number."
        pattern = slot.get("AllowedPattern")
        if pattern is not None and not numeric and re.fullmatch(str(pattern), item) is None:
            return failed or f"Parameter '{name}' must match pattern {pattern}"
        allowed = slot.get("AllowedValues")
        if allowed is not None and not _allowed(item, number, allowed):
            return failed or f"Parameter '{name}' must be one of AllowedValues"
        if not numeric:
            low, high = slot.get("MinLength"), slot.get("MaxLength")
            if low is not None and len(item) < int(low):
                return failed or f"Parameter '{name}' must contain at least {low} characters"
            if high is not None and len(item) > int(high):
                return failed or f"Parameter '{name}' must contain at most {high} characters"
        if number is not None:
            low, high = slot.get("MinValue"), slot.get("MaxValue")
            if low is not None and number < float(low):
                return failed or f"Parameter '{name}' must be a number not less than {low}"
            if high is not None and number > float(high):
                return failed or f"Parameter '{name}' must be a number not greater than {high}"
    return None


def _allowed(item: str, number: float | None, allowed: Any) -> bool:
    options = allowed if isinstance(allowed, list) else [allowed]
    if number is not None:
        return any(_number(str(option)) == number for option in options)
    return item in {str(option) for option in options}


def check_parameters(template: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """ValidationError naming the first parameter whose value breaks its constraints."""
    slots = template.get("Parameters") or {}
    for name, value in _effective(template, given).items():
        problem = parameter_problem(name, slots[name], value)
        if problem is not None:
            raise _refused(problem)


def check_zone_parameters(
    template: Mapping[str, Any], given: Mapping[str, Any], account: str
) -> None:
    """ValidationError when an AWS::Route53::HostedZone::Id value is no zone of the account."""
    from moto.route53.models import route53_backends  # noqa: PLC0415

    zones = route53_backends[account]["aws"].zones
    slots = template.get("Parameters") or {}
    for name, value in _effective(template, given).items():
        kind = str(slots[name].get("Type", ""))
        if kind not in (ZONE_ID_TYPE, f"List<{ZONE_ID_TYPE}>"):
            continue
        for zone in (v.strip() for v in value.split(",")):
            if zone.removeprefix("/hostedzone/") not in zones:
                raise _refused(
                    f"Parameter validation failed: parameter value {zone} for parameter "
                    f"name {name} does not exist."
                )


def member_error(member: str, constraint: str, value: str | None = None) -> str:
    """AWS's words for a request field that breaks its API model: `Member must <constraint>`."""
    shown = "Value" if value is None else f"Value '{value}'"
    return (
        f"1 validation error detected: {shown} at '{member}' failed to satisfy constraint: "
        f"Member must {constraint}"
    )


def check_stack_name(name: str) -> None:
    """ValidationError when a new stack's name breaks CloudFormation's pattern or length."""
    if len(name) > STACK_NAME_LENGTH:
        raise _refused(
            member_error(
                "stackName", f"have length less than or equal to {STACK_NAME_LENGTH}", name
            )
        )
    if _STACK_NAME.fullmatch(name) is None:
        raise _refused(
            member_error(
                "stackName",
                "satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*",
                name,
            )
        )


# A check gets the backend, the template body, the given parameters and the stack's name
Check = Callable[[Any, Any, Mapping[str, Any], str], None]


def _on_stack_requests(check: Check, *, updates: bool = True) -> Installed:
    """Handlers running `check` first in moto's CreateStack, CreateChangeSet (and UpdateStack)."""

    def checked_create_stack(
        following: Handler, self: Any, name: str, template: str, parameters: Any, **kw: Any
    ) -> Any:
        check(self, template, parameters or {}, name)
        return following(self, name, template, parameters, **kw)

    def checked_create_change_set(following: Handler, self: Any, *args: Any, **kwargs: Any) -> Any:
        names = ("stack_name", "change_set_name", "template", "parameters")
        call = dict(zip(names, args, strict=False)) | kwargs
        if updates or call.get("change_set_type", "CREATE") == "CREATE":
            check(self, call["template"], call.get("parameters") or {}, call["stack_name"])
        return following(self, *args, **kwargs)

    def checked_update_stack(
        following: Handler, self: Any, name: str, template: str, *args: Any, **kw: Any
    ) -> Any:
        names = ("role_arn", "parameters", "tags")
        call = dict(zip(names, args, strict=False)) | kw
        stack = self.get_stack(name)
        given = self._resolve_update_parameters(
            instance=stack, incoming_params=call.get("parameters") or []
        )
        check(self, template or stack.template, given, name)
        return following(self, name, template, *args, **kw)

    installed: Installed = [
        hooks.CREATE_STACK.layer(checked_create_stack),
        hooks.CREATE_CHANGE_SET.layer(checked_create_change_set),
    ]
    if updates:
        installed.append(hooks.UPDATE_STACK.layer(checked_update_stack))
    return installed


@provider(
    "parameter-constraints",
    emulates="Parameter values meet their AllowedPattern (whole value), AllowedValues, "
    "Min/MaxLength, Min/MaxValue and Number type, list elements one by one, at CreateStack, "
    "CreateChangeSet and UpdateStack.",
)
def parameter_constraints(ctx: Context) -> Installed:
    """Stack requests whose parameter values break their constraints are refused."""

    def check(backend: Any, body: Any, given: Mapping[str, Any], name: str) -> None:
        check_parameters(_template(body), given)

    return _on_stack_requests(check)


@provider(
    "hosted-zone-parameters",
    emulates="An AWS::Route53::HostedZone::Id parameter must name a zone of the stack's account; "
    "zones exist only as prepared from the spec, never made per stack.",
)
def hosted_zone_parameters(ctx: Context) -> Installed:
    """Stack requests naming a hosted zone the account lacks are refused."""

    def check(backend: Any, body: Any, given: Mapping[str, Any], name: str) -> None:
        check_zone_parameters(_template(body), given, backend.account_id)

    return _on_stack_requests(check)


@provider(
    "stack-names",
    emulates=f"New stacks' names must match [a-zA-Z][-a-zA-Z0-9]* within {STACK_NAME_LENGTH} "
    "characters.",
)
def stack_names(ctx: Context) -> Installed:
    """New stacks whose names CloudFormation would refuse are refused."""

    def check(backend: Any, body: Any, given: Mapping[str, Any], name: str) -> None:
        check_stack_name(name)

    return _on_stack_requests(check, updates=False)


@provider(
    "template-body-size",
    emulates=f"CreateStack, CreateChangeSet and UpdateStack refuse a TemplateBody over "
    f"{TEMPLATE_BODY_BYTES:,} bytes.",
)
def template_body_size(ctx: Context) -> Installed:
    """Requests whose TemplateBody is over CloudFormation's size limit are refused."""

    from moto.cloudformation.responses import CloudFormationResponse  # noqa: PLC0415

    def limited(original: Callable[..., Any]) -> Callable[..., Any]:
        def action(self: Any) -> Any:
            body = self._get_param("TemplateBody")
            if body and len(str(body).encode()) > TEMPLATE_BODY_BYTES:
                raise _refused(
                    member_error(
                        "templateBody", f"have length less than or equal to {TEMPLATE_BODY_BYTES}"
                    )
                )
            return original(self)

        return action

    return [
        mock.patch.object(
            CloudFormationResponse, name, limited(getattr(CloudFormationResponse, name))
        )
        for name in ("create_stack", "create_change_set", "update_stack")
    ]


# in the order the rehearsal report lists them
CONSTRAINTS: tuple[Provider, ...] = (
    template_body_size,
    stack_names,
    parameter_constraints,
    hosted_zone_parameters,
)
