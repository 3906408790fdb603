"""CSV records found in raw bytes, as pyarrow's parser finds them, with the one cap: a record over it
is skipped in pieces, never held.

pyarrow's streaming CSV reader stops the whole file at a record longer than its block ("straddling
object straddles two block boundaries": a 20 MB field). The CSV reader then goes on from that
record with these: quotes open only at a field's start, `""` inside quotes is a quote, a record
ends at "\\n", "\\r\\n" or "\\r" outside quotes.

>>> import io
>>> [(r, n) for r, n in records(io.BytesIO(b'a,"b\\nc"\\r\\n"x""y",z\\nlast'), 100)]
[(b'a,"b\\nc"\\r\\n', 2), (b'"x""y",z\\n', 1), (b'last', 0)]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

_READ = 1 << 20
_UNQUOTED_END = re.compile(rb"[,\n\r]")


def records(stream: BinaryIO, cap: int) -> Iterator[tuple[bytes | None, int]]:
    """Each record's bytes (terminator included) and the "\\n" it holds (the lines it moves the count on,
    its terminator's included); None for the bytes of one over `cap`."""
    buffer, start, pos = b"", 0, 0
    field_start, quoted, eof = True, False, False
    skipped_newlines: int | None = None  # set while the record in hand is over the cap: its bytes are dropped

    def more() -> bool:
        nonlocal buffer, start, pos, eof
        chunk = b"" if eof else stream.read(_READ)
        if not chunk:
            eof = True
            return False
        buffer, pos, start = buffer[start:] + chunk, pos - start, 0
        return True

    while True:
        if pos >= len(buffer) and not more():
            break
        if skipped_newlines is None and pos - start > cap:
            skipped_newlines = 0
        if skipped_newlines is not None and pos > start:  # drop what the record holds so far
            skipped_newlines += buffer.count(b"\n", start, pos)
            start = pos
        if quoted:
            end = buffer.find(b'"', pos)
            if end < 0:
                pos = len(buffer)
            elif end + 1 >= len(buffer) and not eof and more():
                continue  # a quote at the end of what is read: is a second one next?
            elif buffer[end + 1 : end + 2] == b'"':
                pos = end + 2
            else:
                quoted, pos = False, end + 1
            continue
        if field_start:
            field_start = False
            if buffer[pos : pos + 1] == b'"':
                quoted, pos = True, pos + 1
                continue
        match = _UNQUOTED_END.search(buffer, pos)
        if match is None:
            pos = len(buffer)
            continue
        end = match.start()
        char = buffer[end : end + 1]
        if char == b",":
            field_start, pos = True, end + 1
            continue
        if char == b"\r" and end + 1 >= len(buffer) and not eof and more():
            continue  # a "\r" at the end of what is read: is "\n" next?
        stop = end + 2 if char == b"\r" and buffer[end + 1 : end + 2] == b"\n" else end + 1
        yield _record(buffer, start, stop, skipped_newlines)
        start, pos, field_start, skipped_newlines = stop, stop, True, None
    if start < len(buffer) or skipped_newlines is not None:
        yield _record(buffer, start, len(buffer), skipped_newlines)


def _record(buffer: bytes, start: int, stop: int, skipped: int | None) -> tuple[bytes | None, int]:
    newlines = buffer.count(b"\n", start, stop)
    if skipped is not None:
        return None, skipped + newlines
    return buffer[start:stop], newlines
