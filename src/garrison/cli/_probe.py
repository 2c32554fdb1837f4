"""``garrison probe``: check a running garrison's health, for exec probes and Docker HEALTHCHECK.

Only the standard library is imported (and the config loader when the
address comes from the config), so the command is cheap enough to run every
few seconds under an exec probe's one-second timeout.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from garrison._status_format import PROBES, read_status_file
from garrison.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    CommandError,
    Parser,
    config_path,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["probe_file", "probe_url", "register"]

_PATHS = {"live": "/livez", "ready": "/readyz", "startup": "/startupz"}
_DEFAULT_MAX_AGE = 30.0

_DESCRIPTION = """\
Ask a running garrison whether it is live, ready or started, over HTTP
(--url) or from the status file it writes (--file). Without either, the
address comes from the config's [health] table: http://HOST:PORT, or
status_file when serve = false.

probes:
  live      the process is not stuck (restart it if this fails)
  ready     it can take traffic now (the default)
  startup   its components have started (and a blocking migration is done)

exit status: 0 pass (or warn); 1 fail; 2 bad usage or config;
             3 no answer (server unreachable, not a probe endpoint, status
             file missing, unreadable or stale)

examples:
  garrison probe ready --url http://127.0.0.1:8090
  garrison probe live --file /run/myapp/health.json --max-age 30
  garrison probe startup --config /etc/myapp/garrison.toml
  garrison probe ready --verbose --json    # the whole health document
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``probe`` command to the ``garrison`` CLI."""
    parser: Parser = subparsers.add_parser(
        "probe",
        help="check a running garrison's live, ready or startup probe",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "probe", nargs="?", choices=PROBES, default="ready", help="live, ready (default) or startup"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="base URL of the probe server, e.g. http://127.0.0.1:8090")
    source.add_argument(
        "--file", metavar="PATH", help="status file written by the runtime ([health] status_file)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="HTTP timeout (default 2)",
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="oldest acceptable status file (default: 3 write intervals, else 30)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print the whole health document, every check"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``garrison probe`` with parsed arguments; returns the exit status."""
    url, path = args.url, args.file
    if url is None and path is None:
        url, path = _from_config(args)
    if path is not None:
        return probe_file(
            path, args.probe, max_age=args.max_age, verbose=args.verbose, as_json=args.json,
            quiet=args.quiet,
        )  # fmt: skip
    return probe_url(
        url, args.probe, timeout=args.timeout, verbose=args.verbose, as_json=args.json,
        quiet=args.quiet,
    )  # fmt: skip


