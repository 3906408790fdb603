"""Messages held as word ids: all of them end to end in one array (`TokenArrays`), never a Python list
per message or per word, and the views the rest of the package reads them through.

- `TokenArrays`: int32 ids end to end with offsets, and optionally `rows` picking and ordering
  messages of a larger set without copying their ids (a split is one). `flat()` is an engine's input,
  `batch(index)` a padded training batch.
- `as_tokens(sequences)`: the one conversion of a list of id arrays (tests, small callers) to
  `TokenArrays`, so every consumer has one path.
- `LazyTexts` (messages as Arrow strings, by position) and `LazyTokens` (each message's tokens as
  strings, decoded on demand): what reports and the baseline read.

>>> t = as_tokens([np.array([5, 6]), np.array([7])])
>>> t[0].tolist(), t.lengths.tolist(), t.subset([1, 0]).flat()[0].tolist()
([5, 6], [2, 1], [7, 5, 6])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Batch:
    """A padded batch: what the network's forward takes."""

    ids: Any  # torch.Tensor (batch, longest) int64, 0 after each message's end
    lengths: Any  # torch.Tensor (batch,) int64, at least 1
    index: np.ndarray  # positions of these messages in the input sequence


def as_tokens(sequences: Sequence[np.ndarray] | TokenArrays) -> TokenArrays:
    """`sequences` as `TokenArrays`: as they are if they already are, else their ids laid end to end."""
    if isinstance(sequences, TokenArrays):
        return sequences
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    ids = np.concatenate([np.asarray(s, np.int64) for s in sequences]) if len(sequences) else np.empty(0, np.int64)
    return TokenArrays(ids, np.concatenate([[0], np.cumsum(lengths)]))


_CHUNK = 1 << 20  # messages gathered at a time: bounds the int64 index arrays a gather needs


class TokenArrays(Sequence):
    """Messages' word ids laid end to end (`ids`, int32) with `offsets` (int64, n + 1); `rows`
    picks and orders messages of a larger set without copying their ids (a split is one).

    Indexing gives one message's ids (a view), so code written for a list of arrays still works;
    `lengths`, `flat` and `batch` are the vectorised paths training and inference use.

    >>> t = TokenArrays(np.array([5, 6, 7], np.int32), np.array([0, 2, 3]))
    >>> t[0].tolist(), t.lengths.tolist()
    ([5, 6], [2, 1])
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray | None = None):
        self.ids, self.offsets = ids, np.asarray(offsets, dtype=np.int64)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1 if self.rows is None else len(self.rows)

    def _row(self, i: int) -> int:
        return int(i) if self.rows is None else int(self.rows[i])

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.subset(np.arange(len(self))[i])
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        row = self._row(i)
        return self.ids[self.offsets[row] : self.offsets[row + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    @property
    def starts(self) -> np.ndarray:
        starts = self.offsets[:-1]
        return starts if self.rows is None else starts[self.rows]

    @property
    def lengths(self) -> np.ndarray:
        lengths = np.diff(self.offsets)
        return lengths if self.rows is None else lengths[self.rows]

    def subset(self, index) -> TokenArrays:
        """These messages at positions `index` (no ids copied)."""
        index = np.asarray(index, dtype=np.int64)
        return TokenArrays(self.ids, self.offsets, index if self.rows is None else self.rows[index])

    def flat(self, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
        """(ids end to end, lengths) in this order: the inference engines' input (int64)."""
        starts, lengths = self.starts, self.lengths
        out = np.empty(int(lengths.sum()), dtype=dtype)
        done = 0
        for lo in range(0, len(lengths), _CHUNK):
            s, n = starts[lo : lo + _CHUNK], lengths[lo : lo + _CHUNK]
            total = int(n.sum())
            within = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
            out[done : done + total] = self.ids[np.repeat(s, n) + within]
            done += total
        return out, lengths

    def batch(self, index: np.ndarray) -> Batch:
        """The messages at `index` right-padded to the longest of them (an empty one as one pad)."""
        import torch

        index = np.asarray(index)
        starts, lengths = self.starts[index], self.lengths[index]
        width = max(int(lengths.max()), 1) if len(index) else 1
        steps = np.arange(width)
        inside = steps[None, :] < lengths[:, None]
        ids = np.zeros((len(index), width), dtype=np.int64)
        ids[inside] = self.ids[(starts[:, None] + steps[None, :])[inside]]
        return Batch(torch.from_numpy(ids), torch.from_numpy(np.maximum(lengths, 1)), index)

    def mapped(self, mapping: np.ndarray) -> TokenArrays:
        """Every id replaced by `mapping[id]` (int32), in place and chunk by chunk, bounding memory."""
        mapping = mapping.astype(np.int32, copy=False)
        for lo in range(0, len(self.ids), _CHUNK * 16):
            np.take(mapping, self.ids[lo : lo + _CHUNK * 16], out=self.ids[lo : lo + _CHUNK * 16])
        return self

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.offsets.nbytes + (0 if self.rows is None else self.rows.nbytes)


class LazyTexts(Sequence):
    """Messages held as Arrow strings (~1 byte per character, not a Python object each), by position."""

    def __init__(self, chunks: list, rows: np.ndarray | None = None):
        import pyarrow as pa

        self.column = pa.chunked_array(chunks, type=pa.string()) if chunks else pa.chunked_array([], pa.string())
        self.rows = rows

    def __len__(self) -> int:
        return len(self.column) if self.rows is None else len(self.rows)

    def subset(self, index) -> LazyTexts:
        index = np.asarray(index, dtype=np.int64)
        out = LazyTexts([])
        out.column, out.rows = self.column, index if self.rows is None else self.rows[index]
        return out

    def tolist(self) -> list[str]:
        column = self.column if self.rows is None else self.column.take(self.rows)
        return column.to_pylist()

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.subset(np.arange(len(self))[i]).tolist()
        return self.column[int(i if self.rows is None else self.rows[i])].as_py()

    def __iter__(self) -> Iterator[str]:
        return iter(self.tolist())

    def __eq__(self, other) -> bool:
        return list(self) == list(other)


class LazyTokens(Sequence):
    """Each message's tokens as strings, decoded on demand from word ids (the baseline's input)."""

    def __init__(self, words: Sequence[str], tokens: TokenArrays):
        self.words, self.tokens = words, tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        return [self.words[w] for w in self.tokens[i].tolist()]

    def __iter__(self) -> Iterator[list[str]]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other) -> bool:
        return list(self) == list(other)
