"""The SQL of :class:`PostgresStore`: its statements and the query builders.

The statements mirror :mod:`garrison.stores._sqlite_sql` (same tables, same
meaning) in PostgreSQL's dialect: ``$n`` parameters, key lists as one
``text[]`` parameter. Values are always bound; the only text put into SQL is
built here from constants and from JSON paths that :func:`json_path_pg` has
checked against the same strict pattern as SQLite's.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from garrison.exceptions import StoreError
from garrison.stores._postgres_schema import JSON_OF_VALUE
from garrison.stores._protocol import MISSING
from garrison.stores._sqlite_sql import prefix_bounds
from garrison.stores._values import encode_value

__all__ = [
    "AS_OF",
    "CATCH_UP",
    "CHANGES",
    "CLEAR_ATTRIBUTES",
    "CURRENT_VERSION",
    "DELETE",
    "DELETE_ATTRIBUTES",
    "EVENTS",
    "GET",
    "GET_MANY",
    "HISTORY_OF",
    "INSERT_ATTRIBUTE",
    "META_GET",
    "META_SET",
    "RECORD_CLEAR",
    "RECORD_COMMIT",
    "RECORD_DELETES",
    "REINDEX_KINDS",
    "UPSERT",
    "UPSERT_ROWS",
    "changes_query",
    "expression_index_pg",
    "find_query",
    "json_path_pg",
    "range_clause",
    "revert_query",
]

UPSERT: Final = (
    "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
    "VALUES ($1, $2, $3, $4, $5, $5, 1) "
    "ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, kind = excluded.kind, "
    "value = excluded.value, updated_at = excluded.updated_at, version = entries.version + 1"
)
# The same upsert for many rows in one statement: keys, namespaces, kinds and
# values as arrays ($1-$4), in their order (their history rows follow it). A
# statement's ON CONFLICT cannot update one row twice: each key at most once.
UPSERT_ROWS: Final = (
    "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
    "SELECT r.key, r.namespace, r.kind, r.value, $5, $5, 1 "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY "
    "AS r(key, namespace, kind, value, n) ORDER BY r.n "
    "ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, kind = excluded.kind, "
    "value = excluded.value, updated_at = excluded.updated_at, version = entries.version + 1"
)
CURRENT_VERSION: Final = "SELECT version FROM entries WHERE key = $1"
GET: Final = "SELECT value FROM entries WHERE key = $1"
GET_MANY: Final = "SELECT key, value FROM entries WHERE key = ANY($1::text[])"
RECORD_DELETES: Final = (
    "INSERT INTO history (key, op, value, version, at) "
    "SELECT key, 'delete', NULL, version + 1, $2 FROM entries WHERE key = ANY($1::text[])"
)
DELETE: Final = "DELETE FROM entries WHERE key = ANY($1::text[])"
DELETE_ATTRIBUTES: Final = "DELETE FROM attributes WHERE entity = ANY($1::text[])"
INSERT_ATTRIBUTE: Final = (
    "INSERT INTO attributes (attr, value, tag, entity) VALUES ($1, $2::jsonb, $3, $4) "
    "ON CONFLICT DO NOTHING"
)
# The history rows of a clear at $1; the key range is appended.
RECORD_CLEAR: Final = (
    "INSERT INTO history (key, op, value, version, at) "
    "SELECT key, 'delete', NULL, version + 1, $1 FROM entries"
)
CLEAR_ATTRIBUTES: Final = "DELETE FROM attributes WHERE entity IN (SELECT key FROM entries"
AS_OF: Final = "SELECT op, value FROM history WHERE key = $1 AND at <= $2 ORDER BY seq DESC LIMIT 1"
_AUDITED: Final = (
    "SELECT seq, key, op, value, version, history.at, commits.actor, commits.reason "
    "FROM history LEFT JOIN commits ON commits.at = history.at"
)
HISTORY_OF: Final = f"{_AUDITED} WHERE key = $1 ORDER BY seq DESC LIMIT $2"
_NEXT_SEQ: Final = "(SELECT coalesce(max(seq), 0) + 1 FROM history)"
_FIRST_AFTER: Final = "(SELECT first_seq FROM commits WHERE at > $1 ORDER BY at LIMIT 1)"
CHANGES: Final = (
    f"{_AUDITED} WHERE seq >= coalesce({_FIRST_AFTER}, {_NEXT_SEQ}) AND seq > $2 "
    "ORDER BY seq LIMIT $3"
)
# Run under the write lock (a fresh snapshot): the commit's time is the wall
# clock ($1), but after the newest commit's, whichever instance made it; its
# first seq is past every row committed before it.
RECORD_COMMIT: Final = (
    "INSERT INTO commits (at, first_seq, actor, reason, event, origin) "
    "SELECT greatest($1::bigint, coalesce(max(at), 0) + 1), "
    f"{_NEXT_SEQ}, $2, $3, $4, $5 FROM commits RETURNING at"
)
# The changes after seq $1 (the first $2), with the origin of their commits.
CATCH_UP: Final = (
    "SELECT seq, key, op, value, version, history.at, commits.actor, commits.reason, "
    "commits.origin FROM history LEFT JOIN commits ON commits.at = history.at "
    "WHERE seq > $1 ORDER BY seq LIMIT $2"
)
EVENTS: Final = (
    "SELECT at, actor, reason, event FROM commits WHERE at > $1 AND event IS NOT NULL "
    "AND ($2::text IS NULL OR actor = $2) ORDER BY at"
)
META_GET: Final = "SELECT value FROM meta WHERE name = $1"
META_SET: Final = (
    "INSERT INTO meta (name, value) VALUES ($1, $2) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
_MAPPED_KIND: Final = "coalesce($1::jsonb ->> entries.key, $2::jsonb ->> entries.namespace, $3)"
REINDEX_KINDS: Final = (
    f"UPDATE entries SET kind = {_MAPPED_KIND} WHERE kind IS DISTINCT FROM {_MAPPED_KIND}"
)


class _Params:
    """Parameters of a statement being built, numbered ``$1``, ``$2``, ... as added."""

    def __init__(self, first: list[Any] | None = None) -> None:
        self.values: list[Any] = list(first or [])

    def add(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def _range(params: _Params, prefix: str, after: str | None) -> list[str]:
    clauses: list[str] = []
    bounds = prefix_bounds(prefix)
    if bounds is not None:
        low, high = bounds
        clauses.append(f"key >= {params.add(low)}")
        if high is not None:
            clauses.append(f"key < {params.add(high)}")
    if after is not None:
        clauses.append(f"key > {params.add(after)}")
    return clauses


def _where(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def range_clause(
    prefix: str, after: str | None, first: list[Any] | None = None
) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (or ``""``) and all parameters, after the ``first`` ones."""
    params = _Params(first)
    return _where(_range(params, prefix, after)), params.values


