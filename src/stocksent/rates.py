"""What a model's own validation split says about its errors: the summary the index's prior-shift corrections need.

Counting a classifier's labels is biased wherever the share of bullish messages differs from the
training data's (Forman 2008). The corrections (`stocksent.signals.quantify`) undo that bias with
the model's rates measured on data it did not train on: its validation split, after the blend,
calibration and threshold, so the rates describe the very probabilities it serves. `train` writes
them to `rates.json` in the model directory; a model without that file (trained by an older
version) gets no corrected shares.

The file is a sufficient summary, not the messages: per true class, the number of validation
messages, how many the model calls bullish at its threshold, and the sum and sum of squares of the
calibrated P(bullish). From these follow the true- and false-positive rates (ACC), the mean
probability per class (PACC), the prior the probabilities are calibrated to (EM), and the variance
of each (the intervals' share of the rates' uncertainty).

>>> rates = ValidationRates.measure(labels=[1, 1, 0, 0], p_bullish=[0.9, 0.4, 0.2, 0.6], threshold=0.5)
>>> rates.tpr, rates.fpr
(0.5, 0.5)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stocksent.errors import StocksentError
from stocksent.labels import is_bullish

__all__ = ["RATES", "FORMAT", "ValidationRates", "read_rates"]

RATES = "rates.json"
FORMAT = 1
_INTS = ("n_pos", "n_neg", "tp", "fp")
_FLOATS = ("threshold", "sum_p_pos", "sum_p2_pos", "sum_p_neg", "sum_p2_neg")


@dataclass(frozen=True)
class ValidationRates:
    """Per-class counts and probability sums of a model's validation split (see the module doc)."""

    threshold: float  # the model's decision threshold, at which tp and fp were counted
    n_pos: int  # validation messages tagged bullish
    n_neg: int  # ... tagged bearish
    tp: int  # bullish-tagged messages the model calls bullish (p >= threshold)
    fp: int  # bearish-tagged messages the model calls bullish
    sum_p_pos: float  # sum of calibrated P(bullish) over the bullish-tagged messages
    sum_p2_pos: float  # ... of its square
    sum_p_neg: float
    sum_p2_neg: float

    @classmethod
    def measure(cls, labels, p_bullish, threshold: float) -> ValidationRates:
        """The summary of validation labels (1 bullish, 0 bearish) and calibrated probabilities."""
        y = np.asarray(labels, dtype=np.float64) >= 0.5
        p = np.asarray(p_bullish, dtype=np.float64)
        if len(y) != len(p) or not y.any() or y.all():
            raise ValueError("rates need as many labels as probabilities, and both classes among them")
        called = is_bullish(p, threshold)
        pos, neg = p[y], p[~y]
        return cls(
            threshold=float(threshold),
            n_pos=int(y.sum()),
            n_neg=int((~y).sum()),
            tp=int(called[y].sum()),
            fp=int(called[~y].sum()),
            sum_p_pos=float(pos.sum()),
            sum_p2_pos=float((pos * pos).sum()),
            sum_p_neg=float(neg.sum()),
            sum_p2_neg=float((neg * neg).sum()),
        )

    # ------------------------------------------------------------------ derived rates

    @property
    def n(self) -> int:
        return self.n_pos + self.n_neg

    @property
    def tpr(self) -> float:
        """P(called bullish | bullish), at the threshold."""
        return self.tp / self.n_pos

    @property
    def fpr(self) -> float:
        """P(called bullish | bearish), at the threshold."""
        return self.fp / self.n_neg

    @property
    def mean_p_pos(self) -> float:
        """E[p | bullish]: PACC's 'true-positive rate'."""
        return self.sum_p_pos / self.n_pos

    @property
    def mean_p_neg(self) -> float:
        """E[p | bearish]: PACC's 'false-positive rate'."""
        return self.sum_p_neg / self.n_neg

    @property
    def var_p_pos(self) -> float:
        return _variance(self.sum_p_pos, self.sum_p2_pos, self.n_pos)

    @property
    def var_p_neg(self) -> float:
        return _variance(self.sum_p_neg, self.sum_p2_neg, self.n_neg)

    @property
    def prior(self) -> float:
        """The share of bullish tags on validation."""
        return self.n_pos / self.n

    @property
    def calibrated_prior(self) -> float:
        """The mean calibrated P(bullish) on validation: the prior the probabilities themselves imply.

        EM starts from it and reweighs against it: at this prior the model's probabilities need no
        change, so EM leaves the validation split's own share where it is (Alexandari et al. 2020).
        """
        return (self.sum_p_pos + self.sum_p_neg) / self.n

    @property
    def var_p(self) -> float:
        """Variance of p over all validation messages."""
        return _variance(self.sum_p_pos + self.sum_p_neg, self.sum_p2_pos + self.sum_p2_neg, self.n)

    # ------------------------------------------------------------------ the file

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "measured_on": "validation split", **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, where: str = RATES) -> ValidationRates:
        """The summary in `data` (rates.json's content), every field checked; one line naming the field if not."""
        if not isinstance(data, dict):
            raise StocksentError(f"{where} is invalid: not a JSON object")
        if data.get("format") != FORMAT:
            raise StocksentError(
                f"{where} has format {data.get('format')!r}; this version reads format {FORMAT}: "
                "upgrade stocksent or train the model again"
            )
        values: dict[str, Any] = {}
        for name in _INTS:
            value = data.get(name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise StocksentError(f"{where} is invalid: {name} must be a whole number >= 0; got {value!r}")
            values[name] = value
        for name in _FLOATS:
            value = data.get(name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
                raise StocksentError(f"{where} is invalid: {name} must be a finite number; got {value!r}")
            values[name] = float(value)
        rates = cls(**values)
        problem = rates._inconsistency()
        if problem:
            raise StocksentError(f"{where} is invalid: {problem}")
        return rates

    def _inconsistency(self) -> str | None:
        if not 0.0 <= self.threshold <= 1.0:
            return "threshold must be from 0 to 1"
        if self.n_pos < 1 or self.n_neg < 1:
            return "it needs validation messages of both classes (n_pos and n_neg >= 1)"
        if self.tp > self.n_pos or self.fp > self.n_neg:
            return "tp and fp cannot exceed n_pos and n_neg"
        for label, s, s2, n in (
            ("pos", self.sum_p_pos, self.sum_p2_pos, self.n_pos),
            ("neg", self.sum_p_neg, self.sum_p2_neg, self.n_neg),
        ):
            slack = 1e-9 * n + 1e-9
            # p in [0, 1]: 0 <= sum p^2 <= sum p <= n, and sum p^2 >= (sum p)^2 / n (Cauchy-Schwarz)
            if not (-slack <= s2 <= s + slack and s <= n + slack and s2 >= s * s / n - slack):
                return f"sum_p_{label} and sum_p2_{label} are not those of probabilities of {n} messages"
        return None


def _variance(total: float, total_sq: float, n: int) -> float:
    """Sample variance (n - 1) from a sum and a sum of squares; 0 for a single value."""
    if n < 2:
        return 0.0
    return max(0.0, (total_sq - total * total / n) / (n - 1))


def read_rates(directory: str | os.PathLike, threshold: float | None = None) -> ValidationRates | None:
    """The rates of the model in `directory`, or None where it has no rates.json (an older model).

    `threshold` (the model's, from config.json) must be the one the rates were counted at: a
    rates.json from other weights is refused rather than used.
    """
    from stocksent.artifacts import read_json

    path = Path(directory) / RATES
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StocksentError(f"cannot read {path}: {err.strerror or err}") from None
    rates = ValidationRates.from_dict(read_json(path, data), str(path))
    if threshold is not None and abs(rates.threshold - threshold) > 1e-9:
        raise StocksentError(
            f"{path} was measured at threshold {rates.threshold:.6g} but the model's is {threshold:.6g}: "
            "it belongs to other weights; train again or delete it"
        )
    return rates
