"""Prior-shift corrections (signals.quantify): a synthetic calibrated classifier under a known shift, QuaPy's
estimators on the same scores, interval coverage, and EM on the index's histograms against EM on the messages."""

from __future__ import annotations

import numpy as np
import pytest

from stocksent.rates import ValidationRates
from stocksent.signals.quantify import P_BINS, acc, bin_of, em, em_prior, pacc

SOURCE_PRIOR = 0.55
SEPARATION, SPREAD = 1.2, 1.3  # class-conditional scores N(+-1.2, 1.3): about 80% accuracy, like the model


def draw(rng, n: int, prior: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and calibrated P(bullish) under the source prior: the model's situation after temperature scaling."""
    y = rng.random(n) < prior
    score = np.where(y, SEPARATION, -SEPARATION) + rng.normal(0.0, SPREAD, n)
    odds = SOURCE_PRIOR / (1 - SOURCE_PRIOR) * np.exp(2 * SEPARATION * score / SPREAD**2)
    return y, odds / (1 + odds)


def histogram(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bins = bin_of(p)
    return np.bincount(bins, minlength=P_BINS)[None, :], np.bincount(bins, p, minlength=P_BINS)[None, :]


def estimates(p: np.ndarray, rates: ValidationRates):
    counts, sums = histogram(p)
    n = np.array([len(p)])
    return {
        "acc": acc(np.array([(p >= rates.threshold).sum()]), n, rates),
        "pacc": pacc(np.array([p.sum()]), np.array([(p * p).sum()]), n, rates),
        "em": em(counts, sums, rates),
    }


@pytest.fixture(scope="module")
def rates() -> ValidationRates:
    y, p = draw(np.random.default_rng(0), 20_000, SOURCE_PRIOR)
    return ValidationRates.measure(y, p, threshold=0.5)


@pytest.mark.parametrize("prior", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_every_estimator_recovers_a_known_prior_shift_that_counting_misses(rates, prior):
    y, p = draw(np.random.default_rng(int(prior * 100)), 20_000, prior)
    plain = (p >= 0.5).mean()
    for name, estimate in estimates(p, rates).items():
        share = float(estimate.share[0])
        assert abs(share - y.mean()) < 0.02, (name, share, y.mean())
        assert estimate.lo[0] <= share <= estimate.hi[0]
        assert abs(share - y.mean()) < abs(plain - y.mean()) or abs(prior - SOURCE_PRIOR) < 0.1, name
    if abs(prior - SOURCE_PRIOR) > 0.2:
        assert abs(plain - y.mean()) > 0.05  # the bias the corrections remove


def test_our_estimates_are_quapys_on_the_same_scores(rates):
    from quapy.method.aggregative import ACC, EMQ

    y, p = draw(np.random.default_rng(5), 3_000, 0.25)
    ours = estimates(p, rates)
    # QuaPy's adjustment with our rates (its confusion matrix layout: P(predicted i | true j)).
    confusion = np.array([[1 - rates.fpr, 1 - rates.tpr], [rates.fpr, rates.tpr]])
    called = (p >= 0.5).mean()
    theirs_acc = ACC.solve_adjustment(confusion, np.array([1 - called, called]), "inversion", "exact-raise")[1]
    means = np.array([[1 - rates.mean_p_neg, 1 - rates.mean_p_pos], [rates.mean_p_neg, rates.mean_p_pos]])
    theirs_pacc = ACC.solve_adjustment(means, np.array([1 - p.mean(), p.mean()]), "inversion", "exact-raise")[1]
    prior_s = rates.calibrated_prior
    theirs_em = EMQ.EM(np.array([1 - prior_s, prior_s]), np.c_[1 - p, p], epsilon=1e-12)[0][1]
    assert ours["acc"].share[0] == pytest.approx(theirs_acc, abs=1e-12)
    assert ours["pacc"].share[0] == pytest.approx(theirs_pacc, abs=1e-12)
    exact, _ = em_prior(p, np.ones(len(p)), prior_s)
    assert exact[0] == pytest.approx(theirs_em, abs=1e-9)
    assert ours["em"].share[0] == pytest.approx(theirs_em, abs=2e-3)  # on the 20-bin histogram


def test_em_converges_to_the_maximum_of_the_likelihood():
    rng = np.random.default_rng(9)
    p = rng.uniform(0.02, 0.98, size=(300, 12))
    prior, iterations = em_prior(p, np.ones_like(p), 0.5)
    assert (iterations < 10_000).all()
    inner = (prior > 0) & (prior < 1)
    assert inner.sum() > 200
    ratio = p / (1 - p)  # source prior 0.5
    slope = ((ratio - 1) / (prior[:, None] * ratio + 1 - prior[:, None])).sum(axis=1)  # d log L / d pi
    assert np.abs(slope[inner]).max() < 1e-6
    # At a boundary the slope points out of [0, 1]: the maximum there is the answer.
    assert (slope[prior == 0] <= 1e-9).all() and (slope[prior == 1] >= -1e-9).all()


def test_all_bearish_periods_reach_the_boundary_and_are_flagged(rates):
    p = np.full(8, 0.02)
    for name, estimate in estimates(p, rates).items():
        assert estimate.share[0] == 0.0 and bool(estimate.clipped[0]), name
        assert estimate.lo[0] == 0.0 and 0.0 < estimate.hi[0] < 1.0, name  # the interval is not a point


def test_empty_periods_have_no_estimate(rates):
    zero = np.zeros(1)
    assert np.isnan(acc(zero, zero, rates).share).all()
    assert np.isnan(pacc(zero, zero, zero, rates).share).all()
    assert np.isnan(em(np.zeros((1, P_BINS)), np.zeros((1, P_BINS)), rates).share).all()


@pytest.mark.parametrize("prior", [0.3, 0.7])
def test_intervals_cover_the_prior_of_small_periods(prior):
    """Periods of 40 messages with rates from 1,500 validation messages: both sources of error count."""
    rng = np.random.default_rng(int(prior * 10))
    covered = {"acc": 0, "pacc": 0, "em": 0}
    trials = 400
    for _ in range(trials):
        y, p = draw(rng, 1_500, SOURCE_PRIOR)
        rates = ValidationRates.measure(y, p, 0.5)
        _, target = draw(rng, 40, prior)
        for name, estimate in estimates(target, rates).items():
            covered[name] += bool(estimate.lo[0] <= prior <= estimate.hi[0])
    for name, hits in covered.items():
        assert 0.90 <= hits / trials <= 0.995, (name, hits / trials)
