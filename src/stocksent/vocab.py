"""Vocabulary: words seen in the training split to integer ids (0 padding, 1 unknown)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNK, TICKER = "<pad>", "<unk>", "<TICKER>"


class Vocabulary:
    """Built from training messages only, so validation and test words it never saw map to <unk>."""

    def __init__(self, words: Sequence[str]):
        if list(words[:2]) != [PAD, UNK]:
            raise ValueError("a vocabulary starts with <pad>, <unk>")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("vocabulary words must be unique")
        self.ticker_id = self.index.get(TICKER, 1)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1) -> Vocabulary:
        """Most frequent first, ties by first appearance, so the ids are deterministic."""
        counts = Counter(word for tokens in token_lists for word in tokens)
        kept = [w for w, c in counts.most_common() if c >= min_count and w not in (PAD, UNK, TICKER)]
        if TICKER in counts or any(w.startswith("$") for w in counts):
            kept.insert(0, TICKER)  # where rare cashtags go
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def unknown_id(self, word: str) -> int:
        return self.ticker_id if word.startswith("$") else 1

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        get, unknown = self.index.get, self.unknown_id
        return np.fromiter((get(w) or unknown(w) for w in tokens), dtype=np.int64, count=len(tokens))

    def encode_many(self, token_lists: Iterable[Sequence[str]]) -> list[np.ndarray]:
        return [self.encode(tokens) for tokens in token_lists]

    def to_dict(self) -> dict:
        return {"words": self.words}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(data["words"])
