"""Parquet files, row group by row group: columns as stored, a null message a bad row with its row number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stocksent.columns import resolve_text_column
from stocksent.errors import StocksentError
from stocksent.readers.rows import BadRow, BadRowSink, Piece, ReadOptions, keep_columns
from stocksent.readers.sources import size_of


def read_parquet(path: Path, options: ReadOptions, bad: BadRowSink) -> Iterator[Piece]:
    """Batches of at most `batch_rows` rows; `lines` are row numbers (from 1): Parquet has no lines."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise StocksentError(f"{path}: not a readable Parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    text = resolve_text_column(names, options.text_column, str(path))
    text_type = parquet.schema_arrow.field(text).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise StocksentError(f"{path}: column {text!r} holds {text_type}, not text; pass the message column")
    keep = keep_columns(names, options.columns, text, str(path))
    size, total_rows, start = size_of(path), max(parquet.metadata.num_rows, 1), 0
    try:
        for batch in parquet.iter_batches(batch_size=options.batch_rows, columns=keep, use_threads=False):
            message = batch.column(text)
            if pa.types.is_large_string(message.type):
                batch = batch.set_column(keep.index(text), text, message.cast(pa.string()))
                message = batch.column(text)
            rows = np.arange(start + 1, start + 1 + batch.num_rows, dtype=np.int64)
            start += batch.num_rows
            missing = pc.is_null(message).to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(missing):
                bad(BadRow(str(path), None, "no message (null)", row=int(rows[i])))
            if missing.any():
                batch, rows = batch.filter(pa.array(~missing)), rows[~missing]
            if batch.num_rows:
                yield Piece(batch, rows, int(size * start / total_rows))
    except (pa.ArrowInvalid, OSError) as exc:
        raise StocksentError(f"{path}: Parquet file is corrupt after row {start} ({exc})") from None
