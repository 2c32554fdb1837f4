"""What Clojure 1.11's reader calls a duplicate set element or map key: the cases both sides check.

Each case is an EDN text and what ``clojure.edn/read-string`` (with
``{:default tagged-literal}`` for the tagged ones) does with it: ``DUPLICATE``
(it throws "Duplicate key: …") or the number of elements or entries it keeps.
``test_edn_equality`` checks garrison's reader against this table, and
``test_edn_clojure_equality`` checks the table against a real Clojure.

What the table says, in short: booleans are never numbers; longs (and
BigInts), doubles, ratios and decimals are four categories that are never
equal to each other; inside a category values compare by value (``1`` and
``1N``, ``0.0`` and ``-0.0``, ``1.0M`` and ``1.00M``); a vector equals the
list of the same elements; every ``##NaN`` is the same object; a tagged
literal compares its form with Java's ``equals``, where ``1`` and ``1N``,
``0.0`` and ``-0.0``, ``1.0M`` and ``1.00M`` differ (but set elements and
map keys inside it still follow ``=``).
"""

from __future__ import annotations

from typing import Final

DUPLICATE: Final = -1

CASES: Final[tuple[tuple[str, int], ...]] = (
    # Python merges these; Clojure keeps every one.
    ("{0 :a false :b}", 2),
    ("#{1 true 1.0 1M}", 4),
    ("#{0.5 0.5M 1/2}", 3),
    ("#{nil false 0.5M}", 3),
    ("#{0 false 0.51}", 3),
    ("#{0 false 0.0 0M}", 4),
    ("#{1.0 1}", 2),
    ("#{-0.0 0}", 2),
    ("#{0.1 0.1M}", 2),
    ("#{1/2 0.5}", 2),
    ("#{##NaN 0.0}", 2),
    ("#{[1] [true]}", 2),
    ("#{[1] [1.0]}", 2),
    ("#{[0] [false] [0.0] [0M]}", 4),
    ("#{{:a 1} {:a 1.0}}", 2),
    ("{#{0 false} 1 #{0.0 false} 2}", 2),
    ("{[0] :a [false] :b}", 2),
    ("#{(0 1) [false true]}", 2),
    # Clojure's = says equal: duplicates.
    ("{:a 1 :a 2}", DUPLICATE),
    ("#{:a :a}", DUPLICATE),
    ("#{0.0 -0.0}", DUPLICATE),
    ("{0.0 :a -0.0 :b}", DUPLICATE),
    ("#{1.0M 1.00M}", DUPLICATE),
    ("{1.0M :a 1.00M :b}", DUPLICATE),
    ("#{0M -0M}", DUPLICATE),
    ("#{1E+1M 10M}", DUPLICATE),
    ("#{1 1N}", DUPLICATE),
    ("{1 :a 1N :b}", DUPLICATE),
    ("#{1 1.0 1N}", DUPLICATE),
    ("#{9223372036854775808 9223372036854775808N}", DUPLICATE),
    ("#{2/4 1/2}", DUPLICATE),
    ("#{4/2 2}", DUPLICATE),
    ("#{0 -0}", DUPLICATE),
    ("#{##NaN ##NaN}", DUPLICATE),
    ("{##NaN 1 ##NaN 2}", DUPLICATE),
    ("#{[##NaN] [##NaN]}", DUPLICATE),
    ("#{[1] (1)}", DUPLICATE),
    ("{[1] :a (1) :b}", DUPLICATE),
    ("#{[[1]] [(1)]}", DUPLICATE),
    ("#{(1 2) [1 2] [1N 2]}", DUPLICATE),
    ("#{#{1} #{1N}}", DUPLICATE),
    ("#{{1 2} {1N 2}}", DUPLICATE),
    ("#{#{0 false} #{false 0N}}", DUPLICATE),
    ('#{#inst "2020-01-01T00:00:00Z" #inst "2020-01-01T00:00:00.000Z"}', DUPLICATE),
    ("#{" + " ".join(['#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"'] * 2) + "}", DUPLICATE),
    # Tagged literals: the form compares with Java's equals.
    ("#{#a/b 1 #a/b 1}", DUPLICATE),
    ("#{#a/b 1 #a/b true}", 2),
    ("#{#a/b 1 #a/b 1.0}", 2),
    ("#{#a/b 1 #a/b 1N}", 2),
    ("#{#a/b 0.0 #a/b -0.0}", 2),
    ("#{#a/b 1.0M #a/b 1.00M}", 2),
    ("#{#a/b [1] #a/b [1N]}", 2),
    ("#{#a/b [0.0] #a/b [-0.0]}", 2),
    ("#{#a/b #c/d 1 #a/b #c/d 1N}", 2),
    ("#{#a/b {1 2} #a/b {1 2N}}", 2),
    ("#{#a/b [1] #a/b (1)}", DUPLICATE),
    ("#{#a/b #{1} #a/b #{1N}}", DUPLICATE),
    ("#{#a/b {1 2} #a/b {1N 2}}", DUPLICATE),
    ("#{#a/b ##NaN #a/b ##NaN}", DUPLICATE),
    ("#{#a/b 9223372036854775808 #a/b 9223372036854775808N}", DUPLICATE),
)

#: Pairs of EDN texts and whether Clojure's ``=`` holds for the values read
#: (``garrison.edn.equal`` must say the same).
EQUAL_CASES: Final[tuple[tuple[str, str, bool], ...]] = (
    ("0.0", "-0.0", True),
    ("1.0M", "1.00M", True),
    ("1", "1N", True),
    ("[1]", "(1)", True),
    ("[1 [2]]", "(1 (2))", True),
    ("#{1}", "#{1N}", True),
    ("{1 [2]}", "{1N (2)}", True),
    ("##NaN", "##NaN", True),
    ('#inst "2020-01-01T01:00:00+01:00"', '#inst "2020-01-01T00:00:00Z"', True),
    ("0", "false", False),
    ("1", "true", False),
    ("nil", "false", False),
    ("1", "1.0", False),
    ("1", "1M", False),
    ("1.0", "1M", False),
    ("0.5", "1/2", False),
    ("0.5", "0.5M", False),
    ("[1]", "[true]", False),
    ("{0 :a}", "{false :a}", False),
    ("#{0}", "#{0.0}", False),
    ("#a/b 1", "#a/b 1N", False),
    ("#a/b [1]", "#a/b (1)", True),
    ('"a"', "\\a", False),
    (":a", "a", False),
)
