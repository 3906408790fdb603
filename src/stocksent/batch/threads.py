"""The scoring threads of `stocksent score` where the compiled core runs: one process, nothing pickled.

Why threads there: the compiled core normalises, encodes and runs the network with the GIL
released, so threads of one process score side by side, and a chunk's messages never cross a
process boundary (the reference path's text.py holds the GIL: there `processes.worker_processes`).

`ordered_threads(workers, in_flight)` is a context manager giving `map(function, items, in_order)`:
`function` applied to every item on `workers` threads, the results yielded in the items' order.

- Each thread takes the next item (one thread at a time: `items` is a file being read, so the
  reading happens on these threads too) and applies `function` to it.
- `workers` is the number of cores used: the threads and the caller's own work on each yielded
  result (writing it) share `workers` permits, and each holds one while it computes. With one
  worker, reading, scoring and writing take turns on one core.
- `in_order(item, result)`, if given, runs in the caller's thread, in the items' order, just before
  the result is yielded, holding no permit: for work that waits on the disk (the resume spool's
  `fsync`), so that the wait leaves every core to the threads.
- At most `in_flight` items (default `4 × workers`) are between taken and yielded, so memory does
  not grow with the input. More than one per thread: a thread that is descheduled (a busy machine)
  holds up the writing of every later item, and the others go on scoring meanwhile.
- An exception in a thread (from `items` or `function`) stops the others and is raised in the
  caller. When the block ends, however it ends (an exception, SIGTERM, Ctrl-C), the threads finish
  the item they hold and end before it returns: nothing runs on behind the caller's back.

>>> with ordered_threads(2) as pool:                                    # doctest: +SKIP
...     for chunk, result in pool.map(score, chunks):
...         writer.write(result)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["OrderedThreads", "ordered_threads"]

T = TypeVar("T")
R = TypeVar("R")

_END = object()


class OrderedThreads:
    """`workers` threads that map a function over items in order; see the module doc."""

    def __init__(self, workers: int, in_flight: int | None = None):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.in_flight = max(in_flight or 4 * workers, workers)
        self._permits = threading.Semaphore(workers)
        self._state = threading.Condition()
        self._reading = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._done: dict[int, tuple[Any, Any]] = {}
        self._taken = 0  # items taken from the iterator
        self._yielded = 0
        self._exhausted = False
        self._error: BaseException | None = None
        self._stop = False
        self._results: Iterator | None = None

    # ------------------------------------------------------------------ the caller's side

    def map(
        self,
        function: Callable[[T], R],
        items: Iterable[T],
        in_order: Callable[[T, R], None] | None = None,
    ) -> Iterator[tuple[T, R]]:
        """(item, function(item)) for every item, in order (one map per pool)."""
        if self._threads:
            raise RuntimeError("one map per OrderedThreads")
        source = iter(items)
        self._threads = [
            threading.Thread(target=self._work, args=(function, source), name=f"stocksent-score-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        self._results = self._in_order(in_order)
        return self._results

    def close(self) -> None:
        """Stop taking items and wait for every thread to end (each finishes the item it holds).
        Call it from the thread that iterates `map`'s results."""
        with self._state:
            self._stop = True
            self._state.notify_all()
        if self._results is not None:
            self._results.close()  # gives back the permit of a result the caller was handling
        for thread in self._threads:
            thread.join()

    def _in_order(self, in_order: Callable | None) -> Iterator[tuple[Any, Any]]:
        index = 0
        while True:
            with self._state:
                while not (index in self._done or self._error or (self._exhausted and index >= self._taken)):
                    self._state.wait()
                if self._error is not None:
                    raise self._error
                if index not in self._done:
                    return
                item = self._done.pop(index)
            if in_order is not None:
                in_order(*item)
            with self._permits:  # the caller's work on the result counts as one of the cores
                yield item
            index += 1
            with self._state:
                self._yielded = index
                self._state.notify_all()

    # ------------------------------------------------------------------ the threads' side

    def _work(self, function: Callable, source: Iterator) -> None:
        try:
            while self._next(function, source):
                pass
        except BaseException as error:  # noqa: BLE001 - raised again in the caller
            with self._state:
                if self._error is None:
                    self._error = error
                self._stop = True
                self._state.notify_all()

    def _next(self, function: Callable, source: Iterator) -> bool:
        """Take one item and deliver its result; False when there is nothing more to do."""
        with self._reading:
            with self._state:
                while not self._stop and self._taken - self._yielded >= self.in_flight:
                    self._state.wait()
                if self._stop or self._exhausted:
                    return False
            self._permits.acquire()  # reading is work too: it takes one of the cores
            try:
                item = _END if self._stop else next(source, _END)
            except BaseException:
                self._permits.release()
                raise
            with self._state:
                if item is _END:
                    self._exhausted = True
                    self._state.notify_all()
                else:
                    index = self._taken
                    self._taken += 1
        if item is _END:
            self._permits.release()
            return False
        try:
            result = function(item)
        finally:
            self._permits.release()
        with self._state:
            self._done[index] = (item, result)
            self._state.notify_all()
        return True


@contextlib.contextmanager
def ordered_threads(workers: int, in_flight: int | None = None) -> Iterator[OrderedThreads]:
    """An `OrderedThreads` whose threads have all ended when the block ends, however it ends."""
    pool = OrderedThreads(workers, in_flight)
    try:
        yield pool
    finally:
        pool.close()
