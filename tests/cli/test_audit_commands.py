"""``garrison history / changes / revert / replay`` as real subprocesses on real files."""

from __future__ import annotations

import asyncio
import getpass
import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from garrison import open_runtime
from garrison.cli import main
from garrison.components.database import Store
from garrison.edn import loads
from garrison.stores import SqliteStore, same_value
from tests.cli._process import Process

if TYPE_CHECKING:
    from pathlib import Path

#: EDN-only values (no JSON form) that the event log must carry exactly.
EDN_VALUES = {
    "v/set": '#{1 1.0 :a "a" nil false}',
    "v/map": "{[1 2] {:k 22/7} 0 false}",
    "v/inst": '#inst "2026-12-04T21:00:00.123Z"',
    "v/misc": '(\\c sym 1.50M 12345678901234567890N #uuid "5b8bd9c0-47e7-4f0e-8d8f-37a4c6d4a1f2")',
    "v/tagged": "#my/tag [:x {:y #{}}]",
}


def config(tmp_path: Path, name: str, mode: str = "sqlite-only") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[runtime]\ndata_dir = "{tmp_path / name}"\n\n[components.database]\nmode = "{mode}"\n',
        encoding="utf-8",
    )
    return path


def garrison(cfg: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli", *args, "--config", str(cfg)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


async def state(path: Path) -> list[tuple[str, object]]:
    async with SqliteStore(path) as store:
        return await store.scan()


async def test_the_event_log_replays_into_an_empty_store(tmp_path: Path) -> None:
    source = config(tmp_path, "source")
    for key, text in EDN_VALUES.items():
        assert garrison(source, "put", key, text, "--syntax", "edn").returncode == 0
    assert garrison(source, "put", "v/map", '["replaced"]').returncode == 0
    assert garrison(source, "delete", "v/tagged").returncode == 0

    log = garrison(source, "changes", "--json")
    assert log.returncode == 0, log.stderr
    lines = [json.loads(line) for line in log.stdout.splitlines()]
    actor = f"cli:{getpass.getuser()}"
    assert [(e["key"], e["op"], e["actor"]) for e in lines] == [
        *((key, "put", actor) for key in EDN_VALUES),
        ("v/map", "put", actor),
        ("v/tagged", "delete", actor),
    ]
    assert isinstance(lines[0]["value"], list)  # the plain JSON form: a set is an array
    assert loads(lines[0]["edn"]) == loads(EDN_VALUES["v/set"])

    target = config(tmp_path, "target")
    replay = garrison(target, "replay", "-", stdin=log.stdout)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == f"replayed {len(lines)} changes from <stdin>\n"
    original = await state(tmp_path / "source" / "garrison.db")
    copy = await state(tmp_path / "target" / "garrison.db")
    assert (
        [k for k, _ in copy] == [k for k, _ in original] == ["v/inst", "v/map", "v/misc", "v/set"]
    )
    for (key, mine), (_, theirs) in zip(original, copy, strict=True):
        assert same_value(mine, theirs), key  # Clojure's equality: 1 and 1.0 stay apart
    # The copy's trail names who made each change, as the log did.
    assert [
        e["actor"]
        for e in map(json.loads, garrison(target, "changes", "--json").stdout.splitlines())
    ] == [actor] * len(lines)


def test_history_changes_and_revert(tmp_path: Path) -> None:
    cfg = config(tmp_path, "data")
    assert garrison(cfg, "put", "doc/a", "1").returncode == 0
    assert garrison(cfg, "put", "doc/b", "2").returncode == 0
    log = [json.loads(line) for line in garrison(cfg, "changes", "--json").stdout.splitlines()]
    moment = log[-1]["at"]
    assert garrison(cfg, "put", "doc/a", "10").returncode == 0
    assert garrison(cfg, "delete", "doc/b").returncode == 0
    assert garrison(cfg, "put", "doc/c", "3").returncode == 0

    history = garrison(cfg, "history", "doc/a")
    assert [line.split("\t")[1:] for line in history.stdout.splitlines()] == [
        ["v1", "put", f"cli:{getpass.getuser()}", "1"],
        ["v2", "put", f"cli:{getpass.getuser()}", "10"],
    ]
    refused = garrison(cfg, "revert", "doc/", "--to", moment)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    naive = garrison(cfg, "revert", "doc/", "--to", moment[:19], "--dry-run")
    assert (naive.returncode, "no zone" in naive.stderr) == (2, True)

    dry = garrison(cfg, "revert", "doc/", "--to", moment, "--dry-run")
    assert dry.stdout.splitlines() == [
        "put\tdoc/a\t10 -> 1",
        "create\tdoc/b\t2",
        "delete\tdoc/c\t3",
        "would change 3 keys",
    ]
    assert garrison(cfg, "get", "doc/c").stdout == "3\n"
    done = garrison(cfg, "revert", "doc/", "--to", moment, "--yes", "--reason", "undo", "--json")
    assert done.returncode == 0, done.stderr
    assert [c["op"] for c in json.loads(done.stdout)["changes"]] == ["put", "put", "delete"]
    assert garrison(cfg, "scan", "doc/").stdout.splitlines() == ["doc/a\t1", "doc/b\t2"]
    trail = garrison(cfg, "changes", "--since", moment).stdout.splitlines()
    assert [line.split("\t")[1] for line in trail] == [
        "put", "delete", "put", "event", "put", "put", "delete"
    ]  # fmt: skip
    assert trail[3].split("\t")[2].startswith("revert prefix 'doc/' to ")
    assert all(line.endswith("(undo)") or "(undo)\t" in line for line in trail[3:])


def test_revert_in_edn_only_mode_says_which_mode_to_switch_to(tmp_path: Path) -> None:
    cfg = config(tmp_path, "legacy", mode="edn-only")
    assert garrison(cfg, "put", "doc/a", "1").returncode == 0
    result = garrison(cfg, "revert", "doc/", "--to", "0", "--yes")
    assert result.returncode == 1
    assert "garrison mode set dual-write" in result.stderr


@pytest.mark.parametrize("line", ['{"op": "put", "key": "a/1"}', "not json"])
def test_replay_names_the_bad_line(tmp_path: Path, line: str) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"op": "event", "event": "x"}\n' + line + "\n", encoding="utf-8")
    result = garrison(config(tmp_path, "data"), "replay", str(log))
    assert result.returncode == 2
    assert f"{log}, line 2: not an event of the log" in result.stderr


