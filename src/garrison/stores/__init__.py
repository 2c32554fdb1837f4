"""garrison.stores: the data stores under the database component."""

from __future__ import annotations

from typing import TypeAlias

from garrison.stores._atomic import TEMP_MARKER, fsync_directory, place_file
from garrison.stores._attributes import attribute_names
from garrison.stores._audit import DEFAULT_ACTOR, Audit, acting_as, current_audit, running_as
from garrison.stores._backlog import RepairBacklog
from garrison.stores._compare import Comparison, compare_stores, same_value
from garrison.stores._datalog import CompiledQuery, compile_query
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
    write_key_text,
)
from garrison.stores._kinds import DEFAULT_KIND_MAPPING, KindMapping
from garrison.stores._mode import Mode, ModeSwitch, RouterStatistics, decide_mode
from garrison.stores._mode_file import read_mode_file
from garrison.stores._postgres import PostgresStore
from garrison.stores._postgres_bulk import (
    count_history_pg,
    fetch_stored_versions_pg,
    put_new_rows_pg,
    put_rows_pg,
    scan_stored_pg,
    unexpected_versions_pg,
)
from garrison.stores._protocol import MISSING
from garrison.stores._router import MODE_META, SQLITE_FAILURES, ModeRouter
from garrison.stores._rules import TYPES, EntitySchema, Violation, declared_index, find_violations
from garrison.stores._sqlite import SqliteStore
from garrison.stores._sqlite_backup import backup_closed_file
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
from garrison.stores._sqlite_types import AuditEvent, Change, KindClassifier, Reversion
from garrison.stores._values import decode_value, encode_value

#: The database side of the mode router: SQLite on one machine, PostgreSQL shared.
DatabaseStore: TypeAlias = SqliteStore | PostgresStore

__all__ = [
    # the audit context: who writes and why
    "DEFAULT_ACTOR",
    "Audit",
    "AuditEvent",
    "Reversion",
    "acting_as",
    "attribute_names",
    "compile_query",
    "CompiledQuery",
    "current_audit",
    "running_as",
    # keys: one text per key, the colon form being the same key
    "EDN_KEY_PREFIX",
    "StringKey",
    "edn_key",
    "key_namespace",
    "key_prefix",
    "key_text",
    "lookup_text",
    # values: the SQLite value format
    "MISSING",
    "decode_value",
    "encode_value",
    # EDN file store
    "EdnFileStore",
    "EdnFileStoreStatistics",
    "describe_unwritable",
    "levelled_view",
    "load_file",
    "write_archive",
    "write_key_text",
    # mode router
    "MODE_META",
    "SQLITE_FAILURES",
    "Comparison",
    "Mode",
    "ModeRouter",
    "ModeSwitch",
    "RepairBacklog",
    "RouterStatistics",
    "compare_stores",
    "decide_mode",
    "read_mode_file",
    "same_value",
    # SQLite store, its kinds, its bulk path and backups
    "DEFAULT_KIND_MAPPING",
    "KindMapping",
    "EntitySchema",
    "TYPES",
    "Violation",
    "find_violations",
    "Change",
    "KindClassifier",
    "SqliteStore",
    "backup_closed_file",
    # PostgreSQL store, and the type of either database store
    "DatabaseStore",
    "PostgresStore",
    # bulk loading and stored texts (for the store's owning actor)
    "EncodedRow",
    "declared_index",
    "encode_rows",
    "fetch_stored_versions",
    "put_new_rows",
    "put_rows",
    "rows_json",
    "scan_stored",
    "text_encoding",
    "unexpected_versions",
    "count_history_pg",
    "fetch_stored_versions_pg",
    "put_new_rows_pg",
    "put_rows_pg",
    "scan_stored_pg",
    "unexpected_versions_pg",
    # files
    "TEMP_MARKER",
    "fsync_directory",
    "place_file",
]
