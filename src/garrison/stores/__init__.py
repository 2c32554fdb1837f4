"""garrison.stores: the data stores under the database component."""

from __future__ import annotations

from garrison.stores._compare import Comparison, compare_stores
from garrison.stores._edn_file import EdnFileStore, EdnFileStoreStatistics
from garrison.stores._mode import Mode, ModeSwitch, RouterStatistics
from garrison.stores._router import ModeRouter
from garrison.stores._sqlite import SqliteStore
from garrison.stores._sqlite_bulk import (
    EncodedRow,
    encode_rows,
    fetch_stored_versions,
    put_new_rows,
    put_rows,
    rows_json,
    scan_stored,
    text_encoding,
    unexpected_versions,
)
from garrison.stores._sqlite_types import Change, KindClassifier

__all__ = [
    # EDN file store
    "EdnFileStore",
    "EdnFileStoreStatistics",
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
    # bulk loading and stored texts (for the store's owning actor)
    "EncodedRow",
    "encode_rows",
    "fetch_stored_versions",
    "put_new_rows",
    "put_rows",
    "rows_json",
    "scan_stored",
    "text_encoding",
    "unexpected_versions",
]
