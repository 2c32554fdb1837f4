"""The C reader (``_creader``) against the pure reader: the same value or the same error.

These tests compare the two readers themselves, so they run once each (they
override the folder's ``codec`` fixture, which would run them twice).
"""

from __future__ import annotations

import contextlib
import gc
import io
import threading
import tracemalloc
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from garrison.edn import Keyword, Symbol, _accel, dumps, iter_values, loads
from garrison.edn._reader import MAX_DEPTH
from tests.edn._edn_same import explain, same
from tests.edn._threads import longest_main_thread_wait
from tests.edn.edn_strategies import colliding_members, values

creader = pytest.importorskip("garrison.edn._creader", reason="the C reader is not built")

_fast = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The characters EDN texts are made of, and a few that test the edges
# (non-ASCII whitespace, a separator control character, an astral character).
_ALPHABET = " \n\t\r,;()[]{}#_:\"\\/.+-0123456789eENMabcfilnrstuxz!?*<>=&'`~^@é😀\u00a0\u2028\x1c"


@pytest.fixture(autouse=True)
def codec() -> str:
    """Overrides the folder's fixture: each test here runs once and picks its reader itself."""
    return "both"


def _outcome(text: str | bytes, *, strict: bool, accelerated: bool) -> tuple[Any, ...]:
    """What public ``loads`` gives for ``text`` with or without the C reader."""
    saved = _accel.reader
    _accel.reader = creader if accelerated else None
    try:
        return ("value", loads(text, strict=strict))
    except Exception as exc:
        return (
            "error",
            type(exc),
            str(exc),
            getattr(exc, "line", None),
            getattr(exc, "column", None),
        )
    finally:
        _accel.reader = saved


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except ValueError:  # an int past the int-to-str digit limit: `same` compares it
        return f"<{type(value).__name__}>"


def _assert_same_outcome(text: str | bytes, *, strict: bool = False) -> tuple[Any, ...]:
    fast = _outcome(text, strict=strict, accelerated=True)
    pure = _outcome(text, strict=strict, accelerated=False)
    if fast[0] == "value" and pure[0] == "value":
        # repr shows every kind (Vector, FrozenMap, BigInt, Decimal('1.50'),
        # tz-aware datetimes, Keyword vs Symbol) and the order of maps and sets.
        assert _repr(fast[1]) == _repr(pure[1])
        assert same(fast[1], pure[1]), explain(fast[1], pure[1])
    else:
        assert fast == pure
    return pure


def _stream(text: str, *, strict: bool, accelerated: bool) -> list[Any]:
    """Every value ``iter_values`` yields, then the error it raised (if any)."""
    saved = _accel.reader
    _accel.reader = creader if accelerated else None
    out: list[Any] = []
    try:
        out.extend(_repr(v) for v in iter_values(text, strict=strict))
    except Exception as exc:
        out.append(("error", type(exc), str(exc)))
    finally:
        _accel.reader = saved
    return out


@_fast
@given(values, st.booleans(), st.booleans())
def test_written_values_read_identically(value: Any, strict: bool, sort_keys: bool) -> None:
    text = dumps(value, sort_keys=sort_keys)
    _assert_same_outcome(text, strict=strict)


@_fast
@given(values)
def test_the_c_reader_reads_written_values_itself(value: Any) -> None:
    # What garrison writes never needs the fallback: the speed is not a fluke
    # of the pure reader doing the work.
    text = dumps(value)
    got = creader.loads(text, False)
    assert same(got, value), explain(got, value)


@_fast
@given(st.lists(colliding_members, max_size=7), st.booleans(), st.booleans())
def test_colliding_sets_and_maps_read_identically(
    members: list[Any], as_map: bool, strict: bool
) -> None:
    # Python-only merges, true duplicates, or both: the readers agree on the
    # kind (frozenset or EdnSet, dict or EdnMap), the members and the error.
    texts = [dumps(m) for m in members]
    if as_map:
        text = "{" + " ".join(f"{t} {i}" for i, t in enumerate(texts)) + "}"
    else:
        text = "#{" + " ".join(texts) + "}"
    _assert_same_outcome(f"[{text} {{:k {text}}}]", strict=strict)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = dumps(draw(values))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["truncate", "delete", "insert", "replace"]))
        piece = draw(st.text(alphabet=_ALPHABET, min_size=1, max_size=3))
        if how == "truncate":
            text = text[:at]
        elif how == "delete":
            text = text[:at] + text[at + len(piece) :]
        elif how == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    return text


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated(), st.booleans())
def test_mutated_texts_give_the_same_value_or_error(text: str, strict: bool) -> None:
    _assert_same_outcome(text, strict=strict)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=30), st.booleans())
