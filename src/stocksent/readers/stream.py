"""Many files to one stream of chunks: each file read by its format's reader, re-cut to `batch_rows` rows,
every batch in the first file's schema, each file hashed as it is read."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from stocksent.errors import StocksentError
from stocksent.readers.csv import read_csv
from stocksent.readers.json import read_json_document, read_json_lines
from stocksent.readers.parquet import read_parquet
from stocksent.readers.plain import read_text
from stocksent.readers.rows import BadRow, Chunk, Piece, ReadOptions, bad_row_sink
from stocksent.readers.sources import RawFile, check_head, expand_inputs, format_of, peek, size_of

_READERS = {"csv": read_csv, "jsonl": read_json_lines, "json": read_json_document, "text": read_text}


def read_chunks(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    text_column: str | None = None,
    batch_rows: int = 65536,
    columns: list[str] | None = None,
    strict: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
    reshares: bool = False,
    sha256: dict[str, str] | None = None,
) -> Iterator[Chunk]:
    """`iter_batches` with each batch's source file, its rows' lines and the bytes read so far.

    `sha256`, where given, receives {file path: hex digest} of each file as it is finished: the
    digest of the very bytes that were read.
    """
    if batch_rows < 1:
        raise StocksentError("batch_rows must be at least 1")
    files = expand_inputs(inputs)
    options = ReadOptions(text_column, columns, batch_rows, reshares)
    bad = bad_row_sink(strict, on_bad_row)
    sizes = [size_of(path) for path in files]
    total, done_before = sum(sizes), 0
    schema: list[Any] = [None, ""]  # the first file's schema, and its name
    for path, size in zip(files, sizes):
        pending: list[Piece] = []
        pending_rows = 0
        kind = format_of(path, text_column)
        unit = "row" if kind == "parquet" else "line"
        for piece in _pieces(path, kind, options, bad, sha256):
            piece = Piece(_conform(piece.batch, schema, str(path)), piece.lines, piece.position)
            pending.append(piece)
            pending_rows += piece.batch.num_rows
            while pending_rows >= batch_rows:
                head, pending = _cut(pending, batch_rows)
                pending_rows -= batch_rows
                yield Chunk(head.batch, str(path), done_before + head.position, total, head.lines, unit)
        if pending_rows:
            head, _ = _cut(pending, pending_rows)
            yield Chunk(head.batch, str(path), done_before + size, total, head.lines, unit)
        done_before += size


def _pieces(path: Path, kind: str, options: ReadOptions, bad, sha256: dict[str, str] | None) -> Iterator[Piece]:
    """One file's pieces from its format's reader; its digest into `sha256` once it is read."""
    if kind == "parquet":
        yield from read_parquet(path, options, bad)
        if sha256 is not None:
            with RawFile(path) as raw:
                sha256[str(path)] = raw.sha256()
        return
    check_head(path, peek(path, 1 << 16))
    with RawFile(path) as raw:
        yield from _READERS[kind](raw, options, bad)
        if sha256 is not None:
            sha256[str(path)] = raw.sha256()


def _cut(pieces: list[Piece], rows: int) -> tuple[Piece, list[Piece]]:
    """The first `rows` rows of `pieces` as one piece (one batch), and the pieces left."""
    import pyarrow as pa

    table = pa.Table.from_batches([p.batch for p in pieces])
    lines = np.concatenate([p.lines for p in pieces])
    head, rest = table.slice(0, rows), table.slice(rows)
    position = pieces[-1].position
    left = [Piece(_one_batch(rest), lines[rows:], position)] if rest.num_rows else []
    return Piece(_one_batch(head), lines[:rows], position), left


def _one_batch(table):
    import pyarrow as pa

    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def _conform(batch, schema: list[Any], source: str):
    """A later file's batch in the first file's schema: same column names, types cast where they differ."""
    if schema[0] is None:
        schema[0], schema[1] = batch.schema, source
        return batch
    first, first_source = schema
    if batch.schema.equals(first):
        return batch
    if sorted(batch.schema.names) != sorted(first.names):
        raise StocksentError(
            f"{source} has columns {batch.schema.names} but {first_source} has {first.names}; "
            "read files with different columns separately, or keep common ones with --columns"
        )
    batch = batch.select(first.names)
    try:
        return batch.cast(first)
    except (ValueError, TypeError, NotImplementedError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StocksentError(
            f"{source}'s columns have types {batch.schema} that do not convert to those of {first_source} "
            f"({exc}); read these files separately"
        ) from None
