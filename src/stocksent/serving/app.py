"""The HTTP side of `stocksent serve`: routes, request checks, errors (needs `stocksent[serve]`).

Every error a client can cause comes back as JSON `{"error": CODE, "message": TEXT}` with a 4xx
status; anything else is a 500 whose traceback goes to the server's log only, never to the client.
"""

from __future__ import annotations

import contextlib
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from swagger_ui_bundle import swagger_ui_path

from stocksent.data import LABELS
from stocksent.sentiment import SentimentModel
from stocksent.serving.limits import MAX_BODY_BYTES, MAX_CHARS, MAX_MESSAGES
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
    """For the OpenAPI docs only: the body is parsed by `parse_messages`."""

    messages: list[str] = Field(
        description=f"at most {MAX_MESSAGES} messages, each at most {MAX_CHARS} characters",
        examples=[["$SPY breaking out, loading calls", "$SPY going to crash, buying puts"]],
    )


class PredictionOut(BaseModel):
    label: str = Field(description=" or ".join(LABELS))
    p_bullish: float = Field(description="probability that the message is bullish")


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
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def parse_messages(body: bytes) -> list[str]:
    """The request's messages, or an ApiError that says exactly what is wrong with the body.

    Parsed here rather than by FastAPI so that any content type is read as JSON (`curl -d` sends a
    form type) and an error never echoes a possibly huge input back.
    """
    try:
        data = json.loads(body)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(422, "invalid_json", f"request body is not valid JSON ({err}): {EXPECTED}") from None
    if not isinstance(data, dict) or "messages" not in data:
        raise ApiError(422, "invalid_request", f"no messages field: {EXPECTED}")
    unknown = sorted(set(data) - {"messages"})
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown field(s) {', '.join(unknown)}: {EXPECTED}")
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


class BodyLimit:
    """Refuses a body over `limit` bytes before it is held in memory, declared or streamed (chunked).

    Pure ASGI, answering the 413 itself, so no framework layer turns it into another error.
    """

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:  # the HTTP server already holds the client to its declared length
            if not declared.isdigit() or int(declared) > self.limit:
                return await self.reject(scope, send)
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self.reject(scope, send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def reject(self, scope, send) -> None:
        error = ApiError(
            413,
            "body_too_large",
            f"request body is over {self.limit // 2**20} MiB: send at most "
            f"{MAX_MESSAGES} messages of {MAX_CHARS} characters",
            limit=self.limit,
        )
        await error.response()(scope, None, send)


def build_app(model: SentimentModel, info: dict, threads: int = 1) -> FastAPI:
    """Routes over one loaded model, with `info` as GET /v1/model returns it.

    `threads` scoring threads share the work of concurrent requests (see microbatch.py).
    """
    model_id, threshold = info["id"], model.threshold
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
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

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
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            error = ApiError(404, "not_found", f"no such route: {where}; the API is described at /docs")
        elif exc.status_code == 405:
            error = ApiError(405, "method_not_allowed", f"{where} is not allowed; the API is described at /docs")
        else:
            error = ApiError(exc.status_code, "http_error", str(exc.detail))
        response = error.response()
        response.headers.update(getattr(exc, "headers", None) or {})
        return response

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return ApiError(500, "internal_error", "internal error; the server log has the details").response()

    request_body = {"required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}
    errors = {
        413: {"model": ErrorOut, "description": "too many messages, or a message or the body too long"},
        422: {"model": ErrorOut, "description": "malformed JSON or wrong types"},
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
        predictions = [{"label": LABELS[int(p >= threshold)], "p_bullish": float(p)} for p in probs]
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
