"""A kind's schema: the rules of its attributes, and the checks that refuse what breaks them.

``[components.database.schema.<kind>]`` maps each attribute of the kind's
entities (spelled as stored: ``":session/user-id"`` for a keyword key,
``"title"`` for a string key) to its rules:

=============  ==============================================================
rule           the entity's value of the attribute ...
=============  ==============================================================
``type``       is of this type (:data:`TYPES`; each member, for ``many``)
``cardinality````"one"`` (the default: one value) or ``"many"`` (a set,
               vector or list of values)
``unique``     is held by no other entity of the kind (implies ``indexed``)
``required``   is present (``nil`` counts as absent)
``reference``  is a keyword naming an existing entry's key
``indexed``    is kept in the attribute index (:mod:`._attributes`)
=============  ==============================================================

The rules apply to the entries of a kind (by the store's one kind mapping,
:mod:`._kinds`) whose value is a map: an entity. Other values of the kind,
and attributes a schema does not name, are not checked (Datomic's schema is
closed; a garrison schema constrains what it names and leaves the rest open,
as the legacy data was written without one).

Two sorts of check: :meth:`EntitySchema.check` looks at one entity alone
(``type``, ``cardinality``, ``required``, and that a reference is a keyword),
with no I/O; :func:`lookup_violations` needs the stored data (``unique``, and
that a reference names an entry), and runs on the SQLite connection's thread,
inside the write's transaction. :func:`find_violations` checks a whole data
set in memory (``garrison schema check``, and the start of a store whose
schema changed).
"""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from garrison.edn import BigInt, Char, EdnSet, Keyword, Symbol, Vector, dumps
from garrison.exceptions import EdnError, SchemaError
from garrison.stores._attributes import index_value
from garrison.stores._protocol import MISSING
from garrison.stores._values import decode_value

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

__all__ = [
    "TYPES",
    "AttributeRules",
    "EntitySchema",
    "Violation",
    "declared_index",
    "find_violations",
    "lookup_violations",
    "refused",
    "stored_data_breaks",
    "stored_violations",
]

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_MANY: Final = (list, tuple, frozenset, set, EdnSet)  # a Vector is a tuple


def _long(value: Any) -> bool:
    return type(value) is int and _INT64_MIN <= value <= _INT64_MAX


def _bigint(value: Any) -> bool:
    return type(value) is BigInt or (type(value) is int and not _long(value))


#: The value types, by the name a ``type`` rule gives (Datomic's ``:db.type/*``
#: names where Datomic has the type), and what garrison decodes each EDN form to.
TYPES: Final[dict[str, Callable[[Any], bool]]] = {
    "string": lambda v: type(v) is str,
    "keyword": lambda v: type(v) is Keyword,
    "symbol": lambda v: type(v) is Symbol,
    "boolean": lambda v: type(v) is bool,
    "long": _long,  # an integer of 64 bits (Clojure's long)
    "bigint": _bigint,  # 1N, or an integer past 64 bits
    "double": lambda v: type(v) is float,
    "bigdec": lambda v: isinstance(v, decimal.Decimal),  # 1.5M
    "ratio": lambda v: isinstance(v, fractions.Fraction),  # 1/2
    "char": lambda v: type(v) is Char,
    "instant": lambda v: isinstance(v, dt.datetime),  # #inst
    "uuid": lambda v: isinstance(v, uuid.UUID),  # #uuid
    "map": lambda v: isinstance(v, Mapping),
    "vector": lambda v: type(v) is list or type(v) is Vector,
    "list": lambda v: isinstance(v, tuple) and type(v) is not Vector,
    "set": lambda v: isinstance(v, frozenset | set | EdnSet),
}

#: (type, reference) -> the test a value (or member) must pass: a reference is a keyword.
_TESTS: Final[dict[tuple[str | None, bool], Callable[[Any], bool] | None]] = {
    **{(name, False): test for name, test in TYPES.items()},
    (None, False): None,
    (None, True): TYPES["keyword"],
    ("keyword", True): TYPES["keyword"],
}

