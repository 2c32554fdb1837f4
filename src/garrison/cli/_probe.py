"""``garrison probe``: check a running garrison's health, for exec probes and Docker HEALTHCHECK.

::

    garrison probe ready --url http://127.0.0.1:8080 [--timeout 2]
    garrison probe live --file /run/myapp/health.json [--max-age 30]

Exit status: 0 when the probe passes or warns, 1 when it fails, 2 when the
answer cannot be had (server unreachable, not a probe endpoint, status file
missing, unreadable or stale). One line goes to stdout (``ready: pass``) or,
for exit 2, to stderr. Only the standard library is used, so the command is
cheap enough to run every few seconds.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import TYPE_CHECKING, Any

from garrison.runtime._probes import PROBES
from garrison.runtime._status_file import read_status_file

if TYPE_CHECKING:
    import argparse

__all__ = ["probe_file", "probe_url", "register"]

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_UNKNOWN = 2

_PATHS = {"live": "/livez", "ready": "/readyz", "startup": "/startupz"}
_DEFAULT_MAX_AGE = 30.0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``probe`` command to the ``garrison`` CLI."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "probe",
        help="check a running garrison's live/ready/startup probe (exit 0 ok, 1 fail, 2 unknown)",
        description=__doc__.split("::")[0].strip() if __doc__ else None,
    )
    parser.add_argument("probe", nargs="?", choices=PROBES, default="ready")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="base URL of the probe server, e.g. http://127.0.0.1:8080")
    source.add_argument("--file", help="status file written by the runtime ([health] status_file)")
    parser.add_argument(
        "--timeout", type=float, default=2.0, help="HTTP timeout in seconds (default 2)"
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=None,
        help="oldest acceptable status file, in seconds (default: 3 write intervals, else 30)",
    )
    parser.add_argument("--verbose", action="store_true", help="print the whole health document")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``garrison probe`` with parsed arguments; returns the exit status."""
    if args.file is not None:
        return probe_file(args.file, args.probe, max_age=args.max_age, verbose=args.verbose)
    return probe_url(args.url, args.probe, timeout=args.timeout, verbose=args.verbose)


def probe_url(
    url: str, probe: str = "ready", *, timeout: float = 2.0, verbose: bool = False
) -> int:
    """Ask the probe server at ``url`` (base URL or the probe's own URL); return the exit code."""
    target = url.rstrip("/")
    if not target.endswith((*_PATHS.values(), "/healthz")):
        target += _PATHS[probe]
    if verbose:
        target += "?verbose"
    request = urllib.request.Request(target, headers={"Accept": "application/health+json"})  # noqa: S310 - the operator gives the URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - ditto
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return _unknown(f"cannot reach {target}: {reason}")
    if status not in {200, 503}:
        return _unknown(f"{target} answered HTTP {status}: not a garrison probe endpoint")
    try:
        doc: Any = json.loads(body)
    except ValueError:
        doc = {"status": "pass" if status == 200 else "fail"}
    if not isinstance(doc, dict):
        doc = {"status": "pass" if status == 200 else "fail"}
    return _verdict(probe, doc, ok=status == 200, verbose=verbose)


def probe_file(
    path: str, probe: str = "ready", *, max_age: float | None = None, verbose: bool = False
) -> int:
    """Check ``probe`` in the status file at ``path`` and its freshness; return the exit code."""
    try:
        doc = read_status_file(path)
        written = datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00"))
    except OSError as exc:
        return _unknown(f"cannot read status file {path}: {exc.strerror or exc}")
    except ValueError as exc:
        return _unknown(str(exc))
    if doc.get("stopped") is True:
        # A clean stop wrote this last document: a definite "no", however old.
        return _verdict(
            probe,
            {"status": "fail", "output": f"the runtime stopped at {doc['time']}"},
            ok=False,
            verbose=verbose,
        )
    if max_age is None:
        interval = doc.get("interval")
        max_age = 3 * float(interval) if isinstance(interval, int | float) else _DEFAULT_MAX_AGE
    age = time.time() - written.timestamp()
    if age > max_age:
        return _unknown(
            f"status file {path} is stale: written {age:.1f}s ago (max age {max_age:g}s); "
            "the runtime is gone or its loop is stuck"
        )
    report = doc["probes"].get(probe)
    if not isinstance(report, dict):
        return _unknown(f"status file {path} has no {probe!r} probe")
    ok = report.get("status") in {"pass", "warn"}
    return _verdict(probe, report, ok=ok, verbose=verbose)


def _verdict(probe: str, doc: dict[str, Any], *, ok: bool, verbose: bool) -> int:
    status = doc.get("status", "pass" if ok else "fail")
    line = f"{probe}: {status}"
    detail = doc.get("output") or doc.get("reason") or _check_reasons(doc)
    if detail:
        line += f" ({detail})"
    sys.stdout.write(line + "\n")
    if verbose:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return EXIT_OK if ok else EXIT_FAIL


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


def _unknown(message: str) -> int:
    sys.stderr.write(f"garrison probe: {message}\n")
    return EXIT_UNKNOWN
