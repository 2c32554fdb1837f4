"""Reading EDN: every kind of the spec, what Clojure's printer adds, and the errors."""

from __future__ import annotations

import io
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from garrison import edn
from garrison.edn import (
    BigInt,
    Char,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    iter_values,
    load,
    loads,
)
from garrison.edn._reader import MAX_DEPTH
from garrison.exceptions import EdnDepthError, EdnSyntaxError

K = Keyword


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nil", None),
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("0", 0),
        ("42N", BigInt(42)),
        ("1.5", 1.5),
        ("-1.5e3", -1500.0),
        ("1e-2", 0.01),
        ("1.", 1.0),
        ("1.50M", Decimal("1.50")),
        ("1M", Decimal("1")),
        ("1E+3M", Decimal("1E+3")),
        ("22/7", Fraction(22, 7)),
        ("-1/2", Fraction(-1, 2)),
        ("0x1F", 31),
        ("017", 15),
        ("2r101", 5),
        ('"plain"', "plain"),
        ('""', ""),
        (r'"tab\there\r\n\\ \" \b\f"', 'tab\there\r\n\\ " \b\f'),
        (r'"\u00e9\u20AC"', "é€"),
        (r'"\ud83d\ude00"', "😀"),
        ('"multi\nline"', "multi\nline"),
        ('"raw é 😀"', "raw é 😀"),
        (r"\a", Char("a")),
        (r"\newline", Char("\n")),
        (r"\return", Char("\r")),
        (r"\space", Char(" ")),
        (r"\tab", Char("\t")),
        (r"\formfeed", Char("\f")),
        (r"\backspace", Char("\b")),
        (r"\u00e9", Char("é")),
        (r"\o101", Char("A")),
        (r"\(", Char("(")),
        (r"\\", Char("\\")),
        ("sym", Symbol("sym")),
        ("clojure.core/inc", Symbol("clojure.core/inc")),
        ("/", Symbol("/")),
        ("-", Symbol("-")),
        ("+a", Symbol("+a")),
        ("a#b", Symbol("a#b")),
        (":kw", K("kw")),
        (":user/id", K("user/id")),
        (":a.b/c-d?", K("a.b/c-d?")),
    ],
)
def test_scalars_read_as_the_mapping_says(text: str, expected: object) -> None:
    value = loads(text)
    assert value == expected
    assert type(value) is type(expected)


def test_bigints_and_decimals_keep_what_makes_them_distinct() -> None:
    assert type(loads("42N")) is BigInt
    assert type(loads("42")) is int
    assert str(loads("1.50M")) == "1.50"
    assert loads("1.50M").as_tuple().exponent == -2


def test_special_floats() -> None:
    assert loads("##Inf") == float("inf")
    assert loads("##-Inf") == float("-inf")
    assert math.isnan(loads("##NaN"))


def test_collections_keep_their_kinds() -> None:
    value = loads("[1 (2 3) #{4} {:a [5]} ()]")
    assert value == [1, (2, 3), frozenset({4}), {K("a"): [5]}, ()]
    assert type(value) is list
    assert type(value[1]) is tuple
    assert type(value[2]) is frozenset


def test_maps_take_any_key_and_make_collection_keys_hashable() -> None:
    value = loads('{[1 [2]] :vec, {:a 1} :map, (1 2) :list, #{1} :set, "s" :str, 1 :int, nil :nil}')
    assert value[Vector([1, Vector([2])])] == K("vec")
    assert value[FrozenMap({K("a"): 1})] == K("map")
    assert value[(1, 2)] == K("list")
    assert value[frozenset({1})] == K("set")
    assert value["s"] == K("str")
    assert value[None] == K("nil")
    sets = loads("#{[1 2] {:a [3]}}")
    assert Vector([1, 2]) in sets
    assert FrozenMap({K("a"): Vector([3])}) in sets


def test_keyword_symbol_string_and_char_are_different_keys() -> None:
    value = loads('{:a 1, a 2, "a" 3, \\a 4}')
    assert len(value) == 4
    assert value[K("a")] == 1
    assert value[Symbol("a")] == 2
    assert value["a"] == 3
    assert value[Char("a")] == 4


