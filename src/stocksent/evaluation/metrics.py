"""Classification metrics with bullish as the positive class (scikit-learn does the arithmetic)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from stocksent.labels import is_bullish


def classification_metrics(labels: np.ndarray, p_bullish: np.ndarray, threshold: float = 0.5) -> dict:
    labels = np.asarray(labels).astype(int)
    p_bullish = np.asarray(p_bullish, dtype=np.float64)
    predicted = is_bullish(p_bullish, threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="binary", pos_label=1, zero_division=0
    )
    both_classes = len(np.unique(labels)) == 2
    majority = max(labels.mean(), 1 - labels.mean()) if len(labels) else 0.0
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": float(roc_auc_score(labels, p_bullish)) if both_classes else None,
        "confusion": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "majority_accuracy": float(majority),
        "threshold": float(threshold),
    }


def reliability_bins(labels: np.ndarray, p_bullish: np.ndarray, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Per equal-width bin of P(bullish): count, mean predicted P, observed bullish fraction.

    Empty bins have count 0 and NaN means (plots skip them).
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(p_bullish, dtype=np.float64)
    index = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=n_bins) / count
        observed = np.bincount(index, weights=y, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {"edges": edges, "count": count, "mean_p": mean_p, "observed": observed}


def expected_calibration_error(labels: np.ndarray, p_bullish: np.ndarray, n_bins: int = 10) -> float:
    """ECE of P(bullish): sum over equal-width bins of (bin share) x |mean P - bullish fraction|."""
    bins = reliability_bins(labels, p_bullish, n_bins)
    used = bins["count"] > 0
    if not used.any():
        return 0.0
    gaps = np.abs(bins["mean_p"][used] - bins["observed"][used])
    return float(np.sum(bins["count"][used] * gaps) / bins["count"].sum())
