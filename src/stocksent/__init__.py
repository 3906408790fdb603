"""stocksent: sentiment of StockTwits-style stock-market messages with an LSTM."""

__version__ = "0.1.0"

from .config import TrainConfig, preset  # noqa: E402
from .errors import StocksentError  # noqa: E402
from .predict import SentimentModel  # noqa: E402
from .training import train  # noqa: E402

__all__ = ["SentimentModel", "StocksentError", "TrainConfig", "preset", "train", "__version__"]
