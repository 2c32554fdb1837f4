"""Every Python snippet in docs/ runs, each as its own program in a fresh directory;
every ``garrison`` command line in the docs names real commands and options.

A snippet that is a whole program runs as printed. A fragment (one that
awaits at the top level, or uses the application's own names such as
``Greeter`` or ``rows``) runs inside a harness that supplies only those: the
snippet's own imports must be enough for every garrison name it uses. A line
``expression  # value`` states the expression's value and is checked.
A new snippet fails :func:`test_every_python_snippet_has_a_test` until it
gets a test here. A line of a shell block that is a whole command (no
``[option]`` or placeholder) must parse as the ``garrison`` command would.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: The probe port of the packaged default config is taken by nothing here.
ENV = {**os.environ, "GARRISON_HEALTH__PORT": "0"}


def _snippets() -> dict[tuple[str, int], str]:
    found: dict[tuple[str, int], str] = {}
    for page in sorted(DOCS.glob("*.md")):
        blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)
        for index, code in enumerate(blocks):
            found[page.name, index] = code
    return found


SNIPPETS = _snippets()


def _checked(code: str) -> str:
    """``expr  # value`` lines become ``assert expr == value``."""
    return "\n".join(_checked_line(line) for line in code.splitlines()) + "\n"


def _checked_line(line: str) -> str:
    match = re.fullmatch(r"(\s*)(.+?)\s+#\s+(.+)", line)
    if match is None:
        return line
    indent, expression, comment = match.groups()
    try:
        ast.parse(expression, mode="eval")
        expected = ast.literal_eval(comment)
    except (SyntaxError, ValueError):
        return line  # a statement, or a comment that is not a value
    return f"{indent}assert ({expression}) == {expected!r}, {expression!r}"


def _run(code: str, cwd: Path) -> str:
    program = cwd / "snippet.py"
    program.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _async_main(code: str, before: str = "", inside: str = "") -> str:
    """``code`` (which awaits at the top level) as the body of an async main."""
    body = textwrap.indent(code, "    " * (2 if inside else 1))
    return (
        "import asyncio\n"
        + textwrap.dedent(before)
        + "\n\nasync def main() -> None:\n"
        + (f"    {inside}\n" if inside else "")
        + body
        + "\n\nasyncio.run(main())\n"
    )


COVERED = {
    ("edn.md", 0),
    ("embedding.md", 0),
    ("embedding.md", 1),
    ("embedding.md", 2),
    ("embedding.md", 3),
    ("embedding.md", 4),
    ("migration.md", 0),
    ("queries.md", 0),
    ("queries.md", 1),
    ("storage.md", 0),
    ("storage.md", 1),
    ("storage.md", 2),
    ("telemetry.md", 0),
}


def test_every_python_snippet_has_a_test() -> None:
    assert set(SNIPPETS) == COVERED


def test_edn_snippet_states_its_values(tmp_path: Path) -> None:
    code = _checked(SNIPPETS["edn.md", 0])
    assert code.count("assert ") == 2
    _run(code, tmp_path)


def test_plain_asyncio_program_runs_with_the_default_config_search(tmp_path: Path) -> None:
    out = _run(SNIPPETS["embedding.md", 0], tmp_path)
    status, report = out.split(" ", 1)
    assert status == "pass"
    assert "greeter" in report
    # No config/garrison.toml here: the packaged default, whose data is ./data.
    assert (tmp_path / "data" / "garrison.db").is_file()


