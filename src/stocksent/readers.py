"""Streaming readers: message files of any size as a sequence of bounded `pyarrow.RecordBatch`es.

Contract (other modules rely on it: `stocksent score`, `stocksent.signals`):

    iter_batches(inputs, text_column=None, batch_rows=65536, columns=None, strict=False, on_bad_row=None)
        -> Iterator[pyarrow.RecordBatch]

- `inputs`: a path, a glob, a directory (its data files, sorted, recursively), or a list of those.
  Formats: CSV / CSV.gz, JSON Lines (.jsonl/.ndjson, optionally .gz; plain rows or StockTwits API
  message objects), StockTwits API JSON pages `{"messages": [...]}` (.json), Parquet. Gzip is
  recognised by its magic bytes, the format by the extension, else by the content.
- Each batch holds at most `batch_rows` rows of ONE file, in file order; every batch has the same
  schema (the first file's; later files must have the same column names, types are cast).
  The same inputs and options always give the same batches, which is what makes scoring's output
  independent of the number of workers and `--resume` exact.
- Columns: every input column (`columns=` keeps only those, in that order, and the text column
  after them if it is not among them). CSV values are text (`string`), exactly as written: a
  streaming reader cannot know that row 9,000,000 of an "integer" column holds a word. StockTwits
  API objects are flattened to `id` (int64), `created_at`, `user_id` (int64), `symbols`
  (list<string>), `sentiment` (the author's tag or null) and `body`. Plain JSON rows keep their
  fields (nested values as JSON text).
- The text column is `text_column`, else `message`, `body` or `text` (`columns.resolve_text_column`); it is
  always a `string` column with no nulls and no empty messages in the batches.
- Bad rows are not in the batches: an empty or non-text message, an undecodable line (not UTF-8,
  invalid JSON, a CSV row with the wrong number of fields). Each is passed to `on_bad_row` as a
  `BadRow` (source file, line number where the format has lines, reason); with `strict=True` the
  first one raises `StocksentError` naming the file and line instead.

>>> for batch in iter_batches(["day1.csv.gz", "pages/"], batch_rows=10_000):  # doctest: +SKIP
...     texts = batch.column("message").to_pylist()

Memory is bounded by `batch_rows` (plus one read block of 4 MiB), not by the file.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stocksent.columns import resolve_text_column
from stocksent.errors import StocksentError

__all__ = ["BadRow", "Chunk", "iter_batches", "read_chunks", "expand_inputs", "resolve_text_column", "format_of"]

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 65536
FORMATS = ("csv", "jsonl", "json", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_CSV_BLOCK = 1 << 22  # bytes pyarrow parses at a time: 4 MiB is ~30k messages, near its fastest
_JSON_BLOCK = 8192  # JSON objects turned into columns at a time
_API_FIELDS = ("id", "created_at", "user_id", "symbols", "sentiment", "body")


@dataclass(frozen=True)
class BadRow:
    """A row left out of the batches: where it is and why (`str()` is the message users see)."""

    source: str
    line: int | None  # physical line (CSV, JSON); None where the format has none (Parquet)
    reason: str
    row: int | None = None  # Parquet: the row's index in the file

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"row {self.row}" if self.row is not None else ""
        return f"{self.source} {where}: {self.reason}".replace("  ", " ")


@dataclass(frozen=True)
class Chunk:
    """One batch with where it came from: what `score` needs for progress and messages."""

    batch: Any  # pyarrow.RecordBatch
    source: str
    bytes_done: int  # input bytes (as stored, compressed or not) read so far, over all inputs
    bytes_total: int


def format_of(path: str | os.PathLike) -> str:
    """csv, jsonl, json or parquet, from the extension (through a trailing .gz), else from the content."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    head = peek_bytes(path, 4096)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        return "jsonl"
    if stripped.startswith(b"["):
        return "json"
    return "csv"