_RULES: Final = ("type", "cardinality", "unique", "required", "reference", "indexed")
_FLAGS: Final = ("unique", "required", "reference", "indexed")
_CARDINALITIES: Final = ("one", "many")


@dataclass(frozen=True, slots=True)
class AttributeRules:
    """The rules of one attribute of a kind (see the module docstring)."""

    type: str | None = None
    many: bool = False
    unique: bool = False
    required: bool = False
    reference: bool = False
    indexed: bool = False

    @property
    def needs_lookup(self) -> bool:
        """Whether checking the attribute reads the stored data (``unique``, ``reference``)."""
        return self.unique or self.reference


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule an entry breaks: its key, the attribute, the rule, the value, and why."""

    key: str
    attribute: str
    rule: str
    #: The offending value (of the attribute, or the member of a ``many``);
    #: :data:`~garrison.stores.MISSING` for a ``required`` attribute absent.
    value: Any
    detail: str

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.key}: {self.attribute} breaks rule {self.rule}: {self.detail}"
        return (
            f"{self.key}: {self.attribute} breaks rule {self.rule}: {self.detail}, "
            f"got {_shown(self.value)}"
        )


def _shown(value: Any) -> str:
    try:
        text = dumps(value)
    except EdnError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# (attribute spelling, its key in a decoded map, its rules, the test of a value or member)
_Attribute = tuple[str, Any, AttributeRules, "Callable[[Any], bool] | None"]


class EntitySchema:
    """The rules of every kind's attributes, parsed from the config's ``schema`` table.

    >>> schema = EntitySchema.parse({"session": {":session/user-id": {"type": "string"}}})
    >>> str(schema.check("session/s1", "session", {Keyword("session/user-id"): 42}))
    'session/s1: :session/user-id breaks rule type: must be a string, got 42'
    """

    __slots__ = ("_checked", "_lookups", "indexed", "kinds", "table")

    def __init__(self, kinds: Mapping[str, Mapping[str, AttributeRules]]) -> None:
        self.kinds = {kind: dict(attrs) for kind, attrs in kinds.items()}
        #: Kind -> the attributes kept in the attribute index (``indexed`` or ``unique``).
        self.indexed = {
            kind: frozenset(a for a, r in attrs.items() if r.indexed or r.unique)
            for kind, attrs in self.kinds.items()
            if any(r.indexed or r.unique for r in attrs.values())
        }
        checked: dict[str, tuple[_Attribute, ...]] = {}
        lookups: dict[str, tuple[_Attribute, ...]] = {}
        for kind, attrs in self.kinds.items():
            entries = [
                (attr, _lookup_key(attr), rules, _TESTS[rules.type, rules.reference])
                for attr, rules in sorted(attrs.items())
                if rules != AttributeRules(indexed=rules.indexed)
            ]
            if entries:
                checked[kind] = tuple(entries)
            needing = tuple(entry for entry in entries if entry[2].needs_lookup)
            if needing:
                lookups[kind] = needing
        self._checked = checked
        self._lookups = lookups
        #: The canonical config table (what a database records as its schema).
        self.table = {
            kind: {attr: _rules_table(rules) for attr, rules in sorted(attrs.items())}
            for kind, attrs in sorted(self.kinds.items())
        }

    @classmethod
    def parse(cls, table: Mapping[str, Any]) -> EntitySchema:
        """The schema of a config ``schema`` table: kind -> attribute -> rules.

        Raises :class:`ValueError` naming the kind, the attribute and the rule at fault.
        """
        if not isinstance(table, Mapping):
            raise ValueError(f"schema must be a table of kinds, got {table!r}")
        kinds: dict[str, dict[str, AttributeRules]] = {}
        for kind, attributes in table.items():
            if not isinstance(kind, str) or not kind:
                raise ValueError(f"schema: a kind is non-empty text, got {kind!r}")
            if not isinstance(attributes, Mapping):
                raise ValueError(f"schema.{kind}: a table of attributes, got {attributes!r}")
            parsed: dict[str, AttributeRules] = {}
            for attr, rules in attributes.items():
                if not isinstance(attr, str) or not attr or attr == ":":
                    raise ValueError(f"schema.{kind}: an attribute is non-empty text, got {attr!r}")
                parsed[attr] = _parse_rules(f"schema.{kind}.{attr!r}", rules)
            kinds[kind] = parsed
        return cls(kinds)

    @property
    def enforced(self) -> bool:
        """Whether any kind has a rule to check (more than ``indexed``)."""
        return bool(self._checked)

    @property
    def needs_lookups(self) -> bool:
        """Whether any kind has a ``unique`` or ``reference`` rule (checks reading the data)."""
        return bool(self._lookups)

    def rules_for(self, kind: str | None) -> bool:
        """Whether entries of ``kind`` have rules to check."""
        return kind in self._checked

    def check(self, key: str, kind: str | None, value: Any) -> Violation | None:
        """The first rule the entry breaks that needs no stored data, or ``None``."""
        attributes = self._checked.get(kind)  # type: ignore[arg-type]  # None: no kind
        if attributes is None or not isinstance(value, Mapping) or _keeps(attributes, value):
            return None
        return next(self._broken(key, attributes, value), None)

    def violations(self, key: str, kind: str | None, value: Any) -> list[Violation]:
        """Every rule the entry breaks that needs no stored data."""
        attributes = self._checked.get(kind)  # type: ignore[arg-type]  # None: no kind
        if attributes is None or not isinstance(value, Mapping) or _keeps(attributes, value):
            return []
        return list(self._broken(key, attributes, value))

    @staticmethod
    def _broken(
        key: str, attributes: Sequence[_Attribute], value: Mapping[Any, Any]
    ) -> Iterator[Violation]:
        for attr, lookup, rules, _test in attributes:
            item = value.get(lookup)
            if item is None:
                if rules.required:
                    yield Violation(key, attr, "required", MISSING, "the entity has no value")
                continue
            if rules.many:
                if not isinstance(item, _MANY):
                    yield Violation(
                        key, attr, "cardinality", item, "many: must be a set, vector or list"
                    )
                    continue
                members: Iterable[Any] = item
            else:
                members = (item,)
            test = TYPES[rules.type] if rules.type is not None else None
            for member in members:
                if test is not None and not test(member):
                    yield Violation(key, attr, "type", member, f"must be {_a(rules.type)}")
                elif rules.reference and type(member) is not Keyword:
                    yield Violation(
                        key, attr, "reference", member, "must be a keyword naming an entry's key"
                    )

    def lookups(self, kind: str | None) -> Sequence[_Attribute]:
        """The attributes of ``kind`` whose rules read the stored data."""
        return self._lookups.get(kind, ()) if kind is not None else ()

    def __repr__(self) -> str:
        return f"EntitySchema({self.table!r})"


def _keeps(attributes: Sequence[_Attribute], value: Mapping[Any, Any]) -> bool:
    """Whether ``value`` keeps the rules that need no stored data (the write path's test).

    The same rules as :meth:`EntitySchema._broken`, answered without making
    a violation: most writes keep them.
    """
    get = value.get
    for _attr, lookup, rules, test in attributes:
        item = get(lookup)
        if item is None:
            if rules.required:
                return False
            continue
        if rules.many:
            if not isinstance(item, _MANY):
                return False
            if test is not None:
                for member in item:
                    if not test(member):
                        return False
        elif test is not None and not test(item):
            return False
    return True


def _a(type_name: str | None) -> str:
    return f"an {type_name}" if str(type_name)[:1] in "aeiou" else f"a {type_name}"


def _lookup_key(attr: str) -> Any:
    """The key of ``attr`` in a decoded map: a keyword for ``":ns/name"``, else the text."""
    return Keyword(attr[1:]) if attr.startswith(":") else attr


def _parse_rules(where: str, rules: Any) -> AttributeRules:
    if not isinstance(rules, Mapping):
        raise ValueError(f"{where}: a table of rules, got {rules!r}")
    for rule, setting in rules.items():
        if rule not in _RULES:
            raise ValueError(f"{where}: unknown rule {rule!r} (known: {', '.join(_RULES)})")
        if rule in _FLAGS and type(setting) is not bool:
            raise ValueError(f"{where}: rule {rule!r} is true or false, got {setting!r}")
    type_name = rules.get("type")
    if type_name is not None and type_name not in TYPES:
        raise ValueError(f"{where}: unknown type {type_name!r} (known: {', '.join(sorted(TYPES))})")
    cardinality = rules.get("cardinality", "one")
    if cardinality not in _CARDINALITIES:
        raise ValueError(f'{where}: cardinality is "one" or "many", got {cardinality!r}')
    if rules.get("reference") and type_name not in (None, "keyword"):
        raise ValueError(f"{where}: a reference is a keyword, not type {type_name!r}")
    return AttributeRules(
        type=type_name,
        many=cardinality == "many",
        unique=rules.get("unique", False),
        required=rules.get("required", False),
        reference=rules.get("reference", False),
        indexed=rules.get("indexed", False),
    )


def _rules_table(rules: AttributeRules) -> dict[str, Any]:
    table: dict[str, Any] = {}
    if rules.type is not None:
        table["type"] = rules.type
    if rules.many:
        table["cardinality"] = "many"
    for flag in _FLAGS:
        if getattr(rules, flag):
            table[flag] = True
    return table


def declared_index(schema: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Kind -> the attributes a ``schema`` table keeps in the attribute index.

    Those declared ``indexed``, and those declared ``unique`` (whose check
    reads the index). Raises :class:`ValueError` naming the kind, the
    attribute and the rule at fault.

    >>> declared_index({"session": {":session/user-id": {"indexed": True}}})
    {'session': frozenset({':session/user-id'})}
    """
    return EntitySchema.parse(schema).indexed


# -- checks that read the stored data

# The entities of a kind holding an attribute's value (at most one, while
# ``unique`` holds); ?1 attr, ?2 value, ?3 tag, ?4 kind.
_HOLDERS: Final = (
    "SELECT a.entity FROM attributes AS a JOIN entries AS e ON e.key = a.entity "
    "WHERE a.attr = ?1 AND a.value = ?2 AND a.tag = ?3 AND e.kind = ?4"
)
_EXISTS: Final = "SELECT 1 FROM entries WHERE key = ?"


def _members(item: Any, rules: AttributeRules) -> Iterable[Any]:
    if item is None:
        return ()
    return item if rules.many and isinstance(item, _MANY) else (item,)


def lookup_violations(
    db: sqlite3.Connection,
    schema: EntitySchema,
    entries: Iterable[tuple[str, str | None, Any]],
    written: Collection[str],
) -> list[Violation]:
    """The ``unique`` and ``reference`` rules the written ``entries`` break (blocking).

    ``entries`` are ``(key text, kind, value)``, each key once (its last
    value); ``written`` holds every key the write sets. Runs on the
    connection's thread, in the write's transaction, before its statements:
    the stored entries are the others' (an entry being written is compared
    with the batch, not with its old value), and a reference may name a key
    the same write creates. ``unique`` reads the attribute index, which holds
    every ``unique`` attribute.
    """
    batch = [(key, kind, value) for key, kind, value in entries if schema.lookups(kind)]
    if not batch:
        return []
    found: list[Violation] = []
    seen: dict[tuple[Any, ...], str] = {}
    for key, kind, value in batch:
        if not isinstance(value, Mapping):
            continue
        for attr, lookup, rules, _test in schema.lookups(kind):
            for member in _members(value.get(lookup), rules):
                if rules.reference and type(member) is Keyword:
                    target = member.text
                    if target not in written and db.execute(_EXISTS, (target,)).fetchone() is None:
                        found.append(_dangling(key, attr, member))
                if rules.unique:
                    part = index_value(member)
                    if part is None:
                        continue
                    other = seen.setdefault((kind, attr, *part), key)
                    if other != key:
                        found.append(_shared(key, attr, member, other))
                        continue
                    for (holder,) in db.execute(_HOLDERS, (attr, *part, kind)):
                        if holder not in written:
                            found.append(_shared(key, attr, member, holder))
                            break
    return found


def _dangling(key: str, attr: str, member: Keyword) -> Violation:
    return Violation(key, attr, "reference", member, f"no entry has the key {member.text}")


def _shared(key: str, attr: str, member: Any, other: str) -> Violation:
    return Violation(key, attr, "unique", member, f"{other} of the same kind has it too")


def find_violations(
    schema: EntitySchema, entries: Iterable[tuple[str, str | None, Any]]
) -> list[Violation]:
    """Every rule a whole data set breaks: ``entries`` are all of its ``(key, kind, value)``.

    In memory: every key is kept (for references), and the values of the
    ``unique`` attributes. Violations come in the order of ``entries``, the
    dangling references last.
    """
    found: list[Violation] = []
    keys: set[str] = set()
    references: list[tuple[str, str, Keyword]] = []
    seen: dict[tuple[Any, ...], str] = {}
    for key, kind, value in entries:
        keys.add(key)
        if not schema.rules_for(kind) or not isinstance(value, Mapping):
            continue
        found.extend(schema.violations(key, kind, value))
        for attr, lookup, rules, _test in schema.lookups(kind):
            for member in _members(value.get(lookup), rules):
                if rules.reference and type(member) is Keyword:
                    references.append((key, attr, member))
                if rules.unique and (part := index_value(member)) is not None:
                    other = seen.setdefault((kind, attr, *part), key)
                    if other != key:
                        found.append(_shared(key, attr, member, other))
    found.extend(_dangling(k, a, m) for k, a, m in references if m.text not in keys)
    return found


def stored_violations(db: sqlite3.Connection, schema: EntitySchema) -> list[Violation]:
    """Every rule the entries stored in ``db`` break, each by its stored kind (blocking).

    Only the values of kinds with rules are decoded.
    """

    def entries() -> Iterator[tuple[str, str | None, Any]]:
        cursor = db.execute("SELECT key, kind, value FROM entries ORDER BY key")
        while batch := cursor.fetchmany(1024):
            for key, kind, text in batch:
                checked = schema.rules_for(kind) and text[:1] == "{"
                yield key, kind, decode_value(text) if checked else None

    return find_violations(schema, entries())


def refused(violations: Sequence[Violation], *, shown: int = 5) -> SchemaError:
    """The :class:`SchemaError` of a write refused for ``violations`` (nothing written)."""
    if len(violations) == 1:
        return SchemaError(f"{violations[0]}; nothing was written", violations=violations)
    listed = "; ".join(str(v) for v in violations[:shown])
    more = f" (and {len(violations) - shown} more)" if len(violations) > shown else ""
    return SchemaError(
        f"{len(violations)} schema rules broken, nothing was written: {listed}{more}",
        violations=violations,
    )


def stored_data_breaks(path: str, found: Sequence[Violation], *, shown: int = 5) -> SchemaError:
    """The error of an open whose given schema the stored data of ``path`` breaks."""
    listed = "; ".join(str(v) for v in found[:shown])
    more = f" (and {len(found) - shown} more)" if len(found) > shown else ""
    return SchemaError(
        f"{path}: the stored data breaks the configured schema in {len(found)} "
        f"{'place' if len(found) == 1 else 'places'}: {listed}{more}. The schema was not "
        "applied; list every violation with 'garrison schema check', then fix the data "
        "or the schema",
        violations=found,
    )
