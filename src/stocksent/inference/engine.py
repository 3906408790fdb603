"""The one interface of every inference engine, and the length ordering they all share.

An engine turns word ids into logits and does nothing else: text normalisation and the vocabulary
come before it (`SentimentModel.encode_flat`), the sigmoid and the threshold after it, once, in
`SentimentModel`. Messages travel as one flat array of word ids laid end to end plus each
message's length (no padding, no Python list per message), which is what the vocabulary gives and
what the fast CPU engine and the n-gram term read directly.

>>> engine = TorchEngine(network)                                   # doctest: +SKIP
>>> engine.logits(np.array([5, 9, 2, 7]), np.array([3, 0, 1]))       # doctest: +SKIP
array([ 1.3, -0.2,  0.4], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from stocksent.tokens import TokenArrays, as_tokens

DEFAULT_BATCH = 1024


@runtime_checkable
class Engine(Protocol):
    """Logits of encoded messages, in input order.

    `name` says which engine it is ("native", "torch", "torch-fast", "onnx"); `precision` names the
    arithmetic ("float32" or "bfloat16"). `parallel` says whether separate
    chunks of one call may run side by side on worker threads with one intra-op thread each (true
    of the fast CPU engine, whose every operation releases the GIL; not of ONNX Runtime, which has
    its own thread pool, nor of a GPU).
    """

    name: str
    precision: str
    parallel: bool

    def logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """`ids`: int64 word ids of all messages end to end; `lengths`: each message's word count (0
        allowed: an empty message scores as one padding word, as in training). Returns float32 (n,)."""
        ...


def flatten(sequences: Sequence[np.ndarray] | TokenArrays) -> tuple[np.ndarray, np.ndarray]:
    """Messages' ids -> (all ids end to end, lengths): the engines' input, by one vectorised gather."""
    return as_tokens(sequences).flat()


def check_flat(ids: np.ndarray, lengths: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """`ids` and `lengths` as int64 arrays, or an error naming what is wrong with them."""
    ids, lengths = np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    if (len(lengths) and lengths.min() < 0) or lengths.sum() != len(ids):
        raise ValueError(f"lengths must be non-negative and sum to the number of ids ({len(ids)})")
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise IndexError(f"word ids must be in [0, {vocab_size})")
    return ids, lengths


@dataclass(frozen=True)
class LengthBatch:
    """Messages of similar length, longest first; `starts` index the flat ids of the call."""

    rows: np.ndarray  # positions of these messages in the call's input order
    starts: np.ndarray  # where each message's first word is in the flat ids
    lengths: np.ndarray  # at least 1, non-increasing

    def padded(self, ids: np.ndarray) -> np.ndarray:
        """(messages, longest) int64, right-padded with 0: the module's and the ONNX graph's input."""
        steps = np.arange(int(self.lengths[0]))
        inside = steps[None, :] < self.lengths[:, None]
        out = np.zeros(inside.shape, dtype=np.int64)
        out[inside] = ids[(self.starts[:, None] + steps[None, :])[inside]]
        return out


def length_batches(
    ids: np.ndarray, lengths: np.ndarray, batch_size: int, vocab_size: int
) -> tuple[np.ndarray, Iterator[LengthBatch]]:
    """Checked ids (with one padding word appended where a message is empty) and the call's batches.

    Sorting by length means each batch is padded (torch, ONNX) or packed (fast CPU) only to its own
    longest message (the last 10,000 messages of the dataset in batches of 1,000: 2.5x their words
    padded in input order, 1.19x sorted; packing computes exactly their words).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ids, lengths = check_flat(ids, lengths, vocab_size)
    starts = np.cumsum(lengths) - lengths
    if (lengths == 0).any():  # an empty message is one padding word, as in batching.pad
        ids = np.append(ids, 0)
        starts = np.where(lengths == 0, len(ids) - 1, starts)
        lengths = np.maximum(lengths, 1)
    order = np.argsort(lengths, kind="stable")

    def batches() -> Iterator[LengthBatch]:
        for lo in range(0, len(order), batch_size):
            rows = order[lo : lo + batch_size][::-1]  # longest first: what packing needs
            yield LengthBatch(rows, starts[rows], lengths[rows])

    return ids, batches()


def by_length(
    ids: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    vocab_size: int,
    run: Callable[[np.ndarray, LengthBatch], np.ndarray],
) -> np.ndarray:
    """Sort by length, batch, run `run(ids, batch)` -> the batch's logits, scatter back to input order.

    The one ordering loop of every engine (torch, fast CPU, ONNX Runtime).
    """
    out = np.empty(len(lengths), dtype=np.float32)
    ids, batches = length_batches(ids, lengths, batch_size, vocab_size)
    for batch in batches:
        out[batch.rows] = run(ids, batch)
    return out


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """P(bullish) from logits, float32, without overflow (torch's kernel: the values training saw).

    >>> sigmoid(np.array([0.0, 100.0, -100.0], dtype=np.float32)).tolist()
    [0.5, 1.0, 0.0]
    """
    import torch

    return torch.sigmoid(torch.from_numpy(np.asarray(logits, dtype=np.float32))).numpy()


class TorchEngine:
    """The module's own `forward` on whatever device its weights are on (CPU or CUDA): the reference
    every other engine is tested against, and the engine for GPUs. Holds the live module, so it
    follows training's weight updates; each call runs in eval mode and restores the module's mode.
    """

    name = "torch"
    precision = "float32"
    parallel = False

    def __init__(self, module):
        self.module = module

    def logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        import torch

        module = self.module
        device = module.embedding.weight.device

        def run(flat: np.ndarray, batch: LengthBatch) -> np.ndarray:
            padded = torch.from_numpy(batch.padded(flat)).to(device)
            return module(padded, torch.from_numpy(batch.lengths)).float().cpu().numpy()

        was_training = module.training
        module.eval()
        try:
            with torch.inference_mode():
                return by_length(ids, lengths, batch_size, module.embedding.num_embeddings, run)
        finally:
            module.train(was_training)
