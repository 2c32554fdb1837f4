"""Clojure's equality through a real Clojure 1.11: duplicates, and values Python would merge.

- The table of :mod:`tests.edn.clojure_equality_cases` is what
  ``clojure.edn/read-string`` really does (and ``=`` for the pairs).
- Generated values whose sets and map keys mix nil, booleans, longs,
  BigInts, doubles (with -0.0), ratios and decimals: garrison writes them,
  Clojure reads them (its reader refuses duplicates) and prints them back,
  and garrison reads that as the very same value, classes included.
- Clojure makes such values itself (``into #{}`` and ``into {}``: Clojure's
  ``=``), prints them, garrison reads and writes them back, and Clojure
  finds what it reads equal to its own values, class for class.

Two Clojure processes per module run (the second compares garrison's
rewrite of the first's output).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from garrison.edn import BigInt, Keyword, Vector, dumps, loads
from tests._clojure import SAME_CLJ, require_clojure, run_clojure
from tests.edn._edn_same import explain, same
from tests.edn.clojure_equality_cases import CASES, DUPLICATE, EQUAL_CASES
from tests.edn.edn_strategies import edn_map, edn_set

pytestmark = pytest.mark.clojure

K = Keyword

_SAME = (
    SAME_CLJ
    + r"""
(defn read-edn [s] (edn/read-string {:default tagged-literal} s))
(defn lines [path] (clojure.string/split-lines (slurp path :encoding "UTF-8")))
"""
)

_FIRST = (
    r"""
(ns garrison.check (:require [clojure.edn :as edn] [clojure.string]))
"""
    + _SAME
    + r"""
(def pool [nil false true 0 1 -1 0N 1N 2N 0.0 -0.0 1.0 0.5 -0.5 2.0 1/2 -1/2 3/2
           0M 1M 1.0M 0.5M 0.50M 2M])

