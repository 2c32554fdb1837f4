"""Round trips through a real Clojure 1.11: Python reads what it prints, it reads what we write.

One Clojure process per module run does every check (its startup is the cost).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from garrison.edn import (
    BigInt,
    Char,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    dumps,
    loads,
)
from tests._clojure import SAME_CLJ, require_clojure, run_clojure
from tests.edn._edn_same import explain, same

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.clojure

K = Keyword


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


#: What Python writes; the script below spells the same value as a Clojure literal.
PY_VALUE: dict[Any, Any] = {
    K("user/id"): 42,
    K("neg"): -7,
    K("big"): BigInt(12345678901234567890),
    K("one-n"): BigInt(1),
    K("huge"): 2**70,
    K("dec"): Decimal("1.50"),
    K("dec-exp"): Decimal("1E+3"),
    K("ratio"): Fraction(-3, 4),
    K("floats"): [1.5, 1e300, 1e-07, 0.1, -0.0],
    K("inf"): float("inf"),
    K("-inf"): float("-inf"),
    K("nan"): float("nan"),
    K("str"): 'q"b\\ \n\t\r\b\f \x00\x01\x7f é 😀 \u2028 end',
    K("lone-surrogate"): "\ud800x",
    K("chars"): [Char(c) for c in "a\n\r \t\f\b\x00é(\\\u2028"],
    K("vec"): [1, [2, []]],
    K("list"): (1, (2,), ()),
    K("set"): frozenset({1, "a", K("k"), Vector([1, 2])}),
    K("empty"): [{}, frozenset(), (), []],
    K("keys"): {
        Vector([1, 2]): "v",
        FrozenMap({K("a"): 1}): "m",
        frozenset({1}): "s",
        "str": 1,
        1: "int",
        None: "nil",
        False: "f",
        Char("c"): "ch",
        Symbol("sym"): "sy",
    },
    K("sym"): Symbol("clojure.core/inc"),
    K("kw-ns"): K("a.b/c-d?"),
    K("inst"): datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
    K("inst-offset"): datetime(2024, 1, 2, 5, 4, 5, 123000, tzinfo=timezone(timedelta(hours=2))),
    K("uuid"): uuid.UUID("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
    K("rec"): Tagged("garrison.check.Rec", {K("a"): 1, K("b"): [2]}),
    K("object"): Tagged("object", [Symbol("java.lang.Object"), 123, "java.lang.Object@7b"]),
    K("unknown"): Tagged("my/tag", (1, 2)),
    K("deep"): _deep(300),
    "string-key": None,
    K("t"): True,
}

SCRIPT = (
    r"""
(ns garrison.check (:require [clojure.edn :as edn]))

(defrecord Rec [a b])

"""
    + SAME_CLJ
    + r"""
