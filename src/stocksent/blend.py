"""Blending a separately fitted logistic regression into the model's own n-gram term.

The LSTM and its n-gram term are trained together by SGD; a logistic regression over the same
n-gram features, fitted to convergence with L2 regularisation, errs on different messages. Their
weighted sum beats either on validation (every seed tried; see the README). Both are linear in the
same features, so the blend folds into the existing weights: the model keeps its shape, and
prediction, the fast path and ONNX export cost nothing extra.

The regularisation C and the blend's two weights and offset are fitted on the validation split.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from .baseline import fit_logreg
from .model import LSTMClassifier, ngram_features

GRID_C: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)  # liblinear's C for these features: 2 to 8 s each


@dataclass(frozen=True)
class Blend:
    """What was fitted, and the validation evidence for it."""

    c: float  # the logistic regression's C, chosen by validation accuracy
    network_weight: float  # logit = network_weight * model logit + linear_weight * LR logit + offset
    linear_weight: float
    offset: float
    val_accuracy_model: float  # at threshold 0.5, before the blend
    val_accuracy_linear: float
    val_accuracy_blend: float

    def to_dict(self) -> dict:
        return asdict(self)


def ngram_matrix(sequences: Sequence[np.ndarray], vocab_size: int, buckets: int):
    """(messages x features) sparse matrix whose product with the n-gram weights is `ngram_logit`."""
    from scipy.sparse import csr_matrix

    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    ids = np.concatenate(sequences).astype(np.int64) if len(sequences) else np.empty(0, np.int64)
    rows, features = ngram_features(ids, lengths, vocab_size, buckets)
    scale = 1.0 / np.sqrt(np.maximum(2 * lengths - 1, 1))
    return csr_matrix((scale[rows], (rows, features)), shape=(len(sequences), vocab_size + buckets))


def fit_blend(model_logits: np.ndarray, linear_logits: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(network weight, linear weight, offset) minimising validation log-loss (unregularised)."""
    from sklearn.linear_model import LogisticRegression

    both = np.stack([model_logits, linear_logits], axis=1)
    mix = LogisticRegression(C=1e6, max_iter=1000).fit(both, labels)
    return float(mix.coef_[0, 0]), float(mix.coef_[0, 1]), float(mix.intercept_[0])


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(((logits >= 0) == (labels >= 0.5)).mean())


@torch.no_grad()
def blend_linear_(model: LSTMClassifier, model_val_logits: np.ndarray, train_x: Sequence[np.ndarray],
                  train_y: np.ndarray, val_x: Sequence[np.ndarray], val_y: np.ndarray, seed: int,
                  grid_c: Sequence[float] = GRID_C) -> Blend:
    """Fit the logistic regression and the blend on validation; fold both into `model` in place."""
    if not model.ngram_buckets:
        raise ValueError("blending needs the model's n-gram term (ngram_buckets > 0)")
    vocab_size, buckets = model.embedding.num_embeddings, model.ngram_buckets
    x_train, x_val = (ngram_matrix(x, vocab_size, buckets) for x in (train_x, val_x))
    train_labels, val_labels = train_y.astype(int), val_y.astype(int)
    best = None
    for c in grid_c:
        linear = fit_logreg(x_train, train_labels, c, seed)
        val_accuracy = float((linear.predict(x_val) == val_labels).mean())
        print(f"blend: logistic regression C={c:g} val accuracy {val_accuracy:.4f}", file=sys.stderr, flush=True)
        if best is None or val_accuracy > best[0]:
            best = (val_accuracy, c, linear)
    linear_accuracy, c, linear = best
    linear_val_logits = linear.decision_function(x_val)
    network_weight, linear_weight, offset = fit_blend(model_val_logits, linear_val_logits, val_labels)

    weights = model.ngrams.weight  # (features, 1); row 0 is padding and stays zero
    coef = torch.as_tensor(linear.coef_[0], dtype=weights.dtype, device=weights.device)
    coef[0] = 0.0
    model.scale_logit_(network_weight)
    weights[:, 0].add_(coef, alpha=linear_weight)
    model.output.bias.add_(linear_weight * float(linear.intercept_[0]) + offset)
    blended = network_weight * model_val_logits + linear_weight * linear_val_logits + offset
    return Blend(c=c, network_weight=network_weight, linear_weight=linear_weight, offset=offset,
                 val_accuracy_model=accuracy(model_val_logits, val_y), val_accuracy_linear=linear_accuracy,
                 val_accuracy_blend=accuracy(blended, val_y))
