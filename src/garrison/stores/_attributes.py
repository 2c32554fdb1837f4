"""The attribute index: one row per value of a declared attribute of every entity.

Only the attributes some kind's schema declares ``indexed`` are in the table
(as Datomic's ``:db/index``), and then for every entity that has them, whatever
its kind (so a pattern on a declared attribute reads the table alone and
misses nothing). The store's ``indexed`` option maps each kind to its declared
attribute spellings (:func:`~garrison.stores._rules.declared_index` reads the
configuration's ``[components.database.schema.<kind>]`` tables; ``unique``
attributes are indexed too). With nothing declared a write
touches no attribute row at all; a query pattern on an attribute that is not
indexed reads the stored objects with SQLite's JSON functions instead
(:mod:`garrison.stores._datalog`).

An *entity* is an entry whose value is a map stored as a JSON object (see
:mod:`garrison.stores._values`: every key a keyword, or a string not starting
with ``:``); its entity id is the entry's key text. Each declared top-level attribute
of an entity gives rows ``(attr, value, tag, entity)`` of ``attributes``; ``attr``
is the attribute's object key as stored (``:session/user-id`` for a keyword):

- a scalar (string, integer, float, boolean) gives one row;
- a keyword gives one row with its text (``:session/s1`` -> ``session/s1``,
  tag ``k``): when that text is another entry's key, the attribute is a
  *reference* to that entity, and joins on ``attributes.value = entity``;
- another value (a UUID, an instant, a decimal, a tagged literal, a symbol,
  ...) gives one row with its canonical JSON text (tag ``x``,
  :mod:`garrison.stores._canonical`): one text for all the values Clojure's
  ``=`` calls equal (``#my/tag #{1 2}`` and ``#my/tag #{2 1}``, ``1.0M`` and
  ``1.00M``), so a query by one finds the others; a ``BigInt`` is an integer
  (``1N`` is ``1``);
- a vector, list or set gives one row per member that is one of the above;
  members that are collections or maps are not indexed;
- a nested map and ``nil`` are not indexed (a nested map stays JSON, reachable
  with SQLite's JSON functions).

``tag`` tells the kinds apart, so Clojure's ``=`` holds in SQL: ``1``, ``1.0``,
``true``, ``"a"`` and ``:a`` are different values (``s`` string, ``i``
integer, ``f`` float, ``b`` boolean, ``k`` keyword, ``x`` other). The rows of
an entity are a set: a vector holding a value twice gives one row.

The rows are computed here, in Python, from the value being written (which the
write path holds in memory anyway to encode it), and written by the store's
own write statements in the same transaction as the entry: of the entity's
rows, those no longer given deleted and the new ones inserted (:mod:`garrison.stores._sqlite`,
:mod:`garrison.stores._sqlite_bulk`). Every garrison write path keeps the
table exact; a write by plain SQL to ``entries`` does not (see
``docs/storage.md``). The schema migration creates the table empty; opening a store whose
declarations differ from those the table was built for (recorded in ``meta``)
rebuilds it from the entries stored (:func:`fill_attributes`), in one
transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import orjson

from garrison.edn import EdnMap, EdnSet, FrozenMap, Keyword
from garrison.stores._canonical import canonical, canonical_text
from garrison.stores._values import decode_value

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Iterator

    from garrison.stores._sqlite_transaction import Statement

__all__ = [
    "ATTRIBUTE_SCHEMA",
    "DELETE_ENTITIES",
    "SQL_FUNCTIONS",
    "AttributeRow",
    "attribute_names",
    "canonical_rows",
    "entity_attributes",
    "fill_attributes",
    "index_value",
    "index_statements",
]

#: One indexed attribute value of an entity: (attr, value, tag).
AttributeRow: TypeAlias = tuple[str, Any, str]

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# Stored as JSON arrays or collection markers: their scalar members are indexed.
_COLLECTIONS: Final = (list, tuple, frozenset, set, EdnSet)  # Vector is a tuple
# Neither scalars nor collections of scalars: never indexed.
_NOT_INDEXED: Final = (Mapping, *_COLLECTIONS)

_INSERT: Final = "INSERT INTO attributes (attr, value, tag, entity) VALUES (?, ?, ?, ?)"
_OLD_ONE: Final = "SELECT attr, value, tag, entity FROM attributes WHERE entity = ?"
_OLD_ENTITIES: Final = (
    "SELECT attr, value, tag, entity FROM attributes "
    "WHERE entity IN (SELECT value FROM json_each(?1))"
)
_DELETE_ROW: Final = (
    "DELETE FROM attributes WHERE attr = ? AND value = ? AND tag = ? AND entity = ?"
)
#: The attribute rows of the keys of a JSON array of key texts.
DELETE_ENTITIES: Final = "DELETE FROM attributes WHERE entity IN (SELECT value FROM json_each(?1))"

#: The statements of the schema migration that adds the attribute index (the rows
#: of the entries already stored are added by :func:`fill_attributes`).
ATTRIBUTE_SCHEMA: Final = (
    # Clustered by (attr, value): a selective pattern is one range of the table.
    # No declared type on value: no affinity, so "1" stays text and 1 an integer.
    """CREATE TABLE attributes (
        attr   TEXT NOT NULL,
        value  NOT NULL,
        tag    TEXT NOT NULL,
        entity TEXT NOT NULL,
        PRIMARY KEY (attr, value, tag, entity)
    ) WITHOUT ROWID""",
    # An entity's rows: deleted on each write of it, and the joins of a query.
    "CREATE INDEX attributes_by_entity ON attributes (entity, attr)",
)


def _entity_map(value: Any) -> Mapping[Any, Any] | None:
    """``value`` as the dict the encoder writes as a JSON object, or ``None``."""
    attributes: Mapping[Any, Any]
    if type(value) is dict:
        attributes = value
    elif isinstance(value, FrozenMap | EdnMap) or not isinstance(value, Mapping):
        return None
    else:
        attributes = dict(value)  # another mapping is stored as the dict of its items
    for key in attributes:
        kind = type(key)
        if kind is Keyword:
            continue
        if kind is not str or key[:1] == ":":
            return None  # a #map marker
    if len(attributes) == 1:
        (only,) = attributes
        if type(only) is str and only[:1] == "#":
            return None  # escaped (#esc): a map, but not an object of attributes
    return attributes


def attribute_names(value: Any) -> frozenset[str]:
    """The top-level attribute spellings of ``value`` as stored (empty: no entity).

    ``{:session/id "s1" "title" "t"}`` -> ``{":session/id", "title"}``: the
    attributes a write of the value adds or removes, whether declared or not.
    """
    attributes = _entity_map(value)
    if not attributes:
        return frozenset()
    return frozenset(":" + key.text if type(key) is Keyword else key for key in attributes)


def _fallback(member: Any) -> tuple[Any, str] | None:
    """The (value, tag) of a member of an unusual type, by Clojure's ``=``.

    Read from its canonical form (:mod:`garrison.stores._canonical`): ``1N``
    is the integer ``1``, a string subclass a string, and a value of no plain
    kind the one text every value equal to it has (``#my/tag #{1 2}`` and
    ``#my/tag #{2 1}`` alike).
    """
    if isinstance(member, _NOT_INDEXED):
        return None
    node = canonical(member)
    kind = type(node)
    if kind is str:
        return (node, "s")
    if kind is bool:
        return (int(node), "b")
    if kind is int:
        return (node, "i")
    if kind is float:
        return (node, "f")
    if node is None:
        return None
    if kind is dict and len(node) == 1 and "#k" in node:
        return (node["#k"], "k")
    return (canonical_text(member), "x")


def index_value(member: Any) -> tuple[Any, str] | None:
    """The (value, tag) an attribute row holds for ``member``; ``None`` if not indexed."""
    kind = type(member)
    if kind is str:
        return (member, "s")
    if kind is Keyword:
        return (member.text, "k")
    if kind is int:
        if _INT64_MIN <= member <= _INT64_MAX:
            return (member, "i")
        return (canonical_text(member), "x")
    if kind is float:
        if member - member == 0.0:  # finite
            return (member, "f")
        return (canonical_text(member), "x")
    if kind is bool:
        return (int(member), "b")
    if member is None:
        return None
    return _fallback(member)


@functools.lru_cache(maxsize=4096)
def _stored_row(text: str) -> tuple[Any, str] | None:
    try:
        return index_value(decode_value(text))
    except Exception:  # noqa: BLE001 - unreadable: no row (reading the entry names its key)
        return None


def stored_index_value(text: str) -> Any:
    """SQL function ``garrison_index_value``: the row value of a stored member's JSON text.

    With ``stored_index_tag``, what :func:`index_value` gives for a member
    the stored JSON holds as a marker (``{"#tag": ...}``, ``{"#N": "1"}``), so
    a query pattern that reads the stored JSON (an attribute not indexed)
    compares the texts the attribute index would hold. ``None`` for a text
    that is not an indexed value.
    """
    row = _stored_row(text)
    return None if row is None else row[0]


def stored_index_tag(text: str) -> str | None:
    """SQL function ``garrison_index_tag``: the row tag of a stored member's JSON text."""
    row = _stored_row(text)
    return None if row is None else row[1]


#: The SQL functions the Datalog compiler's JSON reading calls (name, function),
#: registered on every connection of the store.
SQL_FUNCTIONS: Final = (
    ("garrison_index_value", stored_index_value),
    ("garrison_index_tag", stored_index_tag),
)


def entity_attributes(value: Any, declared: frozenset[str]) -> tuple[AttributeRow, ...] | None:
    """The (attr, value, tag) rows of ``value``'s ``declared`` attributes.

    ``None`` when ``value`` is no entity (a set, a number, ...).
    """
    attributes = _entity_map(value)
    if attributes is None:
        return None
    rows: dict[AttributeRow, None] = {}
    for key, item in attributes.items():
        attr = ":" + key.text if type(key) is Keyword else key
        if attr not in declared:
            continue
        if isinstance(item, _COLLECTIONS):
            for member in item:
                part = index_value(member)
                if part is not None:
                    rows[(attr, *part)] = None
        else:
            part = index_value(item)
            if part is not None:
                rows[(attr, *part)] = None
    return tuple(rows)


def _rows(entity: str, attributes: Iterable[AttributeRow] | None) -> Iterator[tuple[Any, ...]]:
    """The ``_INSERT`` parameters of an entity's rows."""
    if attributes:
        for attr, value, tag in attributes:
            yield (attr, value, tag, entity)


def _all_rows(
    indexed: Mapping[str, tuple[AttributeRow, ...] | None],
) -> Iterator[tuple[Any, ...]]:
    for entity, attributes in indexed.items():
        yield from _rows(entity, attributes)


def index_statements(
    db: sqlite3.Connection,
    indexed: Mapping[str, tuple[AttributeRow, ...] | None],
) -> tuple[Statement, ...]:
    """The write statements that make ``attributes`` hold ``indexed``'s rows for its entities.

    ``indexed`` maps each key a write sets to its value's :func:`entity_attributes`
    (the last value, for a key written twice). Run on the connection's thread,
    in the write's transaction: the entities' rows are read from ``db`` and
    only the difference is written (the rows no longer given deleted, the new
    ones inserted), so an update that leaves its indexed attributes as they
    were touches no page of the index. Rows are compared with their tag
    (``1`` and ``1.0`` differ by it).
    """
    if len(indexed) == 1:
        (entity,) = indexed
        found = db.execute(_OLD_ONE, (entity,)).fetchall()
    else:
        found = db.execute(_OLD_ENTITIES, (orjson.dumps(list(indexed)).decode(),)).fetchall()
    old = {tuple(row) for row in found}
    new = set(_all_rows(indexed))
    statements: list[Statement] = []
    gone = old - new
    if gone:
        statements.append((_DELETE_ROW, list(gone), True))
    added = [row for row in new if row not in old]
    if added:
        statements.append((_INSERT, added, True))
    return tuple(statements)


def canonical_rows(db: sqlite3.Connection) -> None:
    """Rewrite the ``x`` rows of ``attributes`` to their canonical text (blocking).

    The schema migration to schema 5: an index built before kept a value of
    tag ``x`` as its stored JSON text, whose set members and map entries are in
    their iteration order (see :mod:`garrison.stores._canonical`). Each row
    becomes the row :func:`index_value` gives its value (rows that become one
    are one); a text that cannot be read stays as it is.
    """
    rows = db.execute("SELECT attr, value, entity FROM attributes WHERE tag = 'x'").fetchall()
    for attr, text, entity in rows:
        row = _stored_row(text)
        if row is None or row == (text, "x"):
            continue
        db.execute(
            "DELETE FROM attributes WHERE attr = ? AND value = ? AND tag = 'x' AND entity = ?",
            (attr, text, entity),
        )
        db.execute(_INSERT.replace("INSERT", "INSERT OR IGNORE"), (attr, *row, entity))


def fill_attributes(db: sqlite3.Connection, declared: frozenset[str]) -> None:
    """Rebuild ``attributes`` for ``declared`` from every stored entity (blocking).

    Run in the caller's transaction. A value that cannot be read is left out:
    reading it raises, naming its key.
    """
    db.execute("DELETE FROM attributes")
    if not declared:
        return
    cursor = db.execute("SELECT key, value FROM entries WHERE value GLOB '{*'")
    while batch := cursor.fetchmany(1024):
        rows: list[Any] = []
        for key, text in batch:
            try:
                attributes = entity_attributes(decode_value(text), declared)
            except Exception:  # noqa: BLE001, S112 - the row is reported when it is read
                continue
            rows.extend(_rows(key, attributes))
        db.executemany(_INSERT, rows)
