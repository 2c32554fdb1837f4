"""The C writer (``_cwriter``) writes the pure writer's text, or hands the value over.

These tests call the C module directly, so that a hand-over (its ``Fallback``)
is seen rather than hidden by ``dumps``, and check that ``dumps`` then gives
the pure writer's text. They run once, with the accelerator; the rest of the
EDN suite runs both ways.
"""

from __future__ import annotations

import gc
import math
import os
import random
import struct
import sys
import threading
import tracemalloc
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest

from garrison.edn import (
    BigInt,
    Char,
    EdnSet,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    _accel,
    dumps,
    dumps_entry,
    loads,
)
from garrison.edn._encoder import _configure, c_coerce_for, encode_pure
from garrison.edn._writer import MAX_DEPTH
from garrison.exceptions import EdnEncodeError
from tests.edn._threads import longest_main_thread_wait

K = Keyword


@pytest.fixture(autouse=True)
def codec() -> str:
    """Overrides the folder's two-way fixture: these tests are about the C writer only."""
    if _accel.writer is None:
        message = "the C writer is not built or is disabled"
        if os.environ.get("GARRISON_REQUIRE_EXTENSIONS", "") not in ("", "0"):
            pytest.fail(message)
        pytest.skip(message)
    return "accelerated"


def c_writer() -> ModuleType:
    writer = _accel.writer
    assert writer is not None
    _configure(writer)
    return writer


def c_encode(
    value: Any, *, sort_keys: bool = False, strict: bool = False, default: Any = None
) -> str:
    writer = c_writer()
    coerce = c_coerce_for(sort_keys=sort_keys, strict=strict, default=default)
    text: str = writer.encode(value, sort_keys, strict, coerce)
    return text


def same_as_pure(value: Any, **options: Any) -> str:
    text = c_encode(value, **options)
    assert text == encode_pure(value, **options)
    assert dumps(value, **options) == text
    return text


class Number(int):
    def __repr__(self) -> str:
        return "Number!"


class Text(str):
    __slots__ = ()


class Real(float):
    pass


class Things(list[Any]):
    pass


def test_scalars_are_written_as_the_pure_writer_writes_them() -> None:
    values = [
        None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**63, -(2**64) - 1, 10**40,
        BigInt(0), BigInt(-5), BigInt(10**30), 1.5, -0.0, 0.0, 1e-4, 9.99e-5, 1e16, 1e22,
        5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan, Decimal("1.50"),
        Fraction(1, 3), Char("a"), Char("\n"), Char("\u00e9"), K("a"), K("ns/name"),
        Symbol("clojure.core/inc"), Symbol("/"), "", "plain", 'q"uote\\', "\x00\x1f\x7f\t\n\r\b\f",
        "Zürich 日本語 😀", "\ud800", "a\udfffb", "\U0010ffff", uuid.UUID(int=0),
        uuid.UUID(int=2**128 - 1), uuid.uuid4(),
    ]  # fmt: skip
    for value in values:
        same_as_pure(value)


def test_floats_are_written_as_repr_writes_them() -> None:
    rng = random.Random(5)
    floats = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(3000)]
    floats += [rng.random() * 10.0 ** rng.randint(-8, 20) for _ in range(3000)]
    floats += [1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 0.1, 100.00001, -0.0]
    floats = [f for f in floats if math.isfinite(f)]
    for start in range(0, len(floats), 16):
        chunk = floats[start : start + 16]
        texts = " ".join(map(repr, chunk))
        # A list of floats goes to orjson in one call; a tuple float by float.
        assert c_encode(chunk) == "[" + texts + "]"
        assert c_encode(tuple(chunk)) == "(" + texts + ")"


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc),  # noqa: UP017 - the same object as UTC
    ],
)
def test_instants_are_written_in_utc_with_milli_or_microseconds(when: datetime) -> None:
    text = same_as_pure(when)
    assert text.startswith('#inst "')
    assert text.endswith('-00:00"')


def test_naive_datetime_raises_the_pure_writers_error() -> None:
    naive = datetime(2024, 5, 1)
    with pytest.raises(EdnEncodeError, match="naive datetime"):
        c_encode(naive)
    with pytest.raises(EdnEncodeError, match="naive datetime"):
        dumps([naive])


