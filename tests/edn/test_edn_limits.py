"""Hostile input: the codec's limits hold, with a clear error, for both codecs.

Each input here once crashed the process, raised a raw ``RecursionError``,
ran for seconds or minutes, or grew memory without end (issue 15). The texts
that crashed CPython are read in a subprocess, so a regression fails the test
instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from typing import Any

import pytest

from garrison.edn import (
    BigInt,
    EdnMap,
    EdnSet,
    Keyword,
    Symbol,
    Tagged,
    dumps,
    iter_values,
    loads,
)
from garrison.edn._reader import MAX_DEPTH, MAX_SAME_HASH
from garrison.exceptions import EdnDepthError, EdnEncodeError, EdnSyntaxError

K = Keyword
# Python's int hash is n mod 2**61 - 1, the same in every process.
_MODULUS = 2**61 - 1


def _run_codec(codec: str, script: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if codec == "pure":
        env["GARRISON_NO_EXTENSIONS"] = "1"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_lists_nested_300000_deep_as_a_map_key_are_a_depth_error_not_a_crash(codec: str) -> None:
    # CPython hashes a tuple recursively in C, with no limit: this text killed
    # the process with SIGSEGV, with either reader.
    result = _run_codec(
        codec,
        """
        from garrison.exceptions import EdnDepthError
        from garrison import edn
        try:
            edn.loads("{" + "(" * 300_000 + ")" * 300_000 + " 1}")
        except EdnDepthError as exc:
            print(exc.line, exc.column, exc)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"1 {MAX_DEPTH + 1} nested deeper than {MAX_DEPTH} levels")


def test_the_edn_file_store_refuses_such_a_file_and_does_not_crash(
    codec: str, tmp_path: Any
) -> None:
    path = tmp_path / "memory.edn"
    path.write_text("{" + "(" * 300_000 + ")" * 300_000 + " 1}")
    result = _run_codec(
        codec,
        f"""
        import asyncio
        from garrison.exceptions import StoreLoadError
        from garrison.stores import EdnFileStore

        async def main():
            try:
                async with EdnFileStore({str(path)!r}):
                    pass
            except StoreLoadError as exc:
                print(exc)

        asyncio.run(main())
        """,
    )
    assert result.returncode == 0, result.stderr
    assert f"{path}:1:{MAX_DEPTH + 1}: nested deeper than {MAX_DEPTH} levels" in result.stdout


# Each: a text nested ``n`` levels deep, and the column of its level ``n`` opener.
_NESTINGS: dict[str, tuple[Any, Any]] = {
    "vectors": (lambda n: "[" * n + "]" * n, lambda n: n),
    "lists": (lambda n: "(" * n + ")" * n, lambda n: n),
    "sets": (lambda n: "#{" * n + "}" * n, lambda n: 2 * n - 1),
    "map values": (lambda n: "{:k " * n + "1" + "}" * n, lambda n: 4 * n - 3),
    "namespaced maps": (lambda n: "#:ns{:k " * n + "1" + "}" * n, lambda n: 8 * n - 7),
    "tags": (lambda n: "#t " * n + "1", lambda n: 3 * n - 2),
    "discards": (lambda n: "[" + "#_ " * (n - 1) + "1 " * (n - 1) + "2]", lambda n: 3 * n - 4),
    "lists as map keys": (lambda n: "{" + "(" * (n - 1) + ")" * (n - 1) + " 1}", lambda n: n),
    "sets as set elements": (lambda n: "#{" * n + "}" * n, lambda n: 2 * n - 1),
}


@pytest.mark.parametrize("kind", list(_NESTINGS))
def test_every_kind_of_nesting_is_bounded_with_line_and_column(kind: str) -> None:
    nested, column = _NESTINGS[kind]
    assert loads("\n" + nested(MAX_DEPTH)) is not None  # the limit itself reads
    with pytest.raises(EdnDepthError, match="nested deeper than 10000 levels") as info:
        loads("\n" + nested(MAX_DEPTH + 1))
    assert (info.value.line, info.value.column) == (2, column(MAX_DEPTH + 1))


def test_a_chain_of_tags_as_a_map_key_is_a_depth_error_with_line_and_column() -> None:
    # It raised a raw RecursionError (no line, no column).
    with pytest.raises(EdnDepthError, match="map key nested too deeply") as info:
        loads("[1\n {" + "#a " * 1000 + "1 2}]")
    assert (info.value.line, info.value.column) == (2, 2)
    with pytest.raises(EdnDepthError, match="set element nested too deeply"):
        loads("#{" + "#a " * 1000 + "1}")


def test_a_shallow_tagged_key_still_reads() -> None:
    assert loads("{#a #b [1] 2}") == {Tagged("a", Tagged("b", [1])): 2}


