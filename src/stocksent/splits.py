"""From labelled messages to the three token splits that training, evaluation and the baseline share."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stocksent.data import LabelledData, split_indices
from stocksent.errors import StocksentError
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


def split_sha256(messages: Sequence[str], labels: Sequence[float]) -> str:
    """Fingerprint of one split's messages and labels, in order: equal fingerprints, identical split."""
    payload = json.dumps([list(messages), [int(y) for y in labels]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def splits_sha256(splits: Splits) -> dict[str, str]:
    """Fingerprints of the train, validation and test splits (the baseline and report compare them)."""
    return {
        name: split_sha256(part.messages, part.labels)
        for name, part in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }


@dataclass
class LoadedSplits:
    """A labelled file found, hashed, read and split: what every command that trains or compares needs."""

    path: Path  # absolute, so a recorded path works from any directory
    sha256: str
    skipped: int  # rows without a bullish/bearish label
    splits: Splits

    def record(self, split_seed: int, max_examples: int | None) -> dict:
        """config.json's "data": enough to rebuild exactly these splits later (`recorded_test_split`)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "split_seed": split_seed,
            "max_examples": max_examples,
            "split": self.splits.sizes(),
            "skipped_unlabelled": self.skipped,
            "dropped_empty": self.splits.dropped_empty,
        }


def load_splits(
    data: str | os.PathLike | None, options: TextOptions, seed: int, max_examples: int | None = None
) -> LoadedSplits:
    """Find the labelled file (None: $STOCKSENT_DATA, the cache or the download), hash it, read it, split it.

    >>> loaded = load_splits(None, TextOptions(), seed=1)  # doctest: +SKIP
    >>> loaded.splits.sizes()  # doctest: +SKIP
    {'train': 77572, 'val': 9696, 'test': 9698}
    """
    from stocksent.data import locate_dataset, read_labelled, sha256_file

    path = locate_dataset(data).resolve()
    labelled = read_labelled(path)
    splits = prepare_splits(labelled, options, seed, max_examples)
    if min(splits.sizes().values()) == 0:
        raise StocksentError(f"{path} has too few usable messages to split 80/10/10 ({len(labelled.labels)} labelled)")
    return LoadedSplits(path, sha256_file(path), labelled.skipped, splits)


def recorded_test_split(recorded: dict, options: TextOptions, data_path: str | os.PathLike | None = None) -> Split:
    """The test split a model was measured on (see `recorded_splits`)."""
    return recorded_splits(recorded, options, data_path).test


def recorded_splits(recorded: dict, options: TextOptions, data_path: str | os.PathLike | None = None) -> Splits:
    """The splits a model was trained and measured on, rebuilt from config.json's "data" record.

    Only the very file the model was trained on gives the same split, so its sha256 is checked;
    `data_path` points at the file where it moved since training.
    """
    from stocksent.data import read_labelled, sha256_file

    given = data_path or recorded.get("path")
    if not given:  # not Path(""): that is ".", which exists
        raise StocksentError("no data file recorded with this model; pass --data PATH")
    path = Path(given)
    if not path.is_file():
        raise StocksentError(f"training data not found: {path}; pass --data PATH of the file the model was trained on")
    if sha256_file(path) != recorded.get("sha256"):
        raise StocksentError(
            f"{path} is not the file the model was trained on (its sha256 differs): "
            "the test split cannot be rebuilt from it"
        )
    return prepare_splits(read_labelled(path), options, recorded["split_seed"], recorded.get("max_examples"))