def test_containers_as_clojure_prints_them() -> None:
    value = {
        K("a"): [1, (2, 3), Vector([4]), frozenset({5}), set()],
        "s": {None: FrozenMap({K("z"): Tagged("my.ns/Rec", {K("x"): 1})})},
        1.5: Tagged("t", 3),
        (1, 2): Tagged("v", Vector([])),
    }
    text = same_as_pure(value)
    assert text.startswith('{:a [1 (2 3) [4] #{5} #{}], "s" {nil {:z #my.ns/Rec{:x 1}}}')
    assert text.endswith(", 1.5 #t 3, (1 2) #v[]}")
    assert same_as_pure(value, sort_keys=True) != text


def test_sorted_maps_and_sets_order_by_text() -> None:
    value = {
        K("b"): frozenset({"é", "e", "z", K("a"), 10, 9, "\U0001f600", "\uffff"}),
        K("a"): {3: 1, 20: 2, "x": 3},
        "a": 1,
        Symbol("a"): 2,
    }
    text = same_as_pure(value, sort_keys=True)
    assert text == (
        '{"a" 1, :a {"x" 3, 20 2, 3 1}, :b #{"e" "z" "é" "\uffff" "\U0001f600" 10 9 :a}, a 2}'
    )


def test_subclasses_and_default_values_go_through_coerce() -> None:
    value = [
        Number(5), Text("t"), Real(2.5), Things([1]), OrderedDict([(K("a"), 1)]),
        BigInt(7), Vector([Things([])]),
    ]  # fmt: skip
    assert same_as_pure(value) == '[5 "t" 2.5 [1] {:a 1} 7N [[]]]'

    def default(obj: Any) -> Any:
        if isinstance(obj, complex):
            return [obj.real, obj.imag]
        if isinstance(obj, date):
            return obj.isoformat()
        if isinstance(obj, bytes):
            return Tagged("bytes", obj.hex())
        raise TypeError(obj)

    mapping = {K("c"): 1 + 2j, K("d"): date(2024, 1, 2), K("b"): b"\x01"}
    text = same_as_pure(mapping, default=default, sort_keys=True)
    assert text == '{:b #bytes "01", :c [1.0 2.0], :d "2024-01-02"}'


def test_values_without_an_edn_form_raise_the_pure_writers_error() -> None:
    for value in [object(), [1, b"x"], {K("a"): {1, 2, date(2024, 1, 1)}}]:
        with pytest.raises(EdnEncodeError) as c_error:
            c_encode(value)
        with pytest.raises(EdnEncodeError) as pure_error:
            encode_pure(value)
        assert str(c_error.value) == str(pure_error.value)
        assert "has no EDN form" in str(c_error.value)


@pytest.mark.parametrize("strict", [False, True])
def test_keyword_checks_and_errors_follow_the_pure_writer(strict: bool) -> None:
    for bad in [K("a b"), K(":a"), Symbol("x]"), K("a\ud800")]:
        with pytest.raises(EdnEncodeError) as caught:
            c_encode({K("fine"): [bad]}, strict=strict)
        with pytest.raises(EdnEncodeError) as pure:
            encode_pure({K("fine"): [bad]}, strict=strict)
        assert str(caught.value) == str(pure.value)
    lenient_only = K("embed-token/5fe3")
    assert same_as_pure(lenient_only) == ":embed-token/5fe3"
    if strict:
        with pytest.raises(EdnEncodeError, match="strict mode"):
            dumps(lenient_only, strict=True)
    # A second call answers from the cache: the same text, and the same refusal.
    assert same_as_pure(lenient_only) == ":embed-token/5fe3"


def test_invalid_tag_is_handed_to_the_pure_writer_for_its_error() -> None:
    writer = c_writer()
    with pytest.raises(writer.Fallback):
        c_encode(Tagged("1bad", 1))
    with pytest.raises(EdnEncodeError, match="is not an EDN tag"):
        dumps([Tagged("1bad", 1)])


def test_huge_ints_past_the_str_digit_limit() -> None:
    big = 7 * 10**5000 + 3
    assert same_as_pure([big, BigInt(-big)]) == f"[{Decimal(big)} -{Decimal(big)}N]"
    # With a non-finite float beside it (the pure encoder's iterative writer then writes it).
    assert same_as_pure([math.inf, {big: math.nan}]) == f"[##Inf {{{Decimal(big)} ##NaN}}]"


