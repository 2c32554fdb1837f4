"""The dependency graph: levels respect every dependency, cycles are always found."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.exceptions import ConfigError
from garrison.runtime import Component, ComponentGraph, ComponentSpec


def specs_for(
    edges: dict[int, set[int]], *, first: frozenset[int] = frozenset()
) -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name=f"n{node}",
            component_class=Component,
            depends_on=tuple(f"n{d}" for d in sorted(deps)),
            starts_first=node in first,
        )
        for node, deps in edges.items()
    ]


@st.composite
def dags(draw: st.DrawFn) -> dict[int, set[int]]:
    size = draw(st.integers(1, 25))
    # Edges only from higher to lower numbers: acyclic by construction.
    return {
        node: draw(st.sets(st.integers(0, node - 1), max_size=4)) if node else set()
        for node in range(size)
    }


@settings(max_examples=150, deadline=None)
@given(dags())
def test_every_component_starts_after_all_its_dependencies(edges: dict[int, set[int]]) -> None:
    graph = ComponentGraph(specs_for(edges))
    level_of = {name: i for i, level in enumerate(graph.levels) for name in level}
    assert sorted(level_of) == sorted(f"n{n}" for n in edges)
    for node, deps in edges.items():
        for dep in deps:
            assert level_of[f"n{dep}"] < level_of[f"n{node}"]
    # Levels are as shallow as possible: each component sits right after its deepest dependency.
    for node, deps in edges.items():
        expected = 1 + max((level_of[f"n{d}"] for d in deps), default=-1)
        assert level_of[f"n{node}"] == expected


@settings(max_examples=150, deadline=None)
@given(dags(), st.data())
def test_any_back_edge_is_reported_as_a_cycle(
    edges: dict[int, set[int]], data: st.DataObject
) -> None:
    if len(edges) < 2:
        return
    low = data.draw(st.integers(0, len(edges) - 2))
    high = data.draw(st.integers(low + 1, len(edges) - 1))
    edges[high].add(low)
    edges[low].add(high)  # closes a cycle low -> high -> low
    with pytest.raises(ConfigError, match="dependency cycle: ") as info:
        ComponentGraph(specs_for(edges))
    path = str(info.value).split(": ", 1)[1].split(" -> ")
    assert path[0] == path[-1]
    for a, b in itertools.pairwise(path):
        assert int(b[1:]) in edges[int(a[1:])]


def test_dependents_are_transitive_and_in_start_order() -> None:
    graph = ComponentGraph(specs_for({0: set(), 1: {0}, 2: {1}, 3: {0}, 4: set()}))
    assert graph.dependents("n0") == ["n1", "n3", "n2"]
    assert graph.dependents("n4") == []


def test_starts_first_components_precede_everything_else() -> None:
    graph = ComponentGraph(specs_for({0: set(), 1: set(), 2: {0}}, first=frozenset({1})))
    assert graph.levels[0] == ["n1"]
    assert graph.dependencies["n0"] == ("n1",)
