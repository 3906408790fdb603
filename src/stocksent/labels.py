"""The one rule from P(bullish) to a label, and what a message without evidence gets instead.

A label is `bullish` where P(bullish) >= the model's threshold, else `bearish`. A message that
normalisation leaves without a single token (`""`, `"!!!"`, NUL bytes) gives the network nothing to
read: its probability is NaN (null in every table and reply), it has no label, and `NO_WORDS` says
why. predict, score, serve, the index and the Python API all go through `labels_for` or
`prediction_fields`, so a message is treated the same way on every path.

>>> labels_for([0.9, 0.2, float("nan")], 0.5)
['bullish', 'bearish', None]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

LABELS: tuple[str, str] = ("bearish", "bullish")  # index is the class id: bearish=0, bullish=1
NO_WORDS = "no words to score: the message is empty once normalised"


def label_for(p_bullish: float | None, threshold: float) -> str | None:
    """`bullish`/`bearish` for one probability; None where there is none (NaN or None).

    >>> label_for(0.5, 0.5), label_for(None, 0.5)
    ('bullish', None)
    """
    if p_bullish is None or math.isnan(p_bullish):
        return None
    return LABELS[int(p_bullish >= threshold)]


def is_bullish(p_bullish, threshold: float) -> Any:
    """The class of each probability as a bool array (the threshold step, vectorised); False for NaN.

    >>> is_bullish([0.5, 0.49, float("nan")], 0.5).tolist()
    [True, False, False]
    """
    import numpy as np

    with np.errstate(invalid="ignore"):
        return np.asarray(p_bullish, dtype=np.float64) >= threshold


def labels_for(p_bullish: Iterable[float], threshold: float) -> list[str | None]:
    """`label_for` of each probability, in order."""
    return [label_for(float(p), threshold) for p in p_bullish]


def prediction_fields(p_bullish: float, threshold: float) -> dict:
    """{"label", "p_bullish"} for one probability; a NaN one has both null and a "reason" (`NO_WORDS`).

    >>> prediction_fields(0.75, 0.5), prediction_fields(float("nan"), 0.5)["reason"] == NO_WORDS
    ({'label': 'bullish', 'p_bullish': 0.75}, True)
    """
    label = label_for(p_bullish, threshold)
    if label is None:
        return {"label": None, "p_bullish": None, "reason": NO_WORDS}
    return {"label": label, "p_bullish": float(p_bullish)}