@pytest.mark.parametrize(
    ("value", "options"),
    [
        # Distinct keys, one text: the pure writer's order decides.
        ({"2024-01-01": 1, date(2024, 1, 1): 2}, {"sort_keys": True, "default": str}),
        # Sorted before escaping: \ud800 sorts above "\ue000"'s UTF-8 only once escaped.
        (frozenset({"\ud800", "\ue000", "a"}), {"sort_keys": True}),
        ({"\ud800": 1, "\ue000": 2}, {"sort_keys": True}),
    ],
)
def test_fallbacks_give_the_pure_text(value: Any, options: dict[str, Any]) -> None:
    writer = c_writer()
    with pytest.raises(writer.Fallback):
        c_encode(value, **options)
    assert dumps(value, **options) == encode_pure(value, **options)


def test_lone_surrogates_outside_sorted_texts_are_escaped_in_c() -> None:
    assert same_as_pure(frozenset({"\ud800"})) == '#{"\\ud800"}'
    # Under sort_keys only keys and set elements are compared: values may hold them.
    assert same_as_pure({"b": "\ud800", "a": 1}, sort_keys=True) == '{"a" 1, "b" "\\ud800"}'
    assert (
        same_as_pure({"\udc00": Tagged("t", "\ud83d\ude00")}) == '{"\\udc00" #t "\\ud83d\\ude00"}'
    )


