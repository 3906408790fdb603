"""Shares of bullish messages corrected for prior shift: ACC, PACC and EM, each with a 95% interval.

A classifier's share of bullish labels is biased wherever the true share differs from its training
data's: with true-positive rate T and false-positive rate F, the expected share called bullish is
q = F + (T - F) * pi, pulled towards the middle (Forman 2008). Three corrections, all vectorised
over the index's rows and fed by the model's own validation rates (`stocksent.rates`):

- `acc`  adjusted classify-and-count: pi = (q - F) / (T - F), q the share called bullish at the
         model's threshold (Forman 2008).
- `pacc` its probabilistic version: the same with q the mean P(bullish) and T, F the mean
         P(bullish) of the bullish- and bearish-tagged validation messages (Bella et al. 2010).
- `em`   the maximum-likelihood prior of Saerens, Latinne & Decaestecker (2002): each message's
         probability is re-weighed by pi / pi_s (bullish) and (1 - pi) / (1 - pi_s) (bearish) and pi
         re-estimated as their mean, until it no longer moves; pi_s is the prior the calibrated
         probabilities imply on validation (`ValidationRates.calibrated_prior`). The index keeps a
         20-bin histogram of P(bullish) per period (count and sum per bin), so EM runs on bin means:
         within 0.002 of EM on the messages themselves on StockEmotions (docs/index-levels.md).

Intervals (delta method): the variance of the period's own statistic (binomial for ACC's count,
the sample variance of p for PACC's mean, the observed Fisher information for EM) plus the variance
the rates bring (binomial T and F for ACC; the class means of p for PACC; pi_s for EM), each times
the squared derivative of the estimate. The estimate is clipped to [0, 1] (`clipped` says where:
for EM, where the likelihood's maximum is at 0 or 1) and the interval is centred on the clipped
estimate, then clipped too, so it never collapses to a point at a boundary.

>>> est = acc(np.array([30]), np.array([50]), rates)     # doctest: +SKIP
>>> est.share, est.lo, est.hi, est.clipped               # doctest: +SKIP
(array([0.61]), array([0.38]), array([0.84]), array([False]))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from stocksent.rates import ValidationRates
from stocksent.signals.stats import Z95

__all__ = ["Estimate", "acc", "pacc", "em", "em_prior", "measure_rates", "P_BINS", "bin_of", "ESTIMATORS"]

P_BINS = 20  # histogram bins of P(bullish) per period, equal width on [0, 1]
ESTIMATORS = ("acc", "pacc", "em")
_EDGE = 1e-9  # probabilities are kept this far from 0 and 1, where a likelihood ratio is infinite


class Estimate(NamedTuple):
    """Per row: the corrected share, its 95% interval, and whether the estimate was clipped to [0, 1]."""

    share: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    clipped: np.ndarray


def bin_of(p: np.ndarray) -> np.ndarray:
    """The histogram bin (0 .. P_BINS - 1) of each probability."""
    return np.clip((np.asarray(p, dtype=np.float64) * P_BINS).astype(np.int64), 0, P_BINS - 1)


def _interval(raw: np.ndarray, variance: np.ndarray, z: float, empty: np.ndarray) -> Estimate:
    share = np.clip(raw, 0.0, 1.0)
    clipped = (raw < 0.0) | (raw > 1.0)
    half = z * np.sqrt(np.maximum(variance, 0.0))
    lo, hi = np.clip(share - half, 0.0, 1.0), np.clip(share + half, 0.0, 1.0)
    for values in (share, lo, hi):
        values[empty] = np.nan
    clipped = clipped & ~empty
    return Estimate(share, lo, hi, clipped)


def _adjusted(q, var_q, t, f, var_t, var_f, n, z) -> Estimate:
    """pi = (q - f) / (t - f) and its delta-method variance (q independent of the validation rates)."""
    empty = n <= 0
    d = t - f
    if d <= 1e-9:  # the model does not separate the classes: no correction is possible
        nan = np.full(len(n), np.nan)
        return Estimate(nan, nan.copy(), nan.copy(), np.zeros(len(n), dtype=bool))
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = (q - f) / d
        pi = np.clip(raw, 0.0, 1.0)
        variance = (var_q + pi * pi * var_t + (1.0 - pi) ** 2 * var_f) / (d * d)
    return _interval(raw, variance, z, empty)


def acc(n_over, n, rates: ValidationRates, z: float = Z95) -> Estimate:
    """Adjusted classify-and-count from `n_over` (messages with p >= the model's threshold) of `n`.

    The count's variance uses the Agresti-Coull share (k + z^2/2) / (n + z^2), which stays above
    zero at 0/n and n/n, where periods of a few messages often are.
    """
    k = np.asarray(n_over, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = k / n
        tilde = (k + z * z / 2) / (n + z * z)
        var_q = tilde * (1.0 - tilde) / (n + z * z)
    t, f = rates.tpr, rates.fpr
    return _adjusted(q, var_q, t, f, t * (1 - t) / rates.n_pos, f * (1 - f) / rates.n_neg, n, z)


def pacc(sum_p, sum_p2, n, rates: ValidationRates, z: float = Z95) -> Estimate:
    """Probabilistic ACC from the period's sum of p and of p^2 over `n` messages."""
    s = np.asarray(sum_p, dtype=np.float64)
    s2 = np.asarray(sum_p2, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = s / n
        sample = np.maximum((s2 - s * s / n) / (n - 1), 0.0)
        spread = np.where(n >= 2, sample, q * (1.0 - q))  # one message: the largest variance its mean allows
        var_q = spread / n
    return _adjusted(
        q,
        var_q,
        rates.mean_p_pos,
        rates.mean_p_neg,
        rates.var_p_pos / rates.n_pos,
        rates.var_p_neg / rates.n_neg,
        n,
        z,
    )


def em_prior(
    values, weights, source_prior: float, tol: float = 1e-10, max_iter: int = 10_000
) -> tuple[np.ndarray, np.ndarray]:
    """Saerens-Latinne-Decaestecker EM per row: (prior, iterations), vectorised over rows.

    `values`: P(bullish) under the source prior, shape (rows, k) or (k,) for one row (messages, or
    bin means with `weights` their counts). Where the likelihood's maximum is at 0 or 1 (every
    message points one way strongly enough) the answer is that boundary, found from the sign of the
    likelihood's slope there rather than by EM's slow crawl towards it; elsewhere EM runs until the
    prior moves less than `tol`. Iterations is 0 at a boundary, `max_iter` where EM had not settled.

    >>> em_prior(np.array([0.9, 0.8, 0.3]), np.ones(3), source_prior=0.5)[0]  # doctest: +SKIP
    array([0.7596])
    """
    p = np.clip(np.atleast_2d(np.asarray(values, dtype=np.float64)), _EDGE, 1.0 - _EDGE)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    p, w = np.broadcast_arrays(p, w)
    total = w.sum(axis=1)
    ratio = (p / source_prior) / ((1.0 - p) / (1.0 - source_prior))  # likelihood ratio, bullish : bearish
    with np.errstate(invalid="ignore", divide="ignore"):
        slope_at_0 = (w * (ratio - 1.0)).sum(axis=1)  # d log L / d pi at pi = 0, up to a positive factor
        slope_at_1 = (w * (1.0 - 1.0 / ratio)).sum(axis=1)
    prior = np.full(len(total), np.nan)
    iterations = np.zeros(len(total), dtype=np.int64)
    prior[(total > 0) & (slope_at_0 <= 0)] = 0.0
    prior[(total > 0) & (slope_at_1 >= 0)] = 1.0
    active = np.flatnonzero((total > 0) & np.isnan(prior))
    pi = np.full(len(active), float(source_prior))
    for step in range(1, max_iter + 1):
        if not len(active):
            break
        odds = pi / (1.0 - pi)
        posterior = odds[:, None] * ratio[active] / (odds[:, None] * ratio[active] + 1.0)
        new = (w[active] * posterior).sum(axis=1) / total[active]
        done = np.abs(new - pi) < tol
        prior[active[done]], iterations[active[done]] = new[done], step
        active, pi = active[~done], new[~done]
    prior[active], iterations[active] = pi, max_iter
    return prior, iterations


def em(counts, sums, rates: ValidationRates, z: float = Z95) -> Estimate:
    """EM from per-row histograms of P(bullish): `counts` and `sums` of p per bin, shape (rows, P_BINS)."""
    h = np.asarray(counts, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.clip(np.where(h > 0, np.asarray(sums, dtype=np.float64) / h, 0.5), _EDGE, 1.0 - _EDGE)
    ps = rates.calibrated_prior
    n = h.sum(axis=1)
    prior, _ = em_prior(c, h, ps)
    a, b = c / ps, (1.0 - c) / (1.0 - ps)  # the message's likelihood under each class, up to a common factor
    pi = np.nan_to_num(prior)[:, None]
    m = pi * a + (1.0 - pi) * b
    d = a - b
    with np.errstate(invalid="ignore", divide="ignore"):
        information = (h * d * d / (m * m)).sum(axis=1)  # observed Fisher information of pi
        dd = -a / ps - b / (1.0 - ps)
        dm = -pi * a / ps + (1.0 - pi) * b / (1.0 - ps)
        score_by_ps = (h * (dd * m - d * dm) / (m * m)).sum(axis=1)
        by_ps = score_by_ps / information  # d pi / d pi_s, by the implicit function theorem
        variance = 1.0 / information + by_ps * by_ps * rates.var_p / rates.n
    estimate = _interval(prior, variance, z, n <= 0)
    boundary = (prior <= 0.0) | (prior >= 1.0)
    return estimate._replace(clipped=boundary & (n > 0))


def measure_rates(model: Any, data: Any = None) -> ValidationRates:
    """The rates of a trained model on its own validation split, rebuilt from config.json's data record.

    What `train` saves as rates.json, measured again: for a model trained before rates.json existed
    (save them with `json.dump(measure_rates(m).to_dict(), ...)` as DIR/rates.json) or to check one.
    `model`: a loaded `SentimentModel` or its directory; `data` points at the training files where
    they moved (as `stocksent evaluate --data`).

    >>> measure_rates("runs/demo").tpr  # doctest: +SKIP
    0.8195
    """
    from stocksent.sentiment import SentimentModel
    from stocksent.splits import recorded_splits

    if not isinstance(model, SentimentModel):
        model = SentimentModel.load(model, precision="float32")
    validation = recorded_splits(model.config.get("data", {}), model.text_options, data).val
    return ValidationRates.measure(validation.labels, model.predict_proba(list(validation.messages)), model.threshold)
