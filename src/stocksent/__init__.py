"""stocksent: sentiment of StockTwits-style stock-market messages with an LSTM.

The public API is loaded on first use (PEP 562), so `import stocksent` and `stocksent --help`
load neither torch nor matplotlib nor scikit-learn:

>>> import stocksent
>>> model = stocksent.SentimentModel.load("runs/demo")          # doctest: +SKIP
>>> model.predict_proba("$SPY breaking out, loading calls")      # doctest: +SKIP
0.93
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from stocksent.lazy import lazy_attributes
from stocksent.version import __version__

# Before torch loads: idle OpenMP threads sleep instead of spinning. On a busy machine spinning
# threads made training 20x slower; on a quiet one training is 4% slower and prediction faster (docs/how-it-works.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_PUBLIC = {
    "SentimentModel": "stocksent.sentiment",
    "Prediction": "stocksent.sentiment",
    "train": "stocksent.training",
    "TrainResult": "stocksent.training",
    "evaluate": "stocksent.evaluation.evaluate",
    "TrainConfig": "stocksent.config",
    "ModelConfig": "stocksent.config",
    "preset": "stocksent.config",
    "StocksentError": "stocksent.errors",
}

__all__ = [
    "ModelConfig",
    "Prediction",
    "SentimentModel",
    "StocksentError",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "evaluate",
    "preset",
    "train",
]

if TYPE_CHECKING:
    from stocksent.config import ModelConfig, TrainConfig, preset
    from stocksent.errors import StocksentError
    from stocksent.evaluation.evaluate import evaluate
    from stocksent.sentiment import Prediction, SentimentModel
    from stocksent.training import TrainResult, train

__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