def test_inst_keeps_milliseconds_and_offsets() -> None:
    value = loads('#inst "2024-01-02T03:04:05.123-00:00"')
    assert value == datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)
    shifted = loads('#inst "2024-01-02T03:04:05.5+02:30"')
    assert shifted.utcoffset() == timedelta(hours=2, minutes=30)
    assert shifted == datetime(2024, 1, 2, 0, 34, 5, 500000, tzinfo=UTC)
    assert loads('#inst "2024-01-02T03:04:05Z"') == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert loads('#inst "2024"') == datetime(2024, 1, 1, tzinfo=UTC)
    assert loads('#inst "2024-05-01T10:00"') == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_inst_with_nanoseconds_is_kept_as_written_not_rounded() -> None:
    value = loads('#inst "2024-01-02T03:04:05.123456789-00:00"')
    assert value == Tagged("inst", "2024-01-02T03:04:05.123456789-00:00")
    assert edn.dumps(value) == '#inst "2024-01-02T03:04:05.123456789-00:00"'


def test_uuid() -> None:
    text = '#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"'
    assert loads(text) == uuid.UUID("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")


def test_discard_nested_and_chained() -> None:
    assert loads("[1 #_ 2 3]") == [1, 3]
    assert loads("[1 #_ #_ 2 3 4]") == [1, 4]
    assert loads("[#_ [1 #_ 2] 5]") == [5]
    assert loads("#_ 1 2") == 2
    assert loads("{:a #_ :b 1}") == {K("a"): 1}


def test_comments_commas_and_crlf_are_whitespace() -> None:
    text = "; header\r\n{:a 1,,, :b [2, 3]} ; trailing\r\n; last line without newline"
    assert loads(text) == {K("a"): 1, K("b"): [2, 3]}
    assert loads('{:a\r\n"x\r\ny"}') == {K("a"): "x\r\ny"}


def test_namespaced_maps_read_as_clojure_reads_them() -> None:
    value = loads('#:user{:id 1, :_/plain 2, :other/x 3, name 4, "s" 5}')
    assert value == {
        K("user/id"): 1,
        K("plain"): 2,
        K("other/x"): 3,
        Symbol("user/name"): 4,
        "s": 5,
    }
    assert loads("#:a.b {:c 1}") == {K("a.b/c"): 1}


def test_namespaced_map_with_alias_is_a_clear_error() -> None:
    with pytest.raises(EdnSyntaxError, match="namespace"):
        loads("#::{:a 1}")
    with pytest.raises(EdnSyntaxError, match="namespace"):
        loads("#::alias{:a 1}")


def test_unknown_tags_become_tagged_values() -> None:
    value = loads('[#my.ns.Rec{:a 1} #object[java.lang.Object 12 "java.lang.Object@c"] #x/y 5]')
    assert value[0] == Tagged("my.ns.Rec", {K("a"): 1})
    assert value[1] == Tagged("object", [Symbol("java.lang.Object"), 12, "java.lang.Object@c"])
    assert value[2] == Tagged("x/y", 5)
    assert loads("#a #b 1") == Tagged("a", Tagged("b", 1))


def test_lenient_reads_keywords_clojure_prints_but_cannot_read() -> None:
    value = loads("{:embed-token/5fe3a 1}")
    assert value == {K("embed-token/5fe3a"): 1}
    assert loads(":5fe3") == K("5fe3")


def test_strict_rejects_what_clojure_edn_rejects() -> None:
    with pytest.raises(EdnSyntaxError, match="strict"):
        loads("{:embed-token/5fe3a 1}", strict=True)
    with pytest.raises(EdnSyntaxError, match="strict"):
        loads("ns/1x", strict=True)
    # What Clojure does accept stays readable in strict mode.
    assert loads(":5fe3", strict=True) == K("5fe3")
    assert loads("[:a/b c.d/e :x]", strict=True) == [K("a/b"), Symbol("c.d/e"), K("x")]


def test_duplicates_last_wins_when_lenient_and_fail_when_strict() -> None:
    assert loads("{:a 1, :a 2}") == {K("a"): 2}
    assert loads("#{1 1 2}") == frozenset({1, 2})
    # Clojure's wording ("Duplicate key: :a"), with where the collection opens.
    with pytest.raises(EdnSyntaxError, match="Duplicate key: :a \\(strict mode\\)"):
        loads("{:a 1, :a 2}", strict=True)
    with pytest.raises(EdnSyntaxError, match="Duplicate key: 1 \\(set element; strict mode\\)"):
        loads("#{1 1}", strict=True)
    with pytest.raises(EdnSyntaxError, match="Duplicate key: :u/a"):
        loads("#:u{:a 1, :u/a 2}", strict=True)


