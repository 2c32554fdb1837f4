"""garrison.stores: the data stores under the database component."""

from __future__ import annotations

from garrison.stores._compare import Comparison, compare_stores
from garrison.stores._edn_file import EdnFileStore, EdnFileStoreStatistics
from garrison.stores._keys import StringKey, key_prefix, key_text, lookup_text, write_key_text
from garrison.stores._mode import Mode, ModeSwitch, RouterStatistics
from garrison.stores._router import ModeRouter
from garrison.stores._sqlite import SqliteStore
from garrison.stores._sqlite_types import Change, KindClassifier

__all__ = [
    # EDN file store
    "EdnFileStore",
    "EdnFileStoreStatistics",
    # key texts
    "StringKey",
    "key_prefix",
    "key_text",
    "lookup_text",
    "write_key_text",
    # mode router
    "Comparison",
    "Mode",
    "ModeRouter",
    "ModeSwitch",
    "RouterStatistics",
    "compare_stores",
    # SQLite store
    "Change",
    "KindClassifier",
    "SqliteStore",
]
