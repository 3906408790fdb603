"""Memory given back once the service is idle: after a burst of large requests, glibc keeps the
freed heap (in every scoring thread's arena) for reuse, and the server would go on holding its peak.

`IdleTrim` runs `malloc_trim(0)`, which returns every arena's free pages to the system, when the
last request in flight has been answered and enough bytes have passed since the last trim to be
worth the few milliseconds it takes (on a thread, off the event loop). Elsewhere than glibc it does
nothing: other allocators return memory on their own terms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import threading

TRIM_AFTER_BYTES = 8 << 20  # bodies admitted since the last trim before the next is worth it


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): no malloc_trim
        return None


def give_back() -> None:
    """Collect cycles, then return free heap pages to the system (glibc)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class IdleTrim:
    """`seen(n)` as bodies come in; `idle()` when the last request in flight is answered."""

    def __init__(self, after_bytes: int = TRIM_AFTER_BYTES):
        self.after_bytes, self._since = after_bytes, 0
        self._running = threading.Lock()

    def seen(self, size: int) -> None:
        self._since += size

    def idle(self) -> None:
        if self._since < self.after_bytes or self._running.locked():
            return
        self._since = 0
        threading.Thread(target=self._trim, name="stocksent-memory-trim", daemon=True).start()

    def _trim(self) -> None:
        with self._running:
            give_back()
