"""The service's replies: every error a client can cause as JSON `{"error": CODE, "message": TEXT}`
with a 4xx (or 503) status, strict JSON, and at most ECHO_CHARS characters of what the client sent.

>>> ApiError(422, "invalid_json", "request body is not valid JSON").response().status_code
422
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.responses import Response

from stocksent.serving.limits import ECHO_CHARS

_SURROGATE = re.compile("[\ud800-\udfff]")


class ApiError(Exception):
    """A client's mistake: answered as `{"error": code, "message": message, ...extra}` with `status`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers or {}

    def response(self) -> Response:
        response = json_response({"error": self.code, "message": self.message, **self.extra}, self.status)
        response.headers.update(self.headers)
        return response


def json_response(obj: Any, status: int = 200) -> Response:
    """Strict JSON: NaN or infinity raise ValueError (a 500, never an invalid body), and a lone
    surrogate that got this far is written as a \\u escape rather than failing to encode."""
    try:
        body = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        body = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    return Response(body, status_code=status, media_type="application/json")


def echo(value: Any, limit: int = ECHO_CHARS) -> str:
    """A client's text as an error reply may quote it: JSON-quoted, lone surrogates as U+FFFD, at most
    `limit` characters (then "... (N characters)"), so a 40 MiB key gives a short reply.

    >>> echo("x" * 500, 5)
    '"xxxxx"... (500 characters)'
    """
    text = value if isinstance(value, str) else str(value)
    shown = json.dumps(_SURROGATE.sub("\ufffd", text[:limit]), ensure_ascii=False)
    return shown if len(text) <= limit else f"{shown}... ({len(text):,} characters)"


def finite_json(value: Any) -> Any:
    """`value` with every NaN or infinite float as None, for replies built from files (metrics.json)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


async def send_error(error: ApiError, scope, send, close: bool = True) -> None:
    """Answer with `error` from below the routes (a middleware); `close`: the connection too, since
    the rest of the request's body is never read."""
    response = error.response()
    if close:
        response.headers["connection"] = "close"
    await response(scope, None, send)