def test_numbers_up_to_the_digit_limit_read_and_longer_ones_are_refused_quickly() -> None:
    limit = 10_000
    digits = "7" * limit
    assert loads(digits) == 7 * (10**limit - 1) // 9
    assert loads(f"-{digits}N") == BigInt(-loads(digits))
    assert loads(f"1/{digits[1:]}") == Fraction(1, loads(digits[1:]))  # both parts count
    for text in ("7" * (limit + 1), "7" * 800_000, f"{'7' * limit}1N", f"1.{'5' * limit}M"):
        start = time.perf_counter()
        with pytest.raises(EdnSyntaxError, match="more than the reader's limit of 10000") as info:
            loads(f"[1\n {text}]")
        assert (info.value.line, info.value.column) == (2, 2)
        assert time.perf_counter() - start < 1.0  # 800,000 digits took over 10 s to convert


def test_max_digits_raises_the_limit_for_loads_and_iter_values() -> None:
    digits = "7" * 20_000
    assert loads(digits, max_digits=20_000) == 7 * (10**20_000 - 1) // 9
    assert list(iter_values(f"1 {digits}N", max_digits=20_000))[1] == BigInt(
        7 * (10**20_000 - 1) // 9
    )
    with pytest.raises(EdnSyntaxError, match="limit of 10000"):
        list(iter_values(f"1 {digits}"))
    with pytest.raises(ValueError, match="at least 4300"):
        loads("1", max_digits=100)


def test_a_megabyte_of_numbers_at_the_digit_limit_reads_in_linear_time() -> None:
    # 100 numbers of 10,000 digits: int(str) past 4300 digits is quadratic;
    # the reader converts long numbers by halves.
    text = "[" + " ".join("7" * 10_000 for _ in range(100)) + "]"
    start = time.perf_counter()
    assert len(loads(text)) == 100
    assert time.perf_counter() - start < 3.0


def _colliding(count: int) -> list[int]:
    return [1 + i * _MODULUS for i in range(count)]


_SHAPES = {
    "int map keys": ("{{{}}}", "{} 1"),
    "int set elements": ("#{{{}}}", "{}"),
    "vectors as keys (tuple hashes collide too)": ("{{{}}}", "[{}] 1"),
    "lists as keys": ("{{{}}}", "({}) 1"),
    "tagged set elements": ("#{{{}}}", "#t {}"),
}


@pytest.mark.parametrize("shape", list(_SHAPES))
def test_keys_with_colliding_hashes_are_refused_fast(shape: str) -> None:
    collection, item = _SHAPES[shape]

    def text(numbers: list[int]) -> str:
        return "\n" + collection.format(" ".join(item.format(n) for n in numbers))

    start = time.perf_counter()
    with pytest.raises(EdnSyntaxError, match="with the same hash") as info:
        loads(text(_colliding(20_000)))
    assert (info.value.line, info.value.column) == (2, 1)
    refused = time.perf_counter() - start
    # Against as many ordinary numbers: 20,000 colliding keys took 300 to 800
    # times as long to read (4.1 s against 5 ms). A refused text is read twice
    # (the C reader hands its errors to the pure reader), hence the margin.
    start = time.perf_counter()
    loads(text(list(range(20_000))))
    assert refused < 20 * (time.perf_counter() - start) + 0.5


def test_a_key_repeated_more_often_than_the_limit_is_a_duplicate_not_flooding() -> None:
    # Lenient mode reads duplicate keys (the last value wins); equal keys share a hash.
    big = 2**62  # not its own hash, so its map is checked
    assert loads("{" + " ".join(f"{big} {i}" for i in range(1000)) + ' "a" 1}') == {
        big: 999,
        "a": 1,
    }
    assert loads('{1 2, "" 0, ' + " ".join(f'"" {i}' for i in range(200)) + "}") == {1: 2, "": 199}
    with pytest.raises(EdnSyntaxError, match=f"Duplicate key: {big} \\(strict mode\\)"):
        loads("{" + " ".join(f"{big} {i}" for i in range(200)) + "}", strict=True)


def test_keys_sharing_a_hash_up_to_the_limit_read() -> None:
    numbers = _colliding(MAX_SAME_HASH)
    value = loads("{" + " ".join(f"{n} {n}" for n in numbers) + "}")
    assert sorted(value) == numbers
    # Many keys of one kind whose hashes differ: a set of records of one tag.
    records = loads("#{" + " ".join(f"#my.Rec{{:id {i}}}" for i in range(5000)) + "}")
    assert len(records) == 5000


