"""The routes of `stocksent serve` over one loaded model, and how their errors are answered
(needs `stocksent[serve]`).

Every error a client can cause comes back as JSON `{"error": CODE, "message": TEXT}` with a 4xx
status (replies.py); anything else is a 500 whose traceback goes to the server's log only, never to
the client. Below the routes: the body's rules (guard.py, body.py), the budget of work in flight
(admission.py), HEAD and nosniff (hygiene.py); beside them the pages (pages.py), the sentiment
index of `serve --index` (index_api.py over index_source.py) and the one OpenAPI document (schema.py).
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from stocksent.labels import prediction_fields
from stocksent.sentiment import SentimentModel
from stocksent.serving.admission import Admission
from stocksent.serving.body import parse_messages
from stocksent.serving.guard import RequestGuard
from stocksent.serving.hygiene import HttpHygiene
from stocksent.serving.index_api import add_index_routes
from stocksent.serving.index_source import IndexSource
from stocksent.serving.limits import (
    BODY_IDLE_TIMEOUT_S,
    BODY_TIMEOUT_S,
    ECHO_CHARS,
    MAX_BODY_BYTES,
    MAX_CHARS,
    MAX_INFLIGHT_BYTES,
    MAX_MESSAGES,
    QUEUE_WAIT_S,
)
from stocksent.serving.memory import IdleTrim
from stocksent.serving.microbatch import MicroBatcher
from stocksent.serving.pages import add_pages
from stocksent.serving.replies import ApiError, finite_json, json_response
from stocksent.serving.schema import ERRORS, REQUEST_BODY, PredictResponse, openapi_30

log = logging.getLogger("stocksent.serving.server")


def build_app(
    model: SentimentModel,
    info: dict,
    threads: int = 1,
    body_timeout: float = BODY_TIMEOUT_S,
    body_idle_timeout: float = BODY_IDLE_TIMEOUT_S,
    inflight_bytes: int = MAX_INFLIGHT_BYTES,
    queue_wait: float = QUEUE_WAIT_S,
    index: IndexSource | None = None,
) -> FastAPI:
    """Routes over one loaded model, with `info` as GET /v1/model returns it, and over `index` (the
    sentiment index of `serve --index`) GET /v1/index, /v1/index/info and the page at /index.

    `threads` scoring threads share the work of concurrent requests (see microbatch.py); a body must
    arrive within `body_timeout` seconds, each part within `body_idle_timeout`; the bodies in flight
    hold at most `inflight_bytes` together, and a request waits up to `queue_wait` s for room (then 503).
    """
    model_id, threshold = info["id"], model.threshold
    info = finite_json(info)
    batcher = MicroBatcher(model.predict_proba, threads, max_messages=MAX_MESSAGES)
    trim = IdleTrim()
    admission = Admission(inflight_bytes, queue_wait, on_idle=trim.idle)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        batcher.close()

    app = FastAPI(
        lifespan=lifespan,
        title="stocksent",
        version=str(info["config"].get("stocksent_version", "")),
        description="Bullish/bearish sentiment of StockTwits-style messages with an LSTM. At most "
        f"{MAX_MESSAGES} messages per request and {MAX_CHARS} characters per message.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        RequestGuard,
        limit=MAX_BODY_BYTES,
        admission=admission,
        timeout=body_timeout,
        idle_timeout=body_idle_timeout,
        on_body=trim.seen,
    )
    app.add_middleware(HttpHygiene)  # added last: outermost
    spec = {}

    def openapi() -> dict:  # one document, 3.0.3, for /openapi.json and /docs alike (schema.py)
        if not spec:
            spec.update(openapi_30(FastAPI.openapi(app)))
        return spec

    app.openapi = openapi

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return ApiError(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}").response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        path = request.url.path
        where = f"{request.method[:20]} {path[:ECHO_CHARS]}{'...' if len(path) > ECHO_CHARS else ''}"
        if exc.status_code == 404:
            error = ApiError(404, "not_found", f"no such route: {where}; the API is described at /docs")
        elif exc.status_code == 405:
            error = ApiError(405, "method_not_allowed", f"{where} is not allowed; the API is described at /docs")
        else:
            error = ApiError(exc.status_code, "http_error", str(exc.detail))
        response = error.response()
        response.headers.update(getattr(exc, "headers", None) or {})
        return response

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:  # RequestGuard reads bodies: a safety net
        log.info("%s %s: client went away", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return ApiError(500, "internal_error", "internal error; the server log has the details").response()

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=ERRORS,
        tags=["scoring"],
        summary="Label messages as bullish or bearish",
        openapi_extra={"requestBody": REQUEST_BODY},
    )
    async def predict(request: Request) -> Response:
        messages = parse_messages(await request.body())
        probs = await batcher.score(messages)  # off the event loop: /healthz never waits on a big batch
        if np.isinf(probs).any():  # loading refuses non-finite weights; never send one all the same
            log.error("the model gave an infinite probability on %d message(s)", int(np.isinf(probs).sum()))
            raise ApiError(500, "internal_error", "the model gave an invalid probability; the server log has details")
        predictions = [prediction_fields(p, threshold) for p in probs.tolist()]  # NaN: no words, no label
        return json_response({"predictions": predictions, "model": model_id})

    @app.get("/v1/model", tags=["model"], summary="The model's id, config, test metrics and data sha256")
    async def describe() -> Response:
        return json_response(info)

    @app.get("/healthz", tags=["model"], summary="200 once the model is loaded")
    async def healthz() -> Response:
        return json_response({"status": "ok", "model": model_id})

    if index is not None:
        add_index_routes(app, index)
    add_pages(app, index_page=index is not None)
    return app
