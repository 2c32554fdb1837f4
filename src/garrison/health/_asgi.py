"""A pure ASGI app serving the probes, mountable in any ASGI framework.

Routes (relative to where it is mounted): ``/livez``, ``/readyz``,
``/startupz`` and ``/healthz`` (the readiness probe, under the name many load
balancers expect). ``GET`` and ``HEAD`` only. The body is
``application/health+json``, terse by default and detailed with ``?verbose``
(or ``?verbose=1``/``true``); the status code is 200 for pass and warn, 503
for fail. Responses are never cached by intermediaries. More ``GET`` routes
(``/metrics``) can be served beside the probes: ``routes`` maps a path to an
async callable returning ``(status, content type, body)``.

>>> from starlette.applications import Starlette          # doctest: +SKIP
>>> from starlette.routing import Mount                   # doctest: +SKIP
>>> app = Starlette(routes=[Mount("/health", HealthApp(probes))])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from garrison.health._report import HEALTH_CONTENT_TYPE, ProbeKind

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, MutableMapping

    from garrison.health._report import HealthReport

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = ["HealthApp"]

ROUTES: dict[str, ProbeKind] = {
    "/livez": "live",
    "/readyz": "ready",
    "/healthz": "ready",
    "/startupz": "startup",
}

_FALSE = frozenset({"0", "false", "no", "off"})


class HealthApp:
    """An ASGI 3 application answering the three probes.

    ``source`` is anything with ``async evaluate(probe) -> HealthReport``: a
    :class:`~garrison.health.HealthProbes`, or a callable taking the probe
    name. Lifespan events are accepted and ignored, so the app also runs on
    its own under uvicorn or hypercorn.
    """

    def __init__(
        self,
        source: Any,
        *,
        routes: Mapping[str, Callable[[], Awaitable[tuple[int, str, bytes]]]] | None = None,
    ) -> None:
        evaluate = getattr(source, "evaluate", source)
        if not callable(evaluate):
            raise TypeError(
                "HealthApp needs HealthProbes (or a runtime's probes) or an async "
                f"callable probe -> HealthReport, got {type(source).__name__}"
            )
        self._evaluate: Callable[[ProbeKind], Awaitable[HealthReport]] = evaluate
        clash = set(routes or ()) & set(ROUTES)
        if clash:
            raise ValueError(f"routes {sorted(clash)} are the probes' own")
        self._routes = dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            # Nothing here speaks websocket: refuse the handshake politely.
            await receive()
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            return
        path = _relative_path(scope)
        path = path.rstrip("/") or path
        probe = ROUTES.get(path)
        route = self._routes.get(path)
        method = scope.get("method", "GET")
        if probe is None and route is None:
            await _respond(send, 404, b'{"error":"not found"}', method, extra=[])
            return
        if method not in {"GET", "HEAD"}:
            await _respond(
                send,
                405,
                b'{"error":"method not allowed"}',
                method,
                extra=[(b"allow", b"GET, HEAD")],
            )
            return
        if route is not None:
            status, content_type, body = await route()
            await _respond(send, status, body, method, extra=[], content_type=content_type)
            return
        assert probe is not None
        report = await self._evaluate(probe)
        body = report.to_json(verbose=_verbose(scope))
        await _respond(send, report.http_status, body, method, extra=[])


def _relative_path(scope: Scope) -> str:
    # Starlette's Mount (like other routers) leaves the full path in "path" and
    # puts the mount point in "root_path"; a bare server sets root_path to "".
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def _verbose(scope: Scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    values = query.get("verbose")
    if values is None:
        return False
    return values[-1].strip().lower() not in _FALSE


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    method: str,
    *,
    extra: list[tuple[bytes, bytes]],
    content_type: str | None = None,
) -> None:
    if content_type is None:
        content_type = HEALTH_CONTENT_TYPE if status in {200, 503} else "application/json"
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
