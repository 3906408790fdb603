"""The index's statistics: Wilson intervals, Antweiler–Frank bullishness and agreement, trailing z-scores.

All functions are vectorised over numpy arrays (or pandas Series) of per-period counts.

>>> wilson_interval(np.array([7]), np.array([10]))          # doctest: +SKIP
(array([0.3968]), array([0.8922]))
>>> bullishness(np.array([7]), np.array([3]))                # ln(8/4)
array([0.6931])
"""

from __future__ import annotations

import numpy as np

__all__ = ["Z95", "wilson_interval", "bullishness", "agreement", "trailing_zscore"]

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial share (NaN where n == 0).

    Chosen over the normal (Wald) interval because periods often hold few messages: Wald's interval
    collapses to a point at 0/n or n/n and leaves [0, 1]; Wilson's never does (Brown, Cai and
    DasGupta 2001, "Interval estimation for a binomial proportion").
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        z2 = z * z
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = z / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo, hi = centre - half, centre + half
    empty = n <= 0
    lo[empty] = np.nan
    hi[empty] = np.nan
    # Round-off must not push the bounds past the share at 0/n or n/n.
    return np.clip(np.minimum(lo, p), 0.0, 1.0), np.clip(np.maximum(hi, p), 0.0, 1.0)


def bullishness(n_bull, n_bear) -> np.ndarray:
    """Antweiler and Frank (2004): ln((1 + n_bull) / (1 + n_bear)); 0 for an empty period."""
    return np.log1p(np.asarray(n_bull, dtype=np.float64)) - np.log1p(np.asarray(n_bear, dtype=np.float64))


def agreement(n_bull, n_bear) -> np.ndarray:
    """Antweiler and Frank (2004): 1 - sqrt(1 - ((n_bull - n_bear) / (n_bull + n_bear))^2); NaN if empty.

    1 when every message points the same way, 0 when bulls and bears are even.
    """
    b = np.asarray(n_bull, dtype=np.float64)
    s = np.asarray(n_bear, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (b - s) / (b + s)
        return 1.0 - np.sqrt(np.clip(1.0 - a * a, 0.0, 1.0))


def trailing_zscore(values, window: int, min_periods: int):
    """(x_t - mean) / std over the `window` periods BEFORE t (t itself and later periods never enter).

    `values` is a pandas Series in period order; missing values (NaN) are skipped and do not count
    towards `min_periods`. NaN where fewer than `min_periods` earlier values exist or their spread
    is zero. Because only earlier periods enter, a value never changes when later rows are added.
    """
    previous = values.shift(1).rolling(window, min_periods=min_periods)
    mean, std = previous.mean(), previous.std(ddof=1)
    return ((values - mean) / std.where(std > 0)).astype("float64")