def test_deep_nesting_is_left_to_the_pure_writer_up_to_the_readers_depth() -> None:
    writer = c_writer()
    shallow: Any = 0
    for _ in range(writer.MAX_DEPTH):
        shallow = [shallow]
    assert c_encode(shallow) == "[" * writer.MAX_DEPTH + "0" + "]" * writer.MAX_DEPTH
    with pytest.raises(writer.Fallback):
        c_encode([shallow])
    deep: Any = None
    for _ in range(MAX_DEPTH // 2):  # two levels each: the deepest the reader reads
        deep = {K("k"): (deep,)}
    assert dumps(deep) == "{:k (" * (MAX_DEPTH // 2) + "nil" + ")}" * (MAX_DEPTH // 2)


def test_map_changed_by_a_default_hook_is_handed_over() -> None:
    data: dict[Any, Any] = {}

    def default(obj: Any) -> Any:
        data[len(data) + 100] = 0
        return str(obj)

    data.update({K("a"): b"x", K("b"): 1})
    with pytest.raises(c_writer().Fallback):
        c_encode(data, default=default)


def test_entries_and_keys_match_dumps() -> None:
    value = [1.5, {K("x"): None}]
    for sort_keys in (False, True):
        entry = dumps_entry(K("k"), value, sort_keys=sort_keys)
        assert entry == ":k " + encode_pure(value, sort_keys=sort_keys)


def test_strings_are_not_given_a_cached_utf8_copy() -> None:
    text = "日本語 " * 1000
    size = sys.getsizeof(text)
    c_encode([text, K("k"), {text: text}])
    # PyUnicode_AsUTF8 would have stored a UTF-8 copy inside the object.
    assert sys.getsizeof(text) == size


def test_no_leak_over_repeated_calls() -> None:
    writer = c_writer()

    def default(obj: Any) -> Any:
        return repr(obj)

    def dates_as_text(obj: Any) -> Any:
        return str(obj) if isinstance(obj, date) else obj

    value = {
        K("a"): [1.5, 2.5, math.nan, 10**30, BigInt(3), "é\ud800", Number(1), Text("x")],
        K("b"): {frozenset({K("x"), Symbol("y")}): Tagged("t", (datetime.now(UTC), uuid.uuid4()))},
        K("c"): [Decimal("1.5"), Fraction(1, 2), Char("c"), 7 * 10**5000, object()],
    }

    deep: Any = [K("deep")]
    for _ in range(writer.MAX_DEPTH):
        deep = {K("d"): deep}
    failing = [
        [K("ok"), object()],  # an error from coerce
        frozenset({"\ud800", "a"}),  # a hand-over in the middle of sorting
        {"2024-01-01": 1, date(2024, 1, 1): 2},  # a key tie, found after sorting
        Tagged("1", 1),
        [1, deep],  # nesting past MAX_DEPTH
        [K("a b")],  # named_text's error
    ]

    def run() -> None:
        for sort_keys in (False, True):
            c_encode(value, sort_keys=sort_keys, default=default)
        for bad in failing:
            with pytest.raises((EdnEncodeError, writer.Fallback)):
                # Dates become text (the key tie); other objects never convert.
                c_encode(bad, sort_keys=True, default=dates_as_text)

    for _ in range(3):
        run()
    gc.collect()
    blocks = sys.getallocatedblocks()
    tracemalloc.start()
    try:
        for _ in range(200):
            run()
        gc.collect()
        grown, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 3200 calls: a leaked object per call would add thousands of blocks, a
    # leaked buffer (counted by tracemalloc, not by blocks) 256 bytes and more.
    assert sys.getallocatedblocks() - blocks < 100
    assert grown < 64 * 1024


def test_a_large_dumps_lets_other_threads_run() -> None:
    # About 18 MB of text (70-200 ms). Without the writer's periodic GIL
    # release the main thread could not run while the worker is inside the C
    # call: its longest wait would be nearly the whole call. With it, the main
    # thread gets a turn every couple of switch intervals.
    value = [{K("k"): "x" * 30, K("n"): 12345}] * 400_000
    text, longest, call = longest_main_thread_wait(lambda: dumps(value))
    assert len(text) > 16_000_000
    assert longest < call / 2, (longest, call)


def test_threads_writing_at_once_share_the_caches_safely() -> None:
    # Each thread's value has its own keywords (the shared caches churn) and is
    # large enough for the writers to hand the GIL to each other mid-value.
    values = [
        {
            K(f"t{n}/k{i}"): [i, f"s{i}", K(f"v{i % 50}"), {Symbol(f"x{n}"): 1.5}]
            for i in range(40_000)
        }
        for n in range(3)
    ]
    expected = [encode_pure(value, sort_keys=n == 1) for n, value in enumerate(values)]
    texts: dict[int, str] = {}
    barrier = threading.Barrier(len(values))

    def worker(n: int) -> None:
        barrier.wait()
        texts[n] = dumps(values[n], sort_keys=n == 1)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(values))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [texts[n] for n in range(len(values))] == expected


@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("strict", [False, True])
def test_edn_maps_and_sets_inside_a_value_are_written_without_a_hand_over(
    sort_keys: bool, strict: bool
) -> None:
    # The pure writer writes just the EdnMap/EdnSet; the C writer the rest.
    inner = loads("[#{0 false 0.51} {0 :a, false :b} {#{1 true} :k}]")
    value = {Keyword(f"k{i}"): [i, "x", inner] for i in range(20)}
    text = c_encode(value, sort_keys=sort_keys, strict=strict)
    assert text == encode_pure(value, sort_keys=sort_keys, strict=strict)
    assert "#{0 false 0.51}" in text or "#{0 0.51 false}" in text
    assert loads(text, strict=True) == value


def test_a_lone_surrogate_inside_a_sorted_edn_set_gets_the_pure_text() -> None:
    inner = EdnSet(["\ud800", "a", 0, False])
    value = frozenset({inner, "\ud7ff", "\ue000"})
    assert dumps(value, sort_keys=True) == encode_pure(value, sort_keys=True)
    with pytest.raises(c_writer().Fallback):
        c_encode(value, sort_keys=True)
    assert c_encode(value) == encode_pure(value)


@pytest.mark.parametrize("sort_keys", [False, True])
def test_a_tag_before_an_edn_map_is_glued_to_it_as_to_a_map(sort_keys: bool) -> None:
    # Clojure prints a record as #my.Rec{...}: no space after the tag, for an
    # EdnMap as for a dict (the C writer hands the map itself to the pure writer).
    value = [Tagged("my.ns/Rec", loads("{0 :a, false :b}")), Tagged("t", EdnSet([1, True]))]
    text = c_encode(value, sort_keys=sort_keys, strict=False)
    assert text == encode_pure(value, sort_keys=sort_keys, strict=False)
    assert text.startswith("[#my.ns/Rec{")
    assert loads(text, strict=True) == value
