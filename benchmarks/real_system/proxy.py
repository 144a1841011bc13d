"""A small round-robin HTTP proxy: each request goes to the next backend in turn.

A plain ASGI application run by uvicorn (uvloop, httptools) like the services, forwarding
``GET`` requests with one shared httpx client (connections kept alive to every backend). It
stands for the load balancer of a scenario (``algorithms: round_robin``); its own CPU and
hops show up in the calibrated network latency.

Configured by ``REAL_SYSTEM_BACKENDS``: a JSON list of base URLs.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class RoundRobinProxy:
    """ASGI app forwarding each request to ``backends`` in turn (502 when the backend fails)."""

    def __init__(self, backends: list[str]) -> None:
        if not backends:
            raise ValueError("a proxy needs at least one backend")
        self.backends = backends
        self._next = itertools.cycle(backends)
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self._client is not None, "the proxy serves only after its lifespan started"
        path = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        try:
            response = await self._client.get(next(self._next) + path)
            status, body = response.status_code, response.content
        except httpx.HTTPError:
            status, body = 502, b'{"error":"backend failed"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                limits = httpx.Limits(max_connections=None, max_keepalive_connections=512)
                self._client = httpx.AsyncClient(limits=limits, timeout=30.0)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_proxy() -> RoundRobinProxy:
    """The proxy over ``REAL_SYSTEM_BACKENDS``; KeyError if the variable is missing."""
    return RoundRobinProxy(json.loads(os.environ["REAL_SYSTEM_BACKENDS"]))
