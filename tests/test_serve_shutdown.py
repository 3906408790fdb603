"""SIGTERM to a real `stocksent serve` with large requests in flight: every request gets its answer
or a JSON 503 (never uvicorn's plain-text 500, never a reset connection), and the command exits
143, the status of a command stopped by SIGTERM, with one worker or two.

30 clients each post 1,024 real messages of about 2,000 characters; the signal comes once the first
answer is back, so requests are both being scored and waiting for room. Nothing here measures speed.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from serve_helpers import serving

CLIENTS = 30


@pytest.fixture(scope="module")
def big_body() -> bytes:
    from conftest import DATA_PATH, texts_of

    texts = [t.replace("\n", " ") for t in texts_of(DATA_PATH)[:5000] if t.strip()]
    messages, i = [], 0
    for _ in range(1024):
        parts = []
        while sum(map(len, parts)) < 2000:
            parts.append(texts[i % len(texts)])
            i += 1
        messages.append(" ".join(parts)[:2000])
    return json.dumps({"messages": messages}).encode()


async def post(port: int, body: bytes) -> tuple[str, dict, bytes]:
    """(status line or the connection error, headers, body) of one request on its own connection."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        raw = await reader.read()
        writer.close()
    except OSError as err:
        return f"connection error: {err!r}", {}, b""
    head, _, content = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return lines[0], headers, content


async def storm(port: int, body: bytes, process) -> list[tuple[str, dict, bytes]]:
    tasks = [asyncio.ensure_future(post(port, body)) for _ in range(CLIENTS)]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED, timeout=600)
    assert done, "no answer at all"
    process.send_signal(signal.SIGTERM)
    return await asyncio.gather(*tasks)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_with_requests_in_flight_answers_each_and_exits_143(small_model_dir, big_body, workers):
    with serving(small_model_dir, "--workers", workers, timeout=180) as served:
        port = int(served.url.rsplit(":", 1)[1])
        answers = asyncio.run(storm(port, big_body, served.process))
        code = served.process.wait(timeout=300)
        log = served.log_text()
    statuses = [status for status, _, _ in answers]
    assert code == 128 + signal.SIGTERM, (code, log[-3000:])
    assert "stocksent: stopped by SIGTERM" in log
    assert all(s.startswith(("HTTP/1.1 200 ", "HTTP/1.1 503 ")) for s in statuses), statuses
    for status, headers, content in answers:
        assert headers["content-type"] == "application/json", (status, headers)
        reply = json.loads(content)
        if status.startswith("HTTP/1.1 200 "):
            assert len(reply["predictions"]) == 1024
        else:
            assert reply["error"] in ("shutting_down", "busy") and headers["retry-after"].isdigit(), reply
    assert any(s.startswith("HTTP/1.1 503 ") for s in statuses), statuses  # some were waiting when it came
    assert "Internal Server Error" not in log and "Exception in ASGI application" not in log, log[-3000:]