_KEYWORD_SEGMENT: Final = r":[A-Za-z_*+!?<>=-][A-Za-z0-9_*+!?<>=/-]*"
_SEGMENT: Final = re.compile(rf"\.([A-Za-z_][A-Za-z0-9_]*|{_KEYWORD_SEGMENT})|\[([0-9]+)\]")
_JSON_PATH: Final = re.compile(rf"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\.{_KEYWORD_SEGMENT}|\[[0-9]+\])+")


def json_path_pg(path: str) -> str:
    """The SQL expression extracting ``path`` (``$.a.b[0]``, ``$.:ns/name``) as ``jsonb``.

    Written literally, as in SQLite, so that a query can use an expression
    index on the same path; the pattern admits no quote or brace.
    """
    if not _JSON_PATH.fullmatch(path):
        raise StoreError(
            f"unsupported JSON path {path!r}: use $.name segments, $.:ns/name for a keyword "
            "key and [index] steps, names made of letters, digits and underscores"
        )
    steps = [name or index for name, index in _SEGMENT.findall(path)]
    return f"""({JSON_OF_VALUE} #> '{{{",".join(f'"{step}"' for step in steps)}}}')"""


def expression_index_pg(path: str) -> str:
    """The ``CREATE INDEX`` statement for an expression index on ``path``."""
    import zlib  # noqa: PLC0415 - only at open

    name = f"entries_by_path_{zlib.crc32(path.encode()):08x}"
    return f"CREATE INDEX IF NOT EXISTS {name} ON entries ({json_path_pg(path)})"


