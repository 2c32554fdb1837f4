"""The PostgreSQL store's schema: tables, ordered upgrades, and the checks made at open.

The tables are those of the SQLite store's schema 4 (see
:mod:`garrison.stores._schema`), in the connection's current schema (the
first of its ``search_path``; put ``?search_path=name`` in the DSN to keep
garrison's tables apart from an application's own):

``entries``
    the current value of every key. ``value`` is the value format's JSON
    *text* (:mod:`garrison.stores._values`), in a ``text`` column, not
    ``jsonb``: ``jsonb`` keeps neither the spelling of numbers (``1e16`` comes
    back as the integer ``10000000000000000``, ``-0.0`` as ``0.0``) nor
    strings holding U+0000, so the text is the stored value and ``jsonb`` is
    only computed to query it (:data:`JSON_OF_VALUE`). ``key`` uses the ``C``
    collation: keys sort by code point, as in SQLite.
``history``
    the append-only audit trail and change feed. ``seq`` is an identity
    column; every write transaction takes one advisory lock
    (:data:`WRITE_LOCK`) before it writes, so sequence numbers increase in
    commit order across every instance and connection: one total order, and a
    reader that has seen ``seq`` *n* never later finds a row below *n*. Puts
    are recorded by a trigger on ``entries``; deletes by the statement that
    deletes. Updating or deleting a row raises.
``commits``
    one row per write transaction: its time ``at`` (taken under the write
    lock from the newest commit, so increasing in commit order whatever the
    instances' clocks say), the first ``seq`` it may hold, and who made it
    and why (``actor``, ``reason``, ``event``), and the ``origin``: a random id
    of the store (the instance) that made it. Append-only too. Each new row
    sends a notification on :data:`CHANGES_CHANNEL` (delivered at commit) whose
    payload is ``"<origin> <first_seq>"`` (`` event`` appended when the commit
    records an event, such as a mode switch): it wakes the other instances to read
    the history after the last ``seq`` they saw (:meth:`PostgresStore.catch_up`),
    and lets the instance that made the commit ignore it without a read.
``meta``
    small named settings, as in SQLite.
``attributes``
    the attribute index (:mod:`garrison.stores._attributes`); ``value`` is
    ``jsonb`` here (numbers, strings), told apart by ``tag`` as in SQLite.

``garrison_store`` marks the schema as garrison's and holds its version (one
row: ``application = 'garrison'``, ``schema_version``). Opening a schema that
holds one of the tables above without that row is refused and changes
nothing. Upgrades: :data:`MIGRATIONS` is an ordered list; each runs in one
transaction with its new version, under the write lock, so two instances
starting at once upgrade once.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "APPLICATION",
    "CHANGES_CHANNEL",
    "GARRISON_TABLES",
    "JSON_OF_VALUE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "WRITE_LOCK",
]

#: The ``garrison_store.application`` of a garrison schema.
APPLICATION: Final = "garrison"
#: The tables whose presence without the marker means "not a garrison store".
GARRISON_TABLES: Final = ("entries", "history", "commits", "meta", "attributes")
#: Every write transaction (and a schema upgrade) takes this transaction-level
#: advisory lock first: writes commit one at a time, in ``seq`` order. The
#: number is "GARR" in ASCII, as SQLite's ``application_id``.
WRITE_LOCK: Final = "SELECT pg_advisory_xact_lock(1195463250)"

#: The channel every commit notifies (``LISTEN garrison_changes``).
CHANGES_CHANNEL: Final = "garrison_changes"

#: The ``jsonb`` of a stored text, for queries. ``jsonb`` refuses the escape
#: ``\u0000``; a text holding one is read with U+FFFD in its place (the stored
#: text is untouched), so one such value never fails a whole query.
JSON_OF_VALUE: Final = "garrison_json(value)"

_V1: Final = (
    """CREATE TABLE garrison_store (
        application    text PRIMARY KEY CHECK (application = 'garrison'),
        schema_version integer NOT NULL
    )""",
    """CREATE FUNCTION garrison_json(text) RETURNS jsonb
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        RETURN CASE WHEN strpos($1, '\\u0000') > 0
                    THEN replace($1, '\\u0000', '\\ufffd')::jsonb
                    ELSE $1::jsonb END""",
    """CREATE TABLE entries (
        key        text COLLATE "C" PRIMARY KEY,
        namespace  text COLLATE "C",
        kind       text,
        value      text NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        version    bigint NOT NULL
    )""",
    """CREATE TABLE history (
        seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key     text COLLATE "C" NOT NULL,
        op      text NOT NULL CHECK (op IN ('put', 'delete')),
        value   text,
        version bigint NOT NULL,
        at      bigint NOT NULL
    )""",
    "CREATE INDEX history_by_key ON history (key, seq)",
    """CREATE TABLE commits (
        at        bigint PRIMARY KEY,
        first_seq bigint NOT NULL,
        actor     text,
        reason    text,
        event     text,
        origin    text
    )""",
    """CREATE TABLE meta (
        name  text COLLATE "C" PRIMARY KEY,
        value text NOT NULL
    )""",
    """CREATE TABLE attributes (
        attr   text COLLATE "C" NOT NULL,
        value  jsonb NOT NULL,
        tag    text NOT NULL,
        entity text COLLATE "C" NOT NULL,
        PRIMARY KEY (attr, value, tag, entity)
    )""",
    "CREATE INDEX attributes_by_entity ON attributes (entity, attr)",
    # History is part of every put: no code path, SQL included, can skip it.
    """CREATE FUNCTION garrison_record_put() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO history (key, op, value, version, at)
        VALUES (NEW.key, 'put', NEW.value, NEW.version, NEW.updated_at);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER entries_history AFTER INSERT OR UPDATE OF value ON entries
        FOR EACH ROW EXECUTE FUNCTION garrison_record_put()""",
    """CREATE FUNCTION garrison_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'history is append-only';
    END $$""",
    """CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON history
        FOR EACH ROW EXECUTE FUNCTION garrison_append_only()""",
    """CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history
        FOR EACH STATEMENT EXECUTE FUNCTION garrison_append_only()""",
    # Every commit wakes the instances that listen (delivered when it commits).
    f"""CREATE FUNCTION garrison_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{CHANGES_CHANNEL}', '');
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER commits_notify AFTER INSERT ON commits
        FOR EACH ROW EXECUTE FUNCTION garrison_notify()""",
    """CREATE TRIGGER commits_append_only BEFORE UPDATE OR DELETE ON commits
        FOR EACH ROW EXECUTE FUNCTION garrison_append_only()""",
    """CREATE TRIGGER commits_no_truncate BEFORE TRUNCATE ON commits
        FOR EACH STATEMENT EXECUTE FUNCTION garrison_append_only()""",
)

# Version 2: the notification names the commit's origin and first seq, and
# says whether it records an event (``"<origin> <first_seq>"`` or
# ``"<origin> <first_seq> event"``), so an instance ignores its own commits
# without reading them, and checks the recorded mode after another's event
# (see :class:`Notifications` in :mod:`._postgres`).
_V2: Final = (
    f"""CREATE OR REPLACE FUNCTION garrison_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify(
            '{CHANGES_CHANNEL}',
            coalesce(NEW.origin, '') || ' ' || NEW.first_seq
                || CASE WHEN NEW.event IS NULL THEN '' ELSE ' event' END);
        RETURN NULL;
    END $$""",
)

#: Migration *n* (1-based) upgrades a schema from version *n-1* to *n*.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2)
#: The schema version this garrison writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)
