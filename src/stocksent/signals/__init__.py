"""The sentiment index: per-ticker volume and sentiment over market sessions, with intervals and z-scores.

- `stocksent.signals.sentiment_index(inputs, model, freq=..., calendar=...)` -> pandas DataFrame
  (what `stocksent index` runs; columns in `stocksent.signals.index`).
- `stocksent.signals.periods`: NYSE sessions (exchange_calendars) and plain UTC periods.
- `stocksent.signals.stats`: Wilson interval, Antweiler–Frank bullishness and agreement, trailing z-scores.
- `stocksent.signals.aggregate.IndexBuilder`: the streaming accumulator, for callers that score themselves.
- `stocksent.signals.plot.index_figure`: the index beside volume and price, as a matplotlib Figure.

Names are loaded on first use, so importing this package loads neither pandas nor pyarrow.
Needs the `index` extra: `pip install 'stocksent[index]'` (pandas, pyarrow, exchange_calendars).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stocksent.lazy import lazy_attributes

_PUBLIC = {
    "sentiment_index": "stocksent.signals.index",
    "IndexBuilder": "stocksent.signals.aggregate",
    "index_figure": "stocksent.signals.plot",
}
__all__ = ["IndexBuilder", "index_figure", "sentiment_index"]

if TYPE_CHECKING:
    from stocksent.signals.aggregate import IndexBuilder
    from stocksent.signals.index import sentiment_index
    from stocksent.signals.plot import index_figure

__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
