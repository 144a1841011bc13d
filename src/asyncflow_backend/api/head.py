"""HEAD answered wherever GET is: the GET answer's status and headers, without its body.

FastAPI routes declare GET only, so HEAD would be 405; HTTP wants HEAD to
mean GET without the body (RFC 9110, section 9.3.2), and link checkers,
monitors and caches use it.
"""

from asyncflow_backend.api.headers import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    """Runs a HEAD request as GET and drops the body of the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
