"""garrison embedded in a plain asyncio program: your own component over the database.

The application component ``visits`` depends on the built-in ``database``. It
records visits in the store (one key per visit) and follows the change feed
to keep a live per-user tally, which its health check reports. The probes are
served on their own port from before the components start until after they
stop; Ctrl-C or SIGTERM fails readiness first, then stops everything.

    python examples/plain_asyncio.py [--data-dir DIR] [--health-port 0] [--visits 5] [--serve]

Without ``--serve`` it records the visits, prints what the store, the change
feed and the probes say, and stops; with ``--serve`` it keeps running until a
signal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import tempfile
from collections import Counter
from dataclasses import dataclass

from garrison.components.database import ChangeEvent, Store, Watch
from garrison.config import build_config
from garrison.health import evaluate, serving_health
from garrison.runtime import CheckResult, Component, Runtime, handler
from garrison.telemetry import configure_logging


@dataclass(frozen=True, slots=True)
class RecordVisit:
    """Message: ``user`` visited; the reply is the visit's number."""

    user: str


@dataclass(frozen=True, slots=True)
class Tally:
    """Message: the reply is the per-user tally built from the change feed."""


class Visits(Component):
    """Records visits in the store and tallies them from the change feed."""

    name = "visits"
    depends_on = ("database",)

    async def on_start(self) -> None:
        self.store: Store = self.runtime.get(Store)
        self.count = await self.store.count("visit/")
        self.tally: Counter[str] = Counter()
        self.seen = asyncio.Condition()
        # Subscribe before returning, so no visit recorded after start is missed.
        watch = await self.store.watch("visit/").start()
        self.spawn(self._follow(watch), name="visits:feed")

    async def _follow(self, changes: Watch) -> None:
        async for change in changes:
            await self._apply(change)

    async def _apply(self, change: ChangeEvent) -> None:
        if change.op == "put":
            self.tally[change.value["user"]] += 1
        async with self.seen:
            self.seen.notify_all()

    @handler
    async def record(self, msg: RecordVisit) -> int:
        self.count += 1
        await self.store.put(f"visit/{self.count:06d}", {"user": msg.user})
        return self.count

    @handler
    async def tally_now(self, msg: Tally) -> dict[str, int]:
        return dict(self.tally)

    async def wait_seen(self, total: int) -> None:
        """Wait until the change feed has delivered ``total`` visits."""
        async with self.seen:
            await self.seen.wait_for(lambda: sum(self.tally.values()) >= total)

    async def check_health(self) -> CheckResult:
        behind = self.count - sum(self.tally.values())
        if behind > 100:
            return CheckResult.warning("the change feed is behind", feed_backlog=behind)
        return CheckResult.passing(visits=self.count, feed_backlog=behind)


async def main(data_dir: str, *, health_port: int, visits: int, serve: bool) -> None:
    """Run the application: start, record ``visits`` visits, report, stop (or serve)."""
    config = build_config(
        {
            "runtime": {"data_dir": data_dir},
            "components": {"database": {}},
            "health": {"port": health_port, "drain_delay": 0.5 if serve else 0.0},
        }
    )
    runtime = Runtime(config, [Visits])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)

    async with serving_health(runtime) as health, runtime:
        print(f"probes: {health.url}", flush=True)
        ref = runtime.ref("visits")
        users = ["ann", "bob", "ann"]
        for i in range(visits):
            await ref.ask(RecordVisit(users[i % len(users)]))
        app = runtime.component("visits")
        assert isinstance(app, Visits)
        await app.wait_seen(visits)
        tally = await ref.ask(Tally())
        first = await runtime.get(Store).get("visit/000001")
        ready = await evaluate(runtime, "ready")
        print(f"tally: {json.dumps(tally, sort_keys=True)}", flush=True)
        print(f"first visit: {json.dumps(first)}", flush=True)
        print(f"ready: {ready.status}", flush=True)
        if serve:
            print("serving; Ctrl-C to stop", flush=True)
            await stop.wait()
        await health.drain()
    print("stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="default: a temporary directory")
    parser.add_argument("--health-port", type=int, default=0)
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help="keep running until a signal")
    args = parser.parse_args()
    configure_logging(json=False)  # the application decides how logs look
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(
            main(
                args.data_dir or scratch,
                health_port=args.health_port,
                visits=args.visits,
                serve=args.serve,
            )
        )
