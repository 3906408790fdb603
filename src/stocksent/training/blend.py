"""Blending a separately fitted logistic regression into the model's own n-gram term.

The LSTM and its n-gram term are trained together by SGD; a logistic regression over the same
n-gram features, fitted to convergence with L2 regularisation, errs on different messages. Their
weighted sum beats either on validation (every seed tried; see docs/results.md). Both are linear in the
same features, so the blend folds into the existing weights: the model keeps its shape, and
prediction, the fast path and ONNX export cost nothing extra.

The regularisation C and the blend's two weights and offset are fitted on the validation split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from stocksent.inference.engine import flatten
from stocksent.model import LSTMClassifier, ngram_features

log = logging.getLogger(__name__)
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


def fit_logreg(x, y: np.ndarray, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    # dual liblinear: ~10x faster than lbfgs here because features (300k) outnumber messages (78k).
    return LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=1000, random_state=seed).fit(x, y)


def ngram_matrix(sequences: Sequence[np.ndarray], vocab_size: int, buckets: int):
    """(messages x features) sparse matrix whose product with the n-gram weights is `ngram_logit`
    (`model.ngram_features`, which the fast CPU engine sums too)."""
    from scipy.sparse import csr_matrix

    ids, lengths = flatten(sequences)
    rows, features, values = ngram_features(ids, lengths, vocab_size, buckets)
    return csr_matrix((values, (rows, features)), shape=(len(sequences), vocab_size + buckets))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(((logits >= 0) == (labels >= 0.5)).mean())


@dataclass
class LinearFit:
    """The logistic regression over the model's n-gram features, and its validation logits."""

    c: float
    coef: np.ndarray  # one weight per n-gram feature (vocabulary + buckets)
    intercept: float
    val_logits: np.ndarray
    val_accuracy: float


def fit_linear(
    train_x: Sequence[np.ndarray],
    train_y: np.ndarray,
    val_x: Sequence[np.ndarray],
    val_y: np.ndarray,
    vocab_size: int,
    buckets: int,
    seed: int,
    grid_c: Sequence[float] = GRID_C,
) -> LinearFit:
    """The logistic regression with the C of best validation accuracy; it does not depend on the network."""
    x_train, x_val = (ngram_matrix(x, vocab_size, buckets) for x in (train_x, val_x))
    train_labels, val_labels = train_y.astype(int), val_y.astype(int)
    best = None
    for c in grid_c:
        linear = fit_logreg(x_train, train_labels, c, seed)
        val_accuracy = float((linear.predict(x_val) == val_labels).mean())
        log.info(f"blend: logistic regression C={c:g} val accuracy {val_accuracy:.4f}")
        if best is None or val_accuracy > best[0]:
            best = (val_accuracy, c, linear)
    val_accuracy, c, linear = best
    coef = linear.coef_[0].copy()
    coef[0] = 0.0  # padding
    return LinearFit(
        c=c,
        coef=coef,
        intercept=float(linear.intercept_[0]),
        val_logits=linear.decision_function(x_val),
        val_accuracy=val_accuracy,
    )


def fit_blend(model_val_logits: np.ndarray, linear: LinearFit, val_y: np.ndarray) -> Blend:
    """The network's and the regression's weights and an offset minimising validation log-loss
    (unregularised: three numbers fitted on ~10,000 messages)."""
    from sklearn.linear_model import LogisticRegression

    both = np.stack([model_val_logits, linear.val_logits], axis=1)
    mix = LogisticRegression(C=1e6, max_iter=1000).fit(both, val_y.astype(int))
    (network_weight, linear_weight), offset = mix.coef_[0].tolist(), float(mix.intercept_[0])
    blended = network_weight * model_val_logits + linear_weight * linear.val_logits + offset
    return Blend(
        c=linear.c,
        network_weight=network_weight,
        linear_weight=linear_weight,
        offset=offset,
        val_accuracy_model=accuracy(model_val_logits, val_y),
        val_accuracy_linear=linear.val_accuracy,
        val_accuracy_blend=accuracy(blended, val_y),
    )


@torch.no_grad()
def fold_blend_(model: LSTMClassifier, linear: LinearFit, fitted: Blend) -> None:
    """Fold the blend into `model`'s output layer and n-gram weights, in place."""
    if not model.ngram_buckets:
        raise ValueError("blending needs the model's n-gram term (ngram_buckets > 0)")
    weights = model.ngrams.weight  # (features, 1); row 0 is padding and stays zero
    model.scale_logit_(fitted.network_weight)
    weights[:, 0].add_(
        torch.as_tensor(linear.coef, dtype=weights.dtype, device=weights.device), alpha=fitted.linear_weight
    )
    model.output.bias.add_(fitted.linear_weight * linear.intercept + fitted.offset)
