"""garrison in a Starlette app: the runtime in the lifespan, probes mounted, the store in routes.

    python examples/asgi_app.py [--port 8000] [--health-port 0] [--data-dir data]
    # or: APP_DATA_DIR=data uvicorn --app-dir examples asgi_app:app

Routes:

* ``PUT /items/{key}`` with a JSON body writes it to the store;
  ``GET /items/{key}`` reads it back (404 when absent);
* ``/health/livez``, ``/health/readyz``, ``/health/startupz`` (``?verbose``):
  the probes, mounted in the app for convenience.

The probes are also served on their own port (``[health] port``; logged) by
``serving_health`` inside the lifespan. That one is what an orchestrator
should probe: uvicorn stops accepting connections before it runs the lifespan
shutdown, so only a separate listener can answer "not ready" while the
components drain and stop. The same app works under FastAPI
(``FastAPI(lifespan=lifespan)`` and ``app.mount("/health", HealthApp(probes))``).
After a graceful shutdown uvicorn re-raises the signal it caught, so the
process's exit status says "terminated by SIGTERM" by uvicorn's design.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from garrison.components.database import Store
from garrison.config import build_config
from garrison.health import HealthApp, RuntimeProbes, serving_health
from garrison.runtime import Runtime
from garrison.telemetry import configure_logging

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request


def create_app(data_dir: str, *, health_port: int = 0, drain_delay: float = 1.0) -> Starlette:
    """The application: a runtime with the database component, its store behind two routes."""
    probes = RuntimeProbes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        config = build_config(
            {
                "runtime": {"data_dir": data_dir},
                "components": {"database": {}},
                "health": {"port": health_port, "drain_delay": drain_delay},
            }
        )
        runtime = Runtime(config)
        async with serving_health(runtime) as health, runtime:
            probes.runtime = runtime
            app.state.runtime = runtime
            app.state.probe_url = health.url
            print(f"probes: {health.url}", flush=True)
            yield
            await health.drain()
        probes.runtime = None

    async def get_item(request: Request) -> Response:
        store = request.app.state.runtime.get(Store)
        value: Any = await store.get(f"item/{request.path_params['key']}")
        if value is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(value)

    async def put_item(request: Request) -> Response:
        store = request.app.state.runtime.get(Store)
        await store.put(f"item/{request.path_params['key']}", await request.json())
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/items/{key}", get_item, methods=["GET"]),
            Route("/items/{key}", put_item, methods=["PUT"]),
            Mount("/health", app=HealthApp(probes)),
        ],
        lifespan=lifespan,
    )


# This module is the application, so it decides how logs look (garrison never
# configures logging on its own).
configure_logging(json=False)
app = create_app(os.environ.get("APP_DATA_DIR", "data"))


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--health-port", type=int, default=0)
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    uvicorn.run(create_app(args.data_dir, health_port=args.health_port), port=args.port)
