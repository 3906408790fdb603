"""`SeenSet`: "have I seen this key before?" for any number of keys, in bounded memory.

Deduplicating messages by id (and counting distinct users) needs every key seen so far, which grows
with the input: 8 bytes per key as a sorted numpy array (a Python set costs ~60). To keep the
index's memory flat however long the input, keys live in buckets (the message's UTC day: a
duplicate has the same timestamp, so it falls in the same bucket) and only the most recently used
buckets stay in memory, up to `max_resident` keys; the others are written to a temporary directory
and read back when a key of theirs shows up. Input that is roughly in time order (API pages,
daily files, one file per ticker) touches few buckets at a time, so spilling costs little; shuffled
input still gives exact answers, only slower.

>>> seen = SeenSet(max_resident=1_000_000)                                 # doctest: +SKIP
>>> seen.add(np.array([1, 1, 1]), np.array([7, 7, 8], dtype=np.uint64))   # doctest: +SKIP
array([ True, False,  True])
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

__all__ = ["SeenSet"]

log = logging.getLogger(__name__)


class SeenSet:
    """Exact membership of uint64 keys, partitioned by int64 buckets, with LRU spilling to disk."""

    def __init__(self, max_resident: int = 2_000_000, spill_dir: str | None = None):
        self.max_resident = max_resident
        self.spill_root = spill_dir
        self._resident: OrderedDict[int, np.ndarray] = OrderedDict()  # bucket -> sorted unique keys
        self._resident_keys = 0
        self._spilled: set[int] = set()
        self._dir: Path | None = None
        self.spills = 0  # bucket writes, for logs and benchmarks

    def add(self, buckets: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Record (bucket, key) pairs; True for each pair never seen before (its first row in this call)."""
        buckets = np.asarray(buckets, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.uint64)
        new = np.zeros(len(keys), dtype=bool)
        if not len(keys):
            return new
        order = np.lexsort((keys, buckets))
        b, k = buckets[order], keys[order]
        first = np.r_[True, (b[1:] != b[:-1]) | (k[1:] != k[:-1])]  # first of each pair within the call
        bounds = np.flatnonzero(np.r_[True, b[1:] != b[:-1], True])
        for start, stop in zip(bounds[:-1], bounds[1:]):
            bucket = int(b[start])
            candidates = k[start:stop][first[start:stop]]
            known = self._get(bucket)
            if known is None or not len(known):
                fresh = np.ones(len(candidates), dtype=bool)
            else:
                pos = np.searchsorted(known, candidates)
                fresh = known[np.minimum(pos, len(known) - 1)] != candidates
            rows = order[start:stop][first[start:stop]]
            new[rows[fresh]] = True
            if fresh.any():
                merged = candidates[fresh] if known is None else np.union1d(known, candidates[fresh])
                self._put(bucket, merged)
        self._evict()
        return new

    def _get(self, bucket: int) -> np.ndarray | None:
        if bucket in self._resident:
            self._resident.move_to_end(bucket)
            return self._resident[bucket]
        if bucket in self._spilled:
            keys = np.load(self._path(bucket))
            self._spilled.discard(bucket)
            self._put(bucket, keys)
            return keys
        return None

    def _put(self, bucket: int, keys: np.ndarray) -> None:
        old = self._resident.pop(bucket, None)
        if old is not None:
            self._resident_keys -= len(old)
        self._resident[bucket] = keys
        self._resident_keys += len(keys)

    def _evict(self) -> None:
        while self._resident_keys > self.max_resident and len(self._resident) > 1:
            bucket, keys = self._resident.popitem(last=False)
            self._resident_keys -= len(keys)
            np.save(self._path(bucket), keys, allow_pickle=False)
            self._spilled.add(bucket)
            self.spills += 1

    def _path(self, bucket: int) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="stocksent-seen-", dir=self.spill_root))
            log.debug("spilling seen keys to %s", self._dir)
        return self._dir / f"{bucket}.npy"

    def __len__(self) -> int:
        spilled = sum(len(np.load(self._path(b), mmap_mode="r")) for b in self._spilled)
        return self._resident_keys + spilled

    def close(self) -> None:
        """Delete the spill directory (also done when the object is garbage-collected)."""
        self._resident.clear()
        self._resident_keys = 0
        self._spilled.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> SeenSet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