def peek_bytes(path: Path, size: int) -> bytes:
    """The first `size` bytes of the content (gunzipped if gzip)."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(size)
            if head.startswith(_GZIP_MAGIC):
                raw.seek(0)
                with gzip.open(raw) as unzipped:
                    try:
                        return unzipped.read(size)
                    except (OSError, EOFError):
                        return b""
            return head
    except OSError as exc:
        raise StocksentError(f"cannot read {path}: {exc.strerror or exc}") from None


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by paths, globs and directories, in the order given (a directory's or a glob's sorted)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_data_file(p, path))
            if not found:
                raise StocksentError(f"directory {path} holds no .csv, .jsonl, .json or .parquet files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True) if Path(p).is_file())
            if not found:
                raise StocksentError(f"no files match {text!r}")
            files.extend(found)
        else:
            raise StocksentError(f"no such file: {path}")
    if not files:
        raise StocksentError("no input files given")
    return files


def _is_data_file(path: Path, root: Path) -> bool:
    """A directory's data files: known extensions, not hidden (Spark's _SUCCESS, .crc, temporaries)."""
    if any(part.startswith((".", "_")) for part in path.relative_to(root).parts):
        return False
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in _EXTENSIONS


def iter_batches(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    text_column: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: list[str] | None = None,
    strict: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
) -> Iterator[Any]:
    """The inputs' good rows as `pyarrow.RecordBatch`es of at most `batch_rows` rows (see the module doc).

    >>> rows = sum(b.num_rows for b in iter_batches("messages.csv.gz"))  # doctest: +SKIP
    """
    for chunk in read_chunks(inputs, text_column, batch_rows, columns, strict, on_bad_row):
        yield chunk.batch


def read_chunks(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    text_column: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: list[str] | None = None,
    strict: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
) -> Iterator[Chunk]:
    """`iter_batches` with each batch's source file and the input bytes read so far (for progress bars)."""
    import pyarrow as pa

    if batch_rows < 1:
        raise StocksentError("batch_rows must be at least 1")
    files = expand_inputs(inputs)
    sizes = [_size(path) for path in files]
    total, done_before = sum(sizes), 0
    schema = None
    first_source = ""

    def bad(row: BadRow) -> None:
        if strict:
            raise StocksentError(f"{row} (--strict: fix or remove that row, or run without --strict)")
        if on_bad_row is not None:
            on_bad_row(row)

    for path, size in zip(files, sizes):
        reader = _READERS[format_of(path)]
        pending: list = []
        pending_rows = 0
        position = 0
        for batch, position in reader(path, text_column, columns, bad, batch_rows):
            if schema is None:
                schema, first_source = batch.schema, str(path)
            batch = _conform(batch, schema, str(path), first_source)
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending, schema=schema)
                head, rest = table.slice(0, batch_rows), table.slice(batch_rows)
                yield Chunk(_one_batch(head, schema), str(path), done_before + position, total)
                pending, pending_rows = ([_one_batch(rest, schema)] if rest.num_rows else []), rest.num_rows
        if pending_rows:
            table = pa.Table.from_batches(pending, schema=schema)
            yield Chunk(_one_batch(table, schema), str(path), done_before + size, total)
        done_before += size


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise StocksentError(f"cannot read {path}: {exc.strerror or exc}") from None


def _one_batch(table, schema):
    import pyarrow as pa

    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=schema)


