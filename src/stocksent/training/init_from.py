"""`train --init-from DIR`: continue from a trained model instead of random weights.

The new run takes the old model's text options and network sizes (its weights only fit those), and
its vocabulary extended with the new training split's frequent words (`Vocabulary.extended`): old
words keep their ids, so every old embedding row and every old word and word-pair weight of the
n-gram term is copied as it is. A new word starts as the old model saw it, as `<unk>` (or
`<TICKER>` for a cashtag): its embedding row and its n-gram word weight are copies of that row's.
So before the first step the new network scores every message exactly as the old one did, except
for word pairs that contain a new word, whose hashed bucket differs (their weight is taken as it
is from the bucket the new pair hashes to).

>>> base = read_base("runs/spy")                                      # doctest: +SKIP
>>> network = initial_network(base, extended_vocab, sparse_embedding=True)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from stocksent.config import ModelConfig, TrainConfig
from stocksent.errors import StocksentError
from stocksent.model import LSTMClassifier
from stocksent.text import TextOptions
from stocksent.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class BaseModel:
    """A trained model a run starts from."""

    directory: Path
    network: LSTMClassifier
    vocab: Vocabulary
    text_options: TextOptions


def read_base(directory: str | Path) -> BaseModel:
    """The model in `directory`, checked as `SentimentModel.load` checks it."""
    from stocksent.artifacts import load_model_dir

    directory = Path(directory)
    network, config, vocab = load_model_dir(directory)
    return BaseModel(directory.resolve(), network, vocab, TextOptions.from_dict(config.get("text", {})))


# The options a run started from a model takes from it.
FROM_BASE = ("keep_emoji", "keep_cashtags", "max_tokens", "embed_size", "lstm_sizes", "keep_prob", "ngram_buckets")


def taken_from_base(config: TrainConfig, recorded: dict) -> TrainConfig:
    """`config` with the options a run recorded for `FROM_BASE` (resuming: the flags did not set them)."""
    values = {k: tuple(recorded[k]) if k == "lstm_sizes" else recorded[k] for k in FROM_BASE if k in recorded}
    return dataclasses.replace(config, **values)


def configured_like(config: TrainConfig, base: BaseModel) -> TrainConfig:
    """`config` with the base model's text options and network sizes (the weights fit no others)."""
    sizes = base.network.config
    text = base.text_options
    values = dict(
        keep_emoji=text.keep_emoji,
        keep_cashtags=text.keep_cashtags,
        max_tokens=text.max_tokens,
        embed_size=sizes.embed_size,
        lstm_sizes=tuple(sizes.lstm_sizes),
        keep_prob=sizes.keep_prob,
        ngram_buckets=sizes.ngram_buckets,
    )
    changed = {k: v for k, v in values.items() if getattr(config, k) != v}
    if changed:
        shown = ", ".join(f"{k}={v}" for k, v in changed.items())
        log.info(f"--init-from {base.directory}: taking the model's own {shown}")
    return dataclasses.replace(config, **values)


def initial_network(base: BaseModel, vocab: Vocabulary, sparse_embedding: bool) -> LSTMClassifier:
    """A network for `vocab` (the base vocabulary extended) holding the base model's weights.

    Rows of new words: copies of `<unk>`'s (of `<TICKER>`'s for cashtags), in the embedding and in
    the n-gram term's word weights; the word-pair buckets follow the (longer) word rows unchanged.
    """
    old, old_vocab = base.network, base.vocab
    if vocab.words[: len(old_vocab)] != old_vocab.words:
        raise StocksentError(f"the vocabulary of {base.directory} is not a prefix of the new one (ids would move)")
    n_old, n_new = len(old_vocab), len(vocab)
    sizes = old.config
    network = LSTMClassifier.from_config(
        ModelConfig(n_new, sizes.embed_size, tuple(sizes.lstm_sizes), sizes.keep_prob, sizes.ngram_buckets),
        sparse_embedding=sparse_embedding,
    )
    state = {k: v.clone() for k, v in old.state_dict().items()}
    source = torch.tensor([old_vocab.unknown_id(w) for w in vocab.words[n_old:]], dtype=torch.long)
    embedding = state["embedding.weight"]
    state["embedding.weight"] = torch.cat([embedding, embedding[source]])
    if sizes.ngram_buckets:
        ngrams = state["ngrams.weight"]
        state["ngrams.weight"] = torch.cat([ngrams[:n_old], ngrams[source], ngrams[n_old:]])
    network.load_state_dict(state)
    log.info(f"--init-from {base.directory}: {n_old} words kept, {n_new - n_old} new words from the new data")
    return network
