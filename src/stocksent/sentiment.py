"""`SentimentModel`: a trained model directory, ready to score raw text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import overload

import numpy as np

from stocksent.artifacts import load_model_dir
from stocksent.errors import StocksentError
from stocksent.inference.fast_cpu import PRECISIONS, fast_path_for, predict_texts, resolve_precision
from stocksent.text import TextOptions, normalise_flat

LABEL_NAMES = ("bearish", "bullish")


@dataclass(frozen=True)
class Prediction:
    label: str
    p_bullish: float

    def to_dict(self) -> dict:
        return asdict(self)


AUTO_BFLOAT16_MIN = 64  # messages per call from which precision "auto" uses bfloat16


class SentimentModel:
    """Text goes through the same normalisation and vocabulary as in training, always in eval mode."""

    backend = None  # None: PyTorch; else an object with predict_proba_sequences (export.OnnxBackend)
    precision = "float32"  # of the PyTorch fast path's matrix products: float32 or bfloat16 (fastpath.py)
    small_calls_float32 = False  # precision "auto": calls of few messages run float32 (see load)

    def __init__(self, model, config: dict, vocab, directory: Path | None = None):
        self.network = model.eval()
        self.config = config
        self.vocab = vocab
        self.directory = directory
        self.text_options = TextOptions.from_dict(config.get("text", {}))
        self.threshold = float(config.get("threshold", 0.5))

    @classmethod
    def load(cls, directory: str | Path, backend: str = "torch", precision: str = "auto") -> SentimentModel:
        """`precision` of the PyTorch path: float32, bfloat16, or auto: bfloat16 where the CPU does it
        natively (fastpath.resolve_precision) for calls of at least `AUTO_BFLOAT16_MIN` messages, float32
        for smaller ones, where bfloat16's per-product overhead doubles latency (measured: one message
        p50 0.86 ms float32, 1.78 ms bfloat16). The ONNX backend is float32."""
        if backend not in ("torch", "onnx"):
            raise StocksentError(f"unknown backend {backend!r}: use torch or onnx")
        if precision not in (*PRECISIONS, "auto"):
            raise StocksentError(f"unknown precision {precision!r}: use auto, float32 or bfloat16")
        if backend == "onnx" and precision == "bfloat16":
            raise StocksentError("precision bfloat16 is for the torch backend; ONNX runs float32")
        model, config, vocab = load_model_dir(directory)
        try:
            loaded = cls(model, config, vocab, Path(directory))
        except (AttributeError, TypeError, ValueError) as err:  # "text" or "threshold" of the wrong type
            raise StocksentError(f"model directory {directory} has an invalid config.json ({err})") from None
        if backend == "onnx":  # DIR/model.onnx, exported on first use (see export.py)
            from stocksent.inference.onnx import OnnxBackend

            loaded.backend = OnnxBackend.for_model_dir(directory, model)
        else:  # the lookup table etc. are built now, so the first prediction is as quick as the rest
            loaded.precision = resolve_precision(precision)
            loaded.small_calls_float32 = precision == "auto" and loaded.precision != "float32"
            if loaded.small_calls_float32:
                fast_path_for(model, "float32")
            fast_path_for(model, loaded.precision)
        return loaded

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        ids, lengths = self.encode_flat(texts)
        return np.split(ids, np.cumsum(lengths)[:-1]) if len(lengths) else []

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All messages' word ids end to end, and each message's length (what `encode` splits up)."""
        tokens, lengths = normalise_flat(texts, self.text_options)
        return self.vocab.encode(tokens), np.asarray(lengths, dtype=np.int64)

    def predict_proba(self, texts: str | Sequence[str], batch_size: int = 1024) -> np.ndarray:
        """P(bullish) per message, in input order (a 1-D float32 array)."""
        texts = as_list(texts)
        if not texts:
            return np.empty(0, dtype=np.float32)
        if self.backend is not None:
            return self.backend.predict_proba_sequences(self.encode(texts), batch_size)
        small = self.small_calls_float32 and len(texts) < AUTO_BFLOAT16_MIN
        precision = "float32" if small else self.precision
        return predict_texts(fast_path_for(self.network, precision), self.encode_flat, texts, batch_size)

    def evaluate(self, data: str | Path | None = None, split: str | None = None) -> dict:
        """Metrics on labelled data: the recorded test split of the training file, or every row of another.

        >>> model.evaluate("other.csv")["accuracy"]  # doctest: +SKIP
        0.79
        """
        from stocksent.evaluation.evaluate import evaluate

        return evaluate(self, data, split)

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
    if isinstance(texts, (bytes, bytearray)) or not hasattr(texts, "__iter__"):
        raise StocksentError(f"messages must be a string or a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    bad = [t for t in texts if not isinstance(t, str)][:1]  # not next(..., None): None itself is bad
    if bad:
        raise StocksentError(f"messages must be strings, got {type(bad[0]).__name__}")
    return texts