def test_watch_prints_the_entries_each_time_a_commit_changes_them(tmp_path: Path) -> None:
    cfg = config(tmp_path, "data")
    assert garrison(cfg, "put", "todo/1", '{"done": false}').returncode == 0
    watcher = Process(
        [sys.executable, "-m", "garrison.cli", "watch", "todo/", "--json", "--config", str(cfg)]
    )
    try:
        watcher.wait_for(r'\{"todo/1":\{"done":false\}\}\n')
        assert garrison(cfg, "put", "other/1", "1").returncode == 0  # not under the prefix
        assert garrison(cfg, "put", "todo/2", '{"done": true}').returncode == 0
        watcher.wait_for(r'"todo/2":\{"done":true\}\}\n')
    finally:
        watcher.close()
    lines = [json.loads(line) for line in watcher.output().splitlines()]
    assert lines == [
        {"todo/1": {"done": False}},
        {"todo/1": {"done": False}, "todo/2": {"done": True}},
    ]


def test_cli_restores_and_mode_switches_are_events_of_the_trail(tmp_path: Path) -> None:
    cfg = config(tmp_path, "data", mode="dual-write")
    assert garrison(cfg, "put", "a/1", "1").returncode == 0
    assert garrison(cfg, "backup", str(tmp_path / "b.db")).returncode == 0
    assert garrison(cfg, "restore", str(tmp_path / "b.db"), "--force").returncode == 0
    switched = garrison(cfg, "mode", "set", "edn-only", "--reason", "rollback")
    assert switched.returncode == 0, switched.stderr
    lines = [json.loads(line) for line in garrison(cfg, "changes", "--json").stdout.splitlines()]
    events = [(e["event"], e["actor"], e["reason"]) for e in lines if e["op"] == "event"]
    assert events[-2:] == [
        (f"restore {tmp_path / 'b.db'}", f"cli:{getpass.getuser()}", None),
        ("mode dual-write -> edn-only", f"cli:{getpass.getuser()}", "rollback"),
    ]


async def test_the_trail_reads_beside_a_running_runtime_and_its_writes_wait_for_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, "data")

    def cli(*args: str) -> tuple[int, str, str]:
        status = main([*args, "--config", str(cfg)])
        out, err = capsys.readouterr()
        return status, out, err

    async with open_runtime(cfg, environ={}) as rt:
        store = rt.get(Store)
        with store.acting_as("app:billing", reason="invoice"):
            await store.put("doc/a", 1)
        moment = time.time()
        await store.put("doc/a", 2)
        history = await asyncio.to_thread(cli, "history", "doc/a")
        assert history[0] == 0, history[2]
        assert [line.split("\t")[1:] for line in history[1].splitlines()] == [
            ["v1", "put", "app:billing (invoice)", "1"],
            ["v2", "put", "app", "2"],
        ]
        by_actor = await asyncio.to_thread(cli, "changes", "--actor", "app:billing")
        assert [line.split("\t")[1:3] for line in by_actor[1].splitlines()] == [["put", "doc/a"]]
        dry = await asyncio.to_thread(cli, "revert", "doc/", "--to", str(moment), "--dry-run")
        assert dry[:2] == (0, "put\tdoc/a\t2 -> 1\nwould change 1 keys\n")
        refused = await asyncio.to_thread(cli, "revert", "doc/", "--to", str(moment), "--yes")
        assert refused[0] == 3
        assert "in use by a running garrison" in refused[2]
        assert await store.get("doc/a") == 2


def test_watch_prints_a_datalog_answer_each_time_a_commit_changes_it(tmp_path: Path) -> None:
    cfg = config(tmp_path, "data")
    assert garrison(cfg, "put", "session/s1", '{:session/user-id "u1"}').returncode == 0
    query = "[:find ?s :in $ ?u :where [?s :session/user-id ?u]]"
    command = ["watch", query, '"u1"', "--json", "--config", str(cfg)]
    watcher = Process([sys.executable, "-m", "garrison.cli", *command])
    try:
        watcher.wait_for(r'\{"rows":\[\["session/s1"\]\]\}\n')
        assert garrison(cfg, "put", "other/1", "1").returncode == 0  # the same answer
        assert garrison(cfg, "put", "session/s2", '{:session/user-id "u1"}').returncode == 0
        watcher.wait_for(r'"session/s2"\]\]\}\n')
    finally:
        watcher.close()
    lines = [json.loads(line) for line in watcher.output().splitlines()]
    assert lines == [
        {"rows": [["session/s1"]]},
        {"rows": [["session/s1"], ["session/s2"]]},
    ]
    bad = garrison(cfg, "watch", "[:find ?x :where [?s :a ?u]]")
    assert bad.returncode == 2
    assert ":find" in bad.stderr
