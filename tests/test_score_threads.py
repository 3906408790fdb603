"""`batch.threads.ordered_threads`, what `stocksent score` scores with where the compiled core runs:
results in input order, never more than `workers` threads computing (the caller's writing
included), bounded items in flight, errors raised in the caller, and no thread left running when
the block ends. Sleeps only make the threads interleave; nothing here measures speed."""

from __future__ import annotations

import random
import threading
import time

import pytest

from stocksent.batch.threads import ordered_threads


class Busy:
    """Counts the sections running at once (the function's and the caller's), and the items taken."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.taken = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1

    def items(self, count: int):
        for i in range(count):
            with self.lock:
                self.taken += 1
            yield i


@pytest.mark.parametrize(("workers", "in_flight"), [(1, None), (2, None), (3, None), (2, 2)])
def test_results_come_in_order_and_at_most_workers_compute_at_once(workers, in_flight):
    busy, rng = Busy(), random.Random(workers)
    delays = [rng.uniform(0, 0.004) for _ in range(120)]

    def square(i: int) -> int:
        with busy:
            time.sleep(delays[i])
            return i * i

    got, flying = [], []
    with ordered_threads(workers, in_flight) as pool:
        assert pool.in_flight == (in_flight or 4 * workers)
        for i, result in pool.map(square, busy.items(len(delays))):
            with busy:  # the caller's own work on a result takes one of the permits
                flying.append(busy.taken - len(got))
                got.append((i, result))
                time.sleep(0.001)
    assert got == [(i, i * i) for i in range(len(delays))]
    assert busy.most <= workers
    assert max(flying) <= pool.in_flight  # taken but not yet handled: the memory bound
    if workers > 1:
        assert busy.most > 1  # they did run side by side


def test_in_order_runs_in_the_callers_thread_in_order_holding_no_core():
    """The resume spool's fsync: done by the writing thread, in order, while the threads go on scoring."""
    busy, seen, overlapped = Busy(), [], []
    caller = threading.current_thread()

    def work(i: int) -> int:
        with busy:
            time.sleep(0.003)
        return -i

    def keep(i: int, result: int) -> None:
        assert threading.current_thread() is caller and result == -i
        time.sleep(0.003)  # waiting on the disk
        overlapped.append(busy.now)  # a thread computing meanwhile: this wait held no permit
        seen.append(i)

    with ordered_threads(1) as pool:
        got = [i for i, _ in pool.map(work, busy.items(30), in_order=keep)]
    assert got == seen == list(range(30))
    assert busy.most == 1 and max(overlapped) == 1


@pytest.mark.parametrize("where", ["function", "items"])
def test_an_error_in_a_thread_is_raised_in_the_caller_and_every_thread_ends(where):
    before = set(threading.enumerate())

    def items():
        yield from range(10)
        if where == "items":
            raise ValueError("bad row")
        yield from range(10, 50)

    def work(i: int) -> int:
        if where == "function" and i == 7:
            raise ValueError("bad row")
        time.sleep(0.001)
        return i

    got = []
    with pytest.raises(ValueError, match="bad row"):
        with ordered_threads(2) as pool:
            for i, _ in pool.map(work, items()):
                got.append(i)
    assert got == list(range(len(got))) and len(got) <= 10
    assert [t for t in threading.enumerate() if t not in before] == []


@pytest.mark.parametrize("workers", [1, 2])
def test_the_caller_stopping_stops_the_threads_at_once(workers):
    """KeyboardInterrupt (or SIGTERM's exception) while the caller writes a result: the threads finish
    the item they hold, take no more, and have ended when the block ends."""
    before = set(threading.enumerate())
    busy = Busy()
    finished = []

    def work(i: int) -> int:
        time.sleep(0.002)
        finished.append(i)
        return i

    with pytest.raises(KeyboardInterrupt):
        with ordered_threads(workers) as pool:
            for i, _ in pool.map(work, busy.items(1000)):
                if i == 5:
                    raise KeyboardInterrupt
    assert [t for t in threading.enumerate() if t not in before] == []
    assert busy.taken <= 5 + pool.in_flight  # the items in flight, not the rest of the input
    assert sorted(finished) == list(range(busy.taken))  # every item taken was finished
    taken = busy.taken
    time.sleep(0.05)
    assert busy.taken == taken  # nothing runs on behind the caller's back
