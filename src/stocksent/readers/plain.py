"""Plain text, one message per line (`.txt`, a file that is no other format, stdin): a `message` column.

Every line is a row, blank ones included (they have no words, so no label, and the output still
lines up with the input); lines end at "\\n" only (not at U+2028 inside a message), without a "\\r"
before it. A line that is not UTF-8 or over the cap is a bad row with its line number.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from stocksent.errors import StocksentError
from stocksent.readers.lines import bounded_lines
from stocksent.readers.rows import MAX_RECORD_BYTES, BadRow, BadRowSink, Piece, ReadOptions, keep_columns
from stocksent.readers.sources import RawFile

TEXT = "message"  # the one column of a text file


def read_text(raw: RawFile, options: ReadOptions, bad: BadRowSink) -> Iterator[Piece]:
    """The file's lines as batches of one `message` column (see the module doc)."""
    if options.text_column not in (None, TEXT):
        raise StocksentError(
            f"{raw.path} is plain text, one message per line, so it has no column {options.text_column!r}; "
            "leave out --text-column"
        )
    keep_columns([TEXT], options.columns, TEXT, str(raw.path))
    yield from read_stream(raw.stream(), str(raw.path), options.batch_rows, bad, raw.tell)


def read_stream(handle: BinaryIO, name: str, batch_rows: int, bad: BadRowSink, position=lambda: 0) -> Iterator[Piece]:
    """Lines of a binary stream (a file's content, stdin) in pieces of at most `batch_rows` rows."""

    texts: list[str] = []
    numbers: list[int] = []
    for number, line in bounded_lines(handle, MAX_RECORD_BYTES, name):
        if number == 1 and line is not None:
            _check_first_line(line, name)
            line = line.removeprefix(b"\xef\xbb\xbf")
        if line is None:
            bad(BadRow(name, number, f"line over {MAX_RECORD_BYTES:,} bytes, the most one message may hold"))
            continue
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            bad(BadRow(name, number, f"not UTF-8 (bad byte at offset {exc.start}); re-save the file as UTF-8"))
            continue
        numbers.append(number)
        if len(texts) >= batch_rows:
            yield _piece(texts, numbers, position())
            texts, numbers = [], []
    if texts:
        yield _piece(texts, numbers, position())


def _piece(texts: list[str], numbers: list[int], position: int) -> Piece:
    import pyarrow as pa

    batch = pa.RecordBatch.from_arrays([pa.array(texts, pa.string())], names=[TEXT])
    return Piece(batch, np.asarray(numbers, dtype=np.int64), position)


def _check_first_line(line: bytes, name: str) -> None:
    """What a stream cannot be peeked for: UTF-16 (a BOM) and binary data, refused at the first line."""
    if line.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StocksentError(f"{name} is UTF-16 (or UTF-32) text, not UTF-8: send UTF-8")
    if line.removeprefix(b"\xef\xbb\xbf")[:1] == b"\x00":
        raise StocksentError(f"{name} is not a text file: it starts with NUL bytes; send UTF-8 text")