@example('"\\ud83d\\ude00"', False)
@example('#inst ; c\n"2024-01-01T00:00:00Z"', False)
def test_random_texts_give_the_same_value_or_error(text: str, strict: bool) -> None:
    _assert_same_outcome(text, strict=strict)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, max_size=4), st.text(alphabet=_ALPHABET, max_size=6), st.booleans())
def test_streams_yield_the_same_values_then_the_same_error(
    items: list[Any], tail: str, strict: bool
) -> None:
    text = " ".join(dumps(v) for v in items) + " " + tail
    assert _stream(text, strict=strict, accelerated=True) == _stream(
        text, strict=strict, accelerated=False
    )


@pytest.mark.parametrize(
    "text",
    [
        # strings and escapes
        r'"plain" "tab\there" "q\"uote" "back\\slash" "\u00e9\u4e2d"',
        r'"\ud83d\ude00" "\ud83d" "\ude00x" "\101\7\377" "\/" "\x" "\u12"',
        '"raw 😀 and \\u00e9" "\\u0041\ud83d"',
        '"unterminated',
        # numbers
        "0 -0 +5 123456789012345678 1234567890123456789 -999999999999999999",
        "1. 1.5 -1.5e10 1e-400 1e400 00.5 1.e5 1e 1.5.3 01 08 0x1F 2r101 36rZZ 37r1",
        "1N 1.50M 22/7 -4/2 1/0 ##Inf ##-Inf ##NaN ##Nope",
        "9" * 5000,
        # names
        ":a :ns/a :a/b/c :/ / ns/ :5fe3 :embed-token/5fe3 :: ::a : a: :a: 'q nil? true1 -a + -",
        "#:user{:id 1 :_/plain 2 other 3 :x/y 4} #:user ; c\n{:a 1} #::a{} #:{:a 1}",
        # tags, chars, discards
        r'#inst "2024-05-01T10:00:00.123-00:00" #inst "2024"',
        r'#inst "2024-05-01T10:00:00.123456789Z" #inst "2024-05-01T10:00:00.1234Z"',
        '#inst "bad" #inst 5 #inst "2024-13-01T00:00:00Z" #inst "2024-01-01T24:00:00Z"',
        '#inst "2024\\u002d01-01T00:00:00Z" #inst\t,"2024-01-01T00:00:00+05:30"',
        '#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6" #uuid "F81D4FAE7DEC11D0A765-00A0C91E6BF6"',
        '#uuid "{f81d4fae-7dec-11d0-a765-00a0c91e6bf6}" #uuid "nope" #uuid 5',
        "#my.ns/Rec{:a 1} #object[x 1] #t #_ 1 2 #_ #_ 1 2 3 [1 #_ 2] [#_] #_",
        r"\a \newline \space \u00e9 \o101 \formfeed \bad \( \ ",
        "#= (x) #? #! #{1 2} #{1 1} #{[1] {}} {:a 1 :a 2} {[1] 2 {:a 1} 3} {#t 1 2}",
        # collections and structure
        "[1 2 3] (1 2) {} #{} {:a} [1 2)] ] ( [ {:a 1, :b [2 3], :c #{4}}",
        "{1 :a true :b} #{1 true} {##NaN 1 ##NaN 2} #{##NaN ##NaN}",
        # Python's == merges, Clojure's = keeps apart or calls duplicates
        "{0 :a false :b} #{1 true 1.0 1M} #{0.5 0.5M 1/2} #{0 false 0.0 0M nil}",
        "#{[1] [true] [1.0]} {{0 1} :a {false 1} :b} #{#{0 false} #{0}} #{{0 [1] false [2]} 3}",
        "#{1 1N} #{0.0 -0.0} #{1.0M 1.00M} #{[1] (1)} {1 :a 1N :b 1.0 :c} #{#a/b 1 #a/b 1N}",
        "#{#a/b ##NaN #a/b ##NaN} #{#a/b 0.0 #a/b -0.0} #:u{:a 0 :u/a 1} #:u{0 :a false :b}",
        "1 2",
        "",
        "  ; only a comment",
        "\ufeff[1]",
        "[1\u00a02\u20283\x1c4]",
        "[a\u00a0b]",
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_edge_cases_give_the_same_value_or_error(text: str, strict: bool) -> None:
    # Each line is read whole, and each of its space-separated parts alone.
    _assert_same_outcome(text, strict=strict)
    for part in text.split(" "):
        _assert_same_outcome(part, strict=strict)
    assert _stream(text, strict=strict, accelerated=True) == _stream(
        text, strict=strict, accelerated=False
    )


def test_bytes_and_files_read_identically() -> None:
    data = '{:name "Zürich 😀" :id #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}'.encode()
    _assert_same_outcome(data)
    _assert_same_outcome(b"[1 \xff]")
    assert loads(data) == iter_values(io.BytesIO(data)).__next__()


def test_nan_is_the_one_nan_object_the_pure_reader_uses() -> None:
    # Containers compare NaN by identity first: [##NaN] must equal the pure reader's [##NaN].
    assert creader.loads("[##NaN]", False) == loads("[##NaN]")


def test_deep_nesting_goes_to_the_pure_reader_and_still_reads() -> None:
    depth = MAX_DEPTH  # the reader's limit, past the C reader's
    text = "[" * depth + "]" * depth
    with pytest.raises(creader.Unsupported):
        creader.loads(text, False)
    value = loads(text)
    for _ in range(depth - 1):
        value = value[0]
    assert value in ([[]], [])
    stream = list(iter_values("1 " + "{:a " * depth + "1" + "}" * depth + " 2"))
    assert stream[0] == 1
    assert stream[2] == 2


def test_nesting_within_the_limit_is_read_by_c() -> None:
    depth = creader.MAX_DEPTH - 1
    assert creader.loads("(" * depth + ")" * depth, False) is not None


def test_keywords_symbols_and_uuids_are_the_objects_their_classes_make() -> None:
    for text in ["a", "ns/x", "/", "a/b/c", "/x", "x/", "ü/ß"]:
        keyword, made_keyword = creader.loads(":" + text, False), Keyword(text)
        symbol, made_symbol = creader.loads(text, False), Symbol(text)
        for got, made in ((keyword, made_keyword), (symbol, made_symbol)):
            assert type(got) is type(made)
            assert (got.text, got.namespace, got.name) == (made.text, made.namespace, made.name)
            assert hash(got) == hash(made)
            assert got == made
            with pytest.raises(AttributeError):
                got.text = "changed"
    canonical = "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6"
    got_uuid = creader.loads(f'#uuid "{canonical}"', False)
    made_uuid = uuid.UUID(canonical)
    assert (got_uuid, hash(got_uuid), str(got_uuid)) == (made_uuid, hash(made_uuid), str(made_uuid))
    assert got_uuid.is_safe is made_uuid.is_safe


def test_reading_leaks_no_memory() -> None:
    # Every path: plain values, helpers, the fallback, an abandoned scanner.
    texts = [
        dumps(
            {Keyword(f"k/{i}"): [i, 1.5, "é", Symbol("s"), {Keyword("x"): None}] for i in range(50)}
        ),
        '{:a #inst "2024-01-01T00:00:00Z" :b #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}',
        r'[\a 1N 22/7 1.5M #tag [1] "\u00e9\101" #:ns{:a 1} {[1] 2} #{#t 1}]',
        "[1 2 {:a 1 :a 2} #inst 5",
        '{:a [1 2 "x" 3]',
    ]

    def read_all() -> None:
        for text in texts:
            for strict in (False, True):
                with contextlib.suppress(creader.Unsupported):
                    creader.loads(text, strict)
                with contextlib.suppress(creader.Unsupported):
                    next(creader.Scanner(text, strict), None)

    tracemalloc.start()
    try:
        # The first rounds fill caches that stay (re, decimal, the name
        # tables' allocator pools): traced memory settles, then must not grow.
        for _ in range(100):
            read_all()
        # Cyclic garbage (the helpers' caught exceptions and their frames)
        # waits for the collector: collect it so only live memory is compared.
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(300):
            read_all()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # One leaked object per read would be 6,000 objects: well over 20 kB.
    assert grown < 20_000


def test_threads_read_concurrently() -> None:
    text = dumps([{Keyword(f"t/{i}"): [i, str(i), Keyword("shared")]} for i in range(2000)])
    expected = loads(text)
    results: list[bool] = []

    def work() -> None:
        results.append(all(creader.loads(text, False) == expected for _ in range(5)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4


def test_a_large_loads_lets_other_threads_run() -> None:
    # About 18 MB of text (a few hundred ms), of kinds the reader builds
    # without running any Python code (a keyword's __hash__ would give other
    # threads their turns anyway). Without the reader's periodic GIL release
    # the main thread could not run while the worker is inside the C call: its
    # longest wait would be nearly the whole call. With it, the main thread
    # gets a turn every couple of switch intervals.
    text = "[" + '["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" 12345 "yyyyyyyyyyyyy"] ' * 400_000 + "]"
    value, longest, call = longest_main_thread_wait(lambda: creader.loads(text, False))
    assert len(value) == 400_000
    assert longest < call / 2, (longest, call)