def test_nesting_up_to_the_depth_limit_never_hits_the_recursion_limit() -> None:
    depth = MAX_DEPTH
    value = loads("[" * depth + "]" * depth)
    for _ in range(depth - 1):
        value = value[0]
    assert value == []
    assert loads("(" * 5000 + ")" * 5000) is not None


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("{:a 1", "unterminated map", 1, 1),
        ("[1 2)", "vector opened at line 1 closed by )", 1, 5),
        ('"abc', "unterminated string", 1, 1),
        ("]", "unmatched delimiter", 1, 1),
        ("{:a}", "even number", 1, 1),
        ("", "no value", 1, 1),
        ("  ; only a comment", "no value", 1, 19),
        ("1 2", "more than one value", 1, 3),
        ("[1]\n  [2]", "more than one value", 2, 3),
        ("[1 #_]", "needs a form", 1, 6),
        ("#foo", "has no form", 1, 1),
        ("#=(+ 1 2)", "never evaluated", 1, 1),
        ("#'var", "unsupported dispatch", 1, 1),
        ('#"re"', "unsupported dispatch", 1, 1),
        ("::auto", "auto-resolved", 1, 1),
        (":", "empty keyword", 1, 1),
        ("1.2.3", "invalid number", 1, 1),
        ("12abc", "invalid number", 1, 1),
        ("1/0", "zero denominator", 1, 1),
        (r"\abc", "unsupported character", 1, 1),
        (r'"\q"', "unsupported escape", 1, 2),
        ("##Foo", "unknown symbolic value", 1, 1),
        ('#inst "nope"', "invalid #inst", 1, 1),
        ("#inst 5", "#inst needs a string", 1, 1),
        ('#uuid "xyz"', "invalid #uuid", 1, 1),
        ("[\r\n  1\r\n  }", "closed by }", 3, 3),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, message: str, line: int, column: int) -> None:
    with pytest.raises(EdnSyntaxError) as info:
        loads(text)
    err = info.value
    assert message in err.reason
    assert (err.line, err.column) == (line, column)
    assert f"line {line}, column {column}" in str(err)


def test_error_excerpt_shows_the_neighbourhood() -> None:
    with pytest.raises(EdnSyntaxError) as info:
        loads("{:first 1\n :second #= (boom)}")
    assert info.value.line == 2
    assert "#= (boom)" in info.value.excerpt


def test_bytes_and_files(tmp_path: object) -> None:
    assert loads('{:a "é"}'.encode()) == {K("a"): "é"}
    assert loads("\ufeff[1]") == [1]
    assert load(io.StringIO("[1 2]")) == [1, 2]
    assert load(io.BytesIO(b"(1 2)")) == (1, 2)
    with pytest.raises(EdnSyntaxError, match="invalid UTF-8"):
        loads(b"[\xff]")


def test_load_names_the_file_in_errors(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "memory.edn"  # type: ignore[operator]
    path.write_text("{:a 1\n:b", encoding="utf-8")
    with path.open(encoding="utf-8") as fp, pytest.raises(EdnSyntaxError) as info:
        load(fp)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}:1:1:")


def test_iter_values_streams_top_level_values() -> None:
    stream = iter_values('1 [2] {:a 3} "four" #_ 5 :six')
    assert list(stream) == [1, [2], {K("a"): 3}, "four", K("six")]
    assert list(iter_values(io.StringIO('#inst "2024" nil'))) == [
        datetime(2024, 1, 1, tzinfo=UTC),
        None,
    ]
    assert list(iter_values("")) == []


def test_iter_values_yields_what_precedes_an_error() -> None:
    stream = iter_values("1 2 ]")
    assert next(stream) == 1
    assert next(stream) == 2
    with pytest.raises(EdnSyntaxError) as info:
        next(stream)
    assert info.value.column == 5


def test_negative_zero_offset_means_utc() -> None:
    value = loads('#inst "2020-02-29T23:59:59.999-00:00"')
    assert value.tzinfo is UTC
    assert loads('#inst "2020-02-29T23:59:59-05:00"').tzinfo == timezone(-timedelta(hours=5))


def test_a_map_key_nested_too_deep_to_hash_is_a_depth_error() -> None:
    depth = 5000
    with pytest.raises(EdnDepthError) as info:
        loads("{" + "[" * depth + "]" * depth + " 1}")
    assert (info.value.line, info.value.column) == (1, 1)


def test_integers_past_pythons_digit_limit_read_and_write_back() -> None:
    digits = "7" * 5000
    assert loads(digits) == int(digits[:4000]) * 10**1000 + int(digits[4000:])
    assert type(loads(digits + "N")) is BigInt
    assert edn.dumps(loads(digits + "N")) == digits + "N"
    assert loads(f"1/{digits}") == Fraction(1, loads(digits))
