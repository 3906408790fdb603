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


class PriceOut(BaseModel):
    ticker: str
    date: str = Field(description="the trading day, YYYY-MM-DD")
    close: float


class IndexResponse(BaseModel):
    model: str = Field(description="id of the model whose rates correct the shares (the served model)")
    freq: str = Field(description="the index's period: 30min, 1h, 1D or 1W")
    tickers: list[str] = Field(description="the tickers asked for, cleaned (no $, upper case), each once")
    start: str | None = Field(description="first date asked for (YYYY-MM-DD), or null")
    end: str | None = Field(description="last date asked for (YYYY-MM-DD), or null")
    columns: list[str] = Field(description="the index's columns, as `stocksent index` writes them")
    rows: list[dict[str, Any]] = Field(
        description="one object per ticker and period with those columns, by ticker (as asked) then period; "
        "values as `stocksent index --format jsonl` writes them (null where a value is missing)"
    )
    prices: list[PriceOut] | None = Field(description="the daily closes in the same dates (serve --prices), or null")


class TickerOut(BaseModel):
    ticker: str
    calendar: str = Field(description="nyse or 24x7")
    n_msgs: int = Field(description="messages about it")
    first: str | None = Field(description="date of its first period with messages")
    last: str | None = Field(description="date of its last period with messages")


class IndexInfo(BaseModel):
    model: str
    freq: str = Field(description="the frequency /v1/index answers with when freq= is not given")
    freqs: list[str] = Field(description="the frequencies freq= takes")
    calendar: str = Field(description="auto, nyse or 24x7 (serve --calendar)")
    neutral: list[float] | None = Field(description="the neutral band [low, high] (serve --neutral), or null")
    corrected: bool = Field(description="whether the rows have the corrected shares (share_bull_adj ...)")
    note: str | None = Field(description="why there are no corrected shares, where there are none")
    prices: bool = Field(description="whether replies carry the daily closes")
    tickers: list[TickerOut] = Field(description="every ticker of the index, most messages first")
    limits: dict[str, int] = Field(description="max_tickers per request, max_rows per reply")


REQUEST_BODY = {"required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}
ERRORS = {
    400: {"model": ErrorOut, "description": "malformed HTTP (the request line or headers)"},
    408: {"model": ErrorOut, "description": "the body did not arrive in time"},
    413: {"model": ErrorOut, "description": "too many messages, or a message or the body too long"},
    415: {"model": ErrorOut, "description": "a body compressed (Content-Encoding) or not UTF-8"},
    422: {"model": ErrorOut, "description": "malformed JSON, wrong types, unknown fields or a lone surrogate"},
    503: {"model": ErrorOut, "description": "busy or shutting down: try again after Retry-After seconds"},
}
INDEX_ERRORS = {
    400: {"model": ErrorOut, "description": "malformed HTTP (the request line or headers)"},
    404: {"model": ErrorOut, "description": "a ticker that is not in the index"},
    422: {"model": ErrorOut, "description": "no ticker, a bad freq or date, start after end, a freq the data "
          "cannot give, or more tickers or rows than a reply holds"},
}  # fmt: skip


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
