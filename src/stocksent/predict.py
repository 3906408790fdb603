"""`SentimentModel`: a trained model directory, ready to score raw text."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence, overload

import numpy as np

from .artifacts import load_model_dir
from .errors import StocksentError
from .model import predict_proba_sequences
from .text import TextOptions, normalise

LABEL_NAMES = ("bearish", "bullish")


@dataclass(frozen=True)
class Prediction:
    label: str
    p_bullish: float

    def to_dict(self) -> dict:
        return asdict(self)


class SentimentModel:
    """Text goes through the same normalisation and vocabulary as in training, always in eval mode."""

    def __init__(self, model, config: dict, vocab, directory: Path | None = None):
        self.network = model.eval()
        self.config = config
        self.vocab = vocab
        self.directory = directory
        self.text_options = TextOptions.from_dict(config.get("text", {}))
        self.threshold = float(config.get("threshold", 0.5))

    @classmethod
    def load(cls, directory: str | Path, backend: str = "torch") -> "SentimentModel":
        if backend != "torch":
            raise StocksentError(f"unknown backend {backend!r}: use torch")
        model, config, vocab = load_model_dir(directory)
        return cls(model, config, vocab, Path(directory))

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        options, encode = self.text_options, self.vocab.encode
        return [encode(normalise(t, options)) for t in texts]

    def predict_proba(self, texts: str | Sequence[str], batch_size: int = 1024) -> np.ndarray:
        """P(bullish) per message, in input order (a 1-D float32 array)."""
        texts = as_list(texts)
        if not texts:
            return np.empty(0, dtype=np.float32)
        return predict_proba_sequences(self.network, self.encode(texts), batch_size)

    @overload
    def predict(self, texts: str) -> Prediction: ...
    @overload
    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...

    def predict(self, texts, batch_size: int = 1024):
        """Label and P(bullish) per message; one string in, one Prediction out."""
        probs = self.predict_proba(texts, batch_size)
        predictions = [Prediction(LABEL_NAMES[int(p >= self.threshold)], float(p)) for p in probs]
        return predictions[0] if isinstance(texts, str) else predictions


def as_list(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise StocksentError(f"messages must be strings, got {type(bad).__name__}")
    return texts
