"""Temperature scaling, threshold choice and ECE: checked against brute force and known answers."""

from __future__ import annotations

import numpy as np
import pytest

from stocksent.evaluation.metrics import expected_calibration_error, reliability_bins
from stocksent.training.calibration import (
    apply_temperature,
    binary_nll,
    calibrate,
    choose_threshold,
    fit_temperature,
)


def overconfident(n: int = 4000, true_t: float = 3.0, seed: int = 0):
    """Labels drawn from sigmoid(z / true_t) for logits z: a model over-confident by a factor true_t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, n)
    y = (rng.random(n) < apply_temperature(z, true_t)).astype(np.float32)
    return z, y


def test_fit_temperature_recovers_the_true_temperature():
    z, y = overconfident(20000, true_t=3.0)
    assert fit_temperature(z, y) == pytest.approx(3.0, rel=0.1)


def test_fit_temperature_is_the_nll_minimum():
    z, y = overconfident(3000, true_t=2.0, seed=1)
    t = fit_temperature(z, y)
    grid = np.linspace(0.5, 6, 400)
    brute = grid[np.argmin([binary_nll(y, z / g) for g in grid])]
    assert t == pytest.approx(brute, abs=0.03)
    assert binary_nll(y, z / t) <= min(binary_nll(y, z / g) for g in grid) + 1e-9


def test_fit_temperature_is_bounded_when_logits_carry_no_signal():
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=500), rng.integers(0, 2, 500)
    assert 0.05 <= fit_temperature(z, y) <= 20.0


def test_fit_temperature_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        fit_temperature(np.zeros(3), np.zeros(2))


def test_apply_temperature_is_the_sigmoid_of_scaled_logits_without_overflow():
    z = np.array([-1000.0, -30.0, -1.0, 0.0, 2.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = apply_temperature(z, 1.0)
    np.testing.assert_allclose(p[1:], 1.0 / (1.0 + np.exp(-z[1:])), rtol=1e-12, atol=0)
    assert p[0] == 0.0 and p[-1] == 1.0 and p[3] == 0.5
    np.testing.assert_allclose(apply_temperature(z, 2.0), apply_temperature(z / 2, 1.0), rtol=1e-12)


def test_calibration_takes_logits_as_the_engines_give_them():
    """No round trip through probabilities: logits beyond float32's saturated sigmoid (|z| > 17)
    keep their order and size, and float32 input gives the float64 answer."""
    z, y = overconfident(4000, true_t=3.0, seed=5)
    z = z * 5  # many beyond +-17, where sigmoid(z) in float32 is exactly 0 or 1
    assert (np.abs(z) > 17).mean() > 0.3
    result = calibrate(z.astype(np.float32), y)
    assert result.fitted_temperature == pytest.approx(calibrate(z, y).fitted_temperature, rel=1e-5)
    assert result.fitted_temperature == pytest.approx(15.0, rel=0.15)


def brute_threshold_accuracy(y, p, t):
    return float(((p >= t) == (y >= 0.5)).mean())


@pytest.mark.parametrize("seed", range(5))
def test_choose_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 2, n).astype(float)
    p = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), 2)  # rounded: many tied scores
    threshold, accuracy = choose_threshold(y, p)
    candidates = np.unique(np.concatenate([p, [0.0, 1.01]]))
    best = max(brute_threshold_accuracy(y, p, t) for t in candidates)
    assert accuracy == pytest.approx(best)
    assert brute_threshold_accuracy(y, p, threshold) == pytest.approx(accuracy)


def test_choose_threshold_prefers_the_cut_nearest_one_half():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9])  # every cut in (0.2, 0.8) is perfect
    threshold, accuracy = choose_threshold(y, p)
    assert accuracy == 1.0 and threshold == pytest.approx(0.5)


def test_choose_threshold_moves_off_one_half_when_scores_are_shifted():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.55, 0.6, 0.62, 0.7, 0.8, 0.9])  # a model biased towards bullish
    threshold, accuracy = choose_threshold(y, p)
    assert accuracy == 1.0 and 0.62 < threshold < 0.7


def test_ece_known_values():
    assert expected_calibration_error(np.array([1, 1, 0, 0]), np.array([1.0, 1.0, 0.0, 0.0])) == 0.0
    # all in one bin: mean p 0.95, observed 0.5 -> ECE 0.45
    assert expected_calibration_error(np.array([1, 0]), np.array([0.95, 0.95])) == pytest.approx(0.45)
    # two bins of equal weight, gaps 0.1 and 0.3
    assert expected_calibration_error(np.array([0, 0, 1, 1]), np.array([0.1, 0.1, 0.7, 0.7])) == pytest.approx(
        0.5 * 0.1 + 0.5 * 0.3
    )


def test_reliability_bins_counts_every_message_once():
    p = np.array([0.0, 0.05, 0.1, 0.5, 0.99, 1.0])
    bins = reliability_bins(np.ones(6), p, n_bins=10)
    assert bins["count"].sum() == 6 and bins["count"][0] == 2 and bins["count"][9] == 2
    assert np.isnan(bins["mean_p"][3])  # empty bin


def test_calibrate_fixes_an_overconfident_model():
    z, y = overconfident(8000, true_t=3.0, seed=4)
    result = calibrate(z, y)
    assert result.temperature_helps and result.temperature == pytest.approx(3.0, rel=0.15)
    assert result.ece_after < result.ece_before / 3
    assert result.nll_after < result.nll_before
    assert result.accuracy_at_threshold >= result.accuracy_at_half
    assert set(result.to_dict()) >= {"temperature", "threshold", "ece_before", "ece_after"}


def test_calibrate_keeps_temperature_one_when_already_calibrated():
    z, y = overconfident(8000, true_t=1.0, seed=5)
    result = calibrate(z, y)
    assert result.fitted_temperature == pytest.approx(1.0, rel=0.1)
    if not result.temperature_helps:
        assert result.temperature == 1.0
