"""The SQL of :class:`SqliteStore`: its statements and the query builders.

Values are always bound parameters. The only text ever put into SQL is built
here from the store's own constants and from JSON paths that
:func:`json_path_sql` has checked against a strict pattern.
"""

from __future__ import annotations

from typing import Any, Final

from garrison.stores._protocol import MISSING
from garrison.stores._schema import json_path_sql
from garrison.stores._values import encode_value

__all__ = [
    "AS_OF",
    "CHANGES",
    "CURRENT_VERSION",
    "DELETE",
    "EVENTS",
    "GET",
    "GET_MANY",
    "HISTORY_OF",
    "META_GET",
    "META_SET",
    "RECORD_CLEAR",
    "RECORD_COMMIT",
    "RECORD_DELETES",
    "REINDEX_KINDS",
    "UPSERT",
    "changes_query",
    "find_query",
    "prefix_bounds",
    "range_clause",
    "revert_query",
    "sql_operand",
]

UPSERT: Final = (
    "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1) "
    "ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, kind = excluded.kind, "
    "value = excluded.value, updated_at = excluded.updated_at, version = version + 1"
)
# Keys travel as one JSON array parameter: one statement for any number of keys,
# never near SQLite's bound-variable limit.
KEYS_IN: Final = "key IN (SELECT value FROM json_each(?1))"
GET: Final = "SELECT value FROM entries WHERE key = ?"
CURRENT_VERSION: Final = "SELECT version FROM entries WHERE key = ?"
# A join, not KEYS_IN: SQLite then looks each key up in turn instead of first
# building and sorting a temporary index of them (~10% of a 64-key read). A key
# asked twice comes back twice; callers collect the rows into a dict. CROSS JOIN
# pins the asked keys as the outer loop, so it can never become a table scan.
GET_MANY: Final = (
    "SELECT entries.key, entries.value FROM json_each(?1) AS asked "
    "CROSS JOIN entries ON entries.key = asked.value"
)
RECORD_DELETES: Final = (
    "INSERT INTO history (key, op, value, version, at) "
    f"SELECT key, 'delete', NULL, version + 1, ?2 FROM entries WHERE {KEYS_IN}"
)
DELETE: Final = f"DELETE FROM entries WHERE {KEYS_IN}"
RECORD_CLEAR: Final = (
    "INSERT INTO history (key, op, value, version, at) "
    "SELECT key, 'delete', NULL, version + 1, ?1 FROM entries"
)
AS_OF: Final = "SELECT op, value FROM history WHERE key = ? AND at <= ? ORDER BY seq DESC LIMIT 1"
# Newest first, so a limit reads only the rows it returns; the caller reverses.
# A history row's actor and reason are its commit's: the one with its time.
_AUDITED: Final = (
    "SELECT seq, key, op, value, version, history.at, commits.actor, commits.reason "
    "FROM history LEFT JOIN commits ON commits.at = history.at"
)
HISTORY_OF: Final = f"{_AUDITED} WHERE key = ? ORDER BY seq DESC LIMIT ?"
NEXT_SEQ: Final = "(SELECT coalesce(max(seq), 0) + 1 FROM history)"
CHANGES: Final = (
    f"{_AUDITED} WHERE seq >= coalesce("
    f"(SELECT first_seq FROM commits WHERE at > ?1 ORDER BY at LIMIT 1), {NEXT_SEQ}) "
    "AND seq > ?2 ORDER BY seq LIMIT ?3"
)
RECORD_COMMIT: Final = (
    f"INSERT INTO commits (at, first_seq, actor, reason, event) VALUES (?1, {NEXT_SEQ}, ?2, ?3, ?4)"
)
# The events (commits that record one) after ?1, of actor ?2 (NULL: any).
EVENTS: Final = (
    "SELECT at, actor, reason, event FROM commits WHERE at > ?1 AND event IS NOT NULL "
    "AND (?2 IS NULL OR actor = ?2) ORDER BY at"
)
META_GET: Final = "SELECT value FROM meta WHERE name = ?"
META_SET: Final = (
    "INSERT INTO meta (name, value) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


# The kind a KindMapping gives each row (?1 exact keys, ?2 namespaces, both JSON
# objects, ?3 the default), set where it differs. The key and namespace columns
# are the ones every write stores.
_MAPPED_KIND: Final = (
    "coalesce((SELECT k.value FROM json_each(?1) AS k WHERE k.key = entries.key), "
    "(SELECT n.value FROM json_each(?2) AS n WHERE n.key = entries.namespace), ?3)"
)
REINDEX_KINDS: Final = f"UPDATE entries SET kind = {_MAPPED_KIND} WHERE kind IS NOT {_MAPPED_KIND}"


def prefix_bounds(prefix: str) -> tuple[str, str | None] | None:
    """``(low, high)`` such that ``low <= key < high`` iff key starts with ``prefix``.

    A key range rather than LIKE, so SQLite walks the primary key index. SQLite
    compares text as UTF-8 bytes, whose order is code point order. ``high`` is
    ``None`` when no string bounds the range (a prefix of only U+10FFFF);
    the whole result is ``None`` for the empty prefix.
    """
    if not prefix:
        return None
    head = prefix.rstrip("\U0010ffff")
    if not head:
        return (prefix, None)
    return (prefix, head[:-1] + chr(ord(head[-1]) + 1))


def range_clause(prefix: str, after: str | None) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (or ``""``) and parameters for a prefix and a page start."""
    clauses: list[str] = []
    params: list[Any] = []
    bounds = prefix_bounds(prefix)
    if bounds is not None:
        low, high = bounds
        clauses.append("key >= ?")
        params.append(low)
        if high is not None:
            clauses.append("key < ?")
            params.append(high)
    if after is not None:
        clauses.append("key > ?")
        params.append(after)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def sql_operand(value: Any) -> Any:
    """The SQL value to compare a ``json_extract`` result with."""
    kind = type(value)
    if kind is str or kind is int or kind is float:
        return value
    if kind is bool:
        return int(value)  # json_extract returns 1 and 0 for true and false
    return encode_value(value)


def find_query(
    path: str,
    *,
    eq: Any = MISSING,
    lt: Any = MISSING,
    le: Any = MISSING,
    gt: Any = MISSING,
    ge: Any = MISSING,
    prefix: str = "",
    kind: str | None = None,
    after: str | None = None,
) -> tuple[str, list[Any]]:
    """The statement and parameters of :meth:`SqliteStore.find` (its limit goes last).

    The JSON path is written literally (see :func:`json_path_sql`), so that
    SQLite can match the query against an expression index on the same path.
    """
    expression = json_path_sql(path)
    where, params = range_clause(prefix, after)
    clauses = [where[len(" WHERE ") :]] if where else []
    if eq is not MISSING:
        if eq is None:
            clauses.append(f"{expression} IS NULL")
        else:
            clauses.append(f"{expression} = ?")
            params.append(sql_operand(eq))
    for operator, bound in (("<", lt), ("<=", le), (">", gt), (">=", ge)):
        if bound is not MISSING:
            clauses.append(f"{expression} {operator} ?")
            params.append(sql_operand(bound))
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    condition = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return f"SELECT key, value FROM entries{condition} ORDER BY key LIMIT ?", params


def changes_query(prefix: str, actor: str | None) -> tuple[str, list[Any]]:
    """The statement of ``SqliteStore.changes``: its parameters are since, after_seq,
    the returned ones, then the limit.

    Starts, as :data:`CHANGES` does, at the first commit after ``since``.
    """
    where, params = range_clause(prefix, None)
    clauses = [where[len(" WHERE ") :]] if where else []
    if actor is not None:
        clauses.append("commits.actor = ?")
        params.append(actor)
    extra = "".join(f" AND {clause}" for clause in clauses)
    sql = (
        f"{_AUDITED} WHERE seq >= coalesce((SELECT first_seq FROM commits WHERE at > ? "
        f"ORDER BY at LIMIT 1), {NEXT_SEQ}) AND seq > ?{extra} ORDER BY seq LIMIT ?"
    )
    return sql, params


# For each candidate key: its stored text now and at ?2 (NULL: absent), where they
# differ. The candidates are every key with a history row under the prefix (every
# key that ever existed there: each write leaves one), or the keys asked for.
_REVERT_COLUMNS: Final = (
    "SELECT candidate.key, "
    "(SELECT value FROM entries WHERE entries.key = candidate.key) AS current, "
    "(SELECT value FROM history AS h WHERE h.key = candidate.key AND h.at <= ?2 "
    "ORDER BY h.seq DESC LIMIT 1) AS target"
)


def revert_query(prefix: str | None) -> tuple[str, list[Any]]:
    """The plan of a revert: ``(key, current text, target text)`` of the keys that change.

    ``prefix`` ``None``: the keys are the JSON array parameter ``?1``. The
    parameters returned follow ``?1`` (a prefix's bounds, or the key array)
    and ``?2`` (the time, in microseconds).
    """
    if prefix is None:
        candidates = "SELECT DISTINCT value AS key FROM json_each(?1)"
        params: list[Any] = []
    else:
        bounds = prefix_bounds(prefix)
        candidates = "SELECT DISTINCT key FROM history"
        params = []
        if bounds is not None:
            candidates += " WHERE key >= ?3"
            params.append(bounds[0])
            if bounds[1] is not None:
                candidates += " AND key < ?4"
                params.append(bounds[1])
    sql = (
        f"SELECT key, current, target FROM ({_REVERT_COLUMNS} FROM ({candidates}) AS candidate) "
        "WHERE current IS NOT target ORDER BY key"
    )
    return sql, params
