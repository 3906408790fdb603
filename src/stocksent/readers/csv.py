"""CSV and CSV.gz in 4 MiB blocks (pyarrow), every value text exactly as written, bad rows with their line.

- Values are `string` columns: a streaming reader cannot know that row 9,000,000 of an "integer"
  column holds a word. They are checked as UTF-8 here, so one bad byte costs one row, not the file.
- A blank line is skipped; an empty message (`""`, or nothing between the commas) is a row: it has
  no words, so no label, and the output keeps it.
- Bad rows: a value that is not UTF-8, a row with the wrong number of fields, a record over the one
  cap. A record longer than pyarrow's block (which stops its reader) is read by `csv_records`,
  and the rows after it are read as the rows before it.
- `lines` is each row's first physical line (quoted line breaks move the count on).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np

from stocksent.columns import resolve_text_column
from stocksent.errors import StocksentError
from stocksent.readers.csv_records import records
from stocksent.readers.rows import MAX_RECORD_BYTES, BadRow, BadRowSink, Piece, ReadOptions, keep_columns
from stocksent.readers.sources import RawFile, peek, truncated

BLOCK = 1 << 22  # bytes pyarrow parses at a time: 4 MiB is ~30k messages, near its fastest
_STRADDLING = "straddling object"  # pyarrow's error for a record longer than its block


def header_of(path, head: bytes) -> tuple[list[str], int]:
    """Column names and the physical lines the header takes (Python's csv: quoted names work)."""
    reader = csv.reader(io.StringIO(head.decode("utf-8", errors="replace").removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise StocksentError(f"{path} line 1: malformed CSV header ({exc})") from None
    if not header:
        raise StocksentError(f"{path} has no header row; the first line must name the columns")
    if len(set(header)) != len(header):
        raise StocksentError(f"{path} has repeated column names {header}; give each column its own name")
    return header, reader.line_num


def read_csv(raw: RawFile, options: ReadOptions, bad: BadRowSink) -> Iterator[Piece]:
    """The file's good rows in blocks (see the module doc)."""
    names, header_lines = header_of(raw.path, peek(raw.path, 1 << 16))
    text = resolve_text_column(names, options.text_column, str(raw.path))
    rows = _Rows(str(raw.path), names, keep_columns(names, options.columns, text, str(raw.path)), text, bad)
    rows.next_line = header_lines + 1
    try:
        yield from _pyarrow_blocks(raw, rows)
    except _Straddling:
        yield from _record_blocks(raw.path, rows)


class _Straddling(Exception):
    """A record longer than pyarrow's block: the rest of the file is split by `csv_records`."""


def _options(names: list[str], on_invalid=None):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_invalid)
    # Binary, and null only where nothing was written: a blank line is all nulls, "" is an empty value.
    convert = pcsv.ConvertOptions(
        column_types={name: pa.binary() for name in names},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
    )
    return parse, convert


def _pyarrow_blocks(raw: RawFile, rows: _Rows) -> Iterator[Piece]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse, convert = _options(rows.names, rows.on_invalid)
    read = pcsv.ReadOptions(use_threads=False, block_size=BLOCK, column_names=rows.names, skip_rows=1)
    try:
        reader = pcsv.open_csv(raw.arrow_stream(), read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        _raise(raw, exc, rows)
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            _raise(raw, exc, rows)
        piece = rows.take(batch, raw.tell())
        if piece is not None:
            yield piece
    rows.flush_invalid()


def _raise(raw: RawFile, exc: Exception, rows: _Rows):
    if _STRADDLING in str(exc):
        rows.invalid.clear()  # the rows of the block that failed are read again
        raise _Straddling() from None
    if raw.gzipped:
        raise truncated(raw.path, exc) from None
    raise StocksentError(f"{raw.path}: cannot read as CSV after line {rows.next_line} ({exc})") from None


def _record_blocks(path, rows: _Rows) -> Iterator[Piece]:
    """The rest of the file from record `rows.next_record`, split by `csv_records`, parsed in blocks."""
    with RawFile(path) as raw:
        found = records(raw.stream(), MAX_RECORD_BYTES)
        for number, _ in enumerate(found, start=1):  # the header and the records already read
            if number == rows.next_record - 1:
                break
        block: list[bytes] = []
        size = 0
        for record, newlines in found:
            if record is not None:
                block.append(record if record.endswith((b"\n", b"\r")) else record + b"\n")
                size += len(record)
            if block and (record is None or size >= BLOCK):
                yield from _parsed(path, block, rows, raw.tell())
                block, size = [], 0
            if record is None:
                bad = f"a record over {MAX_RECORD_BYTES:,} bytes, the most one row may hold"
                rows.bad(BadRow(rows.source, rows.next_line, bad))
                rows.next_record, rows.next_line = rows.next_record + 1, rows.next_line + newlines
        if block:
            yield from _parsed(path, block, rows, raw.tell())
    rows.flush_invalid()


def _parsed(path, block: list[bytes], rows: _Rows, position: int) -> Iterator[Piece]:
    """One block of whole records parsed by pyarrow (its block made to fit them all)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse, convert = _options(rows.names, rows.on_invalid)
    data = b"".join(block)
    read = pcsv.ReadOptions(use_threads=False, block_size=max(BLOCK, 2 * len(data)), column_names=rows.names)
    try:
        table = pcsv.read_csv(pa.py_buffer(data), read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StocksentError(f"{path}: cannot read as CSV after line {rows.next_line} ({exc})") from None
    batches = table.combine_chunks().to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    piece = rows.take(batches[0], position, records=len(block))
    if piece is not None:
        yield piece


class _Rows:
    """Turns blocks of binary columns into good rows with their lines, reporting the bad ones."""

    def __init__(self, source: str, names: list[str], keep: list[str], text: str, bad: BadRowSink):
        self.source, self.names, self.keep, self.text, self.bad = source, names, keep, text, bad
        self.invalid: list[tuple[int | None, str]] = []  # (record number, text) of rows with the wrong field count
        self.next_record = 2  # the header is record 1, as in pyarrow's numbering of invalid rows
        self.next_line = 2

    def on_invalid(self, row) -> str:
        self.invalid.append((row.number, row.text))
        return "skip"

    def flush_invalid(self) -> None:
        """Invalid rows numbered past the last block (the file's last rows)."""
        for _, row_text in self.invalid:
            self.bad(BadRow(self.source, None, f"wrong number of fields in CSV row: {row_text[:60]!r}"))
        self.invalid.clear()

    def take(self, batch, position: int, records: int | None = None) -> Piece | None:
        """The good rows of one block (`records`: how many it holds, invalid ones included, where known)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = batch.num_rows
        newlines = np.zeros(n, dtype=np.int64)
        blank = np.ones(n, dtype=bool)
        for column in batch.columns:  # line breaks inside quoted values move the line count on
            newlines += pc.fill_null(pc.count_substring(column, "\n"), 0).to_numpy(zero_copy_only=False)
            blank &= pc.is_null(column).to_numpy(zero_copy_only=False)
        if records is not None:  # a block of known records, numbered from 1: all its invalid rows are here
            mine = [(self.next_record + (number or 1) - 1, t) for number, t in self.invalid]
            self.invalid = []
        else:  # pyarrow's blocks: invalid rows interleave with the batch's rows by record number
            span_end, mine = self.next_record + n, []
            while self.invalid and self.invalid[0][0] is not None and self.invalid[0][0] < span_end + len(mine):
                mine.append(self.invalid.pop(0))
        if self.invalid and self.invalid[0][0] is None:  # pyarrow gave no number: report without a line
            self.flush_invalid()
        records_here = np.arange(self.next_record, self.next_record + n + len(mine))
        is_invalid = np.isin(records_here, [number for number, _ in mine])
        per_record = np.ones(len(records_here), dtype=np.int64)
        per_record[~is_invalid] += newlines
        per_record[is_invalid] += np.array([t.count("\n") for _, t in mine], dtype=np.int64)
        starts = self.next_line + np.concatenate([[0], np.cumsum(per_record)[:-1]]).astype(np.int64)
        lines = starts[~is_invalid]
        self.next_record += n + len(mine)
        self.next_line += int(per_record.sum())
        good, reasons = self._decoded(batch.select(self.keep), ~blank)
        found = [
            (int(line), f"wrong number of fields in CSV row: {t[:60]!r}")
            for (_, t), line in zip(mine, starts[is_invalid])
        ]
        found += [(int(lines[i]), reason) for i, reason in reasons.items()]
        for line, reason in sorted(found):
            self.bad(BadRow(self.source, line, reason))
        keep = ~blank
        keep[list(reasons)] = False
        if not keep.any():
            return None
        return Piece(good.filter(pa.array(keep)) if not keep.all() else good, lines[keep], position)

    def _decoded(self, batch, wanted: np.ndarray):
        """Binary columns to UTF-8 strings (nulls as ""), and {row: reason} of rows with a bad byte."""
        import pyarrow as pa
        import pyarrow.compute as pc

        reasons: dict[int, str] = {}
        decoded = []
        for name, column in zip(batch.schema.names, batch.columns):
            column = pc.fill_null(column, b"")
            try:
                decoded.append(column.cast(pa.string()))
            except pa.ArrowInvalid:  # rare: find the rows, blank them, and cast what is left
                values = column.to_pylist()
                for i, value in enumerate(values):
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        values[i] = b""
                        if wanted[i]:
                            reasons.setdefault(i, f"column {name!r} is not UTF-8 (bad byte at offset {exc.start})")
                decoded.append(pa.array(values, pa.binary()).cast(pa.string()))
        return pa.RecordBatch.from_arrays(decoded, names=batch.schema.names), reasons
