"""The network: embedding -> stacked LSTM -> dropout -> one linear unit (a logit), plus an optional
linear term over the message's words and word pairs. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from stocksent.config import ModelConfig


class Dropout(nn.Dropout):
    """nn.Dropout with its mask drawn by torch.rand on the CPU: the same distribution, a third of the
    time (bernoulli_ takes 7 ms for a 256 x 14 x 128 batch, 6% of a training step; this takes 2 ms),
    and from a given generator, so concurrent training shards each draw their own reproducible masks."""

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.p >= 1:
            return super().forward(x)
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


NGRAM_HASH = 1_000_003  # multiplier of the word-pair hash; a prime larger than any vocabulary


def ngram_ids(ids: torch.Tensor, lengths: torch.Tensor, vocab_size: int, buckets: int) -> torch.Tensor:
    """(batch, 2 * time - 1) feature ids: each word's id, then each adjacent pair hashed into
    `buckets` ids after the vocabulary; 0 (a weight fixed at zero) past each message's end."""
    inside = torch.arange(ids.shape[1], device=ids.device) < lengths.to(ids.device)[:, None]
    words = ids.masked_fill(~inside, 0)
    pairs = vocab_size + (words[:, :-1] * NGRAM_HASH + words[:, 1:]) % buckets
    return torch.cat([words, pairs.masked_fill(~inside[:, 1:], 0)], 1)


def ngram_features(
    ids: np.ndarray, lengths: np.ndarray, vocab_size: int, buckets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n-gram term as a sparse (messages x features) matrix, for messages laid end to end
    (`ids`) with their `lengths`: (row, feature id, value) of every word and every adjacent pair of
    words, each valued 1/sqrt(the message's feature count). Its product with `ngrams.weight` is
    `LSTMClassifier.ngram_logit` (tests/test_model.py checks that they agree); the fast CPU engine
    sums it with np.bincount and the blend fits a logistic regression on it as a scipy matrix.

    >>> ngram_features(np.array([3, 4, 5]), np.array([2, 1]), vocab_size=10, buckets=7)[:2]
    (array([0, 0, 1, 0]), array([ 3,  4,  5, 12]))
    """
    ids, lengths = np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    same = owner[1:] == owner[:-1]  # adjacent words of one message form a pair
    pairs = vocab_size + (ids[:-1][same] * NGRAM_HASH + ids[1:][same]) % buckets
    rows = np.concatenate([owner, owner[:-1][same]])
    scale = 1.0 / np.sqrt(np.maximum(2 * lengths - 1, 1))  # an empty message counts 1, as in ngram_logit
    return rows, np.concatenate([ids, pairs]), scale[rows]


class LSTMClassifier(nn.Module):
    """Reads each message's top LSTM output at its last real word, so padding never matters.

    With `ngram_buckets`, one learned weight per word and per hashed word pair is added to the logit,
    scaled by 1/sqrt(number of features) (a linear bag-of-bigrams model trained jointly with the
    LSTM): it remembers the many exact phrases of this data that the LSTM averages away.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int = 300,
        lstm_sizes: Sequence[int] = (128, 64),
        keep_prob: float = 0.5,
        sparse_embedding: bool = False,
        ngram_buckets: int = 0,
    ):
        super().__init__()
        # Sparse gradients touch only the rows a batch uses: most of the optimizer's cost otherwise.
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0, sparse=sparse_embedding)
        sizes = [embed_size, *lstm_sizes]
        self.lstms = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(lstm_sizes)))
        # As the tutorial's DropoutWrapper: dropout on every LSTM layer's output.
        self.dropout = Dropout(1.0 - keep_prob)
        self.output = nn.Linear(sizes[-1], 1)
        self.ngram_buckets = ngram_buckets
        if ngram_buckets:
            self.ngrams = nn.Embedding(vocab_size + ngram_buckets, 1, padding_idx=0, sparse=sparse_embedding)
            nn.init.zeros_(self.ngrams.weight)

    @classmethod
    def from_config(cls, config: ModelConfig, sparse_embedding: bool = False) -> LSTMClassifier:
        return cls(
            config.vocab_size,
            config.embed_size,
            config.lstm_sizes,
            config.keep_prob,
            sparse_embedding=sparse_embedding,
            ngram_buckets=config.ngram_buckets,
        )

    @property
    def config(self) -> ModelConfig:
        """The sizes this network was built with (saved as config.json's "model")."""
        return ModelConfig(
            self.embedding.num_embeddings,
            self.embedding.embedding_dim,
            tuple(lstm.hidden_size for lstm in self.lstms),
            1.0 - self.dropout.p,
            self.ngram_buckets,
        )

    def ngram_logit(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features = ngram_ids(ids, lengths, self.embedding.num_embeddings, self.ngram_buckets)
        count = (2 * lengths - 1).clamp(min=1).to(ids.device, self.ngrams.weight.dtype)
        return self.ngrams(features).squeeze(-1).sum(1) / count.sqrt()

    @torch.no_grad()
    def scale_logit_(self, factor: float) -> None:
        """Multiply every logit by `factor` (temperature scaling folded into the weights)."""
        for weight in (self.output.weight, self.output.bias, *([self.ngrams.weight] if self.ngram_buckets else [])):
            weight.mul_(factor)

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """ids (batch, time) right-padded, lengths (batch,) -> logits (batch,); `generator` draws the
        dropout masks in training (default: torch's global one).

        Each call starts from a zero state: nothing is carried between batches.
        """
        x = self.embedding(ids)
        for i, lstm in enumerate(self.lstms):
            x, _ = lstm(x)
            if i < len(self.lstms) - 1:
                x = self.dropout(x, generator)
        last = (lengths - 1).clamp(min=0).to(x.device)
        final = x[torch.arange(x.shape[0], device=x.device), last]
        logit = self.output(self.dropout(final, generator)).squeeze(-1)
        return logit + self.ngram_logit(ids, lengths) if self.ngram_buckets else logit
