"""The one set of column rules: which column holds what, and how ids, times, tickers and labels read.

Every command finds its columns here and parses them here, so a file means the same to train,
evaluate, score and the index:

- text: `--text-column`, else `message`, `body`, `text` (the first present; exact name, then any case).
- id: `id`, `message_id`; user: `user_id`, `user`; label: `sentiment`; ticker: `ticker`, `symbol`,
  `symbols`; time: `created_at`, `date`, `timestamp`, `datetime`, `time`.
- times (`parse_times`) become int64 nanoseconds UTC: ISO 8601 with or without a zone (naive is UTC,
  StockTwits' convention), `YYYY-MM-DD` (kept as a bare date), epoch seconds or milliseconds
  (numbers of 1e11 and more are milliseconds), Arrow timestamps and dates. A time before
  `EARLIEST` (2005-01-01) or after now + 1 day, or one that does not parse, is a bad value,
  counted: never a traceback, never a year-9999 period.
- tickers (`clean_ticker`): NFKC, format characters (zero-width joiners, bidi overrides) removed,
  `$` dropped, upper case, then the cashtag alphabet: a letter, up to 9 letters or digits, and an
  optional `.X`/`-B` class suffix (`BTC.X`, `BRK.B`). Anything else is not a ticker, so no
  ticker can carry a spreadsheet formula (`=cmd|calc!A1`) or look like another one.
- labels (`parse_labels`): bullish/bearish in any case (the API's `Bullish`/`Bearish`), 1/0,
  true/false, `{"basic": ...}`; empty or null is unlabelled; anything else is an error naming the
  value and its line.

>>> clean_ticker("$btc.x"), clean_ticker("AAPL\\u200d"), clean_ticker("=cmd|calc!A1")
('BTC.X', 'AAPL', None)
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stocksent.errors import StocksentError

TEXT_COLUMNS = ("message", "body", "text")
ID_COLUMNS = ("id", "message_id")
USER_COLUMNS = ("user_id", "user")
LABEL_COLUMNS = ("sentiment",)
TICKER_COLUMNS = ("ticker", "symbol", "symbols")
TIME_COLUMNS = ("created_at", "date", "timestamp", "datetime", "time")

NO_TIME = np.iinfo(np.int64).min  # a message without a (readable, plausible) time
EARLIEST = np.datetime64("2005-01-01T00:00:00", "ns").astype(np.int64)  # before any StockTwits message
_NS_DAY = 86_400 * 10**9
_MS_FROM = 1e11  # epoch numbers at least this big are milliseconds (1e11 seconds is the year 5138)
_NUMBER = r"^[+-]?\d+(?:\.\d+)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"

_TICKER = re.compile(r"[A-Z][A-Z0-9]{0,9}(?:[.\-][A-Z0-9]{1,5})?")
_CASHTAG = re.compile(r"\$([A-Za-z][A-Za-z0-9]*(?:[.\-][A-Za-z0-9]+)?)")
_TICKER_SEPARATORS = re.compile(r"[\s,;|\[\]\"']+")
_LABEL_WORDS = {"bullish": 1, "bearish": 0, "1": 1, "0": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0}


# --------------------------------------------------------------------------- which column


def find_column(names: Sequence[str], candidates: Sequence[str]) -> str | None:
    """The first of `candidates` among `names`, in the candidates' order: the exact name, else the
    same name in any case (and surrounding spaces).

    >>> find_column(["ID", "Message"], TEXT_COLUMNS), find_column(["x"], ID_COLUMNS)
    ('Message', None)
    """
    lowered: dict[str, str] = {}
    for name in names:
        lowered.setdefault(name.strip().lower(), name)
    for candidate in candidates:
        if candidate in names:
            return candidate
        if candidate in lowered:
            return lowered[candidate]
    return None


def resolve_text_column(names: Iterable[str], text_column: str | None, source: str = "input") -> str:
    """The column holding the messages: `text_column` if given, else `message`, `body` or `text`."""
    names = list(names)
    shown = ", ".join(repr(n)[:40] for n in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    if text_column is not None:
        if text_column not in names:
            raise StocksentError(
                f"{source} has no column {text_column!r} (columns: {shown or 'none'}); "
                "pass the name of the message column with --text-column"
            )
        return text_column
    found = find_column(names, TEXT_COLUMNS)
    if found is None:
        raise StocksentError(
            f"{source} has no 'message', 'body' or 'text' column (columns: {shown or 'none'}); "
            "pass the message column with --text-column"
        )
    return found


def row_name(lines: np.ndarray | None, i: int, unit: str = "line") -> str:
    """`line N` (or `row N`) of row `i`, for an error message; `row i+1` where lines are unknown."""
    return f"{unit} {int(lines[i])}" if lines is not None else f"row {i + 1}"


# --------------------------------------------------------------------------- ids


def id_keys(column) -> tuple[np.ndarray, np.ndarray]:
    """uint64 key per value and whether it has one: integers (and integer text) as themselves, other
    text hashed (pandas' fixed-key SipHash, the same in every process); null or blank has none."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(column.type):
        return pc.fill_null(column.cast(pa.int64()), 0).to_numpy().view(np.uint64).copy(), valid
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    valid &= pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
    as_int = pc.fill_null(pc.match_substring_regex(text, r"^-?\d{1,18}$"), False).to_numpy(zero_copy_only=False)
    keys = pd.util.hash_array(np.asarray(text.to_pylist(), dtype=object), categorize=False).astype(np.uint64)
    if as_int.any():  # ids that are integers keep their value, so text and integer ids of a message agree
        keys[as_int] = text.filter(pa.array(as_int)).cast(pa.int64()).to_numpy().view(np.uint64)
    keys[~valid] = 0
    return keys, valid


# --------------------------------------------------------------------------- times


@dataclass
class Times:
    """Parsed times: `ns` int64 UTC (NO_TIME where none), bare dates, and values present but bad."""

    ns: np.ndarray
    date_only: np.ndarray  # a `YYYY-MM-DD` (or Arrow date): that day, in no part of it
    bad: np.ndarray  # present but unparseable, out of range or implausible (counted, never used)


def parse_times(column, now_ns: int | None = None) -> Times:
    """Every value of an Arrow column as a time (see the module doc); never raises on a value.

    >>> import pyarrow as pa
    >>> t = parse_times(pa.array(["2020-01-31T14:05:00Z", "2020-01-31", "1580479500", "9999-12-31", None]))
    >>> t.ns.astype("datetime64[ns]").astype(str)[:3].tolist(), t.date_only.tolist(), t.bad.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    (['2020-01-31T14:05:00.000000000', '2020-01-31T00:00:00.000000000', '2020-01-31T14:05:00.000000000'],
     [False, True, False, False, False], [False, False, False, True, False])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(column)
    latest = (time.time_ns() if now_ns is None else now_ns) + _NS_DAY
    kind = column.type
    present = pc.is_valid(column).to_numpy(zero_copy_only=False)
    date_only = np.zeros(n, dtype=bool)
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        unit = "D" if pa.types.is_date32(kind) else "ms" if pa.types.is_date64(kind) else kind.unit
        raw = column.cast(pa.int32() if pa.types.is_date32(kind) else pa.int64())
        ns, ok = _whole_units(pc.fill_null(raw, 0).to_numpy(zero_copy_only=False).astype(np.int64), _unit_ns(unit))
        date_only[:] = pa.types.is_date(kind)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        ns, ok = _epoch(pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False))
    else:
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        present &= pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
        number = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False).to_numpy(zero_copy_only=False)
        date_only = pc.fill_null(pc.match_substring_regex(text, _DATE), False).to_numpy(zero_copy_only=False)
        ns, ok = np.full(n, NO_TIME, dtype=np.int64), np.zeros(n, dtype=bool)
        if number.any():
            values = np.asarray([float(v) for v in text.filter(pa.array(number)).to_pylist()])
            ns[number], ok[number] = _epoch(values)
        iso = present & ~number
        if iso.any():
            ns[iso], ok[iso] = _iso(text.filter(pa.array(iso)))
    ok &= present & (ns >= EARLIEST) & (ns <= latest)
    ns = np.where(ok, ns, NO_TIME)
    return Times(ns=ns, date_only=date_only & ok, bad=present & ~ok)


def _unit_ns(unit: str) -> int:
    return {"D": _NS_DAY, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]


def _whole_units(ints: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 counts of a unit as ns, and where that fits in int64 (elsewhere NO_TIME, not ok)."""
    limit = np.iinfo(np.int64).max // factor
    ok = (ints > -limit) & (ints < limit)
    return np.where(ok, ints, 0) * factor + np.where(ok, 0, NO_TIME), ok


def _epoch(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch numbers (float64) to ns: seconds, or milliseconds for magnitudes of 1e11 and more."""
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * np.where(np.abs(values) >= _MS_FROM, 1e6, 1e9)
        ok = np.isfinite(scaled) & (np.abs(scaled) < 9.2e18)
        ns = np.where(ok, scaled, 0).astype(np.int64)
    return np.where(ok, ns, NO_TIME), ok


def _iso(text) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 text to int64 ns UTC; a value pandas cannot parse, or places out of range, is not ok."""
    import pandas as pd

    values = pd.to_datetime(text.to_pandas(), utc=True, errors="coerce", format="ISO8601")
    raw = values.dt.tz_convert(None).to_numpy()
    unit, _ = np.datetime_data(raw.dtype)
    ints = raw.view(np.int64)
    ns, ok = _whole_units(ints, _unit_ns(unit))
    return ns, ok & (ints != NO_TIME)


# --------------------------------------------------------------------------- tickers


def clean_ticker(raw: str) -> str | None:
    """The ticker `raw` names (the module doc's one rule), or None where it names none."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").strip().removeprefix("$").upper()
    return text if _TICKER.fullmatch(text) else None


def ticker_lists(column) -> list[list[str]]:
    """Per row its tickers, each once, in order: a list column, or text such as `AAPL,$TSLA` or
    `["AAPL"]`; anything that is not a ticker by `clean_ticker` is left out."""
    import pyarrow as pa

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        rows = column.to_pylist()
    else:
        rows = [None if v is None else _TICKER_SEPARATORS.split(v) for v in column.cast(pa.string()).to_pylist()]
    return [_unique_tickers(row or ()) for row in rows]


def cashtags(texts: Iterable[str | None]) -> list[list[str]]:
    """The tickers named as cashtags (`$SPY`, `$BTC.X`) in each message, each once, in order."""
    return [_unique_tickers(_CASHTAG.findall(_visible(t))) if t else [] for t in texts]


def _visible(text: str) -> str:
    """Text without format characters, so `$AA\\u200dPL` is the cashtag it looks like."""
    return text if text.isascii() else "".join(c for c in text if unicodedata.category(c) != "Cf")


def _unique_tickers(values: Iterable[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and value:
            ticker = clean_ticker(value)
            if ticker is not None:
                seen[ticker] = None
    return list(seen)


# --------------------------------------------------------------------------- labels


def parse_labels(column, source: str, lines: np.ndarray | None = None, unit: str = "line") -> np.ndarray:
    """int8 class ids (1 bullish, 0 bearish, -1 unlabelled) of a label column (see the module doc).

    A value that is none of those is an error naming it and its line (`lines[i]`, else its row).

    >>> import pyarrow as pa
    >>> parse_labels(pa.array(["Bullish", " bearish ", "", None, "1", "false"]), "x.csv").tolist()
    [1, 0, -1, -1, 1, 0]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_boolean(column.type):
        return pc.fill_null(column.cast(pa.int8()), -1).to_numpy(zero_copy_only=False).astype(np.int8)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pa.array([_label_text(v) for v in column.to_pylist()], pa.string())
    words = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    out = np.full(len(column), -1, dtype=np.int8)
    for word, label in _LABEL_WORDS.items():
        out[pc.fill_null(pc.equal(words, word), False).to_numpy(zero_copy_only=False)] = label
    blank = pc.fill_null(pc.equal(words, ""), True).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero((out < 0) & ~blank):
        value = column[int(i)].as_py()
        label = _nested_label(value)
        if label is None:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise StocksentError(
                f"{source} {row_name(lines, int(i), unit)}: label {shown!r} is not bullish or bearish (any case), "
                "1/0 or true/false; fix it, or leave it empty for a message without a label"
            )
        out[i] = label
    return out


def _label_text(value: Any) -> str | None:
    """A non-text label value as the text `parse_labels` reads (1 -> "1", {"basic": ...} -> JSON)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _nested_label(value: str) -> int | None:
    """The label of `{"basic": "Bullish"}` (how some exports hold StockTwits' tag); None otherwise."""
    if not value.lstrip().startswith("{"):
        return None
    try:
        nested = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return None
    basic = nested.get("basic") if isinstance(nested, dict) else None
    if basic is None and isinstance(nested, dict) and "basic" in nested:
        return -1  # {"basic": null}: StockTwits' way of saying untagged
    return _LABEL_WORDS.get(basic.strip().lower()) if isinstance(basic, str) else None
