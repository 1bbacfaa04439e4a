"""The moto functions that several providers change: one patch each, in a written-down order.

A `Hook` names one moto function and the providers that change it, outermost first. Each of those
providers returns a `Layer` (its handler for the hook) among its patches; `assemble` installs one
dispatching patch per hook that calls the enabled handlers in the hook's order. A handler gets the
next function in the chain as its first argument (moto's own function at the end), so it can run
before it, after it, around it or instead of it. The order is part of the hook, never the order
in which providers happen to be listed, and `assemble` refuses any moto attribute patched twice.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from unittest import mock

from tsm_infra.emulator.registry import Patch

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Hook:
    """One moto function (module-level, method or classmethod) shared by several providers."""

    module: str
    owner: str | None  # the class in `module` that holds the function; None: the module itself
    attribute: str
    # the providers that may hook it, outermost (called first) to innermost (next to moto)
    order: tuple[str, ...]
    kind: Literal["function", "classmethod"] = "function"

    @property
    def name(self) -> str:
        """`Owner.attribute`, as errors and documentation name the hook."""
        return f"{self.owner or self.module}.{self.attribute}"

    def target(self) -> Any:
        """The module or class holding the function."""
        found = importlib.import_module(self.module)
        return getattr(found, self.owner) if self.owner else found

    def layer(self, handler: Handler) -> Layer:
        """A provider's handler of this hook, to return among its patches."""
        return Layer(self, handler)


@dataclass(frozen=True)
class Layer:
    """One provider's handler of a hook: `handler(next, *args, **kwargs)`."""

    hook: Hook
    handler: Handler


_PARSING = "moto.cloudformation.parsing"
_MODELS = "moto.cloudformation.models"
_RESPONSES = "moto.cloudformation.responses"
# the latency model (engine/latency.py, on only when LocalAws is given a scale) times what the
# providers inside it do: it is outermost wherever it hooks
_LATENCY = "latency-model"

# Fn::Cidr is computed before anything else sees it; a dotted Fn::GetAtt is rejoined before moto
# reads it; what moto resolved to null in a list is dropped last
CLEAN_JSON = Hook(
    _PARSING, None, "clean_json", ("fn-cidr", "sub-dotted-attributes", "no-value-in-lists")
)
# the resume bookkeeping records what a resource was made from after its status is recorded
PARSE_AND_CREATE = Hook(
    _PARSING, None, "parse_and_create_resource", ("resume-failed-stack", "stack-resource-detail")
)
PARSE_AND_UPDATE = Hook(
    _PARSING, None, "parse_and_update_resource", ("resume-failed-stack", "stack-resource-detail")
)
# a DB instance with DeletionPolicy Snapshot is deleted with a snapshot instead of by moto; every
# other deletion is recorded by the resume bookkeeping
DELETE_RESOURCE = Hook(
    _PARSING, "ResourceMap", "_delete_resource", ("rds-snapshot-on-delete", "resume-failed-stack")
)
# the resume planning replaces moto's diff; the replacement details annotate what it planned
CHANGE_SET_DIFF = Hook(
    _MODELS, "ChangeSet", "diff", ("change-set-replacement", "resume-failed-stack")
)
# innermost, a failure becomes a *_FAILED stack; then a failed stack keeps the template it failed
# with; then a completed execution gives the stack its new template and outputs; the latency
# model times the whole
EXECUTE_CHANGE_SET = Hook(
    _MODELS,
    "CloudFormationBackend",
    "execute_change_set",
    (_LATENCY, "change-set-outputs", "resume-failed-stack", "stack-failure-status"),
)
# a failed deletion leaves the stack DELETE_FAILED; the latency model times the deletion
DELETE_STACK = Hook(
    _MODELS, "CloudFormationBackend", "delete_stack", (_LATENCY, "stack-failure-status")
)