def _conform(batch, schema, source: str, first_source: str):
    """A later file's batch in the first file's schema: same column names, types cast where they differ."""
    if batch.schema.equals(schema):
        return batch
    if sorted(batch.schema.names) != sorted(schema.names):
        raise StocksentError(
            f"{source} has columns {batch.schema.names} but {first_source} has {schema.names}; "
            "score files with different columns separately, or keep common ones with --columns"
        )
    batch = batch.select(schema.names)
    try:
        return batch.cast(schema)
    except (ValueError, TypeError, NotImplementedError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StocksentError(
            f"{source}'s columns have types {batch.schema} that do not convert to those of {first_source} "
            f"({exc}); score these files separately"
        ) from None


def _keep(names: list[str], columns: list[str] | None, text: str, source: str) -> list[str]:
    """The columns to read: `columns` (all if None), then the text column if not among them."""
    if columns is None:
        return names
    missing = [c for c in columns if c not in names]
    if missing:
        raise StocksentError(
            f"{source} has no column {', '.join(map(repr, missing))} (columns: {', '.join(map(repr, names))}); "
            "check --columns"
        )
    return list(dict.fromkeys([*columns, text]))


# --------------------------------------------------------------------------- CSV


def _open_raw(path: Path):
    """The file as a pyarrow stream (gunzipped if gzip), and the raw file (whose position is progress)."""
    import pyarrow as pa

    try:
        raw = pa.OSFile(str(path), "rb")
    except OSError as exc:
        raise StocksentError(f"cannot read {path}: {exc}") from None
    compressed = raw.read(2) == _GZIP_MAGIC
    raw.seek(0)
    return (pa.CompressedInputStream(raw, "gzip") if compressed else raw), raw


def _csv_header(path: Path) -> tuple[list[str], int]:
    """Column names and the number of physical lines the header takes (Python's csv: quoted names work)."""
    head = peek_bytes(path, 1 << 16).decode("utf-8", errors="replace").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(head, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise StocksentError(f"{path} line 1: malformed CSV header ({exc})") from None
    if not header:
        raise StocksentError(f"{path} is empty or has no header row; the first line must name the columns")
    return header, reader.line_num


def _read_csv(path: Path, text_column, columns, bad, batch_rows):
    """CSV rows in blocks; values checked as UTF-8 here, so one bad byte costs one row, not the file."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    names, header_lines = _csv_header(path)
    if len(set(names)) != len(names):
        raise StocksentError(f"{path} has repeated column names {names}; give each column its own name")
    text = resolve_text_column(names, text_column, str(path))
    keep = _keep(names, columns, text, str(path))
    invalid: list[tuple[int | None, str]] = []  # (record number, text) of rows with the wrong field count

    def on_invalid(row) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    stream, raw = _open_raw(path)
    try:
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK, column_names=names, skip_rows=1),
            parse_options=pcsv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_invalid
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.binary() for name in names}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as exc:
        raise StocksentError(f"{path}: cannot read as CSV ({exc})") from None
    # Header record counts as record 1 in pyarrow's numbering of invalid rows, as it does here.
    next_record, next_line = 2, header_lines + 1
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError, EOFError) as exc:
                raise StocksentError(f"{path}: cannot read as CSV after line {next_line} ({exc})") from None
            n = batch.num_rows
            newlines = np.zeros(n, dtype=np.int64)
            for column in batch.columns:  # line breaks inside quoted values move the line count on
                newlines += pc.count_substring(column, "\n").to_numpy(zero_copy_only=False)
            # Invalid rows interleave with the batch's rows by record number.
            span_end = next_record + n
            mine = []
            while invalid and invalid[0][0] is not None and invalid[0][0] < span_end + len(mine):
                mine.append(invalid.pop(0))
            if invalid and invalid[0][0] is None:  # pyarrow gave no number: report without a line
                for _, row_text in invalid:
                    bad(BadRow(str(path), None, f"wrong number of fields: {row_text[:60]!r}"))
                invalid.clear()
            good, reasons = _decode_columns(batch, text, keep)
            empty_line = np.ones(n, dtype=bool)
            for column in batch.columns:
                empty_line &= pc.binary_length(column).to_numpy(zero_copy_only=False) == 0
            lines = None
            if mine or reasons:
                records = np.arange(next_record, next_record + n + len(mine))
                is_invalid = np.isin(records, [number for number, _ in mine])
                per_record = np.ones(len(records), dtype=np.int64)
                per_record[~is_invalid] += newlines
                per_record[is_invalid] += np.array([row_text.count("\n") for _, row_text in mine], dtype=np.int64)
                starts = next_line + np.concatenate([[0], np.cumsum(per_record)[:-1]])
                lines = starts[~is_invalid]
                found = [
                    (int(line), f"wrong number of fields in CSV row: {row_text[:60]!r}")
                    for (_, row_text), line in zip(mine, starts[is_invalid])
                ]
                found += [(int(lines[i]), reason) for i, reason in reasons.items() if not empty_line[i]]
                for line, reason in sorted(found):
                    bad(BadRow(str(path), line, reason))
            next_record += n + len(mine)
            next_line += n + int(newlines.sum()) + sum(1 + t.count("\n") for _, t in mine)
            if good is not None and good.num_rows:
                yield good, raw.tell()
    finally:
        raw.close()
    for _, row_text in invalid:  # numbered past the last batch (the file's last rows)
        bad(BadRow(str(path), None, f"wrong number of fields in CSV row: {row_text[:60]!r}"))


def _decode_columns(batch, text: str, keep: list[str]):
    """Binary columns to UTF-8 strings; rows with an undecodable value or an empty message left out.

    Returns the batch of good rows and {row index: reason} of the bad ones."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    ok = np.ones(n, dtype=bool)
    reasons: dict[int, str] = {}
    decoded = []
    batch = batch.select(keep)  # (every column was read: line breaks in any of them count for line numbers)
    for name, column in zip(batch.schema.names, batch.columns):
        try:
            decoded.append(column.cast(pa.string()))
        except pa.ArrowInvalid:  # rare: find the rows, blank them, and cast what is left
            values = column.to_pylist()
            for i, value in enumerate(values):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    ok[i] = False
                    values[i] = b""
                    reasons.setdefault(i, f"column {name!r} is not UTF-8 (bad byte at offset {exc.start})")
            decoded.append(pa.array(values, pa.binary()).cast(pa.string()))
    table = pa.RecordBatch.from_arrays(decoded, names=batch.schema.names)
    message = table.column(text)
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(message)), 0).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(empty & ok):
        reasons.setdefault(int(i), "empty message")
    ok &= ~empty
    if ok.all():
        return table, reasons
    return table.filter(pa.array(ok)), reasons


