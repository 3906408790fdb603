"""The one way tables leave the package: the output format chosen once, written atomically, never over an input.

- `output_format(path, fmt)`: `fmt` (`--format`) if given, else the extension: `.parquet`/`.pq`,
  `.csv`, `.jsonl`/`.ndjson`, the text formats optionally `.gz`. Any other name is a one-line
  error, never a silently different format.
- `refuse_inputs(outputs, inputs)`: the one check every command that writes makes first: an output
  that is, or resolves to, one of its inputs (the same path spelt `./x`, absolute, through a
  symlink, a hard link, a glob's match) or a directory holding one is refused.
- `TableWriter`: Arrow batches to Parquet, CSV or JSON Lines through a temporary file renamed into
  place at the end (stocksent.atomic), so an output appears whole or not at all. The same batches
  always give the same bytes (a gzip member has no name or time), which `score --resume` relies on.
- CSV holds text only: list and struct columns are written as JSON text, and a text cell that would
  start a spreadsheet formula (`=`, `+`, `-`, `@`, tab, carriage return) gets a leading `'`.
- JSON Lines keep the columns' order; float32 values are written as their shortest decimal.

>>> with TableWriter("scores.csv") as writer:  # doctest: +SKIP
...     writer.write(batch)
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stocksent.atomic import atomic_open
from stocksent.errors import StocksentError

__all__ = ["FORMATS", "TableWriter", "json_records", "jsonl_text", "output_format", "refuse_inputs", "write_table"]

FORMATS = ("parquet", "csv", "jsonl")
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
ROW_GROUP_ROWS = 131072  # Parquet row groups: batches gathered, so readers get groups of a useful size
_FORMULA = r"^[=+\-@\t\r]"  # what a spreadsheet reads as the start of a formula (OWASP's list)


def output_format(path: str | os.PathLike, fmt: str | None = None) -> tuple[str, bool]:
    """(parquet|csv|jsonl, gzip?) from `fmt` or the output's extension (.csv.gz and .jsonl.gz compress).

    >>> output_format("day.csv.gz"), output_format("out", "jsonl")
    (('csv', True), ('jsonl', False))
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes.pop()
    if fmt is not None:
        if fmt not in FORMATS:
            raise StocksentError(f"unknown output format {fmt!r}: use {', '.join(FORMATS)}")
    else:
        fmt = _EXTENSIONS.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise StocksentError(
                f"cannot tell the output format of {path}: name it .parquet, .csv or .jsonl, or pass --format"
            )
    if gz and fmt == "parquet":
        raise StocksentError("Parquet compresses its own pages: drop the .gz from the output name")
    return fmt, gz


def refuse_inputs(
    outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike], directories: bool = False
) -> None:
    """A one-line error if an output is one of the inputs, however spelt; with `directories` (the
    outputs are directories the command writes into: train's, baseline's), also one holding an input.

    >>> refuse_inputs(["in.csv"], ["./in.csv"])  # doctest: +SKIP
    Traceback (most recent call last):
    stocksent.errors.StocksentError: in.csv is also an input; write to another file
    """
    given = [Path(p) for p in inputs]
    for output in outputs:
        output = Path(output)
        for source in given:
            if _same_file(source, output):
                raise StocksentError(f"{output} is also an input; write to another file")
            if directories and _inside(source, output):
                raise StocksentError(
                    f"{output} holds the input {source}, and this command writes there; choose another directory"
                )


