"""RequestGuard: every request's body read under the service's rules before the routes see it.

Pure ASGI, answering itself, so no framework layer turns these into other errors:
- a body is admitted first (admission.py): no room in the budget of work in flight, or the server
  shutting down, is a 503 with Retry-After before any of it is read;
- a body framed both ways (Content-Length and Transfer-Encoding, which h11 lets through) is a 400;
  compressed or non-UTF-8 bodies are a 415 (body.check_body_headers), over `limit` bytes (declared or
  streamed) a 413 before it is held in memory;
- a body whose next piece takes over `idle_timeout` s, or that is not all there within `timeout` s,
  is a 408 and the connection is closed; a client gone mid-body is one log line (Starlette would
  raise ClientDisconnect into the app: two tracebacks);
- a request still running when the shutdown's grace period ends (uvicorn cancels it) gets a JSON
  503 rather than uvicorn's plain-text 500.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import ClientDisconnect

from stocksent.serving.admission import MIN_REQUEST_BYTES, Admission
from stocksent.serving.body import check_body_headers
from stocksent.serving.limits import BODY_IDLE_TIMEOUT_S, BODY_TIMEOUT_S, MAX_CHARS, MAX_MESSAGES, RETRY_AFTER_S
from stocksent.serving.replies import ApiError, send_error

log = logging.getLogger("stocksent.serving.server")


class BodyTimeout(Exception):
    pass


class BodyTooLarge(Exception):
    pass


class NoRoom(Exception):
    """A body of unknown length outgrew the room left in the budget of work in flight."""


def busy(draining: bool) -> ApiError:
    if draining:
        return ApiError(
            503,
            "shutting_down",
            "the server is shutting down: send the request again (to another instance)",
            headers={"retry-after": str(RETRY_AFTER_S)},
        )
    return ApiError(
        503,
        "busy",
        f"the server has as much work in flight as it holds: try again in {RETRY_AFTER_S} s",
        headers={"retry-after": str(RETRY_AFTER_S)},
    )


class RequestGuard:
    """See the module docstring. `admission`: the budget of bodies in flight; `on_body(n)` sees each
    admitted body's size."""

    def __init__(
        self,
        app,
        limit: int,
        admission: Admission,
        timeout: float = BODY_TIMEOUT_S,
        idle_timeout: float = BODY_IDLE_TIMEOUT_S,
        on_body=None,
    ):
        self.app, self.limit, self.admission = app, limit, admission
        self.timeout, self.idle_timeout, self.on_body = timeout, idle_timeout, on_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.handle(scope, receive, tracked)
        except asyncio.CancelledError:  # the shutdown's grace period is over: uvicorn cancels what runs
            log.info("%s from %s: still running when the server stopped, answered 503", where(scope), client(scope))
            if not started:
                await send_error(busy(draining=True), scope, send)

    async def handle(self, scope, receive, send) -> None:
        headers = scope["headers"]
        declared = next((v for k, v in headers if k == b"content-length"), None)
        chunked = any(k == b"transfer-encoding" for k, _ in headers)
        if declared is None and not chunked:  # no body (GET, HEAD): nothing to hold
            return await self.app(scope, receive, send)
        if declared is not None and chunked:  # which one frames the body? (request smuggling) h11 takes TE
            error = ApiError(400, "bad_request", "Content-Length and Transfer-Encoding together: send only one")
            return await send_error(error, scope, send)
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await send_error(self.too_large(), scope, send)
        try:
            check_body_headers(headers)
        except ApiError as error:
            return await send_error(error, scope, send)
        cost = int(declared) if declared is not None else 0
        if not await self.admission.enter(cost):
            log.info("%s from %s: no room for %d bytes, answered 503", where(scope), client(scope), cost)
            return await send_error(busy(self.admission.draining), scope, send)
        held = [max(cost, MIN_REQUEST_BYTES)]  # what enter took
        try:
            body = await self.read_body(receive, held)
            if self.on_body is not None:
                self.on_body(len(body))
            pending = [{"type": "http.request", "body": body, "more_body": False}]
            del body

            async def replay():
                return pending.pop() if pending else await receive()

            await self.app(scope, replay, send)
        except BodyTimeout:
            error = ApiError(
                408,
                "request_timeout",
                f"the request body did not arrive in time (each part within {self.idle_timeout:g} s, "
                f"all of it within {self.timeout:g} s)",
            )
            log.info("%s from %s: body too slow, answered 408", where(scope), client(scope))
            await send_error(error, scope, send)
        except ClientDisconnect as gone:
            log.info("%s from %s: client went away mid-body (%s)", where(scope), client(scope), gone)
        except BodyTooLarge:
            await send_error(self.too_large(), scope, send)
        except NoRoom:
            log.info("%s from %s: a streamed body outgrew the room left, answered 503", where(scope), client(scope))
            await send_error(busy(self.admission.draining), scope, send)
        finally:
            self.admission.leave(held[0])

    async def read_body(self, receive, held: list[int]) -> bytes:
        """The whole body; BodyTooLarge over the limit, NoRoom past the budget (a body of unknown
        length takes its room as it arrives: `held[0]`), BodyTimeout or ClientDisconnect otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        chunks, size = [], 0
        while True:
            wait = min(self.idle_timeout, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] != "http.request":
                raise ClientDisconnect(f"after {size:,} bytes")
            piece = message.get("body", b"")
            size += len(piece)
            if size > self.limit:
                raise BodyTooLarge
            if size > held[0]:
                if not self.admission.grow(size - held[0]):
                    raise NoRoom
                held[0] = size
            chunks.append(piece)
            if not message.get("more_body"):
                return b"".join(chunks)

    def too_large(self) -> ApiError:
        return ApiError(
            413,
            "body_too_large",
            f"request body is over {self.limit // 2**20} MiB: send at most "
            f"{MAX_MESSAGES} messages of {MAX_CHARS} characters",
            limit=self.limit,
        )


def where(scope) -> str:
    return f"{scope.get('method', '')} {scope.get('path', '')}"


def client(scope) -> str:
    peer = scope.get("client")
    return f"{peer[0]}:{peer[1]}" if peer else "a client"