# CreateChangeSet refuses an empty change set only when empty-change-set is off; a failed stack's
# same-template change set is then still allowed by the resume
VALIDATE_DIFFERENT_UPDATE = Hook(
    _RESPONSES,
    "CloudFormationResponse",
    "_validate_different_update",
    ("empty-change-set", "resume-failed-stack"),
)
# the request rules refuse first (zone, then parameters, then the stack's name), before any
# change set exists; the latency model refuses a stack in progress and times the change set;
# the resume then marks a failed stack's change set executable
_REQUEST_RULES = ("hosted-zone-parameters", "parameter-constraints", "stack-names")
CREATE_CHANGE_SET = Hook(
    _MODELS,
    "CloudFormationBackend",
    "create_change_set",
    (*_REQUEST_RULES, _LATENCY, "resume-failed-stack"),
)
CREATE_STACK = Hook(_MODELS, "CloudFormationBackend", "create_stack", _REQUEST_RULES)
UPDATE_STACK = Hook(_MODELS, "CloudFormationBackend", "update_stack", _REQUEST_RULES)
# the managed master secret is made for the instance the properties provider created
DB_INSTANCE_CREATE = Hook(
    "moto.rds.models",
    "DBInstance",
    "create_from_cloudformation_json",
    ("rds-managed-master-secret", "rds-instance-properties"),
    kind="classmethod",
)

HOOKS: tuple[Hook, ...] = (
    CLEAN_JSON,
    PARSE_AND_CREATE,
    PARSE_AND_UPDATE,
    DELETE_RESOURCE,
    CHANGE_SET_DIFF,
    EXECUTE_CHANGE_SET,
    DELETE_STACK,
    VALIDATE_DIFFERENT_UPDATE,
    CREATE_CHANGE_SET,
    CREATE_STACK,
    UPDATE_STACK,
    DB_INSTANCE_CREATE,
)


class PatchConflict(RuntimeError):
    """Two patches change the same moto attribute, or a handler is outside its hook's order."""


def assemble(installed: Sequence[tuple[str, Patch | Layer]]) -> list[Patch]:
    """The patches to enter for (provider name, patch or layer) pairs: one per hook, checked.

    PatchConflict when a provider hooks a function without a place in the hook's order, or when
    two patches (a hook's included) would change the same attribute.
    """
    patches: list[Patch] = []
    layers: dict[Hook, dict[str, Handler]] = {}
    for name, item in installed:
        if isinstance(item, Layer):
            if name not in item.hook.order:
                raise PatchConflict(
                    f"provider {name} hooks {item.hook.name} but has no place in its order "
                    f"{item.hook.order}: add it to the hook in hooks.py"
                )
            layers.setdefault(item.hook, {})[name] = item.handler
        else:
            patches.append(item)
    for hook, handlers in layers.items():
        patches.append(_dispatch(hook, [handlers[n] for n in hook.order if n in handlers]))
    _check_unique(patches)
    return patches


def _dispatch(hook: Hook, handlers: list[Handler]) -> Patch:
    """One patch of the hook's function calling `handlers` (outermost first), then moto's."""
    target = hook.target()
    original = getattr(target, hook.attribute)
    call: Callable[..., Any] = original.__func__ if hook.kind == "classmethod" else original
    for handler in reversed(handlers):
        call = functools.partial(handler, call)
    chain = call

    def dispatch(*args: Any, **kwargs: Any) -> Any:
        return chain(*args, **kwargs)

    dispatch.__name__ = hook.attribute
    dispatch.__doc__ = f"moto's {hook.name} with the handlers of {', '.join(hook.order)}."
    installed: Any = classmethod(dispatch) if hook.kind == "classmethod" else dispatch
    return mock.patch.object(target, hook.attribute, installed)


def patched_attribute(patch: Patch) -> tuple[int, str] | None:
    """(id of the patched object, attribute) of an attribute patch; None for other patches."""
    attribute = getattr(patch, "attribute", None)
    getter = getattr(patch, "getter", None)
    if attribute is None or getter is None:
        return None
    return id(getter()), str(attribute)


def _check_unique(patches: list[Patch]) -> None:
    seen: set[tuple[int, str]] = set()
    for patch in patches:
        key = patched_attribute(patch)
        if key is None:
            continue
        if key in seen:
            raise PatchConflict(
                f"{key[1]} is patched twice: give the providers changing it one Hook in hooks.py"
            )
        seen.add(key)
