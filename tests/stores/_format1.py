"""The values in ``data/format1.db``, a database written by garrison's value format 1.

``python -m tests.stores._format1 PATH`` writes such a database; run it with the
format-1 code first on the path (``PYTHONPATH=<old checkout>/src``), as the
committed file was. The upgrade test opens the file with the current code.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from garrison.edn import FrozenMap, Keyword, Tagged, Vector, loads

#: key -> (first value, current value); ``None`` as the current value: deleted.
VALUES: dict[str, tuple[Any, Any]] = {
    "session/s1": (
        loads('{:session/id "s1" :session/user-id "u1"}'),
        loads('{:session/id "s1" :session/user-id "u1" :session/tags #{:a :b} :n 1.5}'),
    ),
    "learning/l1": (
        loads("{:learning/tags [:x :y]}"),
        loads(
            "{:learning/tags [:x :y] :learning/session :session/s1 :learning/score 0.75 "
            ':learning/meta {:nested/k {:deeper 1N} "str" 2}}'
        ),
    ),
    # String keys that format 2 spells differently: ":"-led keys are keywords there.
    "app/colon-keys": ({":a": 1}, {":a": 1, "b": Keyword("c"), ":": [{":x": None}]}),
    "app/mixed": ({"plain": 1}, {Keyword("k"): 1, "s": 2, ":s": 3}),
    "app/marker-like": ({"#k": 1}, {"#k": {":x": Keyword("y")}, "#map": 2}),
    "app/inside": (
        [1],
        (Vector([{Keyword("a"): 1}]), Tagged("my/tag", {":z": {Keyword("q"): 0}})),
    ),
    "app/frozen": (
        frozenset({FrozenMap({Keyword("a"): 1})}),
        {FrozenMap({":a": 1}): Keyword("v"), 1: {Keyword("n"): "m"}},
    ),
    "app/plain": ({"user": {"id": 7}}, {"user": {"id": 8}}),
    "app/deleted": ({Keyword("gone"): True}, None),
}

#: meta name -> value.
META: dict[str, Any] = {"app/settings": {Keyword("a"): 1, ":b": 2}}


async def write(path: str) -> None:
    """Write :data:`VALUES` (both versions, then the deletes) and :data:`META` at ``path``."""
    from garrison.stores import SqliteStore  # the code on the path at run time

    async with SqliteStore(path) as store:
        for key, (first, _) in VALUES.items():
            await store.put(key, first)
        for key, (_, current) in VALUES.items():
            if current is None:
                await store.delete(key)
            else:
                await store.put(key, current)
        for name, value in META.items():
            await store.set_meta(name, value)


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1]))
