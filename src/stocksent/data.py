"""Reading messages and labels from the formats users actually have, and fetching the dataset.

Everything a user can get wrong here (a missing file, a wrong format, a failed download)
becomes a one-line StocksentError, so the CLI never shows a traceback for bad input.
Messages are returned exactly as written: cleaning them is the preprocessing module's job.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from stocksent.errors import StocksentError
from stocksent.labels import LABELS
from stocksent.textfile import MAX_LINE_CHARS, TextFile

__all__ = ["LabelledData", "read_records", "iter_records", "read_labelled", "parse_label"]

log = logging.getLogger(__name__)


_MESSAGE_COLUMNS = ("message", "body", "text")  # preference order
_CHUNK = 1 << 20
_LINE_START = re.compile(r"^\s*(\S)", re.MULTILINE)  # first character of each non-blank line
_LABEL_IDS = {name: i for i, name in enumerate(LABELS)}

Record = dict[str, Any]  # {"message": str, "sentiment": str | None}


@dataclass
class LabelledData:
    """Messages with their class ids, plus how many rows had no usable label (reported, not silent)."""

    messages: list[str]
    labels: list[int]  # 0 bearish, 1 bullish
    skipped: int  # rows without a bullish/bearish label


# --------------------------------------------------------------------------- labels


def parse_label(value: object) -> int | None:
    """'bullish' -> 1, 'bearish' -> 0 (any case, surrounding spaces ignored); anything else -> None."""
    if not isinstance(value, str):
        return None
    label = _LABEL_IDS.get(value)  # fast path: the dataset is already lower-case
    return label if label is not None else _LABEL_IDS.get(value.strip().lower())


# --------------------------------------------------------------------------- reading


def _format_of(path: Path) -> str:
    """Format hinted by the file name ('' if none), looking through a trailing .gz."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    return {
        ".csv": "csv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "json",
        ".txt": "text",
    }.get(ext, "")


def _lines(text: str) -> list[str]:
    """Split on newlines only: str.splitlines would also split on U+2028 etc. inside a message."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _all_lines_are_objects(text: str) -> bool:
    """True if every non-blank line starts with '{' (JSON Lines); stops at the first line that does not."""
    seen = False
    for match in _LINE_START.finditer(text):
        if match.group(1) != "{":
            return False
        seen = True
    return seen


def _clip(value: object, limit: int = 40) -> str:
    """`value` as text for an error message: at most `limit` characters, lone surrogates escaped."""
    text = str(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _some(names: Sequence[object], most: int = 5) -> str:
    """A few names for an error message (a hostile file may have a million keys, each a megabyte)."""
    shown = ", ".join(_clip(name) for name in list(names)[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _loads(text: str, path: Path, where: str) -> Any:
    """json.loads with the two ways it fails on hostile input as one-line errors."""
    try:
        return json.loads(text)
    except RecursionError:
        where = f" {where}" if where else ""
        raise StocksentError(f"{path}{where}: JSON nested too deeply to read; messages are flat objects") from None


def _sentiment_of(obj: dict[str, Any]) -> str | None:
    """`sentiment` (a string or {'basic': ...}), else StockTwits' entities.sentiment.basic; may be null."""
    value = obj.get("sentiment")
    if isinstance(value, dict):
        value = value.get("basic")
    if value is None:
        entities = obj.get("entities")
        if isinstance(entities, dict):
            sentiment = entities.get("sentiment")
            if isinstance(sentiment, dict):
                value = sentiment.get("basic")
    if value is None:
        return None
    return value if isinstance(value, str) else _clip(value, 100)


def _record_from_object(obj: Any, path: Path, where: str) -> Record:
    """One message object (JSON Lines row or StockTwits API item) to a record."""
    if not isinstance(obj, dict):
        raise StocksentError(
            f"{path} {where}: expected a JSON object with a 'message' or 'body', got {type(obj).__name__}"
        )
    key = "message" if "message" in obj else "body" if "body" in obj else None
    if key is None:
        keys = _some(sorted(map(str, obj))) or "none"
        raise StocksentError(f"{path} {where}: object has no 'message' or 'body' field (fields found: {keys})")
    message = obj[key]
    if not isinstance(message, str):
        raise StocksentError(f"{path} {where}: '{key}' must be a string, got {type(message).__name__}")
    return {"message": message, "sentiment": _sentiment_of(obj)}