(defn member [^java.util.Random rng depth]
  (let [r (.nextInt rng 10)]
    (cond (or (> depth 1) (< r 6)) (nth pool (.nextInt rng (count pool)))
          (< r 8) (vec (repeatedly (inc (.nextInt rng 2)) #(member rng (inc depth))))
          (< r 9) (apply list (repeatedly (inc (.nextInt rng 2)) #(member rng (inc depth))))
          :else (into #{} (repeatedly (.nextInt rng 4) #(member rng (inc depth)))))))

(defn value [^java.util.Random rng]
  (case (.nextInt rng 3)
    0 (into #{} (repeatedly (.nextInt rng 7) #(member rng 0)))
    1 (into {} (repeatedly (.nextInt rng 7) #(vector (member rng 0) (member rng 0))))
    2 [(into #{} (repeatedly (.nextInt rng 5) #(member rng 0)))
       {:k (into {} (repeatedly (.nextInt rng 5) #(vector (member rng 0) (.nextInt rng 9))))}]))

(let [[cases-in pairs-in sent-in echo-out made-out] *command-line-args*]
  (doseq [text (lines cases-in)]
    (prn (try (let [v (read-edn text)] {:text text :kept (count v)})
              (catch Exception e {:text text :error (.getMessage e)}))))
  (doseq [[a b] (partition 2 (lines pairs-in))]
    (prn {:a a :b b :equal (= (read-edn a) (read-edn b))}))
  (spit echo-out (apply str (for [line (lines sent-in)] (str (pr-str (read-edn line)) "\n")))
        :encoding "UTF-8")
  (let [rng (java.util.Random. 20261204)]
    (spit made-out (apply str (repeatedly 300 #(str (pr-str (value rng)) "\n")))
          :encoding "UTF-8")))
"""
)

_SECOND = (
    r"""
(ns garrison.check2 (:require [clojure.edn :as edn] [clojure.string]))
"""
    + _SAME
    + r"""
(let [[made-in rewritten-in] *command-line-args*]
  (doseq [[made rewritten] (map vector (lines made-in) (lines rewritten-in))]
    (prn {:same (same? (read-edn made) (edn/read-string rewritten)) :made made
          :rewritten rewritten})))
"""
)

_POOL: list[Any] = [
    None,
    False,
    True,
    0,
    1,
    -1,
    BigInt(0),
    BigInt(1),
    0.0,
    -0.0,
    1.0,
    0.5,
    2.0,
    Fraction(1, 2),
    Fraction(-3, 2),
    Decimal("0"),
    Decimal("1"),
    Decimal("1.0"),
    Decimal("0.5"),
    Decimal("0.50"),
    Decimal("2"),
]


def _member(rng: random.Random, depth: int = 0) -> Any:
    r = rng.randrange(10)
    if depth > 1 or r < 6:
        return rng.choice(_POOL)
    items = [_member(rng, depth + 1) for _ in range(rng.randint(1, 2))]
    if r < 8:
        return Vector(items)
    if r < 9:
        return tuple(items)
    return edn_set(items)


def _generated(rng: random.Random) -> Any:
    """A value whose sets and map keys mix the kinds Python merges (as garrison reads them)."""
    kind = rng.randrange(3)
    if kind == 0:
        return edn_set([_member(rng) for _ in range(rng.randrange(7))])
    if kind == 1:
        return edn_map([(_member(rng), _member(rng)) for _ in range(rng.randrange(7))])
    return [
        edn_set([_member(rng) for _ in range(rng.randrange(5))]),
        {K("k"): edn_map([(_member(rng), rng.randrange(9)) for _ in range(rng.randrange(5))])},
    ]


@dataclass
class Run:
    cases: list[Any]
    pairs: list[Any]
    sent: list[Any]
    echoed: list[str]
    made: list[str]
    second: list[Any]


@pytest.fixture(scope="module")
def clojure_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    require_clojure()
    tmp: Path = tmp_path_factory.mktemp("clojure-equality")
    cases_in, pairs_in, sent_in = tmp / "cases.edn", tmp / "pairs.edn", tmp / "sent.edn"
    echo_out, made_out, rewritten = tmp / "echo.edn", tmp / "made.edn", tmp / "rewritten.edn"
    cases_in.write_text("".join(text + "\n" for text, _ in CASES), encoding="utf-8")
    pairs_in.write_text("".join(f"{a}\n{b}\n" for a, b, _ in EQUAL_CASES), encoding="utf-8")
    rng = random.Random(20261204)
    sent = [_generated(rng) for _ in range(300)]
    sent_in.write_text("".join(dumps(v) + "\n" for v in sent), encoding="utf-8")
    out = run_clojure(_FIRST, cases_in, pairs_in, sent_in, echo_out, made_out)
    checks = [loads(line) for line in out.splitlines() if line.strip()]
    made = made_out.read_text(encoding="utf-8").splitlines()
    # garrison reads what Clojure made and writes it back, for Clojure to compare.
    rewritten.write_text("".join(dumps(loads(line)) + "\n" for line in made), encoding="utf-8")
    second = [loads(line) for line in run_clojure(_SECOND, made_out, rewritten).splitlines()]
    return Run(
        cases=[c for c in checks if K("text") in c],
        pairs=[c for c in checks if K("equal") in c],
        sent=sent,
        echoed=echo_out.read_text(encoding="utf-8").splitlines(),
        made=made,
        second=second,
    )


def test_clojure_reads_the_cases_as_the_table_says(clojure_run: Run) -> None:
    assert len(clojure_run.cases) == len(CASES)
    wrong = []
    for (text, kept), got in zip(CASES, clojure_run.cases, strict=True):
        assert got[K("text")] == text
        if kept == DUPLICATE:
            ok = str(got.get(K("error"), "")).startswith("Duplicate key: ")
        else:
            ok = got.get(K("kept")) == kept
        if not ok:
            wrong.append((text, kept, got))
    assert not wrong, f"Clojure disagrees with the table: {wrong}"


def test_clojure_equality_is_what_the_table_says(clojure_run: Run) -> None:
    got = [(p[K("a")], p[K("b")], p[K("equal")]) for p in clojure_run.pairs]
    assert got == list(EQUAL_CASES)


def test_clojure_reads_garrisons_colliding_values_strictly_as_the_same(clojure_run: Run) -> None:
    # Clojure's reader refuses duplicates: every line read is proof there
    # were none; what it prints back must be garrison's value, class for class.
    assert len(clojure_run.echoed) == len(clojure_run.sent)
    kept_apart = 0
    for sent, line in zip(clojure_run.sent, clojure_run.echoed, strict=True):
        back = loads(line, strict=True)
        assert same(back, sent), explain(back, sent)
        kept_apart += "EdnSet" in repr(sent) or "EdnMap" in repr(sent)
    assert kept_apart > 50  # about one in five holds members Python's == would merge


def test_garrison_reads_clojures_colliding_values_and_writes_them_back(clojure_run: Run) -> None:
    assert len(clojure_run.second) == len(clojure_run.made) == 300
    different = [c for c in clojure_run.second if c[K("same")] is not True]
    assert not different, f"Clojure read garrison's rewrite differently: {different[:3]}"
    # And garrison's strict reader accepts all Clojure wrote.
    kept_apart = 0
    for line in clojure_run.made:
        value = repr(loads(line, strict=True))
        kept_apart += "EdnSet" in value or "EdnMap" in value
    assert kept_apart > 50