(def expected
  {:user/id 42
   :neg -7
   :big 12345678901234567890N
   :one-n 1N
   :huge 1180591620717411303424
   :dec 1.50M
   :dec-exp 1E+3M
   :ratio -3/4
   :floats [1.5 1.0E300 1.0E-7 0.1 -0.0]
   :inf ##Inf
   :-inf ##-Inf
   :nan ##NaN
   :str "q\"b\\ \n\t\r\b\f \u0000\u0001\u007f é 😀 \u2028 end"
   :lone-surrogate "\ud800x"
   :chars [\a \newline \return \space \tab \formfeed \backspace (char 0) \é \( \\ \u2028]
   :vec [1 [2 []]]
   :list '(1 (2) ())
   :set #{1 "a" :k [1 2]}
   :empty [{} #{} '() []]
   :keys {[1 2] "v", {:a 1} "m", #{1} "s", "str" 1, 1 "int", nil "nil", false "f",
          \c "ch", 'sym "sy"}
   :sym 'clojure.core/inc
   :kw-ns :a.b/c-d?
   :inst #inst "2024-01-02T03:04:05.123-00:00"
   :inst-offset #inst "2024-01-02T03:04:05.123-00:00"
   :uuid #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
   :rec (tagged-literal 'garrison.check.Rec {:a 1 :b [2]})
   :object (tagged-literal 'object ['java.lang.Object 123 "java.lang.Object@7b"])
   :unknown (tagged-literal 'my/tag '(1 2))
   :deep (reduce (fn [acc _] [acc]) [] (range 300))
   "string-key" nil
   :t true})

(def rich
  {:user/id 1
   :ns-map {:user/id 1 :user/name "n"}
   :rec (->Rec 1 [2])
   :object (Object.)
   :chars [\a \newline \return \space \tab \formfeed \backspace (char 0) \é (char 0x2028) \( \\]
   :dec 1.50M :dec-exp (bigdec "1E+3") :one-n 1N :big 12345678901234567890N
   :long Long/MAX_VALUE :neg -42 :ratio 22/7 :neg-ratio -3/4
   :inst (java.util.Date. 1704164645123)
   :uuid #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
   :set #{1 "a" :k [1 2]}
   :list '(1 (2) ()) :vec [1 [2 []]]
   {:a 1} :map-key, [1 2] :vec-key, #{1} :set-key
   :inf ##Inf :-inf ##-Inf :nan ##NaN
   :doubles [1.0E10 1.0E-5 -0.0 0.1 1.0E300 2.0]
   :str "q\"b\\ \n\t\r\b\f é 😀 \u0001 \u2028"
   :kw-digit (keyword "embed-token" "5fe3abc")
   :sym 'clojure.core/inc
   :nil nil :t true :f false
   :deep (reduce (fn [acc _] [acc]) [] (range 500))
   :empty [{} #{} () []]})

(defn read-edn [s] (edn/read-string {:default tagged-literal} s))

(let [[py-file rich-ns rich-plain echo-file lines-in lines-out] *command-line-args*
      got (read-edn (slurp py-file :encoding "UTF-8"))]
  (doseq [k (keys expected)]
    (prn {:check :python-to-clojure, :key (pr-str k), :same (same? (get expected k) (get got k))}))
  (prn {:check :python-to-clojure, :key "whole", :same (same? expected got)})
  (spit echo-file (pr-str got) :encoding "UTF-8")
  (binding [*print-namespace-maps* true]
    (spit rich-ns (pr-str rich) :encoding "UTF-8"))
  (binding [*print-namespace-maps* false]
    (spit rich-plain (pr-str rich) :encoding "UTF-8"))
  (spit lines-out
        (apply str (for [line (clojure.string/split-lines (slurp lines-in :encoding "UTF-8"))]
                     (str (pr-str (read-edn line)) "\n")))
        :encoding "UTF-8")
  (prn {:check :done}))
"""
)

#: The Python value Clojure's ``rich`` map reads as.
RICH_EXPECTED: dict[Any, Any] = {
    K("user/id"): 1,
    K("ns-map"): {K("user/id"): 1, K("user/name"): "n"},
    K("rec"): Tagged("garrison.check.Rec", {K("a"): 1, K("b"): [2]}),
    K("chars"): [Char(c) for c in "a\n\r \t\f\b\x00é\u2028(\\"],
    K("dec"): Decimal("1.50"),
    K("dec-exp"): Decimal("1E+3"),
    K("one-n"): BigInt(1),
    K("big"): BigInt(12345678901234567890),
    K("long"): 2**63 - 1,
    K("neg"): -42,
    K("ratio"): Fraction(22, 7),
    K("neg-ratio"): Fraction(-3, 4),
    K("inst"): datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
    K("uuid"): uuid.UUID("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
    K("set"): frozenset({1, "a", K("k"), Vector([1, 2])}),
    K("list"): (1, (2,), ()),
    K("vec"): [1, [2, []]],
    FrozenMap({K("a"): 1}): K("map-key"),
    Vector([1, 2]): K("vec-key"),
    frozenset({1}): K("set-key"),
    K("inf"): float("inf"),
    K("-inf"): float("-inf"),
    K("nan"): float("nan"),
    K("doubles"): [1e10, 1e-05, -0.0, 0.1, 1e300, 2.0],
    K("str"): 'q"b\\ \n\t\r\b\f é 😀 \x01 \u2028',
    K("kw-digit"): K("embed-token/5fe3abc"),
    K("sym"): Symbol("clojure.core/inc"),
    K("nil"): None,
    K("t"): True,
    K("f"): False,
    K("deep"): _deep(500),
    K("empty"): [{}, frozenset(), (), []],
}


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random EDN value of every kind Clojure can hold (for the bulk round trip)."""
    names = ["a", "b-c", "x.y/z", "ns/n?", "k*", "user/id", "_", "a1/b2"]
    scalars: list[Callable[[], Any]] = [
        lambda: None,
        lambda: rng.random() < 0.5,
        lambda: rng.randint(-(2**63), 2**63 - 1),
        lambda: BigInt(rng.randint(-(2**80), 2**80)),
        lambda: rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-300, 300),
        lambda: Decimal(rng.randint(-(10**12), 10**12)).scaleb(-rng.randint(0, 8)),
        lambda: Fraction(rng.choice([-1, 1]) * rng.randint(1, 98) * 2 + 1, rng.randint(1, 49) * 2),
        lambda: "".join(
            chr(rng.choice([rng.randint(0, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]))
            for _ in range(rng.randint(0, 12))
        ),
        lambda: Char(chr(rng.choice([rng.randint(0, 0xD7FF), rng.randint(0xE000, 0xFFFF)]))),
        lambda: K(rng.choice(names)),
        lambda: Symbol(rng.choice(names)),
        lambda: datetime(2000, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rng.randint(0, 10**12)),
        lambda: uuid.UUID(int=rng.getrandbits(128)),
    ]
    if depth >= 4 or rng.random() < 0.5:
        return rng.choice(scalars)()
    size = rng.randint(0, 5)
    kind = rng.randrange(6)
    items = [_random_value(rng, depth + 1) for _ in range(size)]
    if kind == 0:
        return items
    if kind == 1:
        return tuple(items)
    if kind == 2:
        return frozenset(_hashable(x) for x in items)
    if kind == 3:
        return Tagged(rng.choice(["my/tag", "rec.Rec", "x"]), items)
    keys = [_hashable(_random_value(rng, depth + 1)) for _ in range(size)]
    return dict(zip(keys, items, strict=True))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return Vector(_hashable(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return FrozenMap({k: _hashable(v) for k, v in value.items()})
    if isinstance(value, Tagged):
        return Tagged(value.tag, _hashable(value.value))
    return value


def _clojure_equal_keys(value: Any) -> bool:
    """False when Python keys Clojure would merge (1 and 1N, [1] and (1)) or NaN keys."""
    seen: list[Any] = []

    def walk(v: Any) -> bool:
        if isinstance(v, dict | FrozenMap):
            texts = [dumps(k, sort_keys=True).replace("N", "") for k in v]
            if len(set(texts)) != len(texts):
                return False
            return all(walk(k) and walk(x) for k, x in v.items())
        if isinstance(v, frozenset):
            texts = [dumps(x, sort_keys=True).replace("N", "") for x in v]
            return len(set(texts)) == len(texts) and all(map(walk, v))
        if isinstance(v, list | tuple):
            return all(map(walk, v))
        if isinstance(v, Tagged):
            return walk(v.value)
        seen.append(v)
        return True

    return walk(value)


@dataclass
class ClojureRun:
    checks: list[dict[Any, Any]]
    rich_ns: str
    rich_plain: str
    echo: str
    sent: list[Any]
    echoed: list[str]


@pytest.fixture(scope="module")
def clojure_run(tmp_path_factory: pytest.TempPathFactory) -> ClojureRun:
    require_clojure()
    tmp: Path = tmp_path_factory.mktemp("clojure")
    py_file = tmp / "python.edn"
    py_file.write_text(dumps(PY_VALUE), encoding="utf-8")
    rng = random.Random(20261122)
    sent = [v for v in (_random_value(rng) for _ in range(400)) if _clojure_equal_keys(v)]
    lines_in = tmp / "lines.edn"
    lines_in.write_text("".join(dumps(v) + "\n" for v in sent), encoding="utf-8")
    paths = [tmp / name for name in ("rich-ns.edn", "rich-plain.edn", "echo.edn", "lines-out.edn")]
    out = run_clojure(SCRIPT, py_file, paths[0], paths[1], paths[2], lines_in, paths[3])
    checks = [loads(line) for line in out.splitlines() if line.strip()]
    return ClojureRun(
        checks=checks,
        rich_ns=paths[0].read_text(encoding="utf-8"),
        rich_plain=paths[1].read_text(encoding="utf-8"),
        echo=paths[2].read_text(encoding="utf-8"),
        sent=sent,
        echoed=paths[3].read_text(encoding="utf-8").splitlines(),
    )


def test_clojure_reads_what_python_writes_as_the_same_value(clojure_run: ClojureRun) -> None:
    results = [c for c in clojure_run.checks if c[K("check")] == K("python-to-clojure")]
    assert len(results) == len(PY_VALUE) + 1
    different = [c[K("key")] for c in results if c[K("same")] is not True]
    assert not different, f"Clojure read these entries differently: {different}"


def test_python_reads_clojure_printed_text_exactly(clojure_run: ClojureRun) -> None:
    assert "#:user{" in clojure_run.rich_ns
    assert "#garrison.check.Rec{" in clojure_run.rich_ns
    assert "\\formfeed" in clojure_run.rich_ns
    for text in (clojure_run.rich_ns, clojure_run.rich_plain):
        value = loads(text)
        obj = value.pop(K("object"))
        assert obj.tag == "object"
        assert obj.value[0] == Symbol("java.lang.Object")
        assert obj.value[2].startswith("java.lang.Object@")
        assert same(value, RICH_EXPECTED), explain(value, RICH_EXPECTED)


def test_clojure_printed_text_dumps_back_to_what_clojure_printed(clojure_run: ClojureRun) -> None:
    # pr-str order is Clojure's hash order, which a Python dict keeps on reading.
    value = loads(clojure_run.rich_plain)
    obj = value[K("object")]
    text = dumps(value)
    assert loads(text)[K("object")] == obj
    assert same(loads(text), value)


def test_python_value_survives_a_trip_through_clojure(clojure_run: ClojureRun) -> None:
    back = loads(clojure_run.echo)
    expected = dict(PY_VALUE)
    # Clojure writes strings as UTF-8; a lone surrogate cannot be, so Java prints "?".
    assert back.pop(K("lone-surrogate")) == "?x"
    del expected[K("lone-surrogate")]
    # An int outside Java's long range is a clojure.lang.BigInt, which Clojure prints with N.
    expected[K("huge")] = BigInt(2**70)
    assert same(back, expected), explain(back, expected)


def test_random_values_survive_a_trip_through_clojure(clojure_run: ClojureRun) -> None:
    assert len(clojure_run.sent) > 300
    assert len(clojure_run.echoed) == len(clojure_run.sent)
    for sent, line in zip(clojure_run.sent, clojure_run.echoed, strict=True):
        back = loads(line)
        assert same(back, sent), explain(back, sent)
