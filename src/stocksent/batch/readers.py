"""The streaming readers now live in `stocksent.readers` (a core module: training reads the same files
through them); this name is kept so `stocksent.batch.readers` imports keep working."""

from stocksent.readers import (  # noqa: F401 (re-exported)
    DEFAULT_BATCH_ROWS,
    FORMATS,
    TEXT_COLUMNS,
    BadRow,
    Chunk,
    _peek,
    expand_inputs,
    format_of,
    iter_batches,
    read_chunks,
    resolve_text_column,
)

__all__ = ["BadRow", "Chunk", "iter_batches", "read_chunks", "expand_inputs", "resolve_text_column", "format_of"]
