"""The HTTP side of `stocksent serve`: routes, request checks, errors (needs `stocksent[serve]`).

Every error a client can cause comes back as JSON `{"error": CODE, "message": TEXT}` with a 4xx
status; anything else is a 500 whose traceback goes to the server's log only, never to the client.
A reply is always valid JSON (UTF-8, no NaN) and echoes at most ECHO_CHARS characters of what the
client sent. RequestGuard reads every body before the routes see it: over MAX_BODY_BYTES is a 413,
too slow a 408, a client gone mid-body one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from swagger_ui_bundle import swagger_ui_path

from stocksent.labels import LABELS, NO_WORDS, prediction_fields
from stocksent.sentiment import SentimentModel
from stocksent.serving.limits import (
    BODY_IDLE_TIMEOUT_S,
    BODY_TIMEOUT_S,
    ECHO_CHARS,
    MAX_BODY_BYTES,
    MAX_CHARS,
    MAX_MESSAGES,
)
from stocksent.serving.microbatch import MicroBatcher

log = logging.getLogger("stocksent.serving.server")
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Swagger UI for /docs, served from the swagger-ui-bundle package: no CDN (ReDoc has no such package: off).
# Its Swagger UI 4 reads OpenAPI 3.0 only, so /docs gets a 3.0 copy of the spec (see openapi_30).
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
EXPECTED = 'send a JSON object {"messages": ["...", ...]}'


class PredictRequest(BaseModel):
    """For the OpenAPI docs only: the body is parsed by `parse_messages`, which holds to this schema
    exactly (no other fields, the same limits), so the spec says what the server really accepts."""

    model_config = ConfigDict(extra="forbid")  # additionalProperties: false, as parse_messages refuses them

    messages: list[Annotated[str, Field(max_length=MAX_CHARS)]] = Field(
        max_length=MAX_MESSAGES,
        description=f"at most {MAX_MESSAGES} messages, each at most {MAX_CHARS} characters",
        examples=[["$SPY breaking out, loading calls", "$SPY going to crash, buying puts"]],
    )


class PredictionOut(BaseModel):
    label: str | None = Field(description=" or ".join(LABELS) + "; null for a message with no words to score")
    p_bullish: float | None = Field(description="probability that the message is bullish; null with the label")
    reason: str | None = Field(None, description=f"only where label is null: {NO_WORDS!r}")


class PredictResponse(BaseModel):
    predictions: list[PredictionOut] = Field(description="one per message, in request order")
    model: str = Field(description="id of the model that scored them")


class ErrorOut(BaseModel):
    error: str = Field(description="a short code such as too_many_messages or invalid_json")
    message: str = Field(description="what is wrong and what to do")


class ApiError(Exception):
    """A client's mistake: answered as `{"error": code, "message": message, ...extra}` with `status`."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> Response:
        return json_response({"error": self.code, "message": self.message, **self.extra}, self.status)


def json_response(obj: Any, status: int = 200) -> Response:
    """Strict JSON: NaN or infinity raise ValueError (a 500, never an invalid body), and a lone
    surrogate that got this far is written as a \\u escape rather than failing to encode."""
    try:
        body = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        body = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    return Response(body, status_code=status, media_type="application/json")


_SURROGATE = re.compile("[\ud800-\udfff]")


def echo(value: Any, limit: int = ECHO_CHARS) -> str:
    """A client's text as an error reply may quote it: JSON-quoted, lone surrogates as U+FFFD, at most
    `limit` characters (then "... (N characters)"), so a 40 MiB key gives a short reply.

    >>> echo("x" * 500, 5)
    '"xxxxx"... (500 characters)'
    """
    text = value if isinstance(value, str) else str(value)
    shown = json.dumps(_SURROGATE.sub("\ufffd", text[:limit]), ensure_ascii=False)
    return shown if len(text) <= limit else f"{shown}... ({len(text):,} characters)"


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_messages(body: bytes) -> list[str]:
    """The request's messages, or an ApiError that says exactly what is wrong with the body.

    Parsed here rather than by FastAPI so that any content type is read as JSON (`curl -d` sends a
    form type) and an error never echoes a possibly huge input back. Strict JSON: NaN and Infinity
    are refused, and nesting too deep for the parser is a 422 like any other malformed body.

    >>> parse_messages(b'{"messages": ["$SPY up"]}')
    ['$SPY up']
    """
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
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
    return messages


def openapi_30(node: Any) -> Any:
    """FastAPI's OpenAPI 3.1 spec as Swagger UI 4 reads it: a schema's `examples` list becomes `example`.

    The rest of this API's spec is valid 3.0 as it is; /openapi.json itself stays 3.1.
    """
    if isinstance(node, list):
        return [openapi_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_30(v) for k, v in node.items() if not (k == "examples" and isinstance(v, list))}
    if isinstance(node.get("examples"), list) and node["examples"]:
        out.setdefault("example", openapi_30(node["examples"][0]))
    if "openapi" in node and "paths" in node:
        out["openapi"] = "3.0.3"
    return out


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


