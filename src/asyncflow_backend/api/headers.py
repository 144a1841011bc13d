"""Security headers on every answer, whatever produced it.

Every answer, errors and static files included, gets `X-Content-Type-Options:
nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, a
Content-Security-Policy that allows the service's own scripts, styles and
images only (the pages hold no inline script or style) and no framing, and
`Cache-Control: no-store` on JSON (which is per caller once API keys are
configured) unless the route chose a policy of its own.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` (raw ASGI pairs) with the security headers added where they are missing."""
    present = {name.lower() for name, _ in headers}
    added = [pair for pair in SECURITY_HEADERS if pair[0] not in present]
    if b"content-security-policy" not in present:
        added.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if b"cache-control" not in present and b"json" in content_type:
        added.append((b"cache-control", b"no-store"))
    return [*headers, *added]


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP answer that passes through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = security_headers(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)
