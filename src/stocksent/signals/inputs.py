"""Messages as the index needs them: a time, tickers, an id, a user, the author's tag, the text.

Input batches come from `stocksent.readers.iter_batches` (anything `stocksent score` reads)
or are given directly (pyarrow batches/tables, pandas DataFrames). `normalise` maps whatever columns
a batch has to one frame:

- the columns and how each value reads are `stocksent.columns`' rules, the same for every command:
  time (ISO 8601, epoch seconds or milliseconds, `YYYY-MM-DD`, Arrow times; naive is UTC; a bare
  date counts for that day, in no part of it; an implausible time is a counted bad row), tickers
  (one ticker rule: `ticker`/`symbol`/`symbols` as a list or text such as `AAPL,TSLA`), id
  (duplicates are counted once), user, and the author's tag (`sentiment`: bullish/bearish, 1/0,
  true/false; empty is untagged).

Reshares. In StockTwits API data a reshare is a message with its own `id`, `user` and
`created_at` and a `reshare_message.message` holding the original. A reshare whose own body is
empty or the original's text again is a *copy*: it is read as the original message (the
original's id, time, user, text and tag), so the original and all its copies count once. A
reshare with its own words is the resharer's message and counts as such. `iter_messages` reads
API JSON with that rule (`readers.iter_batches(reshares=True)`, which adds the marker column
`reshare_of_id`); a table with `reshare_of_id` (and `reshare_of_created_at`) is read the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from stocksent.columns import (
    ID_COLUMNS,
    LABEL_COLUMNS,
    NO_TIME,
    TICKER_COLUMNS,
    TIME_COLUMNS,
    USER_COLUMNS,
    find_column,
    id_keys,
    parse_labels,
    parse_times,
    resolve_text_column,
    ticker_lists,
)
from stocksent.errors import StocksentError

__all__ = ["iter_messages", "normalise"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- reading


def iter_messages(
    inputs: Any,
    text_column: str | None = None,
    batch_rows: int = 65536,
    on_bad_row: Callable | None = None,
) -> Iterator[Any]:
    """Batches of messages from files (paths, globs, directories) or from in-memory tables.

    Files go through `stocksent.readers.iter_batches`, with StockTwits API reshares read as their
    originals (see the module doc).
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
    from stocksent.readers import iter_batches

    yield from iter_batches(inputs, text_column, batch_rows, on_bad_row=on_bad_row, reshares=True)


def _is_table(value: Any) -> bool:
    kind = type(value).__module__.split(".")[0]
    return kind in ("pandas", "pyarrow") and hasattr(value, "columns")


# --------------------------------------------------------------------------- normalising


def _to_arrow(batch: Any):
    import pyarrow as pa

    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if isinstance(batch, pa.Table):
        return batch
    return pa.Table.from_pandas(batch, preserve_index=False)


def normalise(batch: Any, text_column: str | None = None, need_text: bool = True) -> tuple[Any, dict[str, int]]:
    """A pandas frame with ts (int64 ns UTC), date_only, tickers (list), n_symbols, key, user, tag, text.

    Columns are found and read by `stocksent.columns` (the rules every command shares). Also returns
    counts of rows left out: no time, a bad time (unparseable, or outside 2005-01-01 .. now + 1 day),
    no ticker. `key` and `user` are uint64 keys with `has_key`/`has_user` saying where they are known.
    """
    import pandas as pd
    import pyarrow.compute as pc

    table = _to_arrow(batch)
    names = table.column_names
    time_col = find_column(names, TIME_COLUMNS)
    ticker_col = find_column(names, TICKER_COLUMNS)
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
    times = parse_times(table.column(time_col))
    ts, date_only, bad_time = times.ns, times.date_only, times.bad
    reshare_col = find_column(names, ("reshare_of_id",))
    copy = np.zeros(table.num_rows, dtype=bool)
    if reshare_col is not None:
        copy = pc.is_valid(table.column(reshare_col)).to_numpy(zero_copy_only=False)
        original_time = find_column(names, ("reshare_of_created_at",))
        if original_time is not None and copy.any():
            original = parse_times(table.column(original_time))
            use = copy & (original.ns != NO_TIME)
            ts[use], date_only[use], bad_time[use] = original.ns[use], original.date_only[use], False
    out["ts"], out["date_only"] = ts, date_only
    out["tickers"] = pd.Series(ticker_lists(table.column(ticker_col)), dtype=object)
    out["n_symbols"] = out["tickers"].map(len).astype(np.int32)

    id_col = find_column(names, ID_COLUMNS)
    out["key"], out["has_key"] = id_keys(table.column(id_col)) if id_col else (0, False)
    if reshare_col is not None and copy.any():
        rkey, rhas = id_keys(table.column(reshare_col))
        out.loc[copy, "key"], out.loc[copy, "has_key"] = rkey[copy], rhas[copy]
    user_col = find_column(names, USER_COLUMNS)
    out["user"], out["has_user"] = id_keys(table.column(user_col)) if user_col else (0, False)
    tag_col = find_column(names, LABEL_COLUMNS)
    out["tag"] = parse_labels(table.column(tag_col), "the messages' sentiment column") if tag_col else np.int8(-1)
    if need_text:
        text = resolve_text_column(names, text_column, "the messages")
        out["text"] = table.column(text).to_pandas(types_mapper=None).astype(object)
    for col in ("p_bullish", "label"):
        if col in names:
            out[col] = table.column(col).to_numpy(zero_copy_only=False)
    no_time = ts == NO_TIME
    no_ticker = out["n_symbols"].to_numpy() == 0
    dropped = {
        "no time": int((no_time & ~bad_time).sum()),
        "bad time (unparseable, or outside 2005-01-01 .. now + 1 day)": int(bad_time.sum()),
        "no ticker": int((no_ticker & ~no_time).sum()),
    }
    keep = ~(no_time | no_ticker)
    if not keep.all():
        out = out[keep].reset_index(drop=True)
    return out, dropped
