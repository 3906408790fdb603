"""Messages as the index needs them: a time, tickers, an id, a user, the author's tag, the text.

Input batches come from `stocksent.readers.iter_batches` (anything `stocksent score` reads)
or are given directly (pyarrow batches/tables, pandas DataFrames). `normalise` maps whatever columns
a batch has to one frame:

- time: `created_at`, `date`, `timestamp`, `datetime` or `time` (ISO 8601 text or an Arrow
  timestamp/date; naive times are UTC, StockTwits' API convention). A bare date (`2020-01-01`) is
  kept as a date: it counts for that day, in no part of it.
- tickers: `ticker`/`symbol` (one per row) or `symbols` (a list, or text such as `AAPL,TSLA`);
  upper-cased, `$` dropped.
- id: `id`/`message_id` (duplicates are counted once); user: `user_id`/`user`; the author's tag:
  `sentiment` (bullish/bearish, any case; anything else is untagged).

Reshares. In StockTwits API data a reshare is a message with its own `id`, `user` and
`created_at` and a `reshare_message.message` holding the original. A reshare whose own body is
empty or the original's text again is a *copy*: it is read as the original message (the
original's id, time, user, text and tag), so the original and all its copies count once. A
reshare with its own words is the resharer's message and counts as such. `iter_messages` reads
API JSON with that rule (the shared reader keeps no reshare fields) and writes the marker column
`reshare_of_id`; a table with `reshare_of_id` (and `reshare_of_created_at`) is read the same way.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from stocksent.errors import StocksentError

__all__ = ["iter_messages", "normalise", "flatten_api_message", "TIME_COLUMNS", "TICKER_COLUMNS"]

log = logging.getLogger(__name__)

TIME_COLUMNS = ("created_at", "date", "timestamp", "datetime", "time")
TICKER_COLUMNS = ("ticker", "symbol", "symbols")
ID_COLUMNS = ("id", "message_id")
USER_COLUMNS = ("user_id", "user")
TAG_COLUMN = "sentiment"
_API_BATCH = 8192


# --------------------------------------------------------------------------- reading


def iter_messages(
    inputs: Any,
    text_column: str | None = None,
    batch_rows: int = 65536,
    on_bad_row: Callable | None = None,
) -> Iterator[Any]:
    """Batches of messages from files (paths, globs, directories) or from in-memory tables.

    Files go through `stocksent.readers.iter_batches`, except StockTwits API JSON, which is
    read here so that reshared copies are recognised (see the module doc).
    """
    if _is_table(inputs):
        yield inputs
        return
    if isinstance(inputs, (list, tuple)):
        if inputs and all(_is_table(item) for item in inputs):
            yield from inputs
            return
        if any(_is_table(item) for item in inputs):
            raise StocksentError("give either files or tables as inputs, not both")
    elif not isinstance(inputs, (str, bytes, os.PathLike)):  # an iterator: of tables (streamed) or of paths
        iterator = iter(inputs)
        first = next(iterator, None)
        if first is None:
            raise StocksentError("no inputs given")
        if _is_table(first):
            yield first
            yield from iterator  # never listed: a generator of 10M messages stays a stream
            return
        inputs = [first, *iterator]
    from stocksent.readers import expand_inputs, format_of, iter_batches

    for path in expand_inputs(inputs):
        if format_of(path) in ("json", "jsonl") and _looks_like_api(path):
            yield from _api_batches(path, batch_rows, on_bad_row)
        else:
            yield from iter_batches([path], text_column=text_column, batch_rows=batch_rows, on_bad_row=on_bad_row)


def _is_table(value: Any) -> bool:
    kind = type(value).__module__.split(".")[0]
    return kind in ("pandas", "pyarrow") and hasattr(value, "columns")


def _looks_like_api(path) -> bool:
    from stocksent.readers import peek_bytes

    head = peek_bytes(path, 1 << 16)
    return b'"body"' in head and (b'"user"' in head or b'"symbols"' in head or b'"entities"' in head)


def _api_batches(path, batch_rows: int, on_bad_row):
    """A StockTwits API file (one page, a list, or one value per line) as flattened Arrow batches."""
    import gzip

    import pyarrow as pa

    from stocksent.readers import BadRow

    def bad(line: int, reason: str) -> None:
        if on_bad_row is not None:
            on_bad_row(BadRow(str(path), line, reason))

    try:
        with open(path, "rb") as raw:
            data = raw.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise StocksentError(f"cannot read {path}: {exc}") from None
    try:
        values = [(1, json.loads(data))]
    except json.JSONDecodeError:  # JSON Lines: one value per line
        values = _json_lines(data, bad)
    except UnicodeDecodeError as exc:
        raise StocksentError(f"{path} is not UTF-8 (bad byte at offset {exc.start}); re-save it as UTF-8") from None
    del data
    rows: list[dict] = []
    for line, value in values:
        items = value["messages"] if isinstance(value, dict) and isinstance(value.get("messages"), list) else value
        for item in items if isinstance(items, list) else [items]:
            row = flatten_api_message(item)
            if isinstance(row, str):
                bad(line, row)
                continue
            rows.append(row)
            if len(rows) >= min(batch_rows, _API_BATCH):
                yield pa.RecordBatch.from_pylist(rows, schema=_api_schema())
                rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=_api_schema())


def _json_lines(data: bytes, bad) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            bad(number, f"invalid JSON ({exc})")


def _api_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("created_at", pa.string()),
            ("user_id", pa.int64()),
            ("symbols", pa.list_(pa.string())),
            ("sentiment", pa.string()),
            ("body", pa.string()),
            ("reshare_of_id", pa.int64()),
        ]
    )


def _flat(obj: dict) -> dict:
    """The readers' flat API row, with the index's defaults: no symbols is [], a body is text or None."""
    from stocksent.readers import flatten_api_object

    row = flatten_api_object(obj)
    return {
        **row,
        "symbols": row["symbols"] or [],
        "body": row["body"] if isinstance(row["body"], str) else None,
        "reshare_of_id": None,
    }


def flatten_api_message(obj: Any) -> dict | str:
    """One API message object as a flat row, a pure reshare as its original; a reason string if unusable.

    >>> flatten_api_message({"id": 2, "body": "", "reshare_message": {"message": {"id": 1, "body": "$F up"}}})
    ... # doctest: +SKIP
    {'id': 1, ..., 'body': '$F up', 'reshare_of_id': 1}
    """
    if not isinstance(obj, dict):
        return f"expected a message object, got {type(obj).__name__}"
    row = _flat(obj)
    reshare = obj.get("reshare_message")
    original = reshare.get("message") if isinstance(reshare, dict) else None
    if isinstance(original, dict):
        source = _flat(original)
        own = (row["body"] or "").strip()
        if not own or own == (source["body"] or "").strip():  # a copy, not the resharer's own words
            if source["id"] is None or not source["body"]:
                return "reshare of a message that has no id or no body"
            source["reshare_of_id"] = source["id"]
            if not source["symbols"]:
                source["symbols"] = row["symbols"]
            return source
    if not row["body"] or not row["body"].strip():
        return "empty message"
    return row


# --------------------------------------------------------------------------- normalising


def _find(names: list[str], candidates: tuple[str, ...]) -> str | None:
    lowered = {n.strip().lower(): n for n in names}
    for c in candidates:
        if c in lowered:
            return lowered[c]
    return None


def _to_arrow(batch: Any):
    import pyarrow as pa

    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if isinstance(batch, pa.Table):
        return batch
    return pa.Table.from_pandas(batch, preserve_index=False)


def normalise(batch: Any, text_column: str | None = None, need_text: bool = True) -> tuple[Any, dict[str, int]]:
    """A pandas frame with ts (int64 ns UTC), date_only, tickers (list), n_symbols, key, user, tag, text
    and row (each message's row in `batch`).

    Also returns counts of rows left out (no parseable time, no ticker). `key` and `user` are
    uint64 hashes (or the integer itself) with `has_key`/`has_user` saying where they are known.
    """
    import pandas as pd
    import pyarrow.compute as pc

    from stocksent.readers import resolve_text_column

    table = _to_arrow(batch)
    names = table.column_names
    time_col = _find(names, TIME_COLUMNS)
    ticker_col = _find(names, TICKER_COLUMNS)
    if time_col is None or ticker_col is None:
        missing = " and ".join(
            what
            for what, col in (
                ("a time column (created_at, date)", time_col),
                ("a ticker column (symbols, ticker)", ticker_col),
            )
            if col is None
        )
        raise StocksentError(
            f"the messages lack {missing} (columns: {', '.join(map(repr, names)) or 'none'}); the index needs "
            "a time and a ticker per message"
        )
    out = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    ts, date_only = _times(table.column(time_col))
    reshare_col = _find(names, ("reshare_of_id",))
    copy = np.zeros(table.num_rows, dtype=bool)
    if reshare_col is not None:
        copy = pc.is_valid(table.column(reshare_col)).to_numpy(zero_copy_only=False)
        original_time = _find(names, ("reshare_of_created_at",))
        if original_time is not None and copy.any():
            ots, odate = _times(table.column(original_time))
            use = copy & (ots != np.iinfo(np.int64).min)
            ts[use], date_only[use] = ots[use], odate[use]
    out["ts"], out["date_only"] = ts, date_only
    out["tickers"] = _tickers(table.column(ticker_col))
    out["n_symbols"] = out["tickers"].map(len).astype(np.int32)

    id_col = _find(names, ID_COLUMNS)
    out["key"], out["has_key"] = _keys(table.column(id_col)) if id_col else (0, False)
    if reshare_col is not None and copy.any():
        rkey, rhas = _keys(table.column(reshare_col))
        out.loc[copy, "key"], out.loc[copy, "has_key"] = rkey[copy], rhas[copy]
    user_col = _find(names, USER_COLUMNS)
    out["user"], out["has_user"] = _keys(table.column(user_col)) if user_col else (0, False)
    tag_col = _find(names, (TAG_COLUMN,))
    out["tag"] = _tags(table.column(tag_col)) if tag_col else np.int8(-1)
    if need_text:
        text = resolve_text_column(names, text_column, "the messages")
        out["text"] = table.column(text).to_pandas(types_mapper=None).astype(object)
    for col in ("p_bullish", "label"):
        if col in names:
            out[col] = table.column(col).to_numpy(zero_copy_only=False)
    out["row"] = np.arange(table.num_rows)
    no_time = ts == np.iinfo(np.int64).min
    no_ticker = out["n_symbols"].to_numpy() == 0
    dropped = {"no time": int(no_time.sum()), "no ticker": int((no_ticker & ~no_time).sum())}
    keep = ~(no_time | no_ticker)
    if not keep.all():
        out = out[keep].reset_index(drop=True)
    return out, dropped


def _times(column) -> tuple[np.ndarray, np.ndarray]:
    """int64 ns UTC (int64 min where unparseable) and whether each value is a bare date."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_date(kind):
        values = pd.to_datetime(column.to_pandas(), errors="coerce")
        date_only = np.ones(len(column), dtype=bool)
    elif pa.types.is_timestamp(kind):
        values = column.to_pandas()
        date_only = np.zeros(len(column), dtype=bool)
    else:
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        date_only = pc.fill_null(pc.equal(pc.utf8_length(text), 10), False).to_numpy(zero_copy_only=False)
        values = pd.to_datetime(text.to_pandas(), errors="coerce", utc=True, format="ISO8601")
    values = pd.DatetimeIndex(values)
    if values.tz is None:
        values = values.tz_localize("UTC")
    ns = values.tz_convert("UTC").as_unit("ns").asi8.copy()  # NaT is int64 min
    return ns, np.asarray(date_only, dtype=bool)


def _tickers(column) -> Any:
    """Per row a list of upper-case tickers, `$` dropped, duplicates within a message removed."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lists = column
    else:
        text = pc.utf8_upper(column.cast(pa.string()))
        text = pc.replace_substring_regex(text, r"[\[\]\"'$]", "")
        lists = pc.split_pattern_regex(pc.utf8_trim_whitespace(text), r"[\s,;|]+")
    values = []
    for row in lists.to_pylist():
        if not row:
            values.append([])
            continue
        seen: dict[str, None] = {}
        for t in row:
            if t:
                t = t.strip().lstrip("$").upper()
                if t:
                    seen[t] = None
        values.append(list(seen))
    return pd.Series(values, dtype=object)


def _keys(column) -> tuple[np.ndarray, np.ndarray]:
    """uint64 per value: integers as themselves, text that is an integer likewise, other text hashed."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(column.type):
        return pc.fill_null(column.cast(pa.int64()), 0).to_numpy().view(np.uint64).copy(), valid
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    valid &= pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
    as_int = pc.fill_null(pc.utf8_is_digit(text), False).to_numpy(zero_copy_only=False)
    keys = pd.util.hash_array(np.asarray(text.to_pylist(), dtype=object)).astype(np.uint64)
    if as_int.any():
        try:  # ids that are integers keep their value, so text and integer ids of a message agree
            ints = text.filter(pa.array(as_int)).cast(pa.int64()).to_numpy()
            keys[as_int] = ints.view(np.uint64)
        except (pa.ArrowInvalid, OverflowError):  # past int64: hashed like other text
            pass
    return keys, valid


def _tags(column) -> np.ndarray:
    """1 for bullish, 0 for bearish, -1 otherwise (the author's own tag)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))
    bull = pc.fill_null(pc.equal(text, "bullish"), False).to_numpy(zero_copy_only=False)
    bear = pc.fill_null(pc.equal(text, "bearish"), False).to_numpy(zero_copy_only=False)
    return np.where(bull, 1, np.where(bear, 0, -1)).astype(np.int8)
