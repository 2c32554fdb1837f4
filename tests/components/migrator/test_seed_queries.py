"""The seeds' questions as Datalog queries, on data Clojure wrote and the migrator moved.

The legacy application kept sessions, presence, learning records (with a
hand-kept tag index), projects, embed tokens and webhooks in one
``memory.edn``; every question it answered by filtering that map is one query
here (``docs/queries.md`` shows them).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from garrison import SchemaError
from garrison.cli import main
from garrison.components.migrator import migrate
from garrison.edn import Keyword
from garrison.stores import EntitySchema, SqliteStore
from tests._clojure import require_clojure, run_clojure

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.clojure

WRITE_MEMORY = """
(def data
  {:session/s1 {:session/id "s1" :session/user-id "u1"
                :session/started #inst "2024-05-01T10:00:00.000-00:00"}
   :session/s2 {:session/id "s2" :session/user-id "u2"}
   :session/s3 {:session/id "s3" :session/user-id "u1"}
   :presence/p1 {:presence/session :session/s1 :presence/user-id "u1" :presence/online? true}
   :presence/p2 {:presence/session :session/s1 :presence/user-id "u3" :presence/online? false}
   :presence/p3 {:presence/session :session/s2 :presence/user-id "u2" :presence/online? true}
   :learning/l1 {:learning/tags #{:clojure :datalog} :learning/session :session/s1
                 :learning/score 0.9}
   :learning/l2 {:learning/tags [:clojure] :learning/session :session/s2 :learning/score 0.4}
   :learning/l3 {:learning/tags '(:sql) :learning/session :session/s3 :learning/score 0.7M}
   :learning/tag-index {:clojure #{:learning/l1 :learning/l2} :datalog #{:learning/l1}
                        :sql #{:learning/l3}}
   :project/p1 {:project/owner "u1" :project/status :active :project/name "garrison"}
   :project/p2 {:project/owner "u1" :project/status :archived :project/name "legacy"}
   :project/p3 {:project/owner "u2" :project/status :active :project/name "other"}
   :webhook/w1 {:webhook/owner "u1" :webhook/url "https://example.org/hook"}
   :webhook/w2 {:webhook/owner "u2" :webhook/url "https://example.org/other"}})
(def with-token  ; a key Clojure's reader refuses in source, as the legacy app made it
  (assoc data (keyword "embed-token" "5fe3")
         {:embed-token/owner "u1" :embed-token/scopes #{:read}}))
(spit (first *command-line-args*) (pr-str with-token) :encoding "UTF-8")
"""


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_clojure()
    path = tmp_path_factory.mktemp("seeds") / "memory.edn"
    run_clojure(WRITE_MEMORY, path)
    return path


@pytest.fixture
async def store(migrated_file: Path, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "garrison.db") as opened:
        await migrate(opened, migrated_file)
        yield opened


async def test_sessions_of_a_user(store: SqliteStore) -> None:
    query = "[:find ?s :in $ ?user :where [?s :session/user-id ?user]]"
    assert sorted(await store.query(query, "u1")) == [("session/s1",), ("session/s3",)]


async def test_who_is_present_in_a_session(store: SqliteStore) -> None:
    query = """[:find ?user :in $ ?session
                :where [?p :presence/session ?session]
                       [?p :presence/user-id ?user]
                       [?p :presence/online? true]]"""
    assert await store.query(query, Keyword("session/s1")) == [("u1",)]


async def test_learning_records_by_tag_replace_the_hand_kept_index(store: SqliteStore) -> None:
    query = "[:find ?l :in $ ?tag :where [?l :learning/tags ?tag]]"
    by_query = sorted(key for (key,) in await store.query(query, Keyword("clojure")))
    index = await store.get("learning/tag-index")
    assert by_query == sorted(k.text for k in index[Keyword("clojure")])
    # The tag's records with their session's user: a reference followed.
    joined = """[:find ?l ?user :in $ ?tag
                 :where [?l :learning/tags ?tag] [?l :learning/session ?s]
                        [?s :session/user-id ?user]]"""
    assert sorted(await store.query(joined, Keyword("clojure"))) == [
        ("learning/l1", "u1"),
        ("learning/l2", "u2"),
    ]


async def test_projects_by_owner_and_status(store: SqliteStore) -> None:
    query = """[:find ?name :in $ ?owner ?status
                :where [?p :project/owner ?owner] [?p :project/status ?status]
                       [?p :project/name ?name]]"""
    assert await store.query(query, "u1", Keyword("active")) == [("garrison",)]
    counts = "[:find ?owner (count ?p) :where [?p :project/owner ?owner]]"
    assert sorted(await store.query(counts)) == [("u1", 2), ("u2", 1)]


async def test_tokens_and_webhooks_by_owner(store: SqliteStore) -> None:
    query = """[:find ?x :in $ ?owner [?attr ...]
                :where [?x ?attr ?owner]]"""
    owned = await store.query(query, "u1", [Keyword("embed-token/owner"), Keyword("webhook/owner")])
    assert sorted(owned) == [("embed-token/5fe3",), ("webhook/w1",)]


SEED_SCHEMA = {
    "session": {  # presence records are sessions too (the kind mapping)
        ":session/id": {"type": "string", "unique": True},
        ":session/user-id": {"type": "string"},
        ":presence/session": {"reference": True},
    },
    "learning": {
        ":learning/tags": {"type": "keyword", "cardinality": "many", "indexed": True},
        ":learning/session": {"reference": True, "required": True},
    },
    "project": {":project/owner": {"type": "string", "required": True}},
}


async def test_the_migration_checks_the_schema_on_clojure_written_data(
    migrated_file: Path, tmp_path: Path
) -> None:
    # Clojure wrote l3's score as 0.7M: a bigdec, not a double.
    scores = {":learning/score": {"type": "double"}}
    strict = EntitySchema.parse({**SEED_SCHEMA, "learning": scores})
    async with SqliteStore(tmp_path / "strict.db", schema=strict) as store:
        with pytest.raises(SchemaError) as refused:
            await migrate(store, migrated_file)
        assert (refused.value.key, refused.value.attribute, refused.value.rule) == (
            "learning/l3",
            ":learning/score",
            "type",
        )
        assert "got 0.7M" in str(refused.value)
        assert await store.count("learning/") == 0  # the learning batch wrote nothing
    schema = EntitySchema.parse(SEED_SCHEMA)
    async with SqliteStore(tmp_path / "garrison.db", schema=schema) as store:
        await migrate(store, migrated_file)
        assert await store.schema_violations() == []
        with pytest.raises(SchemaError, match="no entry has the key session/s9"):
            await store.put("learning/l4", {Keyword("learning/session"): Keyword("session/s9")})
        with pytest.raises(SchemaError, match=r"\"s1\"; nothing was written"):
            await store.put("session/s4", {Keyword("session/id"): "s1"})


def test_the_hand_kept_index_keys_can_be_dropped_by_config(
    migrated_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # garrison migrate / validate, as an operator runs them, on the Clojure-written file.
    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.edn").write_bytes(migrated_file.read_bytes())
    config = tmp_path / "garrison.toml"
    config.write_text(
        f"""
[runtime]
data_dir = "{data}"

[components.database]
edn_path = "memory.edn"

[components.database.schema.learning]
":learning/tags" = {{ indexed = true }}

[components.migrator]
index_keys = "drop"
""",
        encoding="utf-8",
    )
    assert main(["migrate", "--config", str(config), "--no-backup", "--validate"]) == 0
    out = capsys.readouterr().out
    assert '1 hand-kept index keys (index_keys = "drop"): learning/tag-index' in out
    assert "AGREE" in out

    async def read(db: Path) -> tuple[list[str], list[tuple[str, ...]]]:
        async with SqliteStore(db) as store:
            query = "[:find ?l :in $ ?tag :where [?l :learning/tags ?tag]]"
            return await store.keys("learning/"), await store.query(query, Keyword("clojure"))

    keys, by_tag = asyncio.run(read(data / "garrison.db"))
    assert keys == ["learning/l1", "learning/l2", "learning/l3"]  # no learning/tag-index
    assert sorted(by_tag) == [("learning/l1",), ("learning/l2",)]  # what it held

    # Validation expects the dropped keys missing, and still reports every other one.
    async def lose_a_record(db: Path) -> None:
        async with SqliteStore(db) as store:
            await store.delete("learning/l2")

    asyncio.run(lose_a_record(data / "garrison.db"))
    assert main(["validate", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "missing in the database (only in the EDN file): 1" in out
    assert "  learning/l2" in out
    assert "learning/tag-index" not in out.split("missing in the database")[1]
    # The same database validated as if the keys had been kept: both are missing.
    assert main(["validate", "--config", str(config), "--index-keys", "keep"]) == 1
    out = capsys.readouterr().out
    assert "missing in the database (only in the EDN file): 2" in out
    assert "  learning/tag-index" in out
