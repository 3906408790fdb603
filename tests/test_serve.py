"""`stocksent serve` against a real uvicorn server on 127.0.0.1: every route, every limit, bad input."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re

import httpx
import numpy as np
import pytest
import torch

from serve_helpers import running_server
from stocksent.artifacts import read_json
from stocksent.cli import main
from stocksent.sentiment import SentimentModel
from stocksent.serving.server import MAX_BODY_BYTES, MAX_CHARS, MAX_MESSAGES, model_id

MESSAGES = [
    "$SPY breaking out to new highs, loading calls 🚀",
    "$SPY this is going to crash hard, buying puts",
    "Fed meeting today, staying flat",
    "",
    "   ",
    "bought more $AAPL calls at $150.25 https://x.co/a",
]


@pytest.fixture(scope="module")
def server(small_model_dir):
    with running_server(small_model_dir) as url:
        yield url


@pytest.fixture(scope="module")
def reference(small_model_dir) -> SentimentModel:
    return SentimentModel.load(small_model_dir, precision="float32")  # as the server loads it


def post(url: str, body=None, **kwargs) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return httpx.post(f"{url}/v1/predict", timeout=60, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    for word in words:
        assert word in body["message"], body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def test_healthz(server, small_model_dir):
    response = httpx.get(f"{server}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model": model_id(small_model_dir)}


def test_predict_keeps_order_and_matches_the_python_api(server, reference, small_model_dir):
    response = post(server, {"messages": MESSAGES})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == model_id(small_model_dir)
    expected = reference.predict(MESSAGES)
    assert [p["label"] for p in body["predictions"]] == [p.label for p in expected]
    assert np.allclose([p["p_bullish"] for p in body["predictions"]], [p.p_bullish for p in expected], atol=1e-6)
    for p in body["predictions"]:
        assert set(p) == {"label", "p_bullish"} and 0.0 <= p["p_bullish"] <= 1.0
        assert p["label"] == ("bullish" if p["p_bullish"] >= reference.threshold else "bearish")


def test_predict_empty_list(server):
    response = post(server, {"messages": []})
    assert response.status_code == 200
    assert response.json()["predictions"] == []


def test_model_route(server, small_model_dir):
    from conftest import DATA_PATH

    info = httpx.get(f"{server}/v1/model").json()
    config = read_json(small_model_dir / "config.json")
    assert info["id"] == model_id(small_model_dir)
    assert info["config"] == config
    assert info["metrics"] == read_json(small_model_dir / "metrics.json")["test"]
    assert info["data_sha256"] == config["data"]["sha256"] == hashlib.sha256(DATA_PATH.read_bytes()).hexdigest()
    assert info["limits"] == {"max_messages": MAX_MESSAGES, "max_chars": MAX_CHARS, "max_body_bytes": MAX_BODY_BYTES}


def test_message_count_limit(server):
    assert len(post(server, {"messages": ["$SPY up"] * MAX_MESSAGES}).json()["predictions"]) == MAX_MESSAGES
    body = assert_error(
        post(server, {"messages": ["$SPY up"] * (MAX_MESSAGES + 1)}), 413, "too_many_messages", str(MAX_MESSAGES)
    )
    assert body["limit"] == MAX_MESSAGES


def test_message_length_limit(server):
    assert post(server, {"messages": ["a" * MAX_CHARS]}).status_code == 200
    assert post(server, {"messages": ["🚀" * MAX_CHARS]}).status_code == 200  # characters, not bytes
    body = assert_error(
        post(server, {"messages": ["ok", "a" * (MAX_CHARS + 1)]}),
        413,
        "message_too_long",
        "messages[1]",
        str(MAX_CHARS),
    )
    assert body["index"] == 1


def test_body_size_limit_declared_and_streamed(server):
    big = b'{"messages": ["' + b"a" * (MAX_BODY_BYTES + 10) + b'"]}'
    assert_error(post(server, content=big), 413, "body_too_large", "MiB")

    def chunks():  # no Content-Length: chunked transfer encoding
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    assert_error(post(server, content=chunks()), 413, "body_too_large")
    small = json.dumps({"messages": ["$SPY up"]}).encode()
    assert post(server, content=iter([small[:5], small[5:]])).status_code == 200  # chunked, within the limit


@pytest.mark.parametrize(
    "content, code, words",
    [
        (b'{"messages": ["a"', "invalid_json", ["not valid JSON"]),
        (b"", "invalid_json", ["not valid JSON"]),
        (b"\xff\xfe\xfa", "invalid_json", ["not valid JSON"]),
        (b"messages=a", "invalid_json", ["not valid JSON"]),
        (b'["a", "b"]', "invalid_request", ["messages"]),
        (b"null", "invalid_request", ["messages"]),
        (b'{"message": ["a"]}', "invalid_request", ["messages"]),
        (b'{"messages": ["a"], "extra": 1}', "invalid_request", ["extra"]),
        (b'{"messages": "a single string"}', "invalid_request", ["list of strings", "a string"]),
        (b'{"messages": {"a": 1}}', "invalid_request", ["list of strings", "an object"]),
        (b'{"messages": ["a", 2]}', "invalid_request", ["messages[1]", "a number"]),
        (b'{"messages": ["a", null]}', "invalid_request", ["messages[1]", "null"]),
        (b'{"messages": [["nested"]]}', "invalid_request", ["messages[0]", "a list"]),
    ],
)
def test_malformed_json_and_wrong_types_are_422(server, content, code, words):
    assert_error(post(server, content=content, headers={"content-type": "application/json"}), 422, code, *words)


def test_json_is_read_whatever_the_content_type(server):
    response = post(server, content=json.dumps({"messages": ["a"]}), headers={"content-type": "text/plain"})
    assert response.status_code == 200


def test_unknown_routes_and_methods(server):
    assert_error(httpx.get(f"{server}/nope"), 404, "not_found", "/nope", "/docs")
    assert_error(httpx.post(f"{server}/v1/nope", json={}), 404, "not_found")
    assert_error(httpx.get(f"{server}/static/../serve.py"), 404, "not_found")
    assert_error(httpx.get(f"{server}/v1/predict"), 405, "method_not_allowed")
    assert httpx.get(f"{server}/healthz").status_code == 200  # still up after all the bad requests


def test_docs_and_openapi(server):
    docs = httpx.get(f"{server}/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/v1/predict", "/v1/model", "/healthz"} <= set(spec["paths"])
    predict = spec["paths"]["/v1/predict"]["post"]
    assert "messages" in json.dumps(predict["requestBody"]) and {"200", "413", "422"} <= set(predict["responses"])


def test_docs_assets_are_served_locally(server):
    """/docs loads Swagger UI from this server, never from a CDN (the machines have no internet)."""
    page = httpx.get(f"{server}/docs").text
    assert [u for u in re.findall(r"https?://[^\s\"'<>]+", page) if not u.startswith(server + "/")] == []
    assets = re.findall(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", page)
    assert len(assets) == 3 and any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        response = httpx.get(asset if asset.startswith(server) else f"{server}{asset}")
        assert response.status_code == 200 and len(response.content) > 100, asset
    spec_url = re.search(r"url: '([^']+)'", page).group(1)  # the spec Swagger UI reads: 3.0, as it needs
    spec, full = httpx.get(f"{server}{spec_url}").json(), httpx.get(f"{server}/openapi.json").json()
    assert spec["openapi"].startswith("3.0.") and full["openapi"].startswith("3.1.")
    assert spec["paths"].keys() == full["paths"].keys()
    assert "examples" not in json.dumps(spec) and "$SPY breaking out" in json.dumps(spec)
    assert httpx.get(f"{server}/redoc").status_code == 404  # ReDoc would need a CDN: off
    assert_error(httpx.get(f"{server}/docs/static/index.html"), 404, "not_found")  # only the files /docs uses


def test_web_page_is_served_from_the_package(server):
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        response = httpx.get(f"{server}{asset}")
        assert response.status_code == 200 and response.text
        assert "http://" not in response.text and "https://" not in response.text  # no CDN
    assert "http://" not in page.text and "https://" not in page.text


def test_concurrent_clients_each_get_their_own_answers(server, reference):
    """Requests scored in shared batches must come back to the right client, in order."""
    from conftest import DATA_PATH
    from stocksent.data import read_labelled

    pool = read_labelled(DATA_PATH).messages[:4000]
    rng = np.random.default_rng(7)
    requests = [[pool[i] for i in rng.integers(0, len(pool), size)] for size in rng.choice([1, 1, 3, 40], 96)]
    expected = [reference.predict_proba(r) for r in requests]

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as client:
            return await asyncio.gather(*(client.post("/v1/predict", json={"messages": r}) for r in requests))

    responses = asyncio.run(run())
    for response, want in zip(responses, expected):
        assert response.status_code == 200, response.text
        got = [p["p_bullish"] for p in response.json()["predictions"]]
        assert len(got) == len(want) and np.allclose(got, want, atol=1e-6)


def test_multiple_workers(small_model_dir):
    with running_server(small_model_dir, "--workers", "2") as url:
        responses = [post(url, {"messages": MESSAGES[:2]}) for _ in range(4)]
        assert all(r.status_code == 200 and len(r.json()["predictions"]) == 2 for r in responses)


def test_internal_errors_are_500_without_a_traceback(small_model_dir, monkeypatch):
    from stocksent.serving.server import create_app

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(SentimentModel, "predict_proba", broken)
    app = create_app(small_model_dir)

    async def call() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/predict", json={"messages": ["a", "b"]}), await client.get("/healthz")

    response, health = asyncio.run(call())
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text
    assert health.status_code == 200


@pytest.fixture
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cli_errors_are_one_line(tmp_path, capsys, keep_torch_threads):
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    assert "model directory not found" in capsys.readouterr().err
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
