"""Key-by-key comparison of two stores: what the mode router and the migrator validate.

:func:`compare_stores` reads both stores page by page and reports the keys
missing on each side and the keys whose values differ. Values are compared
by their EDN texts (with sorted keys): two values match when Clojure reads
their texts as equal values of the same classes all the way down. So ``1``,
``1.0``, ``1N`` and ``true`` differ, as do a vector and a list, ``1.0M`` and
``1.00M``, ``0.0`` and ``-0.0``, and a set that lost an element (``#{0 false}``
against ``#{0}``), although Python's ``==`` calls some of them equal. Values
with no EDN form fall back to ``==``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from garrison.edn import dumps
from garrison.exceptions import EdnError

if TYPE_CHECKING:
    from garrison.stores._protocol import KeyValueStore

__all__ = ["Comparison", "compare_stores", "same_value"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result of :func:`compare_stores`: how two stores differ, key by key.

    The key lists are sorted key texts. ``left`` and ``right`` name the sides
    (``"edn"`` and ``"sqlite"`` for the mode router).
    """

    #: Keys only the left store holds.
    only_left: tuple[str, ...]
    #: Keys only the right store holds.
    only_right: tuple[str, ...]
    #: Keys both hold with different values.
    different: tuple[str, ...]
    #: Keys held by both sides (compared value by value).
    common: int
    left: str = "left"
    right: str = "right"

    @property
    def clean(self) -> bool:
        """Whether the two sides hold exactly the same entries."""
        return not (self.only_left or self.only_right or self.different)

    @property
    def mismatched_keys(self) -> tuple[str, ...]:
        """Every key that differs in any way, sorted."""
        return tuple(sorted({*self.only_left, *self.only_right, *self.different}))

    def summary(self, examples: int = 5) -> str:
        """One line for logs and error messages, with a few example keys per kind."""
        if self.clean:
            return f"{self.left} and {self.right} agree on all {self.common} keys"

        def part(name: str, keys: tuple[str, ...]) -> str:
            shown = ", ".join(keys[:examples]) + (", …" if len(keys) > examples else "")
            return f"{len(keys)} {name} ({shown})" if keys else f"0 {name}"

        return "; ".join(
            [
                part(f"only in {self.left}", self.only_left),
                part(f"only in {self.right}", self.only_right),
                part("with different values", self.different),
                f"{self.common} keys on both sides",
            ]
        )


def same_value(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same EDN value, of the same classes throughout.

    Stricter than Clojure's ``=`` (:func:`garrison.edn.equal`), which
    says ``1`` equals ``1N`` and ``[1]`` equals ``(1)``: a migration must keep
    the kind of every value, so a change of kind is a difference.
    """
    try:
        return dumps(a, sort_keys=True) == dumps(b, sort_keys=True)
    except EdnError:
        return bool(a == b)  # no EDN form on one side: == is all there is


def _different(pairs: list[tuple[str, Any, Any]]) -> list[str]:
    return [key for key, a, b in pairs if not same_value(a, b)]


async def compare_stores(
    left: KeyValueStore,
    right: KeyValueStore,
    *,
    prefix: str = "",
    page_size: int = 1000,
    left_name: str = "left",
    right_name: str = "right",
) -> Comparison:
    """Compare every entry under ``prefix`` of two stores.

    Reads the key lists of both sides, then the values of the common keys in
    pages of ``page_size`` (one ``get_many`` per side per page). The value
    comparison (which serialises both values) runs in a worker thread, so a
    large comparison does not hold up the event loop. The stores may change
    while a comparison runs; the result then describes no single moment, so
    validate while writes are paused when it must be exact.
    """
    left_keys = set(await left.keys(prefix))
    right_keys = set(await right.keys(prefix))
    common = sorted(left_keys & right_keys)
    different: list[str] = []
    for start in range(0, len(common), page_size):
        page = common[start : start + page_size]
        left_values = await left.get_many(page)
        right_values = await right.get_many(page)
        pairs: list[tuple[str, Any, Any]] = []
        for key in page:
            if key not in left_values or key not in right_values:
                different.append(key)  # deleted on one side while we compared
            else:
                pairs.append((key, left_values[key], right_values[key]))
        different.extend(await asyncio.to_thread(_different, pairs))
    return Comparison(
        only_left=tuple(sorted(left_keys - right_keys)),
        only_right=tuple(sorted(right_keys - left_keys)),
        different=tuple(sorted(different)),
        common=len(common),
        left=left_name,
        right=right_name,
    )
