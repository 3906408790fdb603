"""What the readers hand out and hold to: a bad row, a chunk, a format reader's piece, the options, the caps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stocksent.errors import StocksentError

# One cap for every reader: a line of JSON Lines or text, or one CSV record, longer than this is a bad
# row (messages are under 1 KB; far above, and far below what would exhaust memory).
MAX_RECORD_BYTES = 64 * 2**20
MAX_DOCUMENT_BYTES = 512 * 2**20  # a JSON document, which is parsed whole; JSON Lines stream
DEFAULT_BATCH_ROWS = 65536


@dataclass(frozen=True)
class BadRow:
    """A row left out of the batches: where it is and why (`str()` is the message users see)."""

    source: str
    line: int | None  # physical line (CSV, JSON, text); None where the format has none (Parquet)
    reason: str
    row: int | None = None  # Parquet: the row's index in the file, from 1

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"row {self.row}" if self.row is not None else ""
        return f"{self.source} {where}: {self.reason}".replace("  ", " ")


@dataclass(frozen=True)
class Chunk:
    """One batch with where it came from: what `score` needs for progress, and errors for their line."""

    batch: Any  # pyarrow.RecordBatch
    source: str
    bytes_done: int  # input bytes (as stored, compressed or not) read so far, over all inputs
    bytes_total: int
    lines: Any = None  # numpy int64: each row's first physical line (Parquet: its row number)
    unit: str = "line"  # what `lines` counts: "line", or "row" for Parquet


@dataclass(frozen=True)
class Piece:
    """What a format reader yields: a batch of good rows, their lines, and the raw bytes read so far."""

    batch: Any
    lines: Any
    position: int


@dataclass(frozen=True)
class ReadOptions:
    """The choices every format reader takes (see `stocksent.readers.iter_batches`)."""

    text_column: str | None = None
    columns: list[str] | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    reshares: bool = False  # StockTwits API: read a pure reshare as its original (the index's rule)


BadRowSink = Callable[[BadRow], None]


def bad_row_sink(strict: bool, on_bad_row: BadRowSink | None) -> BadRowSink:
    """The readers' one bad-row policy: `strict` raises at the first, else `on_bad_row` hears of each."""

    def bad(row: BadRow) -> None:
        if strict:
            raise StocksentError(f"{row} (--strict: fix or remove that row, or run without --strict)")
        if on_bad_row is not None:
            on_bad_row(row)

    return bad


def keep_columns(names: list[str], columns: list[str] | None, text: str, source: str) -> list[str]:
    """The columns to read: `columns` (all if None), then the text column if it is not among them."""
    if columns is None:
        return names
    missing = [c for c in columns if c not in names]
    if missing:
        raise StocksentError(
            f"{source} has no column {', '.join(map(repr, missing))} (columns: {', '.join(map(repr, names))}); "
            "check --columns"
        )
    return list(dict.fromkeys([*columns, text]))
