"""Tests for stocksent.batching: every message once, padding to each batch's own longest, bucketing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stocksent.batching import bucketed_order, iterate_batches, pad
from stocksent.splits import load_splits
from stocksent.text import TextOptions
from stocksent.vocab import Vocabulary


def random_sequences(n: int, seed: int = 0, max_len: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 500, size=int(rng.integers(1, max_len))) for _ in range(n)]


@pytest.fixture(scope="module")
def real_sequences() -> list[np.ndarray]:
    from conftest import DATA_PATH

    splits = load_splits(DATA_PATH, TextOptions(), seed=1, max_examples=6000).splits
    vocab = Vocabulary.build(splits.train.tokens, min_count=2)
    return vocab.encode_many(splits.train.tokens)


def check_batches(sequences: list[np.ndarray], batches, batch_size: int) -> None:
    """Every message exactly once, rows hold the message then zeros, width = the batch's longest."""
    seen = np.concatenate([b.index for b in batches])
    assert sorted(seen.tolist()) == list(range(len(sequences)))
    sizes = [len(b.index) for b in batches]
    assert sum(sizes) == len(sequences)
    assert sum(s < batch_size for s in sizes) <= 1  # only one batch may be short
    for b in batches:
        assert b.ids.dtype == torch.int64 and b.lengths.dtype == torch.int64
        assert b.ids.shape == (len(b.index), int(b.lengths.max()))
        for row, i in enumerate(b.index):
            seq = sequences[i]
            assert int(b.lengths[row]) == max(len(seq), 1)
            assert b.ids[row, : len(seq)].tolist() == seq.tolist()
            assert not b.ids[row, len(seq) :].any()


@pytest.mark.parametrize("n, batch_size", [(100, 32), (64, 32), (5, 32), (1, 1), (33, 8)])
@pytest.mark.parametrize("seeded", [False, True])
def test_every_message_exactly_once_including_last_partial_batch(n: int, batch_size: int, seeded: bool) -> None:
    sequences = random_sequences(n, seed=n)
    rng = np.random.default_rng(7) if seeded else None
    batches = list(iterate_batches(sequences, batch_size, rng))
    assert len(batches) == -(-n // batch_size)
    check_batches(sequences, batches, batch_size)
    if n % batch_size:
        assert sorted(len(b.index) for b in batches)[0] == n % batch_size


def test_padding_is_to_each_batch_own_longest() -> None:
    lengths = [1, 2, 3, 4, 30, 31, 32, 33]
    sequences = [np.arange(1, n + 1, dtype=np.int64) + 1 for n in lengths]
    batches = list(iterate_batches(sequences, 4))  # inference order: sorted by length
    assert [b.ids.shape for b in batches] == [(4, 4), (4, 33)]
    assert [b.lengths.tolist() for b in batches] == [[1, 2, 3, 4], [30, 31, 32, 33]]
    check_batches(sequences, batches, 4)


def test_empty_message_gets_length_one_of_padding() -> None:
    sequences = [np.array([], dtype=np.int64), np.array([5, 6], dtype=np.int64)]
    batch = pad(sequences, np.array([0, 1]))
    assert batch.lengths.tolist() == [1, 2]
    assert batch.ids.tolist() == [[0, 0], [5, 6]]
    assert list(iterate_batches([], 8)) == []


def test_inference_order_is_sorted_by_length() -> None:
    sequences = random_sequences(50, seed=3)
    batches = list(iterate_batches(sequences, 10))
    lengths = [len(sequences[i]) for b in batches for i in b.index]
    assert lengths == sorted(lengths)


def test_same_seed_same_batches_and_different_seed_differs() -> None:
    sequences = random_sequences(500, seed=4)
    lengths = np.array([len(s) for s in sequences])

    def order(seed: int) -> list[list[int]]:
        return [b.tolist() for b in bucketed_order(lengths, 16, np.random.default_rng(seed))]

    assert order(11) == order(11)
    assert order(11) != order(12)
    a = list(iterate_batches(sequences, 16, np.random.default_rng(11)))
    b = list(iterate_batches(sequences, 16, np.random.default_rng(11)))
    assert all(torch.equal(x.ids, y.ids) and torch.equal(x.lengths, y.lengths) for x, y in zip(a, b))


def padding_of(sequences: list[np.ndarray], batches) -> int:
    return sum(int(b.ids.numel()) - sum(len(sequences[i]) for i in b.index) for b in batches)


def test_bucketing_reduces_padding_on_real_data(real_sequences) -> None:
    batch_size = 64
    n = len(real_sequences)
    rng = np.random.default_rng(0)
    bucketed = list(iterate_batches(real_sequences, batch_size, rng))
    check_batches(real_sequences, bucketed, batch_size)

    perm = np.random.default_rng(0).permutation(n)
    random = [pad(real_sequences, perm[i : i + batch_size]) for i in range(0, n, batch_size)]
    tokens = sum(len(s) for s in real_sequences)
    bucketed_pad, random_pad = padding_of(real_sequences, bucketed), padding_of(real_sequences, random)
    # Real messages run from 1 to ~50 tokens: random batches are mostly padding, bucketed ones hardly any.
    assert random_pad > tokens // 2
    assert bucketed_pad * 5 < random_pad


def test_bucketed_batches_still_shuffle_across_epochs(real_sequences) -> None:
    lengths = np.array([len(s) for s in real_sequences])
    epoch1 = bucketed_order(lengths, 64, np.random.default_rng([1, 1]))
    epoch2 = bucketed_order(lengths, 64, np.random.default_rng([1, 2]))
    assert [b.tolist() for b in epoch1] != [b.tolist() for b in epoch2]
    # Batch order is not sorted by length in training (unlike inference).
    first_lengths = [int(lengths[b].max()) for b in epoch1]
    assert first_lengths != sorted(first_lengths)