# --------------------------------------------------------------------------- JSON


def _read_json_lines(path: Path, text_column, columns, bad, batch_rows):
    """One JSON value per line: message objects, lists of them, or API pages {"messages": [...]}."""
    builder = _JsonBatches(path, text_column, columns, bad)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        handle = gzip.open(raw) if compressed else raw
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except UnicodeDecodeError as exc:
                    bad(BadRow(str(path), number, f"not UTF-8 (bad byte at offset {exc.start})"))
                    continue
                except json.JSONDecodeError as exc:
                    bad(BadRow(str(path), number, f"invalid JSON ({exc.msg} at column {exc.colno})"))
                    continue
                builder.add_value(value, number)
                if builder.rows >= _JSON_BLOCK:
                    yield builder.flush(), raw.tell()
        except (OSError, EOFError) as exc:
            raise StocksentError(f"{path} is truncated or corrupt ({exc}); copy it again") from None
    if builder.rows:
        yield builder.flush(), _size(path)
    builder.check_any()


def _read_json_document(path: Path, text_column, columns, bad, batch_rows):
    """A whole JSON document (an API page, a list of messages); JSON Lines if it is one value per line."""
    with open(path, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        try:
            data = gzip.decompress(raw.read()) if head == _GZIP_MAGIC else raw.read()
        except (OSError, EOFError) as exc:
            raise StocksentError(f"{path} is truncated or corrupt ({exc}); copy it again") from None
    try:
        value = json.loads(data)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad(BadRow(str(path), line, f"not UTF-8 (bad byte at offset {exc.start})"))
        return
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several values: one per line
            del data
            yield from _read_json_lines(path, text_column, columns, bad, batch_rows)
            return
        bad(BadRow(str(path), exc.lineno, f"invalid JSON ({exc.msg} at column {exc.colno})"))
        return
    del data
    builder = _JsonBatches(path, text_column, columns, bad)
    builder.add_value(value, 1)
    while builder.rows:
        yield builder.flush(limit=batch_rows), _size(path)
    builder.check_any()


class _JsonBatches:
    """JSON objects to columns. The file's first object decides: StockTwits API message objects are
    flattened to _API_FIELDS; other objects keep their fields (the first batch's fields: later new
    ones are dropped with a warning, since every batch has one schema)."""

    def __init__(self, path: Path, text_column, columns, bad):
        self.path, self.text_column, self.columns, self.bad = path, text_column, columns, bad
        self.api: bool | None = None
        self.names: list[str] | None = None
        self.text: str | None = None
        self.rows_seen = 0
        self.pending: list[dict] = []
        self.types = None
        self.warned: set[str] = set()

    @property
    def rows(self) -> int:
        return len(self.pending)

    def add_value(self, value: Any, line: int) -> None:
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            items = value["messages"]
        elif isinstance(value, list):
            items = value
        else:
            self.add_object(value, line)
            return
        for index, item in enumerate(items):
            self.add_object(item, line, f"message {index + 1} of {len(items)}: ")

    def add_object(self, obj: Any, line: int, where: str = "") -> None:
        if not isinstance(obj, dict):
            self.bad(BadRow(str(self.path), line, f"{where}expected a JSON object, got {type(obj).__name__}"))
            return
        if self.api is None:
            self.api = "body" in obj and any(
                isinstance(obj.get(k), t) for k, t in (("user", dict), ("entities", dict), ("symbols", list))
            )
            names = list(_API_FIELDS) if self.api else list(obj)
            self.text = resolve_text_column(names, self.text_column, str(self.path))
            self.names = _keep(names, self.columns, self.text, str(self.path))
        row = flatten_api_object(obj) if self.api else obj
        message = row.get(self.text)
        if not isinstance(message, str):
            what = "is missing" if message is None else f"is {type(message).__name__}, not text"
            self.bad(BadRow(str(self.path), line, f"{where}{self.text!r} {what}"))
            return
        if not message.strip():
            self.bad(BadRow(str(self.path), line, f"{where}empty message"))
            return
        if not self.api:
            for key in row.keys() - set(self.names) - self.warned:
                if self.columns is None:
                    self.warned.add(key)
                    log.warning("%s line %d: field %r is not in the first object; it is left out", self.path, line, key)
        self.pending.append(row)

    def flush(self, limit: int | None = None):
        import pyarrow as pa

        rows, self.pending = (self.pending[:limit], self.pending[limit:]) if limit else (self.pending, [])
        arrays = []
        for k, name in enumerate(self.names):
            values = [row.get(name) for row in rows]
            if self.api:
                arrays.append(pa.array(values, _api_type(name)))
                continue
            values = [json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for v in values]
            if self.types is not None:
                arrays.append(_as_type(values, self.types[k], self.path, name))
                continue
            try:
                array = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types: keep them as text
                array = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values])
            arrays.append(array.cast(pa.string()) if pa.types.is_null(array.type) else array)
        batch = pa.RecordBatch.from_arrays(arrays, names=self.names)
        if self.types is None and not self.api:
            self.types = [field.type for field in batch.schema]
        self.rows_seen += batch.num_rows
        return batch

    def check_any(self) -> None:
        if self.api is None:
            log.info("%s holds no message objects", self.path)


