"""Two rules of HTTP for every route: HEAD is answered as GET is, without the body (RFC 9110: same
status and headers, Content-Length included), and no reply's type is sniffed (X-Content-Type-Options).

Pure ASGI, outermost, so that every reply (an error from below the routes included) follows both.
"""

from __future__ import annotations

NOSNIFF = (b"x-content-type-options", b"nosniff")


class HttpHygiene:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        head = scope["method"] == "HEAD"
        if head:  # a copy: uvicorn reads its own scope's method to leave the body out on the wire
            scope = {**scope, "method": "GET"}

        async def send_with_rules(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), NOSNIFF]}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_with_rules)
