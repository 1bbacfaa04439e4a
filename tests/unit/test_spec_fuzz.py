"""Whatever it is fed, the spec loader either returns a cluster or raises SpecError."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import VALID_SPEC
from tsm_infra.errors import SpecError
from tsm_infra.spec import Cluster, load_spec_text

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["eu-west-1", "111111111111", "0.0.0.0/0", "Z1", "a.b", "x:1", ""]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def _check(text: str) -> None:
    try:
        result = load_spec_text(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.problems, "a SpecError names at least one problem"
        for problem in exc.problems:
            assert problem.message
            assert problem.line is None or problem.line >= 1
        assert exc.exit_code == 2
    else:
        assert isinstance(result, Cluster)


@FUZZ
@given(st.text(max_size=400))
def test_random_text(text: str) -> None:
    _check(text)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("{}[]:,-?&*!|>'\"#%@` \n\tab01")), max_size=200))
def test_yaml_punctuation_soup(text: str) -> None:
    _check(text)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    tree = yaml.safe_load(VALID_SPEC)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(tree) if p]
        path = draw(st.sampled_from(paths))
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
        else:
            parent.append(draw(values))
    return yaml.safe_dump(tree, sort_keys=False)


@FUZZ
@given(mutated_specs())
def test_mutated_valid_spec(text: str) -> None:
    _check(text)


@FUZZ
@given(st.integers(min_value=0, max_value=len(VALID_SPEC)), st.text(max_size=20))
def test_spliced_text(position: int, insert: str) -> None:
    _check(VALID_SPEC[:position] + insert + VALID_SPEC[position:])