def _as_type(values: list, type_, path: Path, name: str):
    """A later batch's values in the type the first batch gave the column."""
    import pyarrow as pa

    if pa.types.is_string(type_):
        values = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]
    try:
        return pa.array(values, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        raise StocksentError(
            f"{path}: field {name!r} was {type_} in the first rows but later holds {', '.join(kinds)}; "
            "make the field's type consistent or leave it out with --columns"
        ) from None


def _api_type(name: str):
    import pyarrow as pa

    return {"id": pa.int64(), "user_id": pa.int64(), "symbols": pa.list_(pa.string())}.get(name, pa.string())


def flatten_api_object(obj: dict) -> dict:
    """What users need from a StockTwits API message object (the rest is layout and avatars).

    >>> flatten_api_object({"id": 7, "body": "$F up", "symbols": [{"symbol": "F"}], "user": {"id": 3}})["symbols"]
    ['F']
    """
    user = obj.get("user")
    symbols = obj.get("symbols")
    entities = obj.get("entities")
    sentiment = entities.get("sentiment") if isinstance(entities, dict) else None
    if isinstance(sentiment, dict):
        sentiment = sentiment.get("basic")
    return {
        "id": _int_or_none(obj.get("id")),
        "created_at": None if obj.get("created_at") is None else str(obj["created_at"]),
        "user_id": _int_or_none(user.get("id")) if isinstance(user, dict) else None,
        "symbols": [str(s.get("symbol")) for s in symbols if isinstance(s, dict) and s.get("symbol") is not None]
        if isinstance(symbols, list)
        else None,
        "sentiment": sentiment if isinstance(sentiment, str) else None,
        "body": obj.get("body"),
    }


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


# --------------------------------------------------------------------------- Parquet


def _read_parquet(path: Path, text_column, columns, bad, batch_rows):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise StocksentError(f"{path}: not a readable Parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    text = resolve_text_column(names, text_column, str(path))
    text_type = parquet.schema_arrow.field(text).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise StocksentError(f"{path}: column {text!r} holds {text_type}, not text; pass the message column")
    keep = _keep(names, columns, text, str(path))
    size, total_rows, start = _size(path), max(parquet.metadata.num_rows, 1), 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=keep, use_threads=False):
            message = batch.column(text)
            if pa.types.is_large_string(message.type):
                message = message.cast(pa.string())
                batch = batch.set_column(keep.index(text), text, message)
            empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(message)), 0), True)
            empty_np = empty.to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(empty_np):
                reason = "no message (null)" if message[int(i)].as_py() is None else "empty message"
                bad(BadRow(str(path), None, reason, row=start + int(i) + 1))
            start += batch.num_rows
            good = batch.filter(pc.invert(empty)) if empty_np.any() else batch
            if good.num_rows:
                yield good, int(size * start / total_rows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StocksentError(f"{path}: Parquet file is corrupt after row {start} ({exc})") from None


_READERS = {"csv": _read_csv, "jsonl": _read_json_lines, "json": _read_json_document, "parquet": _read_parquet}