def test_members_clojure_keeps_apart_are_not_counted_as_flooding() -> None:
    # 1, true, 1.0 and 1M share the crowded hash, but Python calls them one key:
    # MAX_SAME_HASH different keys, read as Clojure does (issue 14's EdnSet, EdnMap).
    numbers = _colliding(MAX_SAME_HASH)  # 1 is the first
    texts = [str(n) for n in numbers] + ["true", "1.0", "1M"]
    for strict in (False, True):
        members = loads("#{" + " ".join(texts) + "}", strict=strict)
        assert type(members) is EdnSet
        assert len(members) == MAX_SAME_HASH + 3
        assert dumps(members, sort_keys=True) == "#{" + " ".join(sorted(texts)) + "}"
        entries = loads("{" + " ".join(f"{t} {i}" for i, t in enumerate(texts)) + "}")
        assert type(entries) is EdnMap
        assert (entries[1], entries[True], entries[1.0]) == (0, MAX_SAME_HASH, MAX_SAME_HASH + 1)
        assert loads(dumps(entries, sort_keys=True)) == entries


def test_a_self_referential_list_dict_or_tag_is_refused_naming_the_cycle() -> None:
    items: list[Any] = [1]
    items.append(items)
    mapping: dict[Any, Any] = {}
    mapping[K("self")] = [mapping]
    inner: list[Any] = []
    tagged = Tagged("t", inner)
    inner.append(tagged)
    for value in (items, mapping, tagged):
        start = time.perf_counter()
        with pytest.raises(EdnEncodeError, match=r"(list|dict) contains itself"):
            dumps(value)
        with pytest.raises(EdnEncodeError, match="contains itself"):
            dumps({K("k"): value}, sort_keys=True)
        # Memory grew for 11-50 s until MemoryError, or the process crashed.
        assert time.perf_counter() - start < 2.0


class _NoForm:
    pass


@pytest.mark.parametrize(
    "hook",
    [
        lambda o: [o],  # the value again, inside a list
        lambda o: [_NoForm(), _NoForm()],  # two more, each needing the hook
        lambda o: {K("k"): _NoForm()},
        lambda o: Tagged("t", _NoForm()),
        lambda o: {_NoForm(): 1},  # as a map key
    ],
)
def test_a_default_hook_whose_results_keep_needing_it_is_refused(hook: Any) -> None:
    # A looping hook ran for over 90 s.
    start = time.perf_counter()
    with pytest.raises(EdnEncodeError, match="default= hook"):
        dumps(_NoForm(), default=hook)
    assert time.perf_counter() - start < 2.0


def test_a_hook_returning_something_it_cannot_convert_is_refused() -> None:
    with pytest.raises(EdnEncodeError, match="has no EDN form"):
        dumps(_NoForm(), default=lambda o: _NoForm())


def _nested_sets(depth: int) -> Any:
    value: Any = frozenset()
    for i in range(depth):
        value = frozenset([value, i])
    return value


def test_sort_keys_writes_nested_sets_to_the_depth_limit_and_refuses_deeper() -> None:
    deep = _nested_sets(MAX_DEPTH - 1)  # the innermost, empty set is level MAX_DEPTH
    text = dumps(deep, sort_keys=True)
    assert text.startswith("#{#{#{")
    assert dumps(loads(text), sort_keys=True) == text
    # 100,000 nested sets raised RecursionError.
    with pytest.raises(EdnEncodeError, match="nested deeper than 10000 levels"):
        dumps(_nested_sets(100_000), sort_keys=True)


def test_map_keys_nested_deep_are_written_without_recursion() -> None:
    key: Any = 0
    for _ in range(3000):
        key = (key,)
    for sort_keys in (False, True):
        assert dumps({key: 1}, sort_keys=sort_keys) == "{" + "(" * 3000 + "0" + ")" * 3000 + " 1}"


def test_symbols_that_would_read_back_as_something_else_are_refused() -> None:
    # The reader reads #:1r{a 1} (a namespace Clojure can print); its key has no EDN text.
    key = next(iter(loads("#:1r{a 1}")))
    assert key == Symbol("1r/a")
    for symbol in (key, Symbol("nil"), Symbol("true"), Symbol("+1"), Symbol("#a"), Symbol(":a")):
        with pytest.raises(EdnEncodeError, match="would read back as another value"):
            dumps(symbol)


def test_a_decimal_exponent_past_what_decimal_holds_is_a_syntax_error() -> None:
    # Found by the fuzzer: it raised decimal.InvalidOperation.
    with pytest.raises(EdnSyntaxError, match="invalid number 1e3333") as info:
        loads("[1\n 1e333333333333333333333333333333333M]")
    assert (info.value.line, info.value.column) == (2, 2)


def test_a_char_outside_the_bmp_is_refused_as_clojure_refuses_it() -> None:
    # Found by the fuzzer: read as a Char, which dumps then refused.
    with pytest.raises(EdnSyntaxError, match="unsupported character") as info:
        loads("[1\n \\\U0001f600]")
    assert (info.value.line, info.value.column) == (2, 2)
