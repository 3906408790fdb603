"""Where messages come from: paths, globs and directories to files, each file's format, and its bytes.

- `expand_inputs`: files named by paths, globs and directories (a directory's data files, sorted,
  recursively, hidden and `_`-prefixed ones such as Spark's `_SUCCESS` left out).
- `format_of`: csv, jsonl, json, parquet or text, from the extension (through a trailing `.gz`),
  else from the content: Parquet's magic, JSON's first character, a CSV header that names the
  message column, else one message per line.
- `RawFile`: a file's bytes as read, hashed on the way (so a file read once is hashed once), gzip
  recognised by its magic; `check_head` refuses what is not UTF-8 text at once (empty, UTF-16,
  binary) and a gzip file that is cut short says so.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

from stocksent.columns import TEXT_COLUMNS, find_column
from stocksent.errors import StocksentError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
FORMATS = ("csv", "jsonl", "json", "parquet", "text")
EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
}
_DIRECTORY_FORMATS = ("csv", "jsonl", "json", "parquet")  # what a directory's files are read as
_HEAD = 1 << 16  # bytes looked at to tell a format: a header or a first JSON line is never longer
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by paths, globs and directories, in the order given (a directory's or a glob's sorted).

    >>> expand_inputs(["day1.csv.gz", "pages/", "2020-*.jsonl"])  # doctest: +SKIP
    [PosixPath('day1.csv.gz'), PosixPath('pages/a.json'), PosixPath('2020-01.jsonl')]
    """
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
    if any(part.startswith((".", "_")) for part in path.relative_to(root).parts):
        return False
    return _extension_format(path) in _DIRECTORY_FORMATS


def _extension_format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return EXTENSIONS.get(suffixes[-1]) if suffixes else None


def format_of(path: str | os.PathLike, text_column: str | None = None) -> str:
    """csv, jsonl, json, parquet or text: from the extension, else from the content (see the module doc).

    >>> format_of("messages.csv.gz"), format_of("page.json")
    ('csv', 'json')
    """
    path = Path(path)
    known = _extension_format(path)
    if known is not None:
        return known
    head = peek(path, _HEAD)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    check_head(path, head)
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        return "jsonl" if _first_line_is_json(stripped) else "json"
    if stripped.startswith(b"[") and stripped[1:].lstrip()[:1] in (b"{", b"[", b"]", b'"'):
        return "json"  # "[SPY] breaking out" is a message, not a JSON list
    return "csv" if _csv_names_text_column(head, text_column) else "text"


def _first_line_is_json(data: bytes) -> bool:
    import json

    line = data.split(b"\n", 1)[0]
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def _csv_names_text_column(head: bytes, text_column: str | None) -> bool:
    try:
        header = next(csv.reader(io.StringIO(head.decode("utf-8", "replace").removeprefix("\ufeff"), newline="")), [])
    except csv.Error:
        return False
    if text_column is not None:
        return text_column in header
    return find_column(header, TEXT_COLUMNS) is not None


def peek(path: Path, size: int) -> bytes:
    """The first `size` bytes of the content, gunzipped if gzip; a gzip file cut short is an error."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(size)
            if not head.startswith(GZIP_MAGIC):
                return head
            raw.seek(0)
            with gzip.open(raw) as unzipped:
                try:
                    return unzipped.read(size)
                except (OSError, EOFError, zlib.error) as exc:
                    raise truncated(path, exc) from None
    except IsADirectoryError:
        raise StocksentError(f"{path} is a directory, not a file; pass the path of a data file") from None
    except OSError as exc:
        raise StocksentError(f"cannot read {path}: {exc.strerror or exc}") from None


def truncated(path: Path | str, exc: BaseException) -> StocksentError:
    """The error for a gzip file that ends early or does not decompress."""
    return StocksentError(f"{path} is gzip-compressed but truncated or corrupt ({exc}); download or copy it again")


def check_head(path: Path | str, head: bytes) -> None:
    """Refuse at once what cannot be UTF-8 text: an empty file, UTF-16/32 (a BOM), binary data."""
    if head.startswith(_UTF16_BOMS):
        raise StocksentError(f"{path} is UTF-16 (or UTF-32) text, not UTF-8: re-save it as UTF-8")
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not body and len(head) < _HEAD:
        raise StocksentError(f"{path} is empty; give a file with one or more messages")
    if body[:1] == b"\x00":
        raise StocksentError(
            f"{path} is not a text file: it starts with NUL bytes; give UTF-8 text (CSV, JSON Lines, JSON, "
            "Parquet or one message per line)"
        )


class RawFile:
    """A file's stored bytes, read in order and hashed as they are read (`sha256` once at the end).

    `stream()` is what a reader parses: the bytes gunzipped if they are gzip. `tell()` is the stored
    (compressed) position: progress."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file = open(path, "rb")  # noqa: SIM115 (closed by close / the with block)
        except IsADirectoryError:
            raise StocksentError(f"{path} is a directory, not a file; pass the path of a data file") from None
        except OSError as exc:
            raise StocksentError(f"cannot read {path}: {exc.strerror or exc}") from None
        self.gzipped = self._file.read(2) == GZIP_MAGIC
        self._file.seek(0)
        self._digest = hashlib.sha256()
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._digest.update(data)
        return data

    def tell(self) -> int:
        return self._file.tell()

    def stream(self):
        """A buffered binary file object of the content (gunzipped if gzip) for Python-level readers."""
        view = io.BufferedReader(_Borrowed(self), buffer_size=1 << 20)
        return gzip.GzipFile(fileobj=view, mode="rb") if self.gzipped else view

    def arrow_stream(self):
        """The content as a pyarrow input stream (gunzipped if gzip), for pyarrow's CSV reader."""
        import pyarrow as pa

        raw = pa.PythonFile(_Borrowed(self), mode="r")
        return pa.CompressedInputStream(raw, "gzip") if self.gzipped else raw

    def sha256(self) -> str:
        """The hex digest of every stored byte: the rest of the file is read (and hashed) first."""
        while self.read(1 << 20):
            pass
        return self._digest.hexdigest()

    def close(self) -> None:
        self.closed = True
        self._file.close()

    def __enter__(self) -> RawFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Borrowed(io.RawIOBase):
    """A RawFile lent to a reader (Python's buffered reader, pyarrow), which close what they read when
    done: closing this view leaves the RawFile open, to be hashed to its end."""

    def __init__(self, raw: RawFile):
        super().__init__()
        self._raw = raw

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._raw.tell()


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise StocksentError(f"cannot read {path}: {exc.strerror or exc}") from None
