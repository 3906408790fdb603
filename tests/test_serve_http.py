"""HTTP itself against a real uvicorn, over raw sockets and with both of its parsers (httptools and
h11): malformed requests get the service's JSON 400, heads over 64 KiB a 431 however they arrive,
bodies that are compressed or not UTF-8 a 415, lone surrogates a 422, HEAD answers as GET without
a body, the pages carry their security headers, one OpenAPI document, and a full budget of work in
flight a JSON 503 with Retry-After.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import time

import httpx
import pytest

from serve_helpers import running_server
from stocksent.serving.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_INFLIGHT_BYTES, QUEUE_WAIT_S


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request, small_model_dir):
    with running_server(small_model_dir, "--http", request.param) as url:
        yield url


def exchange(url: str, data: bytes, wait: float = 30.0) -> bytes:
    """Send raw bytes, read until the server closes the connection (or `wait` s of silence)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        with contextlib.suppress(OSError):  # the server may answer and close before all is sent
            conn.sendall(data)
        conn.settimeout(wait)
        received = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                received += chunk
    return received


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), raw[:200]
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def json_error(raw: bytes, status: int, code: str) -> dict:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/json", headers
    reply = json.loads(body)
    assert reply["error"] == code and reply["message"], reply
    return reply


MALFORMED = {
    "content-length huge": b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "content-length negative": b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "two content-lengths": b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    "content-length with transfer-encoding": b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "non-ascii path": "GET /é HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "garbage request line": b"HELLO THERE\r\n\r\n",
    "tls on the plain port": bytes.fromhex("16030100a5010000a10303") + bytes(100),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_http_gets_a_json_400(server, case):
    reply = json_error(exchange(server, MALFORMED[case]), 400, "bad_request")
    if case.startswith("tls"):
        assert "http://" in reply["message"]
    assert httpx.get(f"{server}/healthz").status_code == 200


@pytest.mark.parametrize("size", [100_000, 2 * MAX_HEADER_BYTES])
def test_a_head_over_64_kib_in_one_piece_gets_431(server, size):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * size + b"\r\nConnection: close\r\n\r\n"
    assert "64 KiB" in json_error(exchange(server, request), 431, "headers_too_large")["message"]


def test_a_head_under_the_limit_and_a_large_body_in_one_piece_are_served(server):
    body = json.dumps({"messages": ["$SPY calls " * 900] * 20}).encode()  # ~200 KB, with the head in one send
    filler = b"a" * (MAX_HEADER_BYTES - 1024)
    request = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Filler: %b\r\nContent-Length: %d\r\n" % (filler, len(body))
    status, _, reply = parse(exchange(server, request + b"Connection: close\r\n\r\n" + body))
    assert status == 200 and len(json.loads(reply)["predictions"]) == 20


def test_a_refused_body_still_being_sent_gets_its_answer_not_a_reset(server):
    """The server refuses a body over the limit on its Content-Length alone; the client, still
    sending it, must read the whole JSON 413 (closed with unread data, the connection would be reset)."""
    head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1)
    reply = json_error(exchange(server, head + b"a" * (4 << 20)), 413, "body_too_large")
    assert "MiB" in reply["message"]


def predict(url: str, content: bytes, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", content=content, headers=headers or {}, timeout=60)


@pytest.mark.parametrize(
    "content, headers",
    [
        pytest.param(gzip.compress(b'{"messages": ["a"]}'), {"content-encoding": "gzip"}, id="gzip"),
        pytest.param(b'{"messages": ["a"]}', {"content-encoding": "gzip"}, id="gzip-said-plain-sent"),
        pytest.param(b'{"messages": ["a"]}', {"content-encoding": "br"}, id="brotli"),
        pytest.param('{"messages": ["a"]}'.encode("utf-16"), {}, id="utf-16-with-bom"),
        pytest.param('{"messages": ["a"]}'.encode("utf-16-le"), {}, id="utf-16-le"),
        pytest.param('{"messages": ["a"]}'.encode("utf-32"), {}, id="utf-32"),
        pytest.param(b'{"messages": ["a"]}', {"content-type": "application/json; charset=latin-1"}, id="latin-1"),
    ],
)
def test_compressed_or_non_utf8_bodies_are_415(server, content, headers):
    response = predict(server, content, headers)
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"


def test_utf8_with_or_without_a_byte_order_mark_is_read(server):
    for content in (b'{"messages": ["caf\xc3\xa9"]}', b'\xef\xbb\xbf{"messages": ["a"]}'):
        response = predict(server, content, {"content-type": "application/json; charset=UTF-8"})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\ud83d", "\\ude00b"])
def test_a_lone_surrogate_in_a_message_is_422(server, escape):
    response = predict(server, b'{"messages": ["fine", "' + escape.encode() + b'"]}')
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and body["index"] == 1 and "surrogate" in body["message"]
    assert predict(server, b'{"messages": ["\\ud83d\\ude80"]}').status_code == 200  # a pair is a character


@pytest.mark.parametrize("path", ["/", "/docs", "/healthz", "/v1/model", "/openapi.json", "/static/app.js"])
def test_head_is_get_without_the_body(server, path):
    get_status, get_headers, get_body = parse(
        exchange(server, b"GET %b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    )
    status, headers, body = parse(
        exchange(server, b"HEAD %b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    )
    assert get_status == status == 200 and body == b"" and get_body
    assert headers["content-length"] == get_headers["content-length"] == str(len(get_body))
    assert headers["content-type"] == get_headers["content-type"]


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_pages_forbid_framing_sniffing_and_foreign_content(server, path):
    response = httpx.get(f"{server}{path}")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["script-src"].startswith("'self'") and "unsafe" not in policy["script-src"]
    assert "unsafe" not in policy["style-src"]
    assert httpx.get(f"{server}/healthz").headers["x-content-type-options"] == "nosniff"


def test_one_openapi_document_for_clients_and_the_docs_page(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    assert spec["openapi"] == "3.0.3"
    assert "url: '/openapi.json'" in httpx.get(f"{server}/docs").text
    assert httpx.get(f"{server}/docs/openapi.json").status_code == 404
    documented = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"200", "400", "408", "413", "415", "422", "503"} <= set(documented)


def test_a_full_budget_of_work_in_flight_is_a_json_503_with_retry_after(small_model_dir):
    """One body as large as the whole budget, arriving slowly, holds it: the next request waits its
    turn up to QUEUE_WAIT_S, then gets 503; once the first is done there is room again."""
    with running_server(small_model_dir) as url:
        host, port = url.removeprefix("http://").split(":")
        hog = socket.create_connection((host, int(port)))
        hog.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MAX_INFLIGHT_BYTES)
        hog.sendall(b'{"messages": ["')
        time.sleep(0.5)  # the hog is let in first (it is alone)
        with httpx.Client(base_url=url, timeout=QUEUE_WAIT_S * 6) as client:
            assert client.get("/healthz").status_code == 200  # requests without a body are never held
            response = client.post("/v1/predict", json={"messages": ["$SPY up"]})
            hog.close()  # the hog goes away: its room comes back
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "busy" and response.headers["retry-after"] == "1"
            again = None
            for _ in range(100):
                again = client.post("/v1/predict", json={"messages": ["$SPY up"]})
                if again.status_code == 200:
                    break
                time.sleep(0.2)
            assert again is not None and again.status_code == 200, again.text
