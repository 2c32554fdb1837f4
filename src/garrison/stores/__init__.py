"""garrison.stores: the data stores under the database component."""

from __future__ import annotations

from garrison.stores._atomic import TEMP_MARKER, fsync_directory, place_file
from garrison.stores._backlog import RepairBacklog
from garrison.stores._compare import Comparison, compare_stores, same_value
from garrison.stores._edn_archive import write_archive
from garrison.stores._edn_file import EdnFileStore, EdnFileStoreStatistics, describe_unwritable
from garrison.stores._edn_file_format import load_file
from garrison.stores._edn_level import levelled_view
from garrison.stores._keys import (
    EDN_KEY_PREFIX,
    StringKey,
    edn_key,
    key_namespace,
    key_prefix,
    key_text,
    lookup_text,
)
from garrison.stores._mode import Mode, ModeSwitch, RouterStatistics, decide_mode
from garrison.stores._mode_file import read_mode_file
from garrison.stores._protocol import MISSING
from garrison.stores._router import MODE_META, SQLITE_FAILURES, ModeRouter
from garrison.stores._sqlite import SqliteStore
from garrison.stores._sqlite_backup import backup_closed_file
from garrison.stores._sqlite_bulk import EncodedRow, encode_rows, put_new_rows, put_rows, rows_json
from garrison.stores._sqlite_sql import range_clause
from garrison.stores._sqlite_types import Change, KindClassifier
from garrison.stores._values import decode_value, encode_value

__all__ = [
    "StringKey",
    "key_namespace",
    "put_rows",
    "put_new_rows",
    "edn_key",
    "EDN_KEY_PREFIX",
    "place_file",
    "TEMP_MARKER",
    "encode_value",
    "decode_value",
    "range_clause",
    "same_value",
    "backup_closed_file",
    "fsync_directory",
    "rows_json",
    "encode_rows",
    "EncodedRow",
    "read_mode_file",
    "SQLITE_FAILURES",
    "lookup_text",
    "describe_unwritable",
    "decide_mode",
    "key_text",
    "levelled_view",
    "RepairBacklog",
    "MODE_META",
    "load_file",
    "MISSING",
    "key_prefix",
    "write_archive",
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
]
