"""``garrison schema check`` and the CLI's writes under a schema, on a migrated legacy file."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from garrison.cli import main
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

MEMORY_EDN = """{:session/s1 {:session/id "s1" :session/user-id "u1"}
 :session/s2 {:session/id "s2" :session/user-id 2}
 :session/s3 {:session/id "s1"}
 :presence/p1 {:presence/session :session/s1}
 :presence/p2 {:presence/session :session/gone}
 :project/p1 {:project/owner "u1"}
 :project/p2 {:project/name "x"}}"""

SCHEMA = """
# presence/... keys are of kind session too (the kind mapping)
[components.database.schema.session]
":session/id" = { type = "string", unique = true }
":session/user-id" = { type = "string" }
":presence/session" = { reference = true }

[components.database.schema.project]
":project/owner" = { type = "string", required = true }
"""


def _setup(tmp_path: Path, mode: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    config = tmp_path / "garrison.toml"
    config.write_text(f'[runtime]\ndata_dir = "{data}"\n\n[components.database]\nmode = "{mode}"\n')
    assert main(["migrate", "--config", str(config), "--quiet"]) == 0
    with config.open("a") as out:
        out.write(SCHEMA)
    return config


EXPECTED = [
    ["presence/p2", ":presence/session", "reference", "session/gone"],
    ["project/p2", ":project/owner", "required", None],
    ["session/s2", ":session/user-id", "type", 2],
    ["session/s3", ":session/id", "unique", "s1"],
]


@pytest.mark.parametrize("mode", ["sqlite-only", "dual-write"])
def test_schema_check_reports_every_violation_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str
) -> None:
    config = _setup(tmp_path, mode)
    capsys.readouterr()
    assert main(["schema", "check", "--json", "--config", str(config)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["clean"], doc["count"]) == (False, 4)
    found = sorted([v["key"], v["attribute"], v["rule"], v["value"]] for v in doc["violations"])
    assert found == EXPECTED
    assert main(["schema", "check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "session/s2 :session/user-id type: 2 (must be a string)" in out
    assert "project/p2 :project/owner required (the entity has no value)\n" in out
    assert out.endswith("4 violations\n")


def test_writes_are_refused_until_the_data_keeps_the_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _setup(tmp_path, "sqlite-only")
    capsys.readouterr()
    # The database component does not start on data that breaks the new schema.
    assert main(["put", "project/p2", "{}", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "breaks the configured schema in 4 places" in err
    assert "garrison schema check" in err
    # Fixed with the previous config (the schema removed), the data keeps it.
    text = config.read_text()
    config.write_text(text.replace(SCHEMA, ""))
    for key, value in [
        ("session/s2", '{:session/id "s2" :session/user-id "u2"}'),
        ("session/s3", '{:session/id "s3" :session/user-id "u3"}'),
        ("presence/p2", "{:presence/session :session/s2}"),
        ("project/p2", '{:project/owner "u2"}'),
    ]:
        assert main(["put", key, value, "--syntax", "edn", "--config", str(config)]) == 0
    config.write_text(text)
    assert main(["schema", "check", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith("the data keeps the schema\n")
    # Now the schema is applied, and a put that breaks it is refused by name.
    assert main(["put", "project/p3", '{"x": 1}', "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "project/p3: :project/owner breaks rule required" in err
    assert main(["get", "project/p3", "--config", str(config)]) == 1  # not written


async def test_schema_check_runs_beside_a_running_garrison(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = await asyncio.to_thread(_setup, tmp_path, "sqlite-only")
    capsys.readouterr()
    # A runtime without the schema holds the database (and its lock) meanwhile.
    async with database_runtime(tmp_path / "data"):
        status = await asyncio.to_thread(main, ["schema", "check", "--config", str(config)])
    assert status == 1
    assert capsys.readouterr().out.endswith("4 violations\n")
