"""``garrison reindex``: the configured kind mapping applied to rows written before it."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from garrison.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _kinds(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT key, kind FROM entries"))
    conn.close()
    return rows


def test_reindex_applies_the_configured_mapping(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "garrison.toml"
    base = f'[runtime]\ndata_dir = "{data}"\n\n[components.database]\nmode = "sqlite-only"\n'
    config.write_text(base)
    for key in ("webhook/w1", "presence/p1", "user/u1"):
        assert main(["put", key, "{:a 1}", "--config", str(config), "--quiet"]) == 0
    db = data / "garrison.db"
    assert _kinds(db) == {"webhook/w1": "cache", "presence/p1": "session", "user/u1": "cache"}
    assert main(["reindex", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"changed": 0}  # the same mapping
    config.write_text(base + 'kinds = { namespaces = { webhook = "hook", user = "user" } }\n')
    assert main(["reindex", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "2 rows changed kind\n"
    assert _kinds(db) == {"webhook/w1": "hook", "presence/p1": "session", "user/u1": "user"}
    # Live writes classify by the same mapping: a rewrite does not flip a kind back.
    assert main(["put", "webhook/w1", "{:a 2}", "--config", str(config), "--quiet"]) == 0
    assert main(["put", "webhook/w2", "{:a 3}", "--config", str(config), "--quiet"]) == 0
    assert _kinds(db)["webhook/w1"] == "hook"
    assert _kinds(db)["webhook/w2"] == "hook"
