"""uvicorn's HTTP protocols with what the service needs below the ASGI app (needs `stocksent[serve]`).

- A deadline and a size bound on each request's head (request line and headers), which uvicorn
  lacks: a client that sends one header byte every few seconds would hold a connection forever, and
  httptools has no size bound at all. Every head gets `header_timeout` seconds from the connection
  opening (or from the previous response) and `max_header_bytes` bytes, counted before the parser
  sees them (a whole oversized head in one read included); past either a JSON 408 or 431 and the
  connection closed. The body's deadlines are the app's (guard.py).
- Malformed HTTP (a bad request line, Content-Length negative, huge or twice, Content-Length with
  Transfer-Encoding, a non-ASCII path, TLS on the plain port) gets the service's JSON 400 rather than
  uvicorn's plain text.
- Every close is a lingering close (LingeringTransport): a refused request's unread body never
  makes the kernel reset the connection before the client has its answer.
- A graceful shutdown (SIGTERM) first tells the app's admission to refuse waiting requests
  (admission.drain_all), so they get a 503 at once instead of a 500 when the grace period ends.

Both of uvicorn's parsers are covered: `PROTOCOLS["httptools"]` (what uvicorn's "auto" picks when
httptools is installed) and `PROTOCOLS["h11"]`. uvicorn takes one as
`uvicorn.run(..., http=functools.partial(PROTOCOLS[name], header_timeout=10))`; the partial pickles,
so `--workers N` passes it to every worker process.
"""

from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

from stocksent.serving.admission import drain_all
from stocksent.serving.limits import HEADER_TIMEOUT_S, MAX_HEADER_BYTES

log = logging.getLogger("stocksent.serving.server")
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")
LINGER_S = 5.0  # how long a closing connection drops what the client still sends (LingeringTransport)
_TLS_HANDSHAKE = b"\x16\x03"  # a TLS record of type handshake, version 3.x: a ClientHello


class LingeringTransport:
    """A connection's transport whose close() is a lingering close: the reply already written goes
    out with a FIN, what the client still sends (the body of a refused request) is read and dropped
    for up to `linger` seconds or until the client closes, and only then the socket is closed.
    Closed at once with unread data, the kernel would reset the connection, and a client still
    sending its body could lose the answer (a 400, 413 or 503) before reading it."""

    def __init__(self, transport, linger: float):
        self._transport, self._linger = transport, linger
        self.lingering = False
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def write(self, data: bytes) -> None:
        if not self.lingering:
            self._transport.write(data)

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        self.lingering = True
        try:
            if self._transport.can_write_eof():
                self._transport.write_eof()  # after what is buffered: the client reads the whole reply
            self._transport.resume_reading()  # drain, even where uvicorn paused reading
        except (OSError, RuntimeError):
            self._transport.close()
            return
        self._timer = asyncio.get_running_loop().call_later(self._linger, self.finish)

    def finish(self) -> None:
        """The client is done (or took too long): close for real."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 reply with the app's JSON error body, for use below the ASGI app."""
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _head_length(tail: bytes, data: bytes) -> int | None:
    """Bytes of `data` up to the end of the head (its blank line), or None if it does not end in it.
    `tail`: the last bytes of the head before `data`, so that a blank line split across reads is seen."""
    joined = tail + data
    ends = [i + len(mark) for mark in _HEAD_ENDS if (i := joined.find(mark)) != -1]
    return max(min(ends) - len(tail), 0) if ends else None


class HeadGuard:
    """A mixin over one of uvicorn's protocols: see the module docstring."""

    def __init__(
        self, *args, header_timeout: float = HEADER_TIMEOUT_S, max_header_bytes: int = MAX_HEADER_BYTES, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_header_bytes = header_timeout, max_header_bytes
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_tail = b""
        self._first_bytes = b""
        self._cycle_before_head = None  # the request cycle current when the deadline was armed

    # A head is complete once uvicorn starts a new request cycle (both implementations set self.cycle).
    def _reading_head(self) -> bool:
        return self._head_timer is not None and self.cycle is self._cycle_before_head

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._head_bytes, self._head_tail, self._cycle_before_head = 0, b"", self.cycle
        self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(LingeringTransport(transport, LINGER_S))
        self._arm(self.header_timeout)

    def eof_received(self):
        if self.transport.lingering:
            self.transport.finish()
            return None
        return super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self.transport.lingering:  # a refused request's rest: dropped
            return
        if not self._first_bytes:
            self._first_bytes = data[:2]
        reading = self._reading_head()
        if reading:
            end = _head_length(self._head_tail, data)
            self._head_bytes += len(data) if end is None else end
            self._head_tail = (self._head_tail + data)[-3:]
            if self._head_bytes > self.max_header_bytes:  # before the parser holds any of it
                self._disarm()
                log.info("request head over %d bytes from %s: answered 431", self.max_header_bytes, self._peer())
                self._reply_and_close(
                    431,
                    "Request Header Fields Too Large",
                    "headers_too_large",
                    f"the request line and headers are over {self.max_header_bytes // 1024} KiB",
                )
                return
        super().data_received(data)
        if reading and self.cycle is not self._cycle_before_head:  # the head is complete
            self._disarm()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's parser refused the request: the JSON 400 the service promises."""
        self._disarm()
        if self._first_bytes.startswith(_TLS_HANDSHAKE):
            message = "this port speaks plain HTTP, not HTTPS (TLS): use an http:// URL"
        else:
            message = (
                "malformed HTTP request: the request line or a header breaks HTTP/1.1 (for example a "
                "Content-Length that is negative, too large or given twice, Content-Length with "
                "Transfer-Encoding, or a path that is not ASCII: percent-encode it)"
            )
        log.info("malformed HTTP from %s: answered 400", self._peer())
        self._reply_and_close(400, "Bad Request", "bad_request", message)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # the next head: after uvicorn's keep-alive wait, as long again
            self._arm(self.timeout_keep_alive + self.header_timeout)

    def shutdown(self) -> None:
        drain_all()  # the first connection told is enough; the others find it done
        super().shutdown()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)
        self.transport.finish()

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
        if not self.transport.is_closing():
            self.transport.write(error_bytes(status, reason, code, message))
            self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"


class GuardedH11(HeadGuard, H11Protocol):
    """h11 (pure Python) with the service's head rules and JSON errors."""


PROTOCOLS: dict[str, type] = {"h11": GuardedH11}

try:  # httptools is in the serve extra; uvicorn's "auto" prefers it
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpTools(HeadGuard, HttpToolsProtocol):
        """httptools (llhttp, C) with the service's head rules and JSON errors."""

    PROTOCOLS["httptools"] = GuardedHttpTools
except ImportError:  # pragma: no cover
    pass

DEFAULT_HTTP = "httptools" if "httptools" in PROTOCOLS else "h11"
