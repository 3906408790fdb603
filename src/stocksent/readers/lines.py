"""Lines of a byte stream with the one cap: a line longer than MAX_RECORD_BYTES is skipped, never held.

So a 2 MB gzip that inflates to one 2 GiB line costs one read buffer, not 4 GB: the line is read
and dropped in pieces and reported as a bad row by the reader that asked.

>>> import io
>>> list(bounded_lines(io.BytesIO(b"a\\r\\nb\\n"), 10))
[(1, b'a'), (2, b'b')]
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from stocksent.readers.sources import truncated

_PIECE = 1 << 20  # how much of an over-long line is read at a time while it is skipped


def bounded_lines(handle: BinaryIO, cap: int, name: str = "input") -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line without its "\\n" or "\\r\\n") in order; None for a line over `cap` bytes.

    The text after the last newline is a line too; a newline at the very end starts none.
    """
    number = 0
    try:
        while True:
            line = handle.readline(cap + 1)
            if not line:
                return
            number += 1
            if len(line) > cap and not line.endswith(b"\n"):
                while (rest := handle.readline(_PIECE)) and not rest.endswith(b"\n"):
                    pass
                yield number, None
                continue
            yield number, line.removesuffix(b"\n").removesuffix(b"\r")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise truncated(name, exc) from None
