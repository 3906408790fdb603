"""How much work the service holds at once: the bytes of the request bodies in flight (being read,
parsed, waiting for the scorer or scored), bounded, so memory does not grow with the number of clients.

A request takes its body's size (at least MIN_REQUEST_BYTES) from the budget before its body is
read, and gives it back once answered. One that finds no room waits, in arrival order, up to
`wait` seconds, then is refused (a 503 with Retry-After; its body is read and dropped piece by piece
so that the connection closes cleanly, never held: waiting costs a connection, not memory). A request alone is always let in (bodies are bounded by MAX_BODY_BYTES
anyway), so the largest valid request is never refused for being large. When the server begins to
shut down (`drain_all`, called by the protocol on SIGTERM), waiting requests are refused at once and
no more are let in; those in flight finish.

The body's bytes stand for the memory a request costs: its bytes, its parsed strings and its scoring
scale with them (measured in benchmarks/serve_memory.py, which also shows the memory given back).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable

MIN_REQUEST_BYTES = 4096  # what the smallest request costs: its head, its objects, its task

_ALL: weakref.WeakSet[Admission] = weakref.WeakSet()


class Admission:
    """A budget of `budget` bytes for the bodies in flight; `on_idle()` runs when the last one leaves.

    >>> admission = Admission(32 << 20, wait=5.0)
    >>> if await admission.enter(size):  # doctest: +SKIP
    ...     try: ...  # read, parse and score
    ...     finally: admission.leave(size)
    """

    def __init__(self, budget: int, wait: float, on_idle: Callable[[], None] | None = None):
        self.budget, self.wait, self.on_idle = budget, wait, on_idle
        self.used = 0  # bytes taken by the requests in flight
        self.active = 0  # requests in flight
        self.draining = False
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()
        _ALL.add(self)

    def _fits(self, cost: int) -> bool:
        return self.active == 0 or self.used + cost <= self.budget

    def _take(self, cost: int) -> None:
        self.used += cost
        self.active += 1

    async def enter(self, cost: int) -> bool:
        """Take `cost` bytes, waiting up to `self.wait` s for room: False if refused (busy or draining)."""
        cost = max(cost, MIN_REQUEST_BYTES)
        if self.draining:
            return False
        if not self._waiting and self._fits(cost):
            self._take(cost)
            return True
        future = asyncio.get_running_loop().create_future()
        entry = (cost, future)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout(self.wait):
                await asyncio.shield(future)
        except TimeoutError:
            pass
        except BaseException:  # cancelled while waiting (the client went away, the server stopped)
            if future.done() and future.result():
                self.leave(cost)  # let in just as it was cancelled: give the room back
            raise
        finally:
            if not future.done():  # still in the queue: leave it
                future.set_result(False)
                self._waiting.remove(entry)
        return future.result()

    def grow(self, extra: int) -> bool:
        """Take `extra` more bytes for a body of unknown length as it arrives, without waiting (a
        wait here could deadlock two such bodies): False if there is no room."""
        if self.active > 1 and self.used + extra > self.budget:
            return False
        self.used += extra
        return True

    def leave(self, cost: int) -> None:
        """Give back what `enter` (and `grow`) took, once the request is answered."""
        self.used -= max(cost, MIN_REQUEST_BYTES)
        self.active -= 1
        self._wake()
        if self.active == 0 and self.on_idle is not None:
            self.on_idle()

    def drain(self) -> None:
        """From now on refuse: the waiting requests at once, and any new one."""
        self.draining = True
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(False)

    def _wake(self) -> None:
        while self._waiting and not self.draining and self._fits(self._waiting[0][0]):
            cost, future = self._waiting.popleft()
            if future.done():
                continue
            self._take(cost)
            future.set_result(True)


def drain_all() -> None:
    """The server is shutting down: every Admission of this process refuses from now on."""
    for admission in list(_ALL):
        admission.drain()
