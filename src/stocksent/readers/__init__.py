"""The one way to read messages: files of any size as a sequence of bounded `pyarrow.RecordBatch`es.

Every command and API that reads messages (train, evaluate, predict --input, score, index, tune,
bench, baseline, report) reads them here, so a file that one reads, every one reads the same way.

    iter_batches(inputs, text_column=None, batch_rows=65536, columns=None, strict=False, on_bad_row=None)
        -> Iterator[pyarrow.RecordBatch]

- `inputs`: a path, a glob, a directory (its data files, sorted, recursively), or a list of those.
  Formats: CSV / CSV.gz, JSON Lines (.jsonl/.ndjson, optionally .gz; plain rows or StockTwits API
  message objects), StockTwits API JSON pages `{"messages": [...]}` (.json), Parquet, and plain
  text, one message per line (.txt). Gzip is recognised by its magic bytes, the format by the
  extension, else by the content (`sources.format_of`). `read_stream` reads stdin's lines.
- Each batch holds at most `batch_rows` rows of ONE file, in file order; every batch has the same
  schema (the first file's; later files must have the same column names, types are cast). The
  same inputs and options always give the same batches, which is what makes scoring's output
  independent of the number of workers and `--resume` exact.
- Columns: every input column (`columns=` keeps only those, in that order, and the text column
  after them). CSV values are text (`string`), exactly as written; StockTwits API objects are
  flattened (`objects.py`); plain JSON rows keep their fields (nested values as JSON text).
- The text column is `columns.resolve_text_column`'s (`--text-column`, else `message`, `body`,
  `text`); it is a `string` column with no nulls. An empty message is a row: it has no words, so
  no label (`stocksent.labels`), and outputs keep it in its place.
- Bad rows are not in the batches: a value that is not UTF-8, invalid or too deeply nested JSON,
  a CSV row with the wrong number of fields, a null message, a line or record over the one cap
  (`MAX_RECORD_BYTES`). Each is passed to `on_bad_row` as a `BadRow` (file, line where the
  format has lines, reason); with `strict=True` the first one raises `StocksentError` naming the
  file and line instead. A file that is not UTF-8 text at all (empty, UTF-16, binary, a gzip cut
  short) is one clear error.

>>> for batch in iter_batches(["day1.csv.gz", "pages/"], batch_rows=10_000):  # doctest: +SKIP
...     texts = batch.column("message").to_pylist()

Memory is bounded by `batch_rows` (plus one read block of 4 MiB and the one record cap), not by the
file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from stocksent.readers.objects import api_row
from stocksent.readers.rows import DEFAULT_BATCH_ROWS, MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES, BadRow, Chunk
from stocksent.readers.sources import FORMATS, expand_inputs, format_of
from stocksent.readers.stream import read_chunks

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "FORMATS",
    "MAX_DOCUMENT_BYTES",
    "MAX_RECORD_BYTES",
    "BadRow",
    "Chunk",
    "api_row",
    "expand_inputs",
    "format_of",
    "iter_batches",
    "read_chunks",
    "read_stream",
]


def iter_batches(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    text_column: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: list[str] | None = None,
    strict: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
    reshares: bool = False,
) -> Iterator[Any]:
    """The inputs' good rows as `pyarrow.RecordBatch`es of at most `batch_rows` rows (see the module doc).

    >>> rows = sum(b.num_rows for b in iter_batches("messages.csv.gz"))  # doctest: +SKIP
    """
    for chunk in read_chunks(inputs, text_column, batch_rows, columns, strict, on_bad_row, reshares):
        yield chunk.batch


def read_stream(
    stream: BinaryIO,
    name: str = "stdin",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_bad_row: Callable[[BadRow], None] | None = None,
) -> Iterator[Chunk]:
    """The lines of a byte stream (stdin) as chunks of one `message` column, checked as they arrive.

    >>> import io
    >>> [c.batch.column("message").to_pylist() for c in read_stream(io.BytesIO(b"a\\n\\nb"))]
    [['a', '', 'b']]
    """
    from stocksent.readers.plain import read_stream as lines
    from stocksent.readers.rows import bad_row_sink

    for piece in lines(stream, name, batch_rows, bad_row_sink(False, on_bad_row)):
        yield Chunk(piece.batch, name, 0, 0, piece.lines)
