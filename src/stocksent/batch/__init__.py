"""Batch scoring: streaming readers, one picklable scorer, and adapters for Spark and Ray.

- `stocksent.readers.iter_batches`: message files of any size as bounded Arrow batches.
- `stocksent.batch.scorer.BatchScorer`: adds `p_bullish` and `label` to an Arrow table or a pandas
  DataFrame; picklable, loads the model once per process.
- `stocksent.batch.score_files`: what `stocksent score` runs (worker processes, resumable output).
- `stocksent.batch.spark` (extra `stocksent[spark]`) and `stocksent.batch.ray` (extra `stocksent[ray]`).

Names are loaded on first use, so importing this package loads neither pyarrow nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stocksent.lazy import lazy_attributes

_PUBLIC = {
    "BatchScorer": "stocksent.batch.scorer",
    "iter_batches": "stocksent.readers",
    "BadRow": "stocksent.readers",
    "score_files": "stocksent.batch.files",
}
__all__ = ["BadRow", "BatchScorer", "iter_batches", "score_files"]

if TYPE_CHECKING:
    from stocksent.batch.files import score_files
    from stocksent.batch.scorer import BatchScorer
    from stocksent.readers import BadRow, iter_batches

__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
