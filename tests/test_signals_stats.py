"""Wilson interval, Antweiler–Frank bullishness and agreement, trailing z-scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stocksent.signals.stats import agreement, bullishness, trailing_zscore, wilson_interval


def test_wilson_matches_published_values():
    # Brown, Cai & DasGupta (2001) / textbook values: 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634], 7/10 -> [0.3968, 0.8922].
    lo, hi = wilson_interval(np.array([0, 5, 7]), np.array([10, 10, 10]))
    np.testing.assert_allclose(lo, [0.0, 0.2366, 0.3968], atol=1e-4)
    np.testing.assert_allclose(hi, [0.2775, 0.7634, 0.8922], atol=1e-4)


def test_wilson_contains_the_share_and_stays_in_0_1():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 500, 2000)
    k = rng.integers(0, n + 1)
    lo, hi = wilson_interval(k, n)
    share = k / n
    assert np.all(lo <= share) and np.all(share <= hi)
    assert np.all(lo >= 0) and np.all(hi <= 1)
    assert np.all(hi - lo > 0)


def test_wilson_of_an_empty_period_is_missing():
    lo, hi = wilson_interval(np.array([0]), np.array([0]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def test_bullishness_and_agreement_follow_antweiler_frank():
    np.testing.assert_allclose(bullishness([7, 0, 3], [3, 0, 3]), [np.log(8 / 4), 0.0, 0.0])
    np.testing.assert_allclose(agreement([10, 5, 3], [0, 5, 1]), [1.0, 0.0, 1 - np.sqrt(1 - 0.25)])
    assert np.isnan(agreement([0], [0])[0])


def test_trailing_zscore_uses_only_earlier_periods():
    x = pd.Series([1.0, 2.0, 3.0, 4.0, 10.0, 2.0])
    z = trailing_zscore(x, window=3, min_periods=3)
    assert z[:3].isna().all()  # fewer than 3 earlier values
    prev = np.array([2.0, 3.0, 4.0])
    assert z[4] == pytest.approx((10.0 - prev.mean()) / prev.std(ddof=1))
    prev = np.array([3.0, 4.0, 10.0])
    assert z[5] == pytest.approx((2.0 - prev.mean()) / prev.std(ddof=1))


def test_trailing_zscore_never_changes_when_later_values_are_removed_or_changed():
    rng = np.random.default_rng(1)
    x = pd.Series(rng.normal(size=200))
    x[rng.random(200) < 0.2] = np.nan  # empty periods
    full = trailing_zscore(x, 20, 10)
    for cut in (30, 77, 150):
        pd.testing.assert_series_equal(trailing_zscore(x[:cut], 20, 10), full[:cut])
        changed = x.copy()
        changed[cut:] = 1e6
        pd.testing.assert_series_equal(trailing_zscore(changed, 20, 10)[:cut], full[:cut])


def test_trailing_zscore_skips_missing_values_and_flat_history():
    z = trailing_zscore(pd.Series([1.0, np.nan, 1.0, 1.0, 5.0]), window=4, min_periods=2)
    assert np.isnan(z[4])  # the earlier values have no spread
    z = trailing_zscore(pd.Series([1.0, np.nan, 3.0, np.nan]), window=3, min_periods=2)
    assert z.isna().all()  # NaN periods neither get a z-score nor count
