"""uvicorn's HTTP protocol with the limits on a request's head that it lacks (needs `stocksent[serve]`).

uvicorn closes a connection left idle after a response (`timeout_keep_alive`) but has no deadline for
the head of a request (request line and headers) and, with httptools, no bound on its size: a client
that opens a connection and sends one header byte every few seconds holds it forever. `GuardedHttp`
gives every head `header_timeout` seconds from the connection opening (or from the previous
response) and `max_header_bytes` bytes; past either the client gets a JSON 408 or 431 and the
connection is closed. The body's deadlines are the app's (app.RequestGuard).

uvicorn takes it as `uvicorn.run(..., http=functools.partial(GuardedHttp, header_timeout=10))`; the
partial pickles, so `--workers N` passes it to every worker process.
"""

from __future__ import annotations

import asyncio
import json
import logging

from stocksent.serving.limits import HEADER_TIMEOUT_S, MAX_HEADER_BYTES

try:  # what uvicorn's http="auto" picks
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is in the serve extra
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base

log = logging.getLogger("stocksent.serving.server")


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 reply with the app's JSON error body, for use below the ASGI app."""
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttp(_Base):
    """One connection: uvicorn's protocol, plus a deadline and a size bound on each request's head."""

    def __init__(
        self, *args, header_timeout: float = HEADER_TIMEOUT_S, max_header_bytes: int = MAX_HEADER_BYTES, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_header_bytes = header_timeout, max_header_bytes
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._cycle_before_head = None  # the request cycle current when the deadline was armed

    # A head is complete once uvicorn starts a new request cycle (both implementations set self.cycle).
    def _reading_head(self) -> bool:
        return self._head_timer is not None and self.cycle is self._cycle_before_head

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._head_bytes, self._cycle_before_head = 0, self.cycle
        self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def data_received(self, data: bytes) -> None:
        reading = self._reading_head()
        if reading:
            self._head_bytes += len(data)
        super().data_received(data)
        if not reading:
            return
        if self.cycle is not self._cycle_before_head:  # the head is complete
            self._disarm()
        elif self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._disarm()
            log.info("request head over %d bytes from %s: answered 431", self.max_header_bytes, self._peer())
            self._reply_and_close(
                431,
                "Request Header Fields Too Large",
                "headers_too_large",
                f"the request line and headers are over {self.max_header_bytes // 1024} KiB",
            )

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # the next head: after uvicorn's keep-alive wait, as long again
            self._arm(self.timeout_keep_alive + self.header_timeout)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.cycle is not self._cycle_before_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # still answering the last request: on_response_complete arms a new deadline
        if self._head_bytes == 0:  # an idle connection: nothing to answer
            self.transport.close()
            return
        log.info("request head from %s not complete after %g s: answered 408", self._peer(), self.header_timeout)
        self._reply_and_close(
            408,
            "Request Timeout",
            "request_timeout",
            f"the request line and headers did not arrive within {self.header_timeout:g} s",
        )

    def _reply_and_close(self, status: int, reason: str, code: str, message: str) -> None:
        self.transport.write(error_bytes(status, reason, code, message))
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
