"""garrison.stores: the data stores under the database component."""

from __future__ import annotations

from garrison.stores._sqlite import SqliteStore
from garrison.stores._sqlite_types import Change, KindClassifier

__all__ = [
    # SQLite store
    "Change",
    "KindClassifier",
    "SqliteStore",
]
