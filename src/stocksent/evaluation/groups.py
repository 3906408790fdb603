"""Metrics per group of messages (`evaluate --by ticker|month`), so users see where a model is weak.

A message naming several tickers counts in each of their groups (a message about $AAPL and $MSFT
tells about both); one naming none is in the group "-". Months come from the messages' times (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stocksent.errors import StocksentError
from stocksent.labels import is_bullish

BY = ("ticker", "month")
NO_GROUP = "-"


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The mean of each present class's recall (a group of one class: that class's recall).

    >>> balanced_accuracy(np.array([1, 1, 1, 0]), np.array([1, 1, 0, 1]))
    0.3333333333333333
    """
    recalls = [float((predicted[labels == c] == c).mean()) for c in (0, 1) if (labels == c).any()]
    return float(np.mean(recalls)) if recalls else float("nan")


def group_keys(by: str, tickers: Sequence[str] | None, times: np.ndarray | None) -> list[list[str]]:
    """Each message's groups: its tickers (upper case), or its month as YYYY-MM."""
    if by == "ticker":
        if tickers is None:
            raise StocksentError("--by ticker needs each message's tickers (a ticker/symbols column or $TAGS in it)")
        return [t.split() or [NO_GROUP] for t in tickers]
    if by == "month":
        from stocksent.corpus import NO_TIME

        if times is None or (times == NO_TIME).all():
            raise StocksentError(
                "--by month needs a time per message, and the data have no created_at, date, time or timestamp column"
            )
        months = np.where(times == NO_TIME, 0, times).astype("datetime64[ns]").astype("datetime64[M]").astype(str)
        return [[NO_GROUP] if t == NO_TIME else [m] for t, m in zip(times.tolist(), months.tolist())]
    raise StocksentError(f"--by must be one of {', '.join(BY)}; got {by!r}")


def group_metrics(
    labels: np.ndarray, p_bullish: np.ndarray, threshold: float, keys: Sequence[Sequence[str]], by: str
) -> list[dict]:
    """One row per group: n, accuracy, balanced accuracy, share bullish (true and predicted).

    Months in time order; tickers by n, most first (ties by name).

    >>> rows = group_metrics(np.array([1, 0]), np.array([0.9, 0.8]), 0.5, [["SPY"], ["SPY", "QQQ"]], "ticker")
    >>> [(r["group"], r["n"], r["accuracy"]) for r in rows]
    [('SPY', 2, 0.5), ('QQQ', 1, 0.0)]
    """
    labels = np.asarray(labels).astype(int)
    predicted = is_bullish(p_bullish, threshold).astype(int)
    members: dict[str, list[int]] = {}
    for i, groups in enumerate(keys):
        for group in dict.fromkeys(groups):
            members.setdefault(group, []).append(i)
    rows = []
    for group, index in members.items():
        y, p = labels[index], predicted[index]
        rows.append(
            {
                "group": group,
                "n": len(index),
                "accuracy": float((y == p).mean()),
                "balanced_accuracy": balanced_accuracy(y, p),
                "share_bullish_true": float(y.mean()),
                "share_bullish_predicted": float(p.mean()),
            }
        )
    if by == "month":
        rows.sort(key=lambda r: (r["group"] == NO_GROUP, r["group"]))
    else:
        rows.sort(key=lambda r: (-r["n"], r["group"]))
    return rows


def format_groups(rows: list[dict], by: str) -> str:
    """The rows as an aligned text table (what `evaluate --by` prints)."""
    width = max([len(by), *(len(r["group"]) for r in rows)])
    lines = [f"{by:<{width}}  {'n':>7}  accuracy  balanced  bullish true  bullish predicted"]
    for r in rows:
        lines.append(
            f"{r['group']:<{width}}  {r['n']:>7}  {r['accuracy']:>8.4f}  {r['balanced_accuracy']:>8.4f}  "
            f"{r['share_bullish_true']:>12.4f}  {r['share_bullish_predicted']:>17.4f}"
        )
    return "\n".join(lines)
