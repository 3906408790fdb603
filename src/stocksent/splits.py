"""From labelled messages to the three token splits that training, evaluation and the baseline share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stocksent.data import LabelledData, split_indices
from stocksent.text import TextOptions, normalise


@dataclass
class Split:
    messages: list[str]  # raw text, for reports and the baseline
    tokens: list[list[str]]
    labels: np.ndarray  # float32, 1.0 bullish

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    dropped_empty: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def make_split(messages: list[str], tokens: list[list[str]], labels: list[int], index) -> Split:
    return Split(
        [messages[i] for i in index],
        [tokens[i] for i in index],
        np.asarray([labels[i] for i in index], dtype=np.float32),
    )


def prepare_splits(data: LabelledData, options: TextOptions, seed: int, max_examples: int | None = None) -> Splits:
    """Normalise, drop messages left empty, then the seeded 80/10/10 split of what remains."""
    messages, labels = data.messages, data.labels
    if max_examples is not None:
        messages, labels = messages[:max_examples], labels[:max_examples]
    all_tokens = [normalise(m, options) for m in messages]
    keep = [i for i, t in enumerate(all_tokens) if t]
    messages = [messages[i] for i in keep]
    tokens = [all_tokens[i] for i in keep]
    labels = [labels[i] for i in keep]
    train_idx, val_idx, test_idx = split_indices(len(keep), seed)
    return Splits(
        train=make_split(messages, tokens, labels, train_idx),
        val=make_split(messages, tokens, labels, val_idx),
        test=make_split(messages, tokens, labels, test_idx),
        dropped_empty=len(all_tokens) - len(keep),
    )
