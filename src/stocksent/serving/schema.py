"""The OpenAPI document of the service: the shapes of its requests and replies, and the one spec
that both /openapi.json and the Swagger UI at /docs read.

The body is parsed by body.parse_messages, which holds to PredictRequest exactly (no other fields,
the same limits), so the spec says what the server really accepts. The spec is OpenAPI 3.0.3, as
the bundled Swagger UI 4 reads no 3.1: FastAPI writes 3.1, and `openapi_30` turns each schema's
`examples` list into the single `example` of 3.0 (the rest of this API's spec is valid 3.0 as is).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from stocksent.labels import LABELS, NO_WORDS
from stocksent.serving.limits import MAX_CHARS, MAX_MESSAGES


class PredictRequest(BaseModel):
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


REQUEST_BODY = {"required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}
ERRORS = {
    400: {"model": ErrorOut, "description": "malformed HTTP (the request line or headers)"},
    408: {"model": ErrorOut, "description": "the body did not arrive in time"},
    413: {"model": ErrorOut, "description": "too many messages, or a message or the body too long"},
    415: {"model": ErrorOut, "description": "a body compressed (Content-Encoding) or not UTF-8"},
    422: {"model": ErrorOut, "description": "malformed JSON, wrong types, unknown fields or a lone surrogate"},
    503: {"model": ErrorOut, "description": "busy or shutting down: try again after Retry-After seconds"},
}


def openapi_30(node: Any) -> Any:
    """FastAPI's OpenAPI 3.1 spec as 3.0.3: a schema's `examples` list becomes `example`."""
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
