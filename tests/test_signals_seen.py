"""SeenSet: exact membership with buckets spilled to disk."""

from __future__ import annotations

import numpy as np

from stocksent.signals.seen import SeenSet


def reference(buckets, keys, seen):
    out = []
    for b, k in zip(buckets.tolist(), keys.tolist()):
        out.append((b, k) not in seen)
        seen.add((b, k))
    return np.array(out)


def test_matches_a_python_set_while_spilling():
    rng = np.random.default_rng(0)
    seen_ref: set = set()
    with SeenSet(max_resident=50) as seen:  # tiny budget: most buckets live on disk
        for _ in range(40):
            buckets = rng.integers(0, 30, 64)
            keys = rng.integers(0, 40, 64).astype(np.uint64)
            np.testing.assert_array_equal(seen.add(buckets, keys), reference(buckets, keys, seen_ref))
        assert seen.spills > 0
        assert len(seen) == len(seen_ref)
        spill_dir = seen._dir
        assert spill_dir is not None and spill_dir.is_dir()
    assert not spill_dir.exists()  # closed: the temporary files are gone


def test_first_row_of_a_repeated_pair_is_the_new_one():
    with SeenSet() as seen:
        new = seen.add(np.array([1, 1, 2, 1]), np.array([7, 7, 7, 8], dtype=np.uint64))
        assert new.tolist() == [True, False, True, True]
        assert seen.add(np.array([1]), np.array([7], dtype=np.uint64)).tolist() == [False]


def test_resident_keys_stay_within_the_budget():
    with SeenSet(max_resident=1000) as seen:
        for day in range(50):
            seen.add(np.full(500, day), np.arange(500, dtype=np.uint64))
            assert seen._resident_keys <= 1000
        assert len(seen) == 50 * 500
