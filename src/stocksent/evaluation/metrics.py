"""Classification metrics with bullish as the positive class (scikit-learn does the arithmetic)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score


def classification_metrics(labels: np.ndarray, p_bullish: np.ndarray, threshold: float = 0.5) -> dict:
    labels = np.asarray(labels).astype(int)
    p_bullish = np.asarray(p_bullish, dtype=np.float64)
    predicted = (p_bullish >= threshold).astype(int)
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
