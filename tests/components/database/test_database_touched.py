"""Which attributes a commit touched, and what a find live query reads: the rules both
the query cache and the live queries follow."""

from __future__ import annotations

import pytest

from garrison.components.database._live import find_reads
from garrison.edn import Keyword, loads
from garrison.stores import attribute_names


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (
            loads('{:session/user-id "u1" :session/tags #{:a}}'),
            {":session/user-id", ":session/tags"},
        ),
        ({"title": "t", Keyword("x"): 1}, {"title", ":x"}),
        (7, set()),
        ([{"title": "t"}], set()),
        ({1: "a"}, set()),  # a map with a key no object holds: no entity
    ],
    ids=["keywords", "strings-and-keywords", "a-number", "a-vector", "no-entity-map"],
)
def test_the_attributes_a_value_holds(value: object, names: set[str]) -> None:
    assert attribute_names(value) == frozenset(names)


@pytest.mark.parametrize(
    ("path", "reads"),
    [
        ("$.owner", {"owner"}),
        ("$.user.id", {"user"}),
        ("$.:task/owner", {":task/owner"}),
        ("$.:task/owner[0]", {":task/owner"}),
        ("$[0].owner", None),
    ],
)
def test_a_find_reads_its_paths_top_level_attribute(path: str, reads: set[str] | None) -> None:
    assert find_reads(path) == (None if reads is None else frozenset(reads))