def test_serving_health_program_serves_probes_until_sigterm(tmp_path: Path) -> None:
    greeter = "from garrison.runtime import Component\n\n\nclass Greeter(Component):\n"
    greeter += '    name = "greeter"\n\n\n'
    program = tmp_path / "snippet.py"
    program.write_text(greeter + SNIPPETS["embedding.md", 1], encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(program)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the snippet prints it
        assert line.startswith("probes at http://127.0.0.1:"), process.stderr
        url = line.split()[-1]
        with urllib.request.urlopen(f"{url}/readyz", timeout=10) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


STARLETTE_CLIENT = """

from starlette.testclient import TestClient

with TestClient(app) as client:
    print(client.get("/health/readyz").status_code, {probe})
"""


def test_starlette_lifespan_app_answers_through_its_routes(tmp_path: Path) -> None:
    client = STARLETTE_CLIENT.format(probe='client.get("/").json()')
    out = _run(SNIPPETS["embedding.md", 2] + client, tmp_path)
    assert out.strip() == "200 {'ready': True}"


def test_lifespan_with_its_own_probe_port_is_ready_and_drains(tmp_path: Path) -> None:
    client = STARLETTE_CLIENT.format(probe="app.state.runtime.component_names")
    out = _run(SNIPPETS["embedding.md", 3] + client, tmp_path)
    assert out.strip() == "200 ['telemetry', 'database', 'migrator']"


def test_component_health_check_reports_its_latency(tmp_path: Path) -> None:
    harness = """

import asyncio
import json

import garrison
from garrison.health import evaluate


async def main() -> None:
    config = {"components": {"database": {}}}
    async with garrison.open_runtime(config, components=[Cache], data_dir="data") as rt:
        print(json.dumps((await evaluate(rt, "ready")).to_dict(verbose=True)))


asyncio.run(main())
"""
    report = json.loads(_run(SNIPPETS["embedding.md", 4] + harness, tmp_path))
    assert report["status"] == "pass"
    (latency,) = report["checks"]["cache:latency"]
    assert latency["observedUnit"] == "ms"
    assert latency["status"] == "pass"


def test_online_migration_snippet_migrates_and_validates(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "memory.edn").write_text(
        '{:session/a {:user 1}, :session/b #{1 2}, :project/p "x"}', encoding="utf-8"
    )
    before = """
        import garrison

        CONFIG = {"components": {"database": {"mode": "dual-write"}, "migrator": {}}}
    """
    inside = 'async with garrison.open_runtime(CONFIG, data_dir="data") as rt:'
    code = _async_main(SNIPPETS["migration.md", 0], before, inside)
    code += "print('migrated')\n"
    assert _run(code, tmp_path).strip() == "migrated"


def test_sqlite_store_snippet_runs_its_calls(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "backups").mkdir()
    before = """
        import datetime

        now = datetime.datetime.now(datetime.UTC)
        started_at = now.isoformat()
        rows = [(f"session/{i}", {"user_id": i}) for i in range(3)]
        yesterday = now - datetime.timedelta(days=1)
        last_seen, last_seq = yesterday, 0
    """
    after = "    print(len(page), [key for key, _ in mine], then, len(feed))\n"
    code = _async_main(SNIPPETS["storage.md", 0] + after, before)
    # Four sessions, one of user 42, none yesterday, four changes since.
    assert _run(code, tmp_path).strip() == "4 ['session/abc'] None 4"
    assert (tmp_path / "backups" / "garrison-2024-05-01.db").is_file()


def test_acting_as_snippet_records_its_actor(tmp_path: Path) -> None:
    before = """
        from garrison.stores import SqliteStore
    """
    code = _async_main(
        SNIPPETS["storage.md", 1]
        + '    print([(c.op, c.actor, c.reason) for c in await store.history("user/42")])\n',
        before,
        inside='async with SqliteStore("a.db") as store:\n        await store.put("user/42", 1)',
    )
    assert _run(code, tmp_path).strip() == (
        "[('put', 'app', None), ('delete', 'user:42', 'gdpr request')]"
    )


def test_live_query_snippet_renders_each_result(tmp_path: Path) -> None:
    program = (
        textwrap.dedent("""
        import asyncio

        from garrison import open_runtime
        from garrison.components.database import Store

        seen = []


        class Done(Exception):
            pass


        async def main() -> None:
            config = {"runtime": {"data_dir": "data"}, "components": {"database": {}}}
            async with open_runtime(config, environ={}) as rt:
                store = rt.get(Store)
                await store.put("todo/1", "write docs")

                def render(todos):
                    seen.append(todos)
                    if len(seen) == 2:
                        raise Done
                    asyncio.ensure_future(store.put("todo/2", "test them"))

                try:
        """)
        + textwrap.indent(SNIPPETS["storage.md", 2], " " * 12)
        + textwrap.dedent("""
                except Done:
                    print(seen)

        asyncio.run(main())
        """)
    )
    assert _run(program, tmp_path).strip() == (
        "[[('todo/1', 'write docs')], [('todo/1', 'write docs'), ('todo/2', 'test them')]]"
    )


def test_query_snippet_answers_the_join(tmp_path: Path) -> None:
    before = """
        from garrison.edn import loads
        from garrison.stores import SqliteStore

        DATA = loads(
            '{:session/s1 {:session/user-id "u1"} :session/s2 {:session/user-id "u2"} '
            ':learning/l1 {:learning/session :session/s1 :learning/score 0.9 '
            ':learning/tags #{:clojure}} '
            ':learning/l2 {:learning/session :session/s2 :learning/score 0.1 '
            ':learning/tags #{:clojure}}}'
        )
    """
    inside = (
        'async with SqliteStore("g.db") as store:\n'
        "        await store.put_many([(k.text, v) for k, v in DATA.items()])"
    )
    code = _async_main(SNIPPETS["queries.md", 0] + "print(rows)\n", before, inside)
    # Only l1 scores above 0.5: its session and that session's user.
    assert _run(code, tmp_path).strip() == "[('session/s1', 'u1')]"


def test_datalog_live_query_snippet_yields_each_new_answer(tmp_path: Path) -> None:
    program = (
        textwrap.dedent("""
        import asyncio

        from garrison import open_runtime
        from garrison.components.database import Store
        from garrison.edn import loads

        seen = []


        class Done(Exception):
            pass


        async def main() -> None:
            config = {"runtime": {"data_dir": "data"}, "components": {"database": {}}}
            async with open_runtime(config, environ={}) as rt:
                store = rt.get(Store)
                await store.put("session/s1", loads('{:session/user-id "u1"}'))

                def show_present(rows):
                    seen.append(rows)
                    if len(seen) == 2:
                        raise Done
                    here = loads("{:presence/session :session/s1}")
                    asyncio.ensure_future(store.put("presence/p1", here))

                try:
        """)
        + textwrap.indent(SNIPPETS["queries.md", 1], " " * 12)
        + textwrap.dedent("""
                except Done:
                    print(seen)

        asyncio.run(main())
        """)
    )
    assert _run(program, tmp_path).strip() == "[[], [('presence/p1',)]]"


@pytest.mark.parametrize("key", sorted(COVERED))
def test_snippet_imports_every_garrison_name_it_uses(key: tuple[str, int]) -> None:
    code = SNIPPETS[key]
    tree = ast.parse(code if "await" not in code else _async_main(code))
    imported = {
        alias.asname or alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    defined = {
        node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef | ast.FunctionDef)
    }
    import garrison.runtime

    public = set(garrison.__all__) | set(garrison.runtime.__all__)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert {name for name in used & public if name not in defined} <= imported


def _command_lines() -> list[tuple[str, str, bool]]:
    """Every ``garrison ...`` the docs show: (page, text, whether a shell block runs it).

    Inline code (```garrison probe --file```) may name a command with some of
    its options only; a line of a shell block is a whole command.
    """
    found: list[tuple[str, str, bool]] = []
    for path in [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"^```(?:sh|bash)\n(.*?)^```", text, re.M | re.S):
            joined = block.replace("\\\n", " ")
            found += [(path.name, line, True) for line in joined.splitlines()]
        found += [(path.name, span, False) for span in re.findall(r"`(garrison [^`]+)`", text)]
    lines = []
    for page, line, whole in found:
        start = line.find("garrison ")
        if start >= 0 and not line[:start].rstrip().endswith(("/", ".")):
            command = line[start:].split("#")[0].split(" > ")[0].strip()
            if line[:start].endswith("<("):  # source <(garrison completion bash)
                command = command.removesuffix(")")
            lines.append((page, command, whole))
    return lines


COMMAND_LINES = _command_lines()


def test_the_docs_show_command_lines() -> None:
    pages = {page for page, _, _ in COMMAND_LINES}
    assert {"operations.md", "migration.md"} <= pages
    assert len(COMMAND_LINES) > 50


@pytest.mark.parametrize(("page", "line", "whole"), COMMAND_LINES)
def test_every_command_line_in_the_docs_names_real_commands_and_options(
    page: str, line: str, *, whole: bool
) -> None:
    from garrison.cli import COMMANDS, build_parser

    try:
        words = shlex.split(line)[1:]
    except ValueError:  # an unbalanced quote in a synopsis
        words = line.split()[1:]
    # The first command named ("garrison --config X stats"; "migrate/validate" is two).
    names = [part for w in words if not w.startswith("-") for part in w.split("/")]
    command = next((name for name in names if name in COMMANDS), None)
    assert command is not None or not names, f"{page}: {line!r} names no garrison command"
    top, commands = build_parser(command)
    parser = commands[command] if command is not None else top
    known = {option for action in parser._actions for option in action.option_strings}
    known |= {option for action in top._actions for option in action.option_strings}
    for word in words:
        flag = word.strip("[]`,.;:()").split("=")[0]
        if flag.startswith("--") and flag != "--":
            assert flag in known, f"{page}: {line!r}: {flag} is not an option of {command}"
    if whole and command is not None and not re.search(r"[\[|]|\.\.\.|…|\b[A-Z]{3,}\b| / ", line):
        # A whole command line (no synopsis brackets or placeholders): it parses.
        args, extra = top.parse_known_args(words)
        assert (args.command, extra) == (command, []), line


def test_telemetry_snippet_serves_metrics_beside_the_probes(tmp_path: Path) -> None:
    client = """

from starlette.testclient import TestClient

with TestClient(app) as client:
    metrics = client.get("/metrics")
    ready = client.get("/readyz")
    print(ready.status_code, metrics.status_code, "OTEL_METRICS_EXPORTER" in metrics.text)
"""
    out = _run(SNIPPETS["telemetry.md", 0] + client, tmp_path)
    # No runtime yet: readiness fails; no Prometheus reader: /metrics says how to turn it on.
    assert out.strip() == "503 404 True"
