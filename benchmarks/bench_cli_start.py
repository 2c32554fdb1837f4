"""Start-up cost of the ``garrison`` command against a bare interpreter.

Runs, in alternated rounds (so a change in machine load hits every command
alike), each of:

- ``python -c pass``: the interpreter alone, the floor;
- ``garrison probe ready --url URL``: against a tiny HTTP server in this
  process answering ``/readyz`` with a health document;
- ``garrison probe ready --config FILE``: the address from the config's
  ``[health]`` table;
- ``garrison --help``;
- ``garrison version`` (imports the codec and the value encoder).

Prints each command's median wall time, and its ratio to the bare interpreter.

    .venv-test/bin/python benchmarks/bench_cli_start.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "pass"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/health+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        del args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    options = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    python = sys.executable
    garrison = [str(Path(python).with_name("garrison"))]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "garrison.toml"
        config.write_text(f"[health]\nport = {server.server_address[1]}\n", encoding="utf-8")
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "garrison probe ready --url URL": [*garrison, "probe", "ready", "--url", url],
            "garrison probe ready --config FILE": [
                *garrison,
                "probe",
                "ready",
                "--config",
                str(config),
            ],
            "garrison --help": [*garrison, "--help"],
            "garrison version": [*garrison, "version"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.rounds):
            for name, argv in commands.items():
                start = time.perf_counter()
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=tmp)
                times[name].append(time.perf_counter() - start)
    server.shutdown()
    print(machine())
    print(f"{options.rounds} alternated rounds; median wall time per run")
    floor = statistics.median(times["python -c pass"])
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"{name:<40} {median * 1000:8.1f} ms   {median / floor:5.1f}x bare interpreter")


if __name__ == "__main__":
    main()
