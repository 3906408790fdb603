"""JSON Lines (a value per line, streamed) and JSON documents (an API page, a list; parsed whole).

A line that is not UTF-8, not JSON, nested too deep to parse (`[`×100,000 is one clear bad row, never
a RecursionError) or over the one line cap is a bad row with its line number; a document is at most
MAX_DOCUMENT_BYTES (else: convert it to JSON Lines, which stream). A document that turns out to hold
one value per line is read as JSON Lines.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

from stocksent.errors import StocksentError
from stocksent.readers.lines import bounded_lines
from stocksent.readers.objects import ObjectBatches
from stocksent.readers.rows import MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES, BadRow, BadRowSink, Piece, ReadOptions
from stocksent.readers.sources import RawFile, truncated

_BLOCK = 8192  # JSON objects turned into columns at a time
NESTED = "JSON nested too deeply to read; messages are flat objects"


def parse(data: bytes) -> tuple[Any, str | None, int]:
    """(value, None, 0), or (None, why it is no JSON value, the line of `data` it fails on)."""
    try:
        return json.loads(data), None, 0
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (bad byte at offset {exc.start})", data.count(b"\n", 0, exc.start) + 1
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg} at column {exc.colno})", exc.lineno
    except RecursionError:
        return None, NESTED, 1


def read_json_lines(raw: RawFile, options: ReadOptions, bad: BadRowSink) -> Iterator[Piece]:
    """One JSON value per line: message objects, lists of them, or API pages {"messages": [...]}."""
    name = str(raw.path)
    builder = ObjectBatches(name, options, bad)
    for number, line in bounded_lines(raw.stream(), MAX_RECORD_BYTES, name):
        if line is None:
            bad(BadRow(name, number, f"line over {MAX_RECORD_BYTES:,} bytes, the most one message row may hold"))
            continue
        if not line.strip():
            continue
        value, problem, _ = parse(line)
        if problem is not None:
            bad(BadRow(name, number, problem))
            continue
        builder.add_value(value, number)
        if builder.rows >= min(_BLOCK, options.batch_rows):
            yield Piece(*builder.flush(), raw.tell())
    while builder.rows:
        yield Piece(*builder.flush(options.batch_rows), raw.tell())


def read_json_document(raw: RawFile, options: ReadOptions, bad: BadRowSink) -> Iterator[Piece]:
    """A whole JSON document (an API page, a list of messages); JSON Lines if it is one value per line."""
    name = str(raw.path)
    try:
        data = raw.stream().read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise truncated(name, exc) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise StocksentError(
            f"{name} is over {MAX_DOCUMENT_BYTES:,} bytes, the most a JSON document may hold; convert it to "
            "JSON Lines (one object per line, .jsonl), which is read as a stream"
        )
    value, problem, line = parse(data)
    if problem is not None and problem.startswith("invalid JSON (Extra data"):  # several values: one per line
        del data
        with RawFile(raw.path) as again:
            yield from read_json_lines(again, options, bad)
        return
    if problem is not None:
        bad(BadRow(name, line, problem))
        return
    del data
    builder = ObjectBatches(name, options, bad)
    builder.add_value(value, 1)
    while builder.rows:
        yield Piece(*builder.flush(options.batch_rows), raw.tell())
