"""GET /v1/index and GET /v1/index/info: the sentiment index of `serve --index` as JSON (needs `stocksent[serve]`).

`/v1/index?ticker=TSLA,AAPL&freq=1W&start=2020-03-01&end=2020-06-30` answers the rows of those
tickers, with the columns `stocksent index` writes and their values as its JSON Lines hold them,
and the daily closes of the same dates where `serve --prices` gave them. A row is in the dates
when its date is: its session's date on NYSE (a week's: its first session), its start's UTC date
on 24x7 periods. Every mistake is the service's JSON error (replies.py): no ticker or more than
MAX_INDEX_TICKERS, a ticker not in the index (404), a bad freq or date, start after end, a freq
the data cannot give, a reply of more than MAX_INDEX_ROWS rows (422). `/v1/index/info` lists what
there is to ask for: the tickers, the frequencies, whether there are corrected shares and prices.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Literal

from fastapi import FastAPI, Query
from starlette.responses import Response

from stocksent.columns import clean_ticker
from stocksent.errors import StocksentError
from stocksent.serving.index_source import IndexSource, IndexTable
from stocksent.serving.limits import MAX_INDEX_ROWS, MAX_INDEX_TICKERS
from stocksent.serving.replies import ApiError, echo, finite_json, json_response
from stocksent.serving.schema import INDEX_ERRORS, IndexInfo, IndexResponse
from stocksent.signals.periods import FREQS

Freq = Literal[tuple(FREQS)]  # type: ignore[valid-type]
INFO = "/v1/index/info"
# What the OpenAPI document promises ticker= reads: comma-separated tickers in columns.clean_ticker's
# ASCII form (a $ before, any case, spaces around). The server reads them by clean_ticker itself.
_ONE = r"\s*\$?[A-Za-z][A-Za-z0-9]{0,9}(?:[.-][A-Za-z0-9]{1,5})?\s*"
TICKERS_PATTERN = rf"^{_ONE}(?:,{_ONE})*$"


def asked_tickers(value: str, known: dict[str, object]) -> list[str]:
    """The tickers of `ticker=` (comma-separated), cleaned by the one ticker rule and each once, or
    an ApiError: none, too many, one that is no ticker, one not in the index.

    >>> asked_tickers("$tsla, AAPL,TSLA", {"TSLA": 0, "AAPL": 0})
    ['TSLA', 'AAPL']
    """
    raw = [part.strip() for part in value.split(",") if part.strip()]
    if not raw:
        raise ApiError(422, "invalid_request", f"give one or more tickers, e.g. ticker=TSLA,AAPL (listed at {INFO})")
    tickers: dict[str, None] = {}
    for text in raw:
        ticker = clean_ticker(text)
        if ticker is None:
            raise ApiError(422, "invalid_request", f"ticker {echo(text)} is not a ticker: give symbols such as TSLA")
        if ticker not in known:
            raise ApiError(404, "unknown_ticker", f"no ticker {echo(ticker)} in the index: its tickers are at {INFO}")
        tickers[ticker] = None
        if len(tickers) > MAX_INDEX_TICKERS:
            raise ApiError(
                422,
                "too_many_tickers",
                f"at most {MAX_INDEX_TICKERS} tickers per request: ask for the others in another",
                limit=MAX_INDEX_TICKERS,
            )
    return list(tickers)


def index_reply(
    source: IndexSource,
    table: IndexTable,
    tickers: list[str],
    freq: str,
    start: datetime.date | None,
    end: datetime.date | None,
    max_rows: int = MAX_INDEX_ROWS,
) -> dict:
    """The body of GET /v1/index (schema.IndexResponse), or an ApiError for a reply over `max_rows` rows."""
    import pyarrow as pa

    from stocksent.writers import json_records

    rows = table.select(tickers, start, end)
    if len(rows) > max_rows:
        raise ApiError(
            422,
            "too_many_rows",
            f"the reply would hold {len(rows):,} rows, over {max_rows:,}: ask for fewer tickers, "
            "a shorter span (start=, end=) or a longer freq",
            limit=max_rows,
        )
    return {
        "model": source.model_id,
        "freq": freq,
        "tickers": tickers,
        "start": None if start is None else start.isoformat(),
        "end": None if end is None else end.isoformat(),
        "columns": [str(c) for c in rows.columns],
        "rows": finite_json(json_records(pa.Table.from_pandas(rows, preserve_index=False))),
        "prices": source.closes(tickers, start, end),
    }


def info_reply(source: IndexSource) -> dict:
    """The body of GET /v1/index/info (schema.IndexInfo)."""
    options = source.options
    return {
        "model": source.model_id,
        "freq": options.freq,
        "freqs": list(FREQS),
        "calendar": options.calendar,
        "neutral": None if options.neutral is None else list(options.neutral),
        "corrected": source.rates is not None,
        "note": source.note,
        "prices": source.prices is not None,
        "tickers": source.tickers,
        "limits": {"max_tickers": MAX_INDEX_TICKERS, "max_rows": MAX_INDEX_ROWS},
    }


def add_index_routes(app: FastAPI, source: IndexSource) -> None:
    """GET /v1/index and /v1/index/info over `source`."""
    known = {t["ticker"]: t for t in source.tickers}
    info = info_reply(source)

    @app.get(
        "/v1/index",
        response_model=IndexResponse,
        responses=INDEX_ERRORS,
        tags=["index"],
        summary="The sentiment index of some tickers over a span of dates",
    )
    async def index(
        ticker: str = Query(
            description=f"at most {MAX_INDEX_TICKERS} tickers, comma-separated: TSLA,AAPL",
            json_schema_extra={"pattern": TICKERS_PATTERN},
            examples=["TSLA,AAPL"],
        ),
        freq: Freq | None = Query(None, description="the period (default: serve --freq)"),
        start: datetime.date | None = Query(None, description="first date, YYYY-MM-DD (default: the first)"),
        end: datetime.date | None = Query(None, description="last date, YYYY-MM-DD (default: the last)"),
    ) -> Response:
        tickers = asked_tickers(ticker, known)
        if start is not None and end is not None and start > end:
            raise ApiError(422, "invalid_request", f"start {start} is after end {end}: give start <= end")
        freq = freq or source.options.freq
        try:
            table = await asyncio.to_thread(source.table, freq)  # the first request of a freq computes it
        except StocksentError as err:
            raise ApiError(422, "freq_unavailable", f"freq={freq}: {err}") from None
        reply = await asyncio.to_thread(index_reply, source, table, tickers, freq, start, end)
        return json_response(reply)

    @app.get(INFO, response_model=IndexInfo, tags=["index"], summary="What the index holds: tickers, frequencies")
    async def index_info() -> Response:
        return json_response(info)
