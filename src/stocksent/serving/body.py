"""What a request body must be: UTF-8 JSON `{"messages": [str, ...]}` within the limits, sent as is.

Parsed here rather than by FastAPI so that any content type is read as JSON (`curl -d` sends a form
type) and an error never echoes a possibly huge input back. Every refusal is an ApiError that says
exactly what is wrong: 415 for a body sent compressed or in another encoding than UTF-8 (RFC 8259),
422 for what is not the JSON asked for (NaN, nesting too deep for the parser, a lone surrogate: a
`\\ud800` escape is no character), 413 for a limit broken.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stocksent.serving.limits import MAX_CHARS, MAX_MESSAGES
from stocksent.serving.replies import ApiError, echo

EXPECTED = 'send a JSON object {"messages": ["...", ...]}'
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHARSET = re.compile(rb";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)
_UTF8_NAMES = {b"utf-8", b"utf8"}
# How a UTF-16 or UTF-32 body starts: a byte order mark, or JSON's first ASCII character beside NULs.
_WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def check_body_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """A body must come uncompressed and as UTF-8: the headers that say otherwise get a 415 before
    the body is read (a gzip body read as JSON would be a confusing 422, or a zip bomb)."""
    for name, value in headers:
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            raise ApiError(
                415,
                "unsupported_media_type",
                f"Content-Encoding {echo(value.decode('latin-1'))} is not accepted: send the JSON uncompressed",
            )
        if name == b"content-type":
            charset = _CHARSET.search(value)
            if charset and charset.group(1).lower() not in _UTF8_NAMES:
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    f"charset {echo(charset.group(1).decode('latin-1'))} is not accepted: send the JSON as UTF-8",
                )


def json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _decoded(body: bytes) -> str:
    if body.startswith(_WIDE_STARTS) or (len(body) >= 2 and (body[0] == 0 or body[1] == 0)):
        raise ApiError(415, "unsupported_media_type", f"the body is UTF-16 or UTF-32: send it as UTF-8; {EXPECTED}")
    try:
        return body.decode("utf-8").removeprefix("\ufeff")  # a UTF-8 byte order mark is allowed (RFC 8259)
    except UnicodeDecodeError as err:
        raise ApiError(
            422, "invalid_json", f"request body is not valid JSON (not UTF-8 at byte {err.start}): {EXPECTED}"
        ) from None


def parse_messages(body: bytes) -> list[str]:
    """The request's messages, or an ApiError that says exactly what is wrong with the body.

    >>> parse_messages(b'{"messages": ["$SPY up"]}')
    ['$SPY up']
    """
    text = _decoded(body)
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as err:  # JSONDecodeError
        raise ApiError(422, "invalid_json", f"request body is not valid JSON ({err}): {EXPECTED}") from None
    except RecursionError:
        raise ApiError(422, "invalid_json", f"request body is nested too deeply: {EXPECTED}") from None
    if not isinstance(data, dict) or "messages" not in data:
        raise ApiError(422, "invalid_request", f"no messages field: {EXPECTED}")
    unknown = sorted(set(data) - {"messages"})
    if unknown:
        shown = ", ".join(echo(key) for key in unknown[:5])
        more = f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else ""
        raise ApiError(422, "invalid_request", f"unknown field(s) {shown}{more}: {EXPECTED}")
    messages = data["messages"]
    if not isinstance(messages, list):
        raise ApiError(422, "invalid_request", f"messages must be a list of strings, got {json_type(messages)}")
    if len(messages) > MAX_MESSAGES:
        raise ApiError(
            413,
            "too_many_messages",
            f"at most {MAX_MESSAGES} messages per request, got {len(messages)}: split them over several requests",
            limit=MAX_MESSAGES,
        )
    for i, message in enumerate(messages):
        if not isinstance(message, str):
            raise ApiError(422, "invalid_request", f"messages[{i}] must be a string, got {json_type(message)}", index=i)
        if len(message) > MAX_CHARS:
            raise ApiError(
                413,
                "message_too_long",
                f"messages[{i}] has {len(message)} characters; at most {MAX_CHARS} characters per message",
                limit=MAX_CHARS,
                index=i,
            )
        lone = _SURROGATE.search(message)
        if lone:
            raise ApiError(
                422,
                "invalid_request",
                f"messages[{i}] holds a lone surrogate \\u{ord(lone.group()):04x} at character {lone.start()}, "
                "which is not a Unicode character: send valid text",
                index=i,
            )
    return messages
