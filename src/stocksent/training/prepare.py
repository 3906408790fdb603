"""What a run trains on: the labelled files split, the vocabulary, and every split as word ids.

The word ids stay where the corpus read them: one int32 array of every message's ids end to end
(`tokens.TokenArrays`), mapped in place from the corpus' own word ids to the vocabulary's; each
split is a set of row numbers into it. No Python object per message or per word is made, which is
what lets 10M messages train in a few GB (benchmarks/train_scale.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from stocksent.artifacts import VOCAB, read_json
from stocksent.config import TrainConfig
from stocksent.errors import StocksentError
from stocksent.splits import LoadedSplits, Splits, load_splits
from stocksent.tokens import LazyTokens, TokenArrays
from stocksent.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    loaded: LoadedSplits
    vocab: Vocabulary
    train_x: TokenArrays  # vocabulary ids (a Sequence of arrays, one per message, held flat)
    val_x: TokenArrays
    test_x: TokenArrays

    @property
    def splits(self) -> Splits:
        return self.loaded.splits


def prepare_data(
    config: TrainConfig, out: Path, recorded_sha256: str | None = None, base_vocab: Vocabulary | None = None
) -> TrainingData:
    """Load and split the data; build the vocabulary from the training split (or, resuming, read it back).

    `recorded_sha256`: the data a resumed run started with; other data is refused. `base_vocab`
    (`--init-from`): the vocabulary is that one extended with the training split's words it lacks.

    >>> data = prepare_data(preset("default", data=["a.csv", "b.jsonl"]), Path("runs/x"))  # doctest: +SKIP
    >>> len(data.train_x), data.train_x.nbytes  # doctest: +SKIP
    (800000, 43000000)
    """
    loaded = load_splits(
        config.data,
        config.text_options,
        config.effective_split_seed,
        config.max_examples,
        split=config.split,
        keep_text=False,
    )
    splits = loaded.splits
    if loaded.skipped:
        log.info(f"skipped {loaded.skipped} rows without a bullish/bearish label")
    where = loaded.path if len(loaded.files) == 1 else f"{len(loaded.files)} files"
    log.info(
        f"data {where} ({config.split} split): train {len(splits.train)}, validation {len(splits.val)}, "
        f"test {len(splits.test)}"
    )
    if recorded_sha256 is None:
        ids, _ = splits.train.encoded.flat(dtype=splits.train.encoded.ids.dtype)
        vocab = Vocabulary.from_ids(loaded.words, ids, config.min_count)
        del ids
        if base_vocab is not None:
            vocab = base_vocab.extended(vocab)
    else:
        if recorded_sha256 != loaded.sha256:
            raise StocksentError(f"{where} is not the data this run started with (sha256 differs)")
        vocab = Vocabulary.from_dict(read_json(out / VOCAB))
    # Every split shares one ids array: mapping it once maps them all.
    splits.train.encoded.mapped(vocab.mapping(loaded.words))
    splits.words = vocab.words
    for part in (splits.train, splits.val, splits.test):
        part.tokens = LazyTokens(vocab.words, part.encoded)
    return TrainingData(loaded, vocab, splits.train.encoded, splits.val.encoded, splits.test.encoded)
