"""Worker threads with one intra-op thread each, for work split into independent parts
(prediction chunks, training shards)."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads: start afresh
    os.register_at_fork(after_in_child=_POOLS.clear)


def _one_intra_op_thread() -> None:
    torch.get_num_threads()  # ATen first sets this thread up from the process-wide setting...
    torch.set_num_threads(1)  # ...then this thread alone runs ops on one core (OpenMP and MKL: per thread)


def worker_pool(threads: int) -> ThreadPoolExecutor:
    """`threads` worker threads with one intra-op thread each, started once per process.

    Independent parts on separate cores beat one part on all cores: each step's operations are
    small (µs to 1 ms), so OpenMP's fork/join per operation costs a lot, and on a busy machine a
    descheduled OpenMP thread stalls every barrier while its partner spins (measured on the 2-core
    dev box with other jobs running: two intra-op threads 5-10x slower than one for prediction).
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            before = torch.get_num_threads()
            pool = ThreadPoolExecutor(threads, thread_name_prefix="stocksent-worker", initializer=_one_intra_op_thread)
            started = threading.Barrier(threads)
            try:
                list(pool.map(lambda _: started.wait(), range(threads)))  # every thread initialised now
            except BaseException:  # e.g. SIGTERM between two thread starts: a thread left waiting
                started.abort()  # at the barrier would block the interpreter's exit forever
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            torch.set_num_threads(before)  # the workers' set_num_threads also moved the process default
            _POOLS[threads] = pool
    return pool


def map_chunks(
    score: Callable[[Sequence[T]], np.ndarray], items: Sequence[T], chunk: int, threads: int, small_inline: bool = False
) -> np.ndarray:
    """`score` over `items` in chunks spread over `threads` worker threads, concatenated in order.

    Scoring raw text is text work (the compiled normaliser releases the GIL; the reference holds
    it, so it runs on one thread at a time) and network work (releases the GIL): chunks on separate
    threads overlap one's text work with another's network. Calls of fewer than 2 x `chunk` items
    stay one chunk: in the calling thread when `small_inline` (a scorer that runs no torch ops: no
    thread hand-off for one message), else on a worker thread, where torch runs one intra-op thread
    (tiny ops on several OpenMP threads only lose time).

    >>> map_chunks(lambda xs: np.array([len(x) for x in xs]), ["a", "bb"], chunk=1024, threads=2)
    array([1, 2])
    """
    n = len(items)
    if threads <= 1 or (small_inline and n < 2 * chunk):
        return score(items)
    if n < 2 * chunk:
        return worker_pool(threads).submit(score, items).result()
    # Equal chunks, a multiple of `threads` of them, of up to ~4 x `chunk` items each.
    count = threads * math.ceil(n / (threads * 4 * chunk))
    bounds = np.linspace(0, n, count + 1).astype(int)
    parts = worker_pool(threads).map(score, [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
    return np.concatenate(list(parts))