class BodyTimeout(Exception):
    pass


class RequestGuard:
    """Reads each request's body before the app does: over `limit` bytes (declared or streamed) is a
    413 before it is held in memory; a body whose next piece takes over `idle_timeout` s, or that is
    not all there within `timeout` s, is a 408 and the connection is closed; a client that goes away
    mid-body is one log line (Starlette would raise ClientDisconnect into the app: two tracebacks).

    Pure ASGI, answering itself, so no framework layer turns these into other errors.
    """

    def __init__(self, app, limit: int, timeout: float = BODY_TIMEOUT_S, idle_timeout: float = BODY_IDLE_TIMEOUT_S):
        self.app, self.limit, self.timeout, self.idle_timeout = app, limit, timeout, idle_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await self.reject(scope, send)
        try:
            body = await self.read_body(receive)
        except BodyTimeout:
            error = ApiError(
                408,
                "request_timeout",
                f"the request body did not arrive in time (each part within {self.idle_timeout:g} s, "
                f"all of it within {self.timeout:g} s)",
            )
            log.info("%s from %s: body too slow, answered 408", where(scope), client(scope))
            response = error.response()
            response.headers["connection"] = "close"
            return await response(scope, None, send)
        except ClientDisconnect as gone:
            log.info("%s from %s: client went away mid-body (%s)", where(scope), client(scope), gone)
            return
        if body is None:
            return await self.reject(scope, send)
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def read_body(self, receive) -> bytes | None:
        """The whole body, or None when it is over the limit; BodyTimeout or ClientDisconnect otherwise."""
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
            size += len(message.get("body", b""))
            if size > self.limit:
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def reject(self, scope, send) -> None:
        error = ApiError(
            413,
            "body_too_large",
            f"request body is over {self.limit // 2**20} MiB: send at most "
            f"{MAX_MESSAGES} messages of {MAX_CHARS} characters",
            limit=self.limit,
        )
        response = error.response()
        response.headers["connection"] = "close"  # the rest of the body is never read
        await response(scope, None, send)


def where(scope) -> str:
    return f"{scope.get('method', '')} {scope.get('path', '')}"


def client(scope) -> str:
    peer = scope.get("client")
    return f"{peer[0]}:{peer[1]}" if peer else "a client"


def finite_json(value: Any) -> Any:
    """`value` with every NaN or infinite float as None, for replies built from files (metrics.json)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def build_app(
    model: SentimentModel,
    info: dict,
    threads: int = 1,
    body_timeout: float = BODY_TIMEOUT_S,
    body_idle_timeout: float = BODY_IDLE_TIMEOUT_S,
) -> FastAPI:
    """Routes over one loaded model, with `info` as GET /v1/model returns it.

    `threads` scoring threads share the work of concurrent requests (see microbatch.py); a body must
    arrive within `body_timeout` seconds, each part within `body_idle_timeout` (RequestGuard).
    """
    model_id, threshold = info["id"], model.threshold
    info = finite_json(info)
    pages = {name: resources.files("stocksent.serving").joinpath("static", name).read_bytes() for name in STATIC_FILES}
    batcher = MicroBatcher(model.predict_proba, threads, max_messages=MAX_MESSAGES)

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
    app.add_middleware(RequestGuard, limit=MAX_BODY_BYTES, timeout=body_timeout, idle_timeout=body_idle_timeout)

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

    request_body = {"required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}
    errors = {
        408: {"model": ErrorOut, "description": "the body did not arrive in time"},
        413: {"model": ErrorOut, "description": "too many messages, or a message or the body too long"},
        422: {"model": ErrorOut, "description": "malformed JSON, wrong types or unknown fields"},
    }

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=errors,
        tags=["scoring"],
        summary="Label messages as bullish or bearish",
        openapi_extra={"requestBody": request_body},
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

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(pages["index.html"], media_type=STATIC_FILES["index.html"])

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in pages:
            raise HTTPException(404)
        return Response(pages[name], media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/docs/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    @app.get("/docs/openapi.json", include_in_schema=False)
    async def docs_spec() -> Response:
        return json_response(openapi_30(app.openapi()))

    @app.get("/docs/static/{name}", include_in_schema=False)
    async def docs_static(name: str) -> Response:
        if name not in SWAGGER_FILES:
            raise HTTPException(404)
        return FileResponse(Path(str(swagger_ui_path), name), media_type=SWAGGER_FILES[name])

    return app
