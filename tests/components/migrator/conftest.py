"""Fixtures for the migrator tests: a small memory.edn with every kind of key, and a store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from garrison.stores import SqliteStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

#: A legacy memory.edn as Clojure's pr-str writes it: every namespace of the
#: legacy plan, EDN-only value kinds, a key Clojure cannot read back, a string key.
MEMORY_EDN = """;; the legacy store
{:webhook/w1 {:url "https://example.org/hook", :events #{:push :pull}},
 :presence/s-1 {:online? true, :last-seen #inst "2024-05-01T10:00:00.000-00:00"},
 :project/p1 {:name "Zürich", :members [:user/u1 :user/u2],
              :ratio 22/7, :big 12345678901234567890N},
 :learning/r1 {:text "line\\nbreak", :score 1.5M, :tags (:a :b)},
 :learning/tag-index {:a #{:learning/r1}},
 :session/abc {:user :user/u1, :id #uuid "6f1b2c1e-8a5f-4d1e-9f5e-2b7f1f0c9a11", :char \\x},
 :collab-session/c1 {:peers [], :meta {"k" nil}},
 :embed-token/5fe3 [0.25 -1.0 ##Inf],
 :learning/index {:count 2},
 "plain-string-key" {:nested {:deep [1 2 {:x #my/tag [1]}]}},
 :cache/k1 nil}
"""


@pytest.fixture
def memory_edn(tmp_path: Path) -> Path:
    """The legacy file above, written to tmp_path/memory.edn."""
    path = tmp_path / "memory.edn"
    path.write_text(MEMORY_EDN, encoding="utf-8")
    return path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An open SqliteStore on tmp_path/garrison.db."""
    async with SqliteStore(tmp_path / "garrison.db") as opened:
        yield opened


def write_sessions(path: Path, count: int, *, padding: int = 0) -> dict[str, int]:
    """A memory.edn with ``count`` keys over several namespaces; returns key → value id."""
    namespaces = ["cache", "session", "project", "learning", "presence"]
    parts = []
    keys: dict[str, int] = {}
    for i in range(count):
        key = f"{namespaces[i % len(namespaces)]}/k{i:06d}"
        keys[key] = i
        parts.append(f':{key} {{:id {i}, :pad "{"x" * padding}"}}')
    path.write_text("{" + ",\n ".join(parts) + "}\n", encoding="utf-8")
    return keys