def _same_file(a: Path, b: Path) -> bool:
    """Both name one file: the same inode (hard links, symlinks, ./ and absolute paths), or, for a
    path not created yet, the same place once symlinks are followed."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def _inside(path: Path, directory: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(directory))
    except OSError:
        return False


class TableWriter:
    """Writes Arrow batches to `path` in one format (`output_format`), atomically; see the module doc.

    `schema`: what an output without a single batch holds (a CSV header, an empty Parquet file). An
    OSError (no space, no permission) is a one-line `StocksentError`, and the old file stays as it was.
    """

    def __init__(self, path: str | os.PathLike, fmt: str | None = None, schema: Any = None):
        self.path = Path(path)
        self.kind, self.gz = output_format(self.path, fmt)
        self.schema = schema
        self._stack = contextlib.ExitStack()
        self._writer = None
        self._buffer: list = []
        self._buffered = 0
        self._written = False

    def __enter__(self) -> TableWriter:
        try:
            handle = self._stack.enter_context(atomic_open(self.path, "wb"))
            if self.gz:
                # mtime=0 and no file name: the same rows give the same bytes, as resume promises.
                handle = self._stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0))
        except OSError as exc:
            self._stack.close()
            raise StocksentError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._handle = handle
        return self

    def write(self, batch) -> None:
        """Append one `pyarrow.RecordBatch` (or Table); every one must have the first one's columns."""
        self._written = True
        if self.kind == "parquet":
            self._buffer.append(batch)
            self._buffered += batch.num_rows
            if self._buffered >= ROW_GROUP_ROWS:
                self._flush_parquet()
        elif self.kind == "csv":
            self._write_csv(batch)
        else:
            self._handle.write(jsonl_text(batch).encode("utf-8"))

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch) else b for b in self._buffer]
        if not tables:
            if self._writer is not None or self.schema is None:
                return
            tables = [self.schema.empty_table()]
        table = pa.concat_tables(tables)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._handle, table.schema)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._buffer, self._buffered = [], 0

    def _write_csv(self, batch) -> None:
        import pyarrow.csv as pcsv

        batch = csv_cells(batch)
        if self._writer is None:
            self._writer = pcsv.CSVWriter(self._handle, batch.schema)
        self._writer.write(batch)

    def _finish(self) -> None:
        if not self._written and self.schema is not None and self.kind == "csv":
            self._write_csv(self.schema.empty_table())
        if self.kind == "parquet":
            self._flush_parquet()
        if self._writer is not None:
            self._writer.close()

    def __exit__(self, kind, exc, tb) -> bool:
        failed = exc  # raised in the with block: Python raises it again unless it is an OSError
        if exc is None:
            try:
                self._finish()
            except BaseException as error:
                kind, exc, tb = type(error), error, error.__traceback__
        try:
            self._stack.__exit__(kind, exc, tb)  # on an error: the temporary file is removed
        except OSError as error:  # the last flush, fsync or rename failed
            exc = error
        if isinstance(exc, OSError):
            raise StocksentError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        if exc is not None and exc is not failed:
            raise exc
        return False


def write_table(table: Any, path: str | os.PathLike, fmt: str | None = None) -> None:
    """A whole table (pyarrow Table, or a pandas DataFrame without its index) to `path`."""
    import pyarrow as pa

    if not isinstance(table, (pa.Table, pa.RecordBatch)):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with TableWriter(path, fmt) as writer:
        writer.write(table)


def json_records(batch) -> list[dict[str, Any]]:
    """The rows of `batch` as the objects JSON Lines hold, in the columns' order: float32 as its
    shortest decimal, times and dates as their text (`2020-01-03 21:00:00+00:00`, `2020-01-06`).

    What `jsonl_text` writes, and what the service's GET /v1/index answers with.

    >>> json_records(pa.table({"day": [datetime.date(2020, 1, 6)], "n": [3]}))  # doctest: +SKIP
    [{'day': '2020-01-06', 'n': 3}]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {}
    for name, column in zip(batch.schema.names, batch.columns):
        if pa.types.is_float32(column.type):  # 0.8231411, not the double's 0.8231410980224609
            columns[name] = [None if v is None else float(v) for v in pc.cast(column, pa.string()).to_pylist()]
        elif pa.types.is_temporal(column.type):
            columns[name] = [None if v is None else str(v) for v in column.to_pylist()]
        else:
            columns[name] = column.to_pylist()
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def jsonl_text(batch) -> str:
    """The rows of `batch` as JSON Lines (`json_records`)."""
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in json_records(batch))


def csv_cells(batch):
    """`batch` as CSV can hold it: nested columns as JSON text, formula-like text cells defused."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for column in batch.columns:
        if pa.types.is_nested(column.type):
            column = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False) for v in column.to_pylist()], pa.string()
            )
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.fill_null(pc.match_substring_regex(column, _FORMULA), False)
            if pc.any(risky).as_py():
                column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        arrays.append(column)
    return (
        pa.Table.from_arrays(arrays, names=batch.schema.names)
        if isinstance(batch, pa.Table)
        else (pa.RecordBatch.from_arrays(arrays, names=batch.schema.names))
    )