def _jsonl_records(lines: Iterable[str], path: Path) -> Iterator[Record]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = _loads(line, path, f"line {number}")
        except json.JSONDecodeError as exc:
            raise StocksentError(f"{path} line {number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        yield _record_from_object(obj, path, f"line {number}")


def _records_from_json_value(value: Any, path: Path) -> list[Record]:
    """A StockTwits API response ({'messages': [...]}), a list of message objects, or one object."""
    if isinstance(value, dict) and "messages" in value:
        items = value["messages"]
        if not isinstance(items, list):
            raise StocksentError(f"{path}: 'messages' must be a list, got {type(items).__name__}")
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict) and ("message" in value or "body" in value):
        items = [value]
    else:
        found = _some(sorted(map(str, value))) if isinstance(value, dict) else type(value).__name__
        raise StocksentError(
            f"{path}: JSON has no 'messages' list or message objects (found: {found}); "
            "expected a StockTwits API response or a list of objects with 'body'/'message'"
        )
    return [_record_from_object(item, path, f"item {i}") for i, item in enumerate(items)]


def _json_error(exc: json.JSONDecodeError, path: Path) -> StocksentError:
    return StocksentError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})")


def _records_from_json_text(text: str, path: Path) -> Iterable[Record]:
    """Whole-document JSON, falling back to JSON Lines when it is one object per line."""
    try:
        value = _loads(text, path, "")
    except json.JSONDecodeError as exc:
        if _all_lines_are_objects(text):
            return _jsonl_records(_lines(text), path)
        raise _json_error(exc, path) from None
    return _records_from_json_value(value, path)


def _first_and_last_char(text: str) -> tuple[str, str]:
    """First and last non-whitespace characters, without copying a large text."""
    match = re.search(r"\S", text)
    first = match.group() if match else ""
    tail = text[-4096:].rstrip()
    return first, tail[-1:] if tail else text.rstrip()[-1:]


def _try_json(text: str) -> Any | None:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _csv_header(text: str) -> list[str] | None:
    """First CSV record (from the first 64 KiB: a header is never longer), or None if not CSV."""
    try:
        return next(csv.reader(io.StringIO(text[: 1 << 16], newline="")), None)
    except csv.Error:
        return None


def _find_column(header: Sequence[str], names: Sequence[str]) -> int | None:
    normalized = [h.strip().lower() for h in header]
    for name in names:
        if name in normalized:
            return normalized.index(name)
    return None


def _allow_long_csv_fields() -> None:
    """Raise csv's field limit (131,072 characters) to MAX_LINE_CHARS, never lower it.

    The one global setting this module changes: csv has no per-reader limit, and with the default a
    valid file with a long field fails (the error used to blame the quotes).
    """
    if csv.field_size_limit() < MAX_LINE_CHARS:
        csv.field_size_limit(MAX_LINE_CHARS)


def _csv_records(lines: Iterable[str], path: Path) -> Iterator[Record]:
    """Rows of a CSV with a header naming a message column, from lines with their line ends."""
    _allow_long_csv_fields()
    # strict: an unbalanced quote is an error with a line number, not the rest of the file in one field.
    reader = csv.reader(lines, strict=True)
    start = 1
    try:
        header = next(reader, None) or []
        message_col = _find_column(header, _MESSAGE_COLUMNS)
        if message_col is None:
            found = _some([repr(h) for h in header]) or "none"
            raise StocksentError(
                f"{path} has no 'message' column (columns found: {found}); "
                "add a header row with a 'message' (or 'body'/'text') column"
            )
        sentiment_col = _find_column(header, ("sentiment",))
        start = reader.line_num + 1  # where the next record begins, for error messages
        for row in reader:
            if row:  # else a blank line
                message = row[message_col] if message_col < len(row) else ""
                sentiment = None
                if sentiment_col is not None and sentiment_col < len(row):
                    sentiment = row[sentiment_col] or None
                yield {"message": message, "sentiment": sentiment}
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise StocksentError(
                f"{path} line {start}: a field is over {MAX_LINE_CHARS:,} characters, the most one may hold "
                "(if that row's quotes are balanced, the field really is that long: split it)"
            ) from None
        raise StocksentError(f"{path} line {start}: malformed CSV ({exc}); check the quotes in that row") from None


def _plain_records(lines: Iterable[str]) -> Iterator[Record]:
    return ({"message": line, "sentiment": None} for line in lines if line.strip())


