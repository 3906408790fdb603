"""What a run trains on: the labelled file split, the vocabulary, and every split encoded as word ids."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stocksent.artifacts import VOCAB, read_json
from stocksent.config import TrainConfig
from stocksent.errors import StocksentError
from stocksent.splits import LoadedSplits, Splits, load_splits
from stocksent.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    loaded: LoadedSplits
    vocab: Vocabulary
    train_x: list[np.ndarray]
    val_x: list[np.ndarray]
    test_x: list[np.ndarray]

    @property
    def splits(self) -> Splits:
        return self.loaded.splits


def prepare_data(config: TrainConfig, out: Path, recorded_sha256: str | None = None) -> TrainingData:
    """Load and split the data; build the vocabulary from the training split (or, resuming, read it back).

    `recorded_sha256`: the data file a resumed run started with; another file is refused.
    """
    loaded = load_splits(config.data, config.text_options, config.effective_split_seed, config.max_examples)
    splits = loaded.splits
    if loaded.skipped:
        log.info(f"skipped {loaded.skipped} rows without a bullish/bearish label")
    log.info(f"data {loaded.path}: train {len(splits.train)}, validation {len(splits.val)}, test {len(splits.test)}")
    if recorded_sha256 is None:
        vocab = Vocabulary.build(splits.train.tokens, config.min_count)
    else:
        if recorded_sha256 != loaded.sha256:
            raise StocksentError(f"{loaded.path} is not the file this run started with (sha256 differs)")
        vocab = Vocabulary.from_dict(read_json(out / VOCAB))
    return TrainingData(
        loaded,
        vocab,
        vocab.encode_many(splits.train.tokens),
        vocab.encode_many(splits.val.tokens),
        vocab.encode_many(splits.test.tokens),
    )
