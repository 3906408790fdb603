"""Length-bucketed mini-batches, right-padded only to each batch's own longest message."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    ids: torch.Tensor  # (batch, longest) int64, 0 after each message's end
    lengths: torch.Tensor  # (batch,) int64, at least 1
    index: np.ndarray  # positions of these messages in the input sequence


def pad(sequences: Sequence[np.ndarray], index: np.ndarray) -> Batch:
    """Right padding: a left-to-right LSTM's state at a message's last word never sees the pads."""
    lengths = np.fromiter((max(len(sequences[i]), 1) for i in index), dtype=np.int64, count=len(index))
    ids = np.zeros((len(index), int(lengths.max())), dtype=np.int64)
    for row, i in enumerate(index):
        seq = sequences[i]
        ids[row, : len(seq)] = seq
    return Batch(torch.from_numpy(ids), torch.from_numpy(lengths), np.asarray(index))


def bucketed_order(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None, pool_batches: int = 50
) -> list[np.ndarray]:
    """Batches of similar-length messages; every message appears once, the last batch may be short.

    With a generator: shuffle, sort by length within pools of `pool_batches` batches (so batches
    stay random across epochs), then shuffle the batch order. Without one: sort everything by
    length, the cheapest order for inference.
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    order = rng.permutation(n)
    pool = batch_size * pool_batches
    for start in range(0, n, pool):
        chunk = order[start : start + pool]
        order[start : start + pool] = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def iterate_batches(
    sequences: Sequence[np.ndarray], batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[Batch]:
    """Padded batches in `bucketed_order`. Messages held flat (`corpus.TokenArrays`: one ids array
    and offsets) are padded by vectorised gathers, with lengths read off the offsets; the batches
    are the same as from a list of arrays."""
    flat_batch = getattr(sequences, "batch", None)
    if flat_batch is not None:
        lengths = sequences.lengths
    else:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    for index in bucketed_order(lengths, batch_size, rng):
        yield flat_batch(index) if flat_batch is not None else pad(sequences, index)
