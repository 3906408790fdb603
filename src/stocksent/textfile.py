"""A text file read as a stream: gunzipped when it starts with the gzip magic, checked as UTF-8 as it is
read (an error names the line), NUL bytes refused, and every line, and a whole document, bounded.

So `predict --input /dev/zero` is one clear line after the first MiB, not a read that never ends, and
a 5 GB input is read with flat memory. data.py parses the lines; this module only turns bytes into
checked text.

>>> with TextFile.open("messages.txt") as text:  # doctest: +SKIP
...     for line in text.lines():
...         print(line)
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from stocksent.errors import StocksentError

MAX_LINE_CHARS = 64 * 2**20  # one line (or a CSV field): messages are under 1 KB; far above, far below a crash
MAX_DOCUMENT_CHARS = 512 * 2**20  # a JSON document, which must be read whole; JSON Lines stream
_CHUNK = 1 << 20  # bytes per read: 1 MiB reads cost the same per byte as one big read (measured: 1.0x)
_GZIP_MAGIC = b"\x1f\x8b"


class _Rejoined:
    """The bytes already read (to look for the gzip magic) put back in front of the rest, for GzipFile."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                head, self._head = self._head, b""
                return head + self._rest.read()
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._rest.read(size)


class TextFile:
    """Decoded text of one file or stream, chunk by chunk; `name` is what error messages call it."""

    def __init__(self, raw: BinaryIO, name: str, hint: str = "re-save the file as UTF-8"):
        self.name, self._hint, self._raw = name, hint, raw
        head = self._read(raw, 2)
        self.gzipped = head[:2] == _GZIP_MAGIC
        if self.gzipped:
            self._source = gzip.GzipFile(fileobj=_Rejoined(head, raw), mode="rb")  # type: ignore[arg-type]
            self._head = b""
        else:
            self._source, self._head = raw, head
        self._carry = b""  # an incomplete UTF-8 sequence at the end of the last chunk
        self._lines_before = 0  # newlines in the bytes decoded so far, for error messages
        self._offset = 0  # bytes decoded so far
        self._started = False
        self._buffer = ""  # text read ahead (by `first_char`, `head`) and not yet handed out
        self._eof = False

    @classmethod
    def open(cls, path: str | os.PathLike) -> TextFile:
        """The file at `path`; a missing file, a directory or no permission is a one-line error."""
        path = Path(path)
        try:
            raw = open(path, "rb")  # noqa: SIM115 (closed by close / the with block)
        except FileNotFoundError:
            raise StocksentError(f"no such file: {path}") from None
        except IsADirectoryError:
            raise StocksentError(f"{path} is a directory, not a file; pass the path of a data file") from None
        except OSError as exc:
            raise StocksentError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            return cls(raw, str(path))
        except BaseException:
            raw.close()
            raise

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> TextFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ bytes to checked text

    def _read(self, source, size: int) -> bytes:
        try:
            return source.read(size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise StocksentError(
                f"{self.name} looks gzip-compressed but is truncated or corrupt ({exc}); download or copy it again"
            ) from None
        except OSError as exc:
            raise StocksentError(f"cannot read {self.name}: {exc.strerror or exc}") from None

    def _next_chunk(self) -> str:
        """The next decoded text, read from the file; '' only at the end."""
        while not self._eof:
            if text := self._decode_next():
                return text
        return ""

    def _decode_next(self) -> str:
        """The text of the next read ('' when it ends inside a UTF-8 sequence or a leading BOM)."""
        raw = self._head + self._read(self._source, _CHUNK)
        self._head = b""
        final = not raw
        nul = raw.find(b"\x00")
        if nul >= 0:
            line = self._lines_before + self._carry.count(b"\n") + raw.count(b"\n", 0, nul) + 1
            raise StocksentError(
                f"{self.name} is not a text file: it holds NUL bytes (the first at line {line}, byte offset "
                f"{self._offset + len(self._carry) + nul}); give UTF-8 text (CSV, JSON Lines, JSON or one "
                "message per line; a UTF-16 file must be re-saved as UTF-8)"
            )
        data = self._carry + raw
        try:
            text = data.decode("utf-8")
            self._carry = b""
        except UnicodeDecodeError as exc:
            incomplete_tail = exc.end == len(data) and len(data) - exc.start < 4 and not final
            if not incomplete_tail or exc.reason != "unexpected end of data":
                line = self._lines_before + data.count(b"\n", 0, exc.start) + 1
                raise StocksentError(
                    f"{self.name} is not UTF-8 text (bad byte at line {line}, byte offset "
                    f"{self._offset + exc.start}); {self._hint}"
                ) from None
            text, self._carry = data[: exc.start].decode("utf-8"), data[exc.start :]
        self._lines_before += data.count(b"\n") - self._carry.count(b"\n")
        self._offset += len(data) - len(self._carry)
        if not self._started:
            text, self._started = text.removeprefix("\ufeff"), bool(text) or final
        if final:
            self._eof = True
        return text

    def chunks(self) -> Iterator[str]:
        """The text in pieces of about 1 MiB, read ahead text first."""
        if self._buffer:
            text, self._buffer = self._buffer, ""
            yield text
        while text := self._next_chunk():
            yield text

    # ------------------------------------------------------------------ looking ahead

    def first_char(self) -> str:
        """The first non-whitespace character ('' for a blank file), reading ahead only as far as needed."""
        while True:
            stripped = self._buffer.lstrip()
            if stripped:
                return stripped[0]
            if len(self._buffer) > MAX_LINE_CHARS:
                raise StocksentError(f"{self.name} starts with over {MAX_LINE_CHARS:,} blank characters")
            more = self._next_chunk()
            if not more:
                return ""
            self._buffer += more

    def head(self, size: int) -> str:
        """At least `size` characters from the start (fewer only if the text is shorter), not consumed."""
        while len(self._buffer) < size and (more := self._next_chunk()):
            self._buffer += more
        return self._buffer

    def read_all(self, limit: int | None = None, advice: str = "") -> str:
        """The whole (rest of the) text, refused past `limit` (MAX_DOCUMENT_CHARS) characters rather than
        filling memory."""
        limit = MAX_DOCUMENT_CHARS if limit is None else limit
        parts, size = [], 0
        for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise StocksentError(f"{self.name} is over {limit:,} characters, the most read at once{advice}")
            parts.append(chunk)
        return "".join(parts)

    # ------------------------------------------------------------------ lines

    def lines(self) -> Iterator[str]:
        """Lines split on "\\n" only (str.splitlines would also split on U+2028 inside a message),
        without their "\\n" or a "\\r" before it; the text after the last newline is a line too."""
        carry, number = "", 0
        for chunk in self.chunks():
            parts = (carry + chunk).split("\n")
            carry = parts.pop()
            for part in parts:
                yield part.removesuffix("\r")
            number += len(parts)
            self._check_line(carry, number + 1)
        yield carry.removesuffix("\r")

    def universal_lines(self) -> Iterator[str]:
        """Lines ended by "\\r\\n", "\\r" or "\\n", ends kept: what csv.reader reads (as open(newline=""))."""
        carry, number = "", 0
        for chunk in self.chunks():
            parts = io.StringIO(carry + chunk, newline="").readlines()
            # The last part may be incomplete, or end in a "\r" whose "\n" is in the next chunk.
            carry = parts.pop() if parts and not parts[-1].endswith("\n") else ""
            yield from parts
            number += len(parts)
            self._check_line(carry, number + 1)
        if carry:
            yield carry

    def _check_line(self, line: str, number: int) -> None:
        if len(line) > MAX_LINE_CHARS:
            raise StocksentError(
                f"{self.name} line {number} is over {MAX_LINE_CHARS:,} characters, the most one line may "
                "hold; is it a text file with one message per line?"
            )
