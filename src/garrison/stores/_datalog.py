"""Datalog queries over the stored entities: parse the Datomic query form, compile to one SQL.

A query is the vector form ``[:find ... :in ... :where ...]`` or the map form
``{:find [...] :in [...] :where [...]}``, as EDN text or as Python data
(:class:`Keyword` and :class:`Symbol` from :mod:`garrison.edn`). It compiles
to ONE ``SELECT``: each data pattern ``[?e :attr ?v]`` is one source of rows
``(attr, value, tag, entity)``, a variable shared by two patterns is a join, a
keyword value joined to an entity position is a reference, predicates and
``not``/``or`` are SQL conditions. A pattern on an attribute the store indexes
(declared ``indexed`` in some kind's schema) reads the attribute table (see
:mod:`garrison.stores._attributes`); a pattern on any other attribute reads the
stored JSON objects of ``entries`` with SQLite's ``json_each``, giving the same
rows the index would hold (:data:`_JSON_ROWS`): the query answers the same,
but scans ``entries``, and ``explain`` says so (``"scans": True``, and the
attribute under ``"unindexed"``).

Supported: ``:find`` variables, ``(pull ?e [*])`` / ``(pull ?e [:a :b])``,
aggregates ``count``, ``count-distinct``, ``sum``, ``avg``, ``min``, ``max``;
``:in $`` then scalars ``?x`` and collections ``[?x ...]``; ``:where`` data
patterns ``[e a v]`` (``v`` optional, ``_`` for "any"), predicates
``[(op a b)]`` with ``= not= < <= > >= starts-with?``, ``(not ...)`` and
``(or ...)`` / ``(and ...)`` over variables bound elsewhere. A pattern with
no attribute (``_`` or a variable) reads the stored JSON too, every attribute
of every entity (``"unindexed"`` holds ``"*"``).

Results follow Datomic: a set of tuples (a list here, each tuple once). A
variable that stands in an entity position comes back as the entry's key
text; any other as its value (a keyword as a :class:`Keyword`).

``dialect="postgresql"`` compiles for :class:`PostgresStore`, whose attribute
table holds ``jsonb`` values: the same forms and answers. A pattern on an
attribute the store does not index reads the stored texts as ``json``
(:data:`_PG_JSON_ROWS`, the same rows as SQLite's ``json_each``). ``min`` and
``max`` compare numbers with numbers (``jsonb`` orders every number after every
string); ``sum`` and ``avg`` add the numbers and booleans (as 1 and 0) and
leave strings out, where SQLite counts a string as the number it spells.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from garrison.edn import EdnSet, Keyword, Symbol, Vector, dumps, loads
from garrison.exceptions import QueryError
from garrison.stores._attributes import index_value
from garrison.stores._values import decode_value

__all__ = ["CompiledQuery", "compile_query", "parse_query"]

_INT64: Final = range(-(2**63), 2**63)
_POSTGRESQL: Final = "postgresql"
# Aggregates over jsonb values ({0}) and their tags ({1}); no min/max aggregate
# exists for jsonb. sum and avg read the numbers (booleans count as 1 and 0, as
# in SQLite); sum gives two columns, the exact sum when every number is an
# integer, else the float sum (SQLite's integer or real result).
_PG_NUMBER: Final = "FILTER (WHERE jsonb_typeof({0}) = 'number')"
_PG_AGGREGATES: Final = {
    "count": "count({0})",
    "count-distinct": "count(DISTINCT {0})",
    "sum": (
        f"CASE WHEN bool_and({{1}} IN ('i', 'b')) {_PG_NUMBER} "
        f"THEN sum(({{0}})::numeric) {_PG_NUMBER} END, "
        f"CASE WHEN NOT bool_and({{1}} IN ('i', 'b')) {_PG_NUMBER} "
        f"THEN sum(({{0}})::float8) {_PG_NUMBER} END"
    ),
    "avg": f"avg(({{0}})::float8) {_PG_NUMBER}",
    # the value and its tag (a float such as 1e16 is an integer in jsonb)
    "min": "(array_agg({0} ORDER BY {0} ASC))[1], (array_agg({1} ORDER BY {0} ASC))[1]",
    "max": "(array_agg({0} ORDER BY {0} DESC))[1], (array_agg({1} ORDER BY {0} DESC))[1]",
}
_AGGREGATES: Final = {
    "count": "count({})",
    "count-distinct": "count(DISTINCT {})",
    "sum": "sum({})",
    "avg": "avg({})",
    "min": "min({})",
    "max": "max({})",
}
_COMPARISONS: Final = {"=": "=", "not=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_NUMERIC: Final = "('i','f')"

# Markers (garrison.stores._values) of collections, whose scalar members are
# indexed one by one, and of maps, which are not indexed.
_COLLECTION_MARKERS: Final = "('#list','#vec','#set','#mutset','#eset')"
_MAP_MARKERS: Final = "('#map','#fmap','#emap','#esc')"


def _marker(json: str) -> str:
    """SQL: the key of the JSON object ``json`` if it is a marker (one key, ``#...``), else NULL."""
    return (
        f"(SELECT CASE WHEN count(*) = 1 AND min(key) GLOB '#*' THEN min(key) END "
        f"FROM json_each({json}))"
    )


#: The rows ``(attr, value, tag, entity)`` the attribute index would hold for the
#: attribute ``{attr}`` (a parameter), read from the stored JSON objects: the
#: attribute's value, or each member of a collection, when it is a scalar
#: (string, number, boolean, keyword, or another value kept as its canonical
#: text, tag ``x``), as garrison.stores._attributes.entity_attributes gives them:
#: a marker's value and tag come from the SQL functions of
#: garrison.stores._attributes.SQL_FUNCTIONS, registered on the store's connections.
_JSON_ROWS: Final = (
    "(SELECT entries.key AS entity, t.key AS attr, "
    "CASE m.type WHEN 'true' THEN 1 WHEN 'false' THEN 0 "
    "WHEN 'object' THEN garrison_index_value(m.value) ELSE m.atom END AS value, "
    "CASE m.type WHEN 'text' THEN 's' WHEN 'integer' THEN 'i' WHEN 'real' THEN 'f' "
    "WHEN 'true' THEN 'b' WHEN 'false' THEN 'b' "
    "ELSE garrison_index_tag(m.value) END AS tag "
    "FROM entries, json_each(entries.value) AS t, json_each("
    "CASE WHEN t.type = 'array' THEN t.value "
    f"WHEN t.type = 'object' AND {_marker('t.value')} IN {_COLLECTION_MARKERS} "
    "THEN (SELECT value FROM json_each(t.value)) "
    "WHEN t.type = 'true' THEN '[true]' WHEN t.type = 'false' THEN '[false]' "
    "ELSE json_array(t.value) END) AS m "
    "WHERE entries.value GLOB '{{*' AND {attr_check} "
    "AND m.type IN ('text', 'integer', 'real', 'true', 'false', 'object') "
    f"AND (m.type <> 'object' OR ({_marker('m.value')} NOT IN {_COLLECTION_MARKERS} "
    f"AND {_marker('m.value')} NOT IN {_MAP_MARKERS} "
    "AND garrison_index_tag(m.value) IS NOT NULL)))"
)
# Any attribute, or one spelled "#...": the stored object must not be a marker.
_NOT_A_MARKER: Final = f"{_marker('entries.value')} IS NULL"


def _pg_marker(json: str) -> str:
    """PostgreSQL SQL: the key of the ``json`` value if it is a marker object, else NULL."""
    return (
        "(SELECT CASE WHEN count(*) = 1 AND min(k) LIKE '#%' THEN min(k) END "
        f"FROM json_object_keys(CASE WHEN json_typeof({json}) = 'object' THEN {json} END) AS k)"
    )


#: The stored text as PostgreSQL's ``json`` (not ``jsonb``: ``json`` keeps each
#: number's spelling, which tells a float such as ``1e16`` from an integer),
#: with ``\u0000`` read as U+FFFD as ``garrison_json`` does (``jsonb`` refuses it).
_PG_JSON: Final = (
    "(CASE WHEN strpos(entries.value, '\\u0000') > 0 "
    "THEN replace(entries.value, '\\u0000', '\\ufffd') ELSE entries.value END)::json"
)
# A BigInt (or an int past 64 bits) that fits 64 bits: the integer, by Clojure's =.
_PG_INT64: Final = (
    "CASE WHEN mk.marker IN ('#N', '#int') THEN (m.value ->> mk.marker)::numeric END "
    "BETWEEN -9223372036854775808 AND 9223372036854775807"
)
#: :data:`_JSON_ROWS` for PostgreSQL: the same rows, with values as the ``jsonb``
#: the attribute table holds (a boolean as ``1``/``0``, a keyword as its text, an
#: integer marker as the index has it: ``1N`` is ``1``, a bigger one ``{"#N": ...}``).
#: Another tagged scalar is its stored JSON text in a ``jsonb`` string: the index's
#: text for most (a UUID, an instant written in UTC), not for all (``1.50M`` is
#: ``1.5M`` there, an instant is in UTC, a tagged literal's sets are sorted; such a
#: value is compared by its stored text, and answered by the index's text, see
#: :meth:`CompiledQuery.rows`).
_PG_JSON_ROWS: Final = (
    "(SELECT entries.key AS entity, t.key AS attr, "
    "CASE WHEN json_typeof(m.value) = 'boolean' "
    "THEN (CASE WHEN m.value::text = 'true' THEN '1' ELSE '0' END)::jsonb "
    "WHEN mk.marker = '#k' THEN (m.value -> '#k')::jsonb "
    f"WHEN {_PG_INT64} THEN (m.value ->> mk.marker)::jsonb "
    "WHEN mk.marker IN ('#N', '#int') "
    """THEN to_jsonb('{{"#N":"' || (m.value ->> mk.marker) || '"}}') """
    "WHEN mk.marker IS NOT NULL THEN to_jsonb(m.value::text) "
    "ELSE m.value::jsonb END AS value, "
    "CASE json_typeof(m.value) WHEN 'string' THEN 's' WHEN 'boolean' THEN 'b' "
    "WHEN 'number' THEN CASE WHEN m.value::text ~ '[.eE]' THEN 'f' ELSE 'i' END "
    f"ELSE CASE WHEN mk.marker = '#k' THEN 'k' WHEN {_PG_INT64} THEN 'i' ELSE 'x' END END AS tag "
    "FROM entries CROSS JOIN LATERAL json_each(CASE WHEN entries.value LIKE '{{%' "
    f"THEN {_PG_JSON} ELSE NULL END) AS t "
    f"CROSS JOIN LATERAL (SELECT {_pg_marker('t.value')} AS marker) AS tk "
    "CROSS JOIN LATERAL json_array_elements(CASE WHEN json_typeof(t.value) = 'array' "
    f"THEN t.value WHEN tk.marker IN {_COLLECTION_MARKERS} THEN t.value -> tk.marker "
    "ELSE json_build_array(t.value) END) AS m(value) "
    f"CROSS JOIN LATERAL (SELECT {_pg_marker('m.value')} AS marker) AS mk "
    "WHERE entries.value LIKE '{{%' AND {attr_check} "
    "AND json_typeof(m.value) IN ('string', 'number', 'boolean', 'object') "
    f"AND (json_typeof(m.value) <> 'object' OR (mk.marker NOT IN {_COLLECTION_MARKERS} "
    f"AND mk.marker NOT IN {_MAP_MARKERS})))"
)
_PG_NOT_A_MARKER: Final = f"{_pg_marker(_PG_JSON)} IS NULL"


def _is_var(node: Any) -> bool:
    return type(node) is Symbol and node.text.startswith("?")


def _is_blank(node: Any) -> bool:
    return type(node) is Symbol and node.text == "_"


def scalar_row(value: Any, clause: str) -> tuple[Any, str]:
    """The ``(value, tag)`` an attribute row holds for the Python value ``value``."""
    if value is None or isinstance(value, (list, tuple, set, frozenset, Mapping, EdnSet)):
        raise QueryError(f"{value!r} is not a value the attribute index holds", clause=clause)
    row = index_value(value)
    if row is None:
        raise QueryError(f"{value!r} is not a value the attribute index holds", clause=clause)
    return row


def _from_row(value: Any, tag: str) -> Any:
    if tag == "a":  # an attribute's spelling: a keyword key or a string key
        return Keyword(value[1:]) if value.startswith(":") else value
    if tag == "k":
        return Keyword(value)
    if tag == "b":
        return bool(value)
    if tag == "x":
        return decode_value(value)
    if tag == "f":
        return float(value)  # jsonb writes 1e16 as 10000000000000000
    return value


def _attr_text(node: Any, clause: str) -> str:
    if type(node) is Keyword:
        return ":" + node.text
    if type(node) is str:
        return node
    raise QueryError(f"an attribute is a keyword or a string, not {node!r}", clause=clause)


def _entity_text(node: Any, clause: str) -> str:
    if type(node) is Keyword:
        return node.text
    if type(node) is str:
        return node.removeprefix(":")
    raise QueryError(f"an entity is a key (keyword or string), not {node!r}", clause=clause)


@dataclass
class _Query:
    find: list[Any]
    inputs: list[Any]
    where: list[Any]


def parse_query(query: Any) -> _Query:
    """The parts of a query given as EDN text, a vector (list) form or a map form."""
    if isinstance(query, str):
        try:
            query = loads(query)
        except Exception as exc:
            raise QueryError(f"the query is not EDN: {exc}", clause="query") from exc
    parts: dict[str, list[Any]] = {}
    if isinstance(query, Mapping):
        for key, items in query.items():
            name = key.text if type(key) is Keyword else str(key)
            parts[name] = list(items)
    elif isinstance(query, Sequence):
        current: str | None = None
        for item in query:
            if type(item) is Keyword:
                current = item.text
                parts.setdefault(current, [])
            elif current is None:
                raise QueryError(f"{item!r} comes before any :find", clause="query")
            else:
                parts[current].append(item)
    else:
        raise QueryError("a query is EDN text, a vector or a map", clause="query")
    unknown = set(parts) - {"find", "in", "where"}
    if unknown:
        raise QueryError(f"unknown query part :{sorted(unknown)[0]}", clause="query")
    if not parts.get("find"):
        raise QueryError("the query has no :find", clause=":find")
    return _Query(parts["find"], parts.get("in", [Symbol("$")]), parts.get("where", []))


@dataclass
class _Binding:
    """Where a variable's value is: an entity column, or a value and its tag."""

    entity: str | None = None  # SQL of an entity (key text)
    value: str | None = None  # SQL of a value
    tag: str | None = None  # SQL of its tag


@dataclass
class CompiledQuery:
    """One SQL statement and its parameters, and how to read its rows back."""

    sql: str
    params: list[Any]
    columns: list[tuple[str, Any]]  # ("entity"|"value"|"pull"|"aggregate", detail)
    unindexed: list[str] = field(default_factory=list)  # attributes read from the JSON
    #: The attribute spellings whose values the answer depends on (``"*"``: any
    #: attribute of any entity); ``None``: any entry at all (a pull of an entity
    #: no pattern binds reads its stored value, whatever it is).
    reads: frozenset[str] | None = frozenset()
    json_values: bool = False  # values come as JSON text (PostgreSQL's jsonb)

    def rows(self, records: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The query's result from the statement's rows."""
        out = []
        for record in records:
            values: list[Any] = []
            i = 0
            for kind, detail in self.columns:
                if kind == "value":
                    raw, tag = record[i], record[i + 1]
                    if self.json_values:
                        raw = orjson.loads(raw)
                        if tag == "x":
                            # Read from the stored JSON on PostgreSQL: its stored text,
                            # answered as the index's text by Clojure's = (1.50M as 1.5M).
                            raw, tag = index_value(decode_value(raw)) or (raw, tag)
                    values.append(_from_row(raw, tag))
                    i += 2
                elif kind == "pull":
                    pulled = decode_value(record[i])
                    if detail is not None and isinstance(pulled, Mapping):
                        pulled = {k: v for k, v in pulled.items() if k in detail}
                    values.append(pulled)
                    i += 1
                elif kind == "aggregate" and detail == "sum":
                    exact, inexact = record[i], record[i + 1]  # PostgreSQL's two sums
                    values.append(int(exact) if exact is not None else inexact)
                    i += 2
                elif kind == "aggregate" and detail and self.json_values:
                    # PostgreSQL's min or max of values: the jsonb value and its tag
                    found: Any = None if record[i] is None else orjson.loads(record[i])
                    values.append(float(found) if record[i + 1] == "f" else found)
                    i += 2
                else:
                    values.append(record[i])
                    i += 1
            out.append(tuple(values))
        return out


@dataclass
class _Compiler:
    indexed: frozenset[str] = frozenset()
    unindexed: list[str] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)  # variables a pattern binds as entities
    params: list[Any] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    bindings: dict[str, _Binding] = field(default_factory=dict)
    counter: list[int] = field(default_factory=lambda: [0])
    dialect: str = "sqlite"

    def param(self, value: Any) -> str:
        # Numbered: a binding's parameter may appear in several conditions.
        self.params.append(value)
        return f"${len(self.params)}" if self.dialect == _POSTGRESQL else f"?{len(self.params)}"

    def value_param(self, value: Any) -> str:
        """A parameter compared with attribute values (``jsonb`` on PostgreSQL)."""
        if self.dialect == _POSTGRESQL:
            return self.param(orjson.dumps(value).decode()) + "::jsonb"
        return self.param(value)

    def as_text(self, value: str) -> str:
        """SQL of an attribute value as text, to compare with an entity's key text."""
        return f"({value} #>> '{{}}')" if self.dialect == _POSTGRESQL else value

    @property
    def false(self) -> str:
        return "false" if self.dialect == _POSTGRESQL else "0"

    def alias(self, attr: str | None) -> str:
        """A new source of attribute rows for ``attr`` (``None``: any attribute).

        The attribute table for an indexed ``attr``; otherwise the stored JSON,
        which holds every attribute.
        """
        self.counter[0] += 1
        name = f"a{self.counter[0]}"
        self.reads.add("*" if attr is None else attr)
        if attr is not None and attr in self.indexed:
            self.aliases.append(f"attributes AS {name}")
            return name
        pg = self.dialect == _POSTGRESQL
        not_a_marker = _PG_NOT_A_MARKER if pg else _NOT_A_MARKER
        if attr is None:
            check = not_a_marker
            if "*" not in self.unindexed:
                self.unindexed.append("*")
        else:
            check = f"t.key = {self.param(attr)}"
            if attr.startswith("#"):
                check += f" AND {not_a_marker}"
            if attr not in self.unindexed:
                self.unindexed.append(attr)
        rows = _PG_JSON_ROWS if pg else _JSON_ROWS
        self.aliases.append(f"{rows.format(attr_check=check)} AS {name}")
        return name

    def child(self) -> _Compiler:
        """A compiler for a nested clause: sees these bindings, adds its own."""
        return _Compiler(
            indexed=self.indexed,
            unindexed=self.unindexed,
            reads=self.reads,
            params=self.params,
            bindings=dict(self.bindings),
            counter=self.counter,
            dialect=self.dialect,
        )

    # -- binding places ----------------------------------------------------

    def bind_entity(self, var: str, column: str) -> None:
        bound = self.bindings.get(var)
        if bound is None:
            self.bindings[var] = _Binding(entity=column)
        elif bound.entity is not None:
            self.conditions.append(f"{column} = {bound.entity}")
        else:
            self.conditions.append(
                f"{column} = {self.as_text(str(bound.value))} AND {bound.tag} = 'k'"
            )
            bound.entity = column  # an entity after all: found as its key text

    def bind_value(self, var: str, value: str, tag: str) -> None:
        bound = self.bindings.get(var)
        if bound is None:
            self.bindings[var] = _Binding(value=value, tag=tag)
        elif bound.value is not None:
            self.conditions.append(f"{value} = {bound.value} AND {tag} = {bound.tag}")
        else:
            self.conditions.append(f"{self.as_text(value)} = {bound.entity} AND {tag} = 'k'")

    # -- clauses -----------------------------------------------------------

    def pattern(self, clause: Sequence[Any], text: str) -> None:
        if not 2 <= len(clause) <= 3:
            raise QueryError("a data pattern is [entity attribute value?]", clause=text)
        entity, attribute = clause[0], clause[1]
        constant = None if _is_var(attribute) or _is_blank(attribute) else attribute
        name = self.alias(None if constant is None else _attr_text(constant, text))
        if _is_var(entity):
            self.entities.add(entity.text)
            self.bind_entity(entity.text, f"{name}.entity")
        elif not _is_blank(entity):
            self.conditions.append(f"{name}.entity = {self.param(_entity_text(entity, text))}")
        if _is_var(attribute):
            # On PostgreSQL values are jsonb: the spelling as a jsonb string.
            spelling = f"to_jsonb({name}.attr)" if self.dialect == _POSTGRESQL else f"{name}.attr"
            self.bind_value(attribute.text, spelling, "'a'")
        elif constant is not None and _attr_text(constant, text) in self.indexed:
            self.conditions.append(f"{name}.attr = {self.param(_attr_text(attribute, text))}")
        if len(clause) == 3:
            value = clause[2]
            if _is_var(value):
                self.bind_value(value.text, f"{name}.value", f"{name}.tag")
            elif not _is_blank(value):
                sql_value, tag = scalar_row(value, text)
                self.conditions.append(
                    f"{name}.value = {self.value_param(sql_value)} "
                    f"AND {name}.tag = {self.param(tag)}"
                )

    def operand(self, node: Any, text: str) -> tuple[str, str | None]:
        """SQL of a predicate argument and of its tag (``None``: an entity, a key text)."""
        if _is_var(node):
            bound = self.bindings.get(node.text)
            if bound is None:
                raise QueryError(f"{node.text} is not bound by any pattern", clause=text)
            if bound.value is not None:
                return bound.value, bound.tag
            return bound.entity or "NULL", None
        sql_value, tag = scalar_row(node, text)
        return self.value_param(sql_value), f"'{tag}'"

    def predicate(self, call: tuple[Any, ...], text: str) -> None:
        if not call or type(call[0]) is not Symbol:
            raise QueryError("a predicate is [(op arg ...)]", clause=text)
        op = call[0].text
        if len(call) != 3:
            raise QueryError(f"{op} takes two arguments here", clause=text)
        left, left_tag = self.operand(call[1], text)
        right, right_tag = self.operand(call[2], text)
        if op == "starts-with?":
            if self.dialect == _POSTGRESQL:
                left, right = self.as_text(left), self.as_text(right)
            self.conditions.append(
                f"({left_tag} = 's' AND substr({left}, 1, length({right})) = {right})"
            )
            return
        if op not in _COMPARISONS:
            raise QueryError(
                f"unknown predicate {op}: use one of {', '.join(_COMPARISONS)}, starts-with?",
                clause=text,
            )
        sql_op = _COMPARISONS[op]
        if op in ("=", "not="):
            same_tag = (
                f"{left_tag} = {right_tag}"
                if left_tag is not None and right_tag is not None
                else ("true" if self.dialect == _POSTGRESQL else "1")
            )
            if self.dialect == _POSTGRESQL and (left_tag is None) != (right_tag is None):
                # an entity (key text) against a value: compared as text
                left = left if left_tag is None else self.as_text(left)
                right = right if right_tag is None else self.as_text(right)
            condition = f"({left} = {right} AND {same_tag})"
            self.conditions.append(condition if op == "=" else f"NOT {condition}")
            return
        # Ordering compares numbers with numbers and strings with strings, as Clojure's
        # compare does; other kinds never satisfy it.
        kinds = (
            f"(({left_tag} IN {_NUMERIC} AND {right_tag} IN {_NUMERIC}) "
            f"OR ({left_tag} = 's' AND {right_tag} = 's'))"
        )
        if self.dialect == _POSTGRESQL:
            # jsonb orders numbers by value; strings by code point, as SQLite does
            ordered = (
                f"CASE WHEN {left_tag} = 's' THEN {self.as_text(left)} COLLATE \"C\" "
                f"{sql_op} {self.as_text(right)} ELSE {left} {sql_op} {right} END"
            )
            self.conditions.append(f"({kinds} AND {ordered})")
            return
        self.conditions.append(f"({kinds} AND {left} {sql_op} {right})")

    def clause(self, clause: Any) -> None:
        text = _show(clause)
        if isinstance(clause, Vector | list):
            if clause and isinstance(clause[0], tuple):
                self.predicate(clause[0], text)
            else:
                self.pattern(clause, text)
        elif isinstance(clause, tuple) and clause and type(clause[0]) is Symbol:
            head = clause[0].text
            if head == "not":
                inner = self.child()
                inner.clauses(list(clause[1:]))
                self.conditions.append(f"NOT EXISTS ({inner.select('1')})")
            elif head == "or":
                branches = []
                for branch in clause[1:]:
                    inner = self.child()
                    body = (
                        list(branch[1:])
                        if isinstance(branch, tuple) and branch and branch[0] == Symbol("and")
                        else [branch]
                    )
                    inner.clauses(body)
                    branches.append(f"EXISTS ({inner.select('1')})")
                self.conditions.append("(" + " OR ".join(branches) + ")")
            else:
                raise QueryError(f"unknown clause ({head} ...): use not, or, and", clause=text)
        else:
            raise QueryError(
                "a clause is a pattern [...], a predicate [(...)], (not ...) or (or ...)",
                clause=text,
            )

    def clauses(self, clauses: list[Any]) -> None:
        # Patterns first, so predicates, not and or see every variable bound.
        patterns = [
            c
            for c in clauses
            if isinstance(c, Vector | list) and not (c and isinstance(c[0], tuple))
        ]
        for clause in patterns:
            self.clause(clause)
        for clause in clauses:
            if not any(clause is p for p in patterns):
                self.clause(clause)

    def select(self, columns: str) -> str:
        nothing = "(SELECT 1) AS one" if self.dialect == _POSTGRESQL else "(SELECT 1)"
        source = " CROSS JOIN ".join(self.aliases) if self.aliases else nothing
        where = (" WHERE " + " AND ".join(self.conditions)) if self.conditions else ""
        return f"SELECT {columns} FROM {source}{where}"


def _show(clause: Any) -> str:
    """A clause as EDN text, for messages."""
    try:
        return dumps(clause)
    except Exception:  # noqa: BLE001 - a message only
        return repr(clause)


# Compiled statements of queries given as text whose inputs are all scalars, by
# (text, indexed attributes, the inputs' tags): the statement depends on the
# inputs only through their tags (each input's parameters are slots refilled
# per call). Parsing and compiling is 50-200 µs a query; a hit is a few µs.
_CACHE_SIZE: Final = 256
_compiled: OrderedDict[tuple[str, frozenset[str], tuple[str, ...]], _Template] = OrderedDict()


@dataclass(frozen=True)
class _Template:
    """A compiled statement and, per scalar input, the slice of its parameters it fills."""

    query: CompiledQuery
    slots: tuple[tuple[int, int], ...]


def compile_query(
    query: Any,
    inputs: Sequence[Any] = (),
    indexed: frozenset[str] = frozenset(),
    *,
    dialect: str = "sqlite",
) -> CompiledQuery:
    """The one SQL statement answering ``query`` with ``inputs`` bound to its ``:in``.

    ``indexed`` names the attributes the attribute table holds; a pattern on
    another attribute reads the stored JSON objects. ``dialect`` is
    ``"sqlite"`` or ``"postgresql"`` (see the module docstring). A query
    given as text with scalar inputs is compiled once per ``indexed``,
    dialect and kinds of inputs (the last 256 such SQLite statements are kept).
    """
    key = None
    if (
        dialect != _POSTGRESQL
        and type(query) is str
        and all(_is_scalar_input(given) for given in inputs)
    ):
        rows = [scalar_row(given, ":in") for given in inputs]
        key = (query, indexed, tuple(tag for _, tag in rows))
        template = _compiled.get(key)
        if template is not None:
            _compiled.move_to_end(key)
            params = list(template.query.params)
            for (start, end), (value, _tag) in zip(template.slots, rows, strict=True):
                params[start:end] = [value] * (end - start)
            return dataclasses.replace(template.query, params=params)
    compiled, slots = _compile(query, inputs, indexed, dialect)
    if key is not None and len(slots) == len(inputs):
        _compiled[key] = _Template(compiled, tuple(slots))
        if len(_compiled) > _CACHE_SIZE:
            _compiled.popitem(last=False)
        compiled = dataclasses.replace(compiled, params=list(compiled.params))
    return compiled


def _is_scalar_input(given: Any) -> bool:
    return given is not None and not isinstance(
        given, (list, tuple, set, frozenset, Mapping, EdnSet)
    )


def _compile(
    query: Any, inputs: Sequence[Any], indexed: frozenset[str], dialect: str
) -> tuple[CompiledQuery, list[tuple[int, int]]]:
    """:func:`compile_query` uncached, and the parameter slice each scalar input filled."""
    parsed = parse_query(query)
    pg = dialect == _POSTGRESQL
    slots: list[tuple[int, int]] = []
    compiler = _Compiler(indexed=indexed, dialect=dialect)
    in_specs = parsed.inputs
    if in_specs and in_specs[0] == Symbol("$"):
        in_specs = in_specs[1:]
    if len(in_specs) != len(inputs):
        raise QueryError(
            f"the query takes {len(in_specs)} inputs after $, {len(inputs)} were given",
            clause=":in",
        )
    membership: list[tuple[str, list[Any], str]] = []
    for spec, given in zip(in_specs, inputs, strict=True):
        text = _show(spec)
        if _is_var(spec):
            sql_value, tag = scalar_row(given, text)
            start = len(compiler.params)
            if pg:
                # One parameter (an unused one has no type): its text is the key.
                value = compiler.value_param(sql_value)
                entity = compiler.as_text(value) if tag in ("k", "s") else None
            else:
                # One parameter for both places: SQLite wants the highest-numbered one used.
                value = compiler.param(sql_value)
                entity = value if tag in ("k", "s") else None
            compiler.bindings[spec.text] = _Binding(
                # A keyword or string input can also stand for an entity (a key).
                entity=entity,
                value=value,
                tag=f"'{tag}'",
            )
            slots.append((start, len(compiler.params)))
        elif (
            isinstance(spec, Vector | list)
            and len(spec) == 2
            and _is_var(spec[0])
            and spec[1] == Symbol("...")
        ):
            membership.append((spec[0].text, list(given), text))
        else:
            raise QueryError("an input is ?scalar or [?collection ...]", clause=text)
    compiler.clauses(parsed.where)
    for var, items, text in membership:
        bound = compiler.bindings.get(var)
        if bound is None:
            raise QueryError(f"{var} is not used by any pattern", clause=":in")
        if not items:
            compiler.conditions.append(compiler.false)
            continue
        if bound.tag == "'a'":  # an attribute variable: the attributes' spellings
            spellings = ", ".join(compiler.value_param(_attr_text(item, text)) for item in items)
            compiler.conditions.append(f"{bound.value} IN ({spellings})")
            continue
        rows = [scalar_row(item, text) for item in items]
        if bound.value is not None:
            pairs = ", ".join(f"({compiler.value_param(v)}, {compiler.param(t)})" for v, t in rows)
            compiler.conditions.append(f"({bound.value}, {bound.tag}) IN (VALUES {pairs})")
        else:
            keys = ", ".join(compiler.param(v) for v, t in rows if t in ("k", "s"))
            compiler.conditions.append(f"{bound.entity} IN ({keys or 'NULL'})")
    # Each find element's columns in the distinct bindings; aggregates then run over
    # that set, as Datomic's do (a value bound twice by a join counts once).
    columns: list[str] = []
    readers: list[tuple[str, Any]] = []
    outer: list[str] = []
    group: list[str] = []
    aggregates = False
    everything = False

    def column(expression: str) -> str:
        columns.append(f"{expression} AS c{len(columns)}")
        return f"c{len(columns) - 1}"

    for element in parsed.find:
        text = _show(element)
        if _is_var(element):
            bound = compiler.bindings.get(element.text)
            if bound is None:
                raise QueryError(f"{element.text} is not bound by any clause", clause=":find")
            if bound.entity is not None:
                names = [column(bound.entity)]
                readers.append(("entity", None))
            else:
                names = [column(str(bound.value)), column(str(bound.tag))]
                readers.append(("value", None))
            outer += names
            group += names
        elif isinstance(element, tuple) and element and type(element[0]) is Symbol:
            head = element[0].text
            if head == "pull":
                if len(element) != 3 or not _is_var(element[1]):
                    raise QueryError("pull is (pull ?e [*]) or (pull ?e [:a ...])", clause=text)
                bound = compiler.bindings.get(element[1].text)
                if bound is None or bound.entity is None:
                    raise QueryError(
                        f"{element[1].text} is not an entity of any pattern", clause=text
                    )
                # The whole stored value: any attribute of an entity a pattern
                # binds; any entry at all when only an input names it.
                if element[1].text in compiler.entities:
                    compiler.reads.add("*")
                else:
                    everything = True
                pattern = list(element[2])
                wanted = None if pattern == [Symbol("*")] else set(pattern)
                name = column(f"(SELECT value FROM entries WHERE key = {bound.entity})")
                readers.append(("pull", wanted))
                outer.append(name)
                group.append(name)
            elif head in _AGGREGATES:
                if len(element) != 2 or not _is_var(element[1]):
                    raise QueryError(f"an aggregate is ({head} ?var)", clause=text)
                bound = compiler.bindings.get(element[1].text)
                if bound is None:
                    raise QueryError(f"{element[1].text} is not bound by any clause", clause=text)
                if pg and head in ("sum", "avg") and bound.value is None:
                    raise QueryError(
                        f"({head} ...) adds numbers; {element[1].text} is an entity (a key)",
                        clause=text,
                    )
                if bound.value is not None:
                    name = column(bound.value)
                    tag = column(str(bound.tag))  # keeps 1 and 1.0 apart in the distinct set
                else:
                    name = column(str(bound.entity))
                    tag = "'s'"  # a key text
                if pg and head in ("min", "max") and bound.value is None:
                    outer.append(_AGGREGATES[head].format(name))  # key texts, in "C" order
                elif pg:
                    outer.append(_PG_AGGREGATES[head].format(name, tag))
                else:
                    outer.append(_AGGREGATES[head].format(name))
                # min and max on PostgreSQL give a jsonb value (of a value binding)
                detail: Any = None
                if pg and head == "sum":
                    detail = "sum"
                elif pg and head in ("min", "max") and bound.value:
                    detail = True
                readers.append(("aggregate", detail))
                aggregates = True
            else:
                raise QueryError(f"unknown find element ({head} ...)", clause=text)
        else:
            raise QueryError(
                "a find element is ?var, (pull ?e [*]) or (aggregate ?var)", clause=text
            )
    sql = compiler.select("DISTINCT " + ", ".join(columns))
    if aggregates:
        sql = f"SELECT {', '.join(outer)} FROM ({sql}){' AS found' if pg else ''}"
        if group:
            sql += " GROUP BY " + ", ".join(group)
    reads = None if everything else frozenset(compiler.reads)
    compiled = CompiledQuery(
        sql, compiler.params, readers, compiler.unindexed, reads, json_values=pg
    )
    return compiled, slots
