"""The schema's rules on values as the EDN codec reads them: Clojure's types, not Python's."""

from __future__ import annotations

import re
from typing import Any

import pytest

from garrison.edn import loads
from garrison.stores import TYPES, EntitySchema

# Each type, EDN text of a value of it, and EDN text of values that are not.
CASES = [
    ("string", '"s"', [":s", "s", "\\s"]),
    ("keyword", ":k", ['"k"', "k"]),
    ("symbol", "k", [":k"]),
    ("boolean", "true", ["1", "nil"]),
    ("long", "42", ["true", "1.0", "1N", "99999999999999999999", "1/2"]),
    ("bigint", "1N", ["1", "1.0M"]),
    ("bigint", "99999999999999999999", ["1"]),  # past 64 bits: Clojure reads a BigInt
    ("double", "1.5", ["1", "1.5M"]),
    ("bigdec", "1.5M", ["1.5"]),
    ("ratio", "1/2", ["0.5"]),
    ("char", "\\c", ['"c"']),
    ("instant", '#inst "2024-05-01T10:00:00.000-00:00"', ['"2024-05-01"']),
    ("uuid", '#uuid "550e8400-e29b-41d4-a716-446655440000"', ['"550e8400"']),
    ("map", "{:a 1}", ["[[:a 1]]"]),
    ("vector", "[1]", ["(1)", "#{1}"]),
    ("list", "(1)", ["[1]"]),
    ("set", "#{1}", ["[1]"]),
]


@pytest.mark.parametrize(("name", "good", "bad"), CASES)
def test_each_type_holds_its_edn_values_and_no_others(name: str, good: str, bad: list[str]) -> None:
    test = TYPES[name]
    assert test(loads(good))
    assert not [text for text in bad if test(loads(text))]


def _rules(value: str, **rules: Any) -> list[tuple[str, str]]:
    schema = EntitySchema.parse({"k": {":a": rules}})
    entity = loads(value)
    found = schema.violations("k/1", "k", entity)
    first = schema.check("k/1", "k", entity)
    assert (first is None) == (not found)  # the write path's test agrees
    return [(v.rule, str(v)) for v in found]


def test_cardinality_many_checks_each_member() -> None:
    assert _rules("{:a #{:x :y}}", type="keyword", cardinality="many") == []
    assert _rules("{:a [:x 1]}", type="keyword", cardinality="many") == [
        ("type", "k/1: :a breaks rule type: must be a keyword, got 1")
    ]
    assert _rules("{:a :x}", cardinality="many")[0][0] == "cardinality"
    assert _rules("{:a [:x]}", type="vector") == []  # one value, a vector


def test_nil_is_absent_and_other_values_are_not_entities() -> None:
    assert _rules("{:a nil}", type="string") == []
    assert _rules("{:a nil}", required=True)[0][0] == "required"
    assert _rules("{:b 1}", required=True)[0][0] == "required"
    assert _rules("[1 2]", required=True) == []  # not a map: no entity, no rule
    assert _rules('{"a" 1}', required=True)[0][0] == "required"  # ":a" is the keyword


def test_a_reference_is_a_keyword() -> None:
    assert _rules('{:a "session/s1"}', reference=True)[0][0] == "reference"
    assert _rules("{:a #{:session/s1 :session/s2}}", reference=True, cardinality="many") == []


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"type": "integer"}, "unknown type 'integer' (known: bigdec, bigint,"),
        ({"cardinality": "several"}, 'cardinality is "one" or "many"'),
        ({"unique": "yes"}, "rule 'unique' is true or false"),
        ({"reference": True, "type": "string"}, "a reference is a keyword"),
    ],
)
def test_a_bad_rule_names_kind_attribute_and_rule(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        EntitySchema.parse({"session": {":session/id": rules}})
    assert str(refused.value).startswith("schema.session.':session/id': ")
