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

    @classmethod
    def from_ids(cls, words: Sequence[str], ids: np.ndarray, min_count: int = 1) -> Vocabulary:
        """`build` over messages held as ids into `words` laid end to end (`ids`, in message order),
        without a string per word: the same words in the same order as `build` on the decoded tokens.

        >>> Vocabulary.from_ids(["buy", "now"], np.array([1, 0, 1])).words
        ['<pad>', '<unk>', 'now', 'buy']
        """
        ids = np.asarray(ids)
        counts = np.bincount(ids, minlength=len(words)) if len(ids) else np.zeros(len(words), np.int64)
        first = np.full(len(words), len(ids), dtype=np.int64)
        seen, at = np.unique(ids, return_index=True)
        first[seen] = at
        # Counter.most_common: by count, descending; ties in order of first appearance.
        order = np.lexsort((first, -counts))
        kept = [words[i] for i in order.tolist() if counts[i] >= min_count and words[i] not in (PAD, UNK, TICKER)]
        present = counts > 0
        if (TICKER in words and present[list(words).index(TICKER)]) or any(
            words[i].startswith("$") for i in np.flatnonzero(present).tolist()
        ):
            kept.insert(0, TICKER)
        return cls([PAD, UNK, *kept])

    def extended(self, other: Vocabulary) -> Vocabulary:
        """These words with their ids unchanged, then `other`'s words this one lacks, in `other`'s
        order: continued training keeps every old row and adds rows for the new data's words.

        >>> Vocabulary(["<pad>", "<unk>", "up"]).extended(Vocabulary(["<pad>", "<unk>", "down", "up"])).words
        ['<pad>', '<unk>', 'up', 'down']
        """
        return Vocabulary([*self.words, *(w for w in other.words if w not in self.index)])

    def mapping(self, words: Sequence[str]) -> np.ndarray:
        """int32 array: `words[i]`'s id here (unknown words as `encode` maps them), for `TokenArrays.mapped`."""
        get, unknown = self.index.get, self.unknown_id
        return np.fromiter((get(w) or unknown(w) for w in words), dtype=np.int32, count=len(words))

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
