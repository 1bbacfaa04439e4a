"""One patch per moto attribute: the providers that change the same function share its Hook."""

from __future__ import annotations

import types
from collections import Counter
from typing import Any
from unittest import mock

import pytest

from tsm_infra.emulator import PROVIDERS, hooks
from tsm_infra.emulator.catalog import PROVIDER_LIST, RULES
from tsm_infra.emulator.engine import latency
from tsm_infra.emulator.hooks import HOOKS, Hook, PatchConflict, assemble, patched_attribute
from tsm_infra.emulator.registry import Context
from tsm_infra.emulator.server import patches


def _targets(installed: list[Any]) -> Counter[tuple[int, str]]:
    keys = (patched_attribute(p) for p in installed)
    return Counter(key for key in keys if key is not None)


@pytest.mark.parametrize("scale", [None, 0.01])
def test_no_moto_attribute_is_patched_twice(scale: float | None) -> None:
    installed = patches(Context(), latency_scale=scale)
    counted = _targets(installed)
    assert counted, "the emulator patches moto attributes"
    assert [key for key, n in counted.items() if n > 1] == []
    # every hook is in use: each one's function is patched exactly once
    hooked = {(id(h.target()), h.attribute) for h in HOOKS}
    assert hooked <= set(counted)


def test_every_hook_orders_known_providers_and_is_shared() -> None:
    known = {p.name for p in (*PROVIDER_LIST, *RULES)} | {latency.NAME}
    for hook in HOOKS:
        assert set(hook.order) <= known, hook.name
        assert len(hook.order) == len(set(hook.order)) >= 2, hook.name


def test_each_hooking_provider_has_its_place_in_the_order() -> None:
    # assemble refuses a handler outside its hook's order, so installing all of them proves it
    for provider in (*PROVIDER_LIST, *RULES, latency.latency_model(0.01)):
        for item in provider.install(Context()):
            if isinstance(item, hooks.Layer):
                assert provider.name in item.hook.order, (provider.name, item.hook.name)


def _fake_module() -> types.ModuleType:
    module = types.ModuleType("tsm_test_fake_moto")
    module.function = lambda value: [*value, "moto"]  # type: ignore[attr-defined]
    return module


def test_handlers_run_in_the_hooks_order_whatever_the_install_order() -> None:
    module = _fake_module()
    hook = Hook("tsm_test_fake_moto", None, "function", ("outer", "inner"))

    def outer(following: Any, value: list[str]) -> list[str]:
        return [*following([*value, "outer"]), "outer-after"]

    def inner(following: Any, value: list[str]) -> list[str]:
        return following([*value, "inner"])

    with mock.patch.dict("sys.modules", {"tsm_test_fake_moto": module}):
        for listed in (
            [("inner", hook.layer(inner)), ("outer", hook.layer(outer))],
            [("outer", hook.layer(outer)), ("inner", hook.layer(inner))],
        ):
            (patch,) = assemble(listed)
            with patch:
                assert module.function([]) == ["outer", "inner", "moto", "outer-after"]
            assert module.function([]) == ["moto"]


def test_a_disabled_handler_leaves_the_others_in_order() -> None:
    module = _fake_module()
    hook = Hook("tsm_test_fake_moto", None, "function", ("a", "b", "c"))

    def tag(name: str) -> Any:
        return lambda following, value: following([*value, name])

    with mock.patch.dict("sys.modules", {"tsm_test_fake_moto": module}):
        (patch,) = assemble([("c", hook.layer(tag("c"))), ("a", hook.layer(tag("a")))])
        with patch:
            assert module.function([]) == ["a", "c", "moto"]


def test_a_second_patch_of_an_attribute_or_an_unordered_handler_is_refused() -> None:
    module = _fake_module()
    hook = Hook("tsm_test_fake_moto", None, "function", ("a",))
    with mock.patch.dict("sys.modules", {"tsm_test_fake_moto": module}):
        twice = [
            ("a", mock.patch.object(module, "function", lambda v: v)),
            ("b", mock.patch.object(module, "function", lambda v: v)),
        ]
        with pytest.raises(PatchConflict, match="function is patched twice"):
            assemble(twice)
        with pytest.raises(PatchConflict, match="patched twice"):
            assemble([("a", hook.layer(lambda f, v: v)), twice[1]])
        with pytest.raises(PatchConflict, match=r"provider z hooks .* no place in its order"):
            assemble([("z", hook.layer(lambda f, v: v))])


def test_each_provider_describes_itself_in_one_sentence() -> None:
    assert len(set(PROVIDERS)) == len(PROVIDERS)
    for provider in (*PROVIDER_LIST, *RULES):
        assert provider.emulates.endswith(".") and "\n" not in provider.emulates, provider.name
