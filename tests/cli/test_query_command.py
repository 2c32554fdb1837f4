"""``garrison query``: a migrated legacy file answered from the database, from the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from garrison.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

MEMORY_EDN = """{:session/s1 {:session/user-id "u1"}
 :session/s2 {:session/user-id "u2"}
 :presence/p1 {:presence/session :session/s1}
 :learning/l1 {:learning/tags #{:clojure} :learning/score 0.9}}"""


def _setup(tmp_path: Path, mode: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{data}"\n\n[components.database]\nmode = "{mode}"\n\n'
        '[components.database.schema.learning]\n":learning/tags" = { indexed = true }\n'
    )
    assert main(["migrate", "--config", str(config), "--quiet"]) == 0
    return config


def test_query_prints_tuples_json_and_the_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _setup(tmp_path, "dual-write")
    capsys.readouterr()
    who = "[:find ?p :in $ ?u :where [?s :session/user-id ?u] [?p :presence/session ?s]]"
    assert main(["query", who, '"u1"', "--config", str(config)]) == 0
    assert capsys.readouterr().out == '["presence/p1"]\n'
    query = "[:find ?s ?u :where [?s :session/user-id ?u]]"
    assert main(["query", query, "--json", "--config", str(config)]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert sorted(rows) == [["session/s1", "u1"], ["session/s2", "u2"]]
    count = "[:find (count ?l) :where [?l :learning/tags :clojure]]"
    assert main(["query", "--explain", count, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SELECT count(")
    assert "uses indexes only" in out  # garrison migrate indexed the configured attribute
    undeclared = "[:find ?s :where [?s :session/user-id _]]"
    assert main(["query", "--explain", undeclared, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "scans a table" in out
    assert "read from the stored JSON: :session/user-id" in out


def test_a_bad_query_names_the_clause_and_edn_only_names_the_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _setup(tmp_path, "dual-write")
    capsys.readouterr()
    assert main(["query", "[:find ?x :where [?l :a ?v]]", "--config", str(config)]) == 2
    assert ":find: ?x is not bound" in capsys.readouterr().err
    edn_only = tmp_path / "edn-only.toml"
    edn_only.write_text(config.read_text().replace("dual-write", "edn-only"))
    assert main(["mode", "set", "edn-only", "--config", str(edn_only), "--quiet"]) == 0
    assert main(["query", "[:find ?s :where [?s :a 1]]", "--config", str(edn_only)]) == 3
    assert "garrison mode set dual-write" in capsys.readouterr().err
