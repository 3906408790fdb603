"""Length-bucketed mini-batches, right-padded only to each batch's own longest message.

Every batch is made by `tokens.TokenArrays.batch`; a list of id arrays is converted once
(`tokens.as_tokens`), so there is one way a batch is padded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from stocksent.tokens import Batch, TokenArrays, as_tokens

__all__ = ["Batch", "bucketed_order", "iterate_batches", "pad"]


def pad(sequences: Sequence[np.ndarray] | TokenArrays, index: np.ndarray) -> Batch:
    """Right padding: a left-to-right LSTM's state at a message's last word never sees the pads."""
    return as_tokens(sequences).batch(index)


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
    sequences: Sequence[np.ndarray] | TokenArrays, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[Batch]:
    """Padded batches in `bucketed_order`, lengths read off the offsets, ids gathered vectorised."""
    tokens = as_tokens(sequences)
    for index in bucketed_order(tokens.lengths, batch_size, rng):
        yield tokens.batch(index)