def _from_config(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The probe server's URL (or the status file) that the config's ``[health]`` names."""
    from garrison.cli._common import load  # noqa: PLC0415 - the config only when needed

    path = config_path(args)
    health = load(args).sections.get("health", {})
    where = f"[health] in {path}"
    if health.get("serve", True) is False:
        status_file = health.get("status_file")
        if not isinstance(status_file, str) or not status_file:
            raise CommandError(
                f"{where}: serve = false and no status_file: nothing to probe",
                2,
                hint="pass --url or --file",
            )
        return None, status_file
    host, port = health.get("host", "127.0.0.1"), health.get("port", 0)
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        raise CommandError(f"{where}: host must be a string and port an integer", 2)
    if port == 0:
        raise CommandError(
            f"{where}: port is 0 (a free port is picked at each start), so the address is unknown",
            2,
            hint="pass --url with the port the runtime logged, or set [health] port",
        )
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - listening everywhere: ask locally
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}", None


def probe_url(
    url: str,
    probe: str = "ready",
    *,
    timeout: float = 2.0,
    verbose: bool = False,
    as_json: bool = False,
    quiet: bool = False,
) -> int:
    """Ask the probe server at ``url`` (base URL or the probe's own URL); return the exit code."""
    target = url.rstrip("/")
    if not target.endswith((*_PATHS.values(), "/healthz")):
        target += _PATHS[probe]
    if verbose:
        target += "?verbose"
    try:
        status, body = _http_get(target, timeout)
    except ValueError as exc:
        raise CommandError(f"--url {url!r}: {exc}", 2) from None
    except OSError as exc:
        return _unknown(f"cannot reach {target}: {exc.strerror or exc}", as_json=as_json)
    if status not in {200, 503}:
        return _unknown(
            f"{target} answered HTTP {status}: not a garrison probe endpoint", as_json=as_json
        )
    try:
        doc: Any = json.loads(body)
    except ValueError:
        doc = {"status": "pass" if status == 200 else "fail"}
    if not isinstance(doc, dict):
        doc = {"status": "pass" if status == 200 else "fail"}
    return _verdict(probe, doc, ok=status == 200, verbose=verbose, as_json=as_json, quiet=quiet)


def _http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """GET ``url`` with HTTP/1.0; the status and the body.

    A plain socket rather than ``http.client`` or ``urllib``: importing those
    costs more than the rest of the command (an exec probe runs this every
    few seconds). HTTP/1.0 with ``Connection: close`` keeps the answer simple
    to read: no chunked encoding, the body ends where the connection does.
    Raises ``ValueError`` for a URL that is not ``http(s)://host[:port]/...``
    and ``OSError`` when the server cannot be reached or answers garbage.
    """
    import socket  # noqa: PLC0415 - not needed for --file
    from urllib.parse import urlsplit  # noqa: PLC0415 - ditto

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("not an http:// or https:// URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\n"
        "Accept: application/health+json\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection((host, port), timeout=timeout) as raw:
        conn = raw
        if parts.scheme == "https":
            import ssl  # noqa: PLC0415 - only for https

            conn = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if (
        len(status_line) < 2
        or not status_line[0].startswith(b"HTTP/")
        or not status_line[1].isdigit()
    ):
        raise OSError(f"not an HTTP answer: {head[:60]!r}")
    return int(status_line[1]), body


def probe_file(
    path: str,
    probe: str = "ready",
    *,
    max_age: float | None = None,
    verbose: bool = False,
    as_json: bool = False,
    quiet: bool = False,
) -> int:
    """Check ``probe`` in the status file at ``path`` and its freshness; return the exit code."""
    from datetime import datetime  # noqa: PLC0415 - not needed for --url

    try:
        doc = read_status_file(path)
        written = datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00"))
    except OSError as exc:
        return _unknown(f"cannot read status file {path}: {exc.strerror or exc}", as_json=as_json)
    except ValueError as exc:
        return _unknown(str(exc), as_json=as_json)
    if doc.get("stopped") is True:
        # A clean stop wrote this last document: a definite "no", however old.
        return _verdict(
            probe,
            {"status": "fail", "output": f"the runtime stopped at {doc['time']}"},
            ok=False,
            verbose=verbose,
            as_json=as_json,
            quiet=quiet,
        )
    if max_age is None:
        interval = doc.get("interval")
        max_age = 3 * float(interval) if isinstance(interval, int | float) else _DEFAULT_MAX_AGE
    age = time.time() - written.timestamp()
    if age > max_age:
        return _unknown(
            f"status file {path} is stale: written {age:.1f}s ago (max age {max_age:g}s); "
            "the runtime is gone or its loop is stuck",
            as_json=as_json,
        )
    report = doc["probes"].get(probe)
    if not isinstance(report, dict):
        return _unknown(f"status file {path} has no {probe!r} probe", as_json=as_json)
    ok = report.get("status") in {"pass", "warn"}
    return _verdict(probe, report, ok=ok, verbose=verbose, as_json=as_json, quiet=quiet)


def _verdict(
    probe: str, doc: dict[str, Any], *, ok: bool, verbose: bool, as_json: bool, quiet: bool
) -> int:
    status = doc.get("status", "pass" if ok else "fail")
    if as_json:
        # The document as answered: short (statuses, reason codes) or, with
        # --verbose, the whole one.
        sys.stdout.write(json.dumps({"probe": probe, **doc}, indent=2) + "\n")
    elif not quiet:
        line = f"{probe}: {status}"
        detail = doc.get("output") or doc.get("reason") or _check_reasons(doc)
        if detail:
            line += f" ({detail})"
        sys.stdout.write(line + "\n")
        if verbose:
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return EXIT_OK if ok else EXIT_FAILED


def _check_reasons(doc: dict[str, Any]) -> str:
    """``"database: check_timeout, cache: not_running"``: the reason of each check not passing."""
    checks = doc.get("checks")
    if not isinstance(checks, dict):
        return ""
    reasons = []
    for name, entries in checks.items():
        entry = entries[0] if isinstance(entries, list) and entries else None
        if isinstance(entry, dict) and entry.get("reason"):
            reasons.append(f"{name}: {entry['reason']}")
    return ", ".join(reasons)


def _unknown(message: str, *, as_json: bool) -> int:
    if as_json:
        doc = {"error": message, "status": EXIT_UNAVAILABLE, "command": "probe"}
        sys.stderr.write(json.dumps(doc) + "\n")
    else:
        sys.stderr.write(f"garrison probe: {message}\n")
    return EXIT_UNAVAILABLE
