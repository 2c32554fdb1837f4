"""A real PostgreSQL server for the tests, started by the suite itself.

:class:`PostgresServer` runs ``initdb`` and ``pg_ctl`` from the installed
server binaries (``PATH``, ``/usr/local/bin``, then Debian's
``/usr/lib/postgresql/<version>/bin``) in a temporary directory, listening on
a unix socket in that directory only, with ``fsync`` off (the tests never
need durability from the server). As root the server runs as the
``postgres`` user (``initdb`` and ``postgres`` refuse root), which owns the
directory. One server serves the whole session (``tests/conftest.py``); each
test gets a database of its own, made from ``template0`` (tens of
milliseconds).

``GARRISON_TEST_POSTGRES_DSN`` names a server to use instead (its user must
be allowed ``CREATE DATABASE``). Without either, PostgreSQL tests are skipped,
except when ``GARRISON_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it): then they
fail, so CI can never pass without running them.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_binaries", "require_postgres"]

#: Seconds ``pg_ctl start`` may take before the fixture fails.
START_TIMEOUT = 60


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None``."""
    found = shutil.which("initdb")
    candidates = [Path(found).parent] if found else []
    candidates.append(Path("/usr/local/bin"))
    candidates.extend(
        Path(path) for path in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    )
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def require_postgres() -> None:
    """Skip the calling test when no PostgreSQL can be had (fail instead in CI)."""
    if os.environ.get("GARRISON_TEST_POSTGRES_DSN") or find_binaries() is not None:
        return
    message = (
        "no PostgreSQL server binaries (initdb, pg_ctl) and no GARRISON_TEST_POSTGRES_DSN "
        "(apt-get install postgresql)"
    )
    if os.environ.get("GARRISON_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"GARRISON_REQUIRE_POSTGRES=1 but {message}")
    pytest.skip(message)


def _as_server_user() -> list[str]:
    """The command prefix that runs the server's tools: as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


class PostgresServer:
    """One PostgreSQL server: started by :meth:`start`, or the one a DSN names."""

    def __init__(self) -> None:
        self.dsn = os.environ.get("GARRISON_TEST_POSTGRES_DSN", "")
        self._directory: Path | None = None
        self._bin: Path | None = None
        self._counter = itertools.count(1)
        self._options = ""

    def start(self, *, durable: bool = False) -> None:
        """Start a server in a temporary directory (unless a DSN was given).

        Tests run it with ``fsync`` and synchronous commits off; ``durable``
        keeps PostgreSQL's defaults (the benchmarks: every commit flushed).
        """
        if self.dsn:
            return
        binaries = find_binaries()
        assert binaries is not None, "require_postgres() first"
        self._bin = binaries
        directory = Path(tempfile.mkdtemp(prefix="garrison-pg-"))
        self._directory = directory
        prefix = _as_server_user()
        if prefix:
            shutil.chown(directory, "postgres")
        data = directory / "data"
        run = [*prefix, str(binaries / "initdb"), "-D", str(data)]
        subprocess.run(
            [*run, "-A", "trust", "--no-sync", "-U", "postgres", "-E", "UTF8", "--locale=C"],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        options = f"-k {directory} -c listen_addresses='' -c max_connections=200"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._options = options
        subprocess.run(
            [
                *prefix,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(directory / "log"),
                "-w",
                "-t",
                str(START_TIMEOUT),
                "-o",
                options,
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT + 5,
        )
        self.dsn = f"postgresql://postgres@/postgres?host={urllib.parse.quote(str(directory))}"

    @property
    def restartable(self) -> bool:
        """Whether this server is the fixture's own (one named by a DSN is left alone)."""
        return self._directory is not None

    def pg_ctl(self, *args: str) -> None:
        """Run ``pg_ctl`` on the fixture's own server (``"stop", "-m", "fast"``, ``"start"``)."""
        directory, binaries = self._directory, self._bin
        assert directory is not None, "not the fixture's own server"
        assert binaries is not None
        subprocess.run(
            [
                *_as_server_user(),
                str(binaries / "pg_ctl"),
                "-D",
                str(directory / "data"),
                "-l",
                str(directory / "log"),
                "-o",
                self._options,
                "-w",
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )

    def stop(self) -> None:
        """Stop the server the fixture started and remove its directory."""
        directory, self._directory = self._directory, None
        if directory is None or self._bin is None:
            return
        try:
            subprocess.run(
                [
                    *_as_server_user(),
                    str(self._bin / "pg_ctl"),
                    "-D",
                    str(directory / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                check=False,
                capture_output=True,
                timeout=START_TIMEOUT,
            )
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def database_dsn(self, name: str) -> str:
        """The server's DSN with the database ``name``."""
        parts = urllib.parse.urlsplit(self.dsn)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    async def create_database(self) -> str:
        """A new, empty database no test of this session used yet; returns its DSN."""
        import asyncpg

        name = f"garrison_test_{os.getpid()}_{next(self._counter)}"
        admin = await asyncpg.connect(self.dsn)
        try:
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        finally:
            await admin.close()
        return self.database_dsn(name)

    async def drop_database(self, dsn: str) -> None:
        """Drop the database of ``dsn`` (made by :meth:`create_database`), connected or not."""
        import asyncpg

        name = urllib.parse.urlsplit(dsn).path.lstrip("/")
        admin = await asyncpg.connect(self.dsn)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
