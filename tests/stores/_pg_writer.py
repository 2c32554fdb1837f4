"""A writer process for the PostgreSQL SIGKILL test: put_many batches until killed.

``python -m tests.stores._pg_writer DSN``: batch *n* sets ``k/<n>/0`` ...
``k/<n>/49`` in one transaction; after each commit it prints ``n``.
"""

from __future__ import annotations

import asyncio
import sys

from garrison.stores import PostgresStore

BATCH = 50


async def main(dsn: str) -> None:
    async with PostgresStore(dsn) as store:
        n = 0
        while True:
            await store.put_many([(f"k/{n:06}/{i:02}", [n, i, "x" * 200]) for i in range(BATCH)])
            print(n, flush=True)
            n += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