def _records_from_sniffed_text(text: str, path: Path) -> Iterable[Record]:
    """A whole file without a telling extension that starts like JSON: JSON, JSON Lines, CSV or text."""
    first, last = _first_and_last_char(text)
    if _all_lines_are_objects(text):
        return _records_from_json_text(text, path)
    if (first, last) in {("{", "}"), ("[", "]")} and (value := _try_json(text)) is not None:
        return _records_from_json_value(value, path)
    # without an extension, text like "[SPY] up ... ]" is a message, not broken JSON
    return _csv_or_plain(_csv_header(text), lambda: io.StringIO(text, newline=""), lambda: _lines(text), path)


def _csv_or_plain(header, universal_lines, lines, path: Path) -> Iterable[Record]:
    if header is not None and _find_column(header, _MESSAGE_COLUMNS) is not None:
        return _csv_records(universal_lines(), path)
    return _plain_records(lines())


def iter_records(path: str | os.PathLike) -> Iterator[Record]:
    """Every message in the file, in file order, as {'message': str, 'sentiment': str | None}, read
    as a stream: memory stays flat however long the file (a .json document is read whole, up to 512 MiB).

    The format comes from the extension (.csv, .jsonl/.ndjson, .json, .txt, each optionally .gz)
    or, failing that, from the content, so users can pass whatever export they have.

    >>> next(iter_records("messages.csv"))  # doctest: +SKIP
    {'message': '$SPY breaking out', 'sentiment': 'bullish'}
    """
    path = Path(path)
    with TextFile.open(path) as text:
        first = text.first_char()
        if not first:
            raise StocksentError(f"{path} is empty; give a file with one or more messages")
        fmt = _format_of(path)
        stream_advice = "; convert it to JSON Lines (one object per line, .jsonl), which is read as a stream"
        if fmt == "csv":
            records: Iterable[Record] = _csv_records(text.universal_lines(), path)
        elif fmt == "jsonl":
            records = _jsonl_records(text.lines(), path)
        elif fmt == "json":
            records = _records_from_json_text(text.read_all(advice=stream_advice), path)
        elif fmt == "text":
            records = _plain_records(text.lines())
        elif first in "{[":
            records = _records_from_sniffed_text(text.read_all(advice=stream_advice), path)
        else:
            records = _csv_or_plain(_csv_header(text.head(1 << 16)), text.universal_lines, text.lines, path)
        count = 0
        for count, record in enumerate(records, start=1):  # noqa: B007 (count is used after the loop)
            yield record
    if not count:
        raise StocksentError(f"{path} contains no messages; give a file with one or more messages")


def read_records(path: str | os.PathLike) -> list[Record]:
    """Every message in the file, in file order, as {'message': str, 'sentiment': str | None}."""
    return list(iter_records(path))


def read_labelled(path: str | os.PathLike) -> LabelledData:
    """Messages with bullish/bearish labels for training; unlabelled rows are counted, not used."""
    messages: list[str] = []
    labels: list[int] = []
    rows = 0
    for rows, record in enumerate(iter_records(path), start=1):  # noqa: B007
        label = parse_label(record["sentiment"])
        if label is not None:
            messages.append(record["message"])
            labels.append(label)
    if not labels:
        raise StocksentError(
            f"{path} has no rows labelled bullish or bearish ({rows} rows read); "
            "training needs a 'sentiment' column (or StockTwits entities.sentiment.basic)"
        )
    return LabelledData(messages=messages, labels=labels, skipped=rows - len(labels))


def read_texts(path: str | os.PathLike) -> list[str]:
    """Just the messages, for prediction: labels, if present, are ignored."""
    return [record["message"] for record in iter_records(path)]


def iter_texts(path: str | os.PathLike, chunk: int = 10_000) -> Iterator[list[str]]:
    """The messages in lists of up to `chunk`, read as a stream (what `predict --input` scores).

    >>> sum(len(texts) for texts in iter_texts("big.jsonl"))  # doctest: +SKIP
    1000000
    """
    return _batched((record["message"] for record in iter_records(path)), chunk)


def iter_stdin_texts(stream: BinaryIO, chunk: int = 10_000) -> Iterator[list[str]]:
    """Non-blank lines of a byte stream (stdin) in lists of up to `chunk`, checked as UTF-8 as they arrive."""
    text = TextFile(stream, "stdin", hint="send UTF-8")
    return _batched((line for line in text.lines() if line.strip()), chunk)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    if size < 1:
        raise StocksentError(f"chunk size must be at least 1, got {size}")
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
