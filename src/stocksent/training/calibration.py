"""Temperature scaling, a validation-chosen decision threshold, and expected calibration error.

Everything here is fitted on the validation split only, so the test split stays an honest check.
Temperature divides the logit (p = sigmoid(z / T)): it changes how confident the model is, never
the order of its scores, so ROC AUC is unchanged and the threshold is chosen after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from stocksent.evaluation.metrics import expected_calibration_error
from stocksent.labels import is_bullish


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """P(bullish) = sigmoid(logit / T), computed without overflow."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    return np.exp(-np.logaddexp(0.0, -z))


def binary_nll(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean negative log-likelihood (binary cross-entropy) of labels under sigmoid(logits)."""
    y = np.asarray(labels, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The T minimising validation NLL of sigmoid(logit / T).

    NLL is convex in 1/T (a one-weight logistic regression without bias), so a bounded scalar
    search finds the global minimum; bounds keep T finite when the logits carry no signal.
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(z) == 0 or len(z) != len(y):
        raise ValueError("fit_temperature needs as many labels as logits, at least one")
    low, high = bounds
    result = minimize_scalar(
        lambda inv_t: binary_nll(y, z * inv_t), bounds=(1 / high, 1 / low), method="bounded", options={"xatol": 1e-6}
    )
    return float(1.0 / result.x)


def choose_threshold(labels: np.ndarray, p_bullish: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy): the cut on P(bullish) maximising accuracy, label = p >= threshold.

    Candidates are midpoints between consecutive distinct scores (plus both ends), so the cut
    never sits on a validation score; among equally accurate cuts the one nearest 0.5 wins,
    which keeps the usual threshold unless the data clearly prefer another.
    """
    y = np.asarray(labels, dtype=np.float64) >= 0.5
    p = np.asarray(p_bullish, dtype=np.float64)
    if len(p) == 0 or len(p) != len(y):
        raise ValueError("choose_threshold needs as many labels as probabilities, at least one")
    order = np.argsort(p, kind="stable")
    p, y = p[order], y[order]
    distinct = np.flatnonzero(np.diff(p) > 0)  # last index of each run of equal scores but the final
    cuts = np.concatenate([[p[0] - 1e-6], (p[distinct] + p[distinct + 1]) / 2, [p[-1] + 1e-6]])
    below = np.concatenate([[0], distinct + 1, [len(p)]])  # how many scores fall below each cut
    negatives_below = np.concatenate([[0], np.cumsum(~y)])[below]
    positives_at_or_above = y.sum() - np.concatenate([[0], np.cumsum(y)])[below]
    accuracy = (negatives_below + positives_at_or_above) / len(p)
    best = np.flatnonzero(accuracy >= accuracy.max() - 1e-12)
    pick = best[np.argmin(np.abs(cuts[best] - 0.5))]
    return float(np.clip(cuts[pick], 0.0, 1.0)), float(accuracy[pick])


@dataclass(frozen=True)
class Calibration:
    """What `calibrate` chose on validation, and the evidence for it."""

    temperature: float  # to store with the model: the fitted T if it lowers ECE, else 1.0
    threshold: float  # to store: applied to sigmoid(logit / temperature)
    fitted_temperature: float  # the NLL-minimising T, kept or not
    ece_before: float  # validation ECE at T = 1
    ece_after: float  # validation ECE at the fitted T
    nll_before: float
    nll_after: float
    accuracy_at_half: float  # validation accuracy at the stored T and threshold 0.5
    accuracy_at_threshold: float

    @property
    def temperature_helps(self) -> bool:
        return self.ece_after < self.ece_before

    def to_dict(self) -> dict:
        return {**asdict(self), "temperature_helps": self.temperature_helps}


def calibrate(val_logits: np.ndarray, val_labels: np.ndarray, n_bins: int = 10) -> Calibration:
    """Fit T on validation logits, then the accuracy-maximising threshold on the scaled probabilities.

    T is kept only if it lowers validation ECE (the issue's rule); otherwise `temperature` is 1.0.
    """
    z = np.asarray(val_logits, dtype=np.float64)
    y = np.asarray(val_labels, dtype=np.float64)
    fitted = fit_temperature(z, y)
    ece_before = expected_calibration_error(y, apply_temperature(z, 1.0), n_bins)
    ece_after = expected_calibration_error(y, apply_temperature(z, fitted), n_bins)
    temperature = fitted if ece_after < ece_before else 1.0
    p = apply_temperature(z, temperature)
    threshold, accuracy = choose_threshold(y, p)
    return Calibration(
        temperature=temperature,
        threshold=threshold,
        fitted_temperature=fitted,
        ece_before=ece_before,
        ece_after=ece_after,
        nll_before=binary_nll(y, z),
        nll_after=binary_nll(y, z / fitted),
        accuracy_at_half=float((is_bullish(p, 0.5) == (y >= 0.5)).mean()),
        accuracy_at_threshold=accuracy,
    )