def _operand(value: Any) -> str:
    """The JSON text a found value is compared with (a stored form for tagged values)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError:
            pass  # a big int or a non-finite float: its tagged form
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
    """The statement and parameters of :meth:`PostgresStore.find` (its limit goes last).

    Equality is ``jsonb`` equality (numbers by value, maps whatever their key
    order); a range compares values of the bound's own JSON type only (numbers
    with numbers, strings with strings by code point), as SQLite's comparison
    of ``json_extract`` results does.
    """
    expression = json_path_pg(path)
    params = _Params()
    clauses = _range(params, prefix, after)
    if eq is not MISSING:
        if eq is None:
            clauses.append(f"({expression} IS NULL OR {expression} = 'null'::jsonb)")
        else:
            clauses.append(f"{expression} = {params.add(_operand(eq), '::jsonb')}")
    for operator, bound in (("<", lt), ("<=", le), (">", gt), (">=", ge)):
        if bound is MISSING:
            continue
        if type(bound) is str:
            clauses.append(
                f"jsonb_typeof({expression}) = 'string' AND "
                f"({expression} #>> '{{}}') COLLATE \"C\" {operator} {params.add(bound)}"
            )
        else:
            operand = params.add(_operand(bound), "::jsonb")
            clauses.append(
                f"jsonb_typeof({expression}) = jsonb_typeof({operand}) AND "
                f"{expression} {operator} {operand}"
            )
    if kind is not None:
        clauses.append(f"kind = {params.add(kind)}")
    limit = f"${len(params.values) + 1}"
    return f"SELECT key, value FROM entries{_where(clauses)} ORDER BY key LIMIT {limit}", (
        params.values
    )


def changes_query(prefix: str, actor: str | None) -> tuple[str, list[Any]]:
    """The statement of ``PostgresStore.changes``: parameters since ($1), after_seq ($2),
    the returned ones, then the limit."""
    params = _Params([None, None])
    clauses = _range(params, prefix, None)
    if actor is not None:
        clauses.append(f"commits.actor = {params.add(actor)}")
    extra = "".join(f" AND {clause}" for clause in clauses)
    limit = f"${len(params.values) + 1}"
    sql = (
        f"{_AUDITED} WHERE seq >= coalesce({_FIRST_AFTER}, {_NEXT_SEQ}) AND seq > $2{extra} "
        f"ORDER BY seq LIMIT {limit}"
    )
    return sql, params.values[2:]


_REVERT_COLUMNS: Final = (
    "SELECT candidate.key, "
    "(SELECT value FROM entries WHERE entries.key = candidate.key) AS current, "
    "(SELECT value FROM history AS h WHERE h.key = candidate.key AND h.at <= $1 "
    "ORDER BY h.seq DESC LIMIT 1) AS target"
)


def revert_query(keys: str | list[str], micros: int) -> tuple[str, list[Any]]:
    """The plan of a revert: ``(key, current text, target text)`` of the keys that change.

    ``keys`` is a key prefix (every key with a history row under it) or a
    list of key texts; ``micros`` the time reverted to.
    """
    params = _Params([micros])
    if isinstance(keys, str):
        candidates = "SELECT DISTINCT key FROM history" + _where(_range(params, keys, None))
    else:
        candidates = f'SELECT DISTINCT unnest({params.add(keys)}::text[]) COLLATE "C" AS key'
    sql = (
        f"SELECT key, current, target FROM ({_REVERT_COLUMNS} FROM ({candidates}) AS candidate) "
        "AS plan WHERE current IS DISTINCT FROM target ORDER BY key"
    )
    return sql, params.values
