"""`SentimentModel`: a trained model, ready to score raw text; load, save, predict, evaluate.

    raw text --normalise--> tokens --vocabulary--> flat ids + lengths --engine--> logits
             --sigmoid--> P(bullish) --threshold--> label

The normalisation options, the vocabulary and the threshold are the ones saved with the weights,
so a loaded model treats text exactly as training did. The engine (inference/) is the only part
that differs between backends; encoding, the sigmoid and the threshold happen here, once. A
message that normalises to no tokens has no evidence: P(bullish) NaN, no label (`stocksent.labels`).

>>> model = SentimentModel.load("runs/demo")              # doctest: +SKIP
>>> model.predict_proba("$SPY breaking out, loading calls") # doctest: +SKIP
0.93
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import overload

import numpy as np

from stocksent import compiled
from stocksent.artifacts import (
    CONFIG,
    CURVE,
    METRICS,
    VOCAB,
    WEIGHTS,
    check_model_config,
    load_model_files,
    model_id,
    save_model_dir,
)
from stocksent.encoding import TextEncoder
from stocksent.errors import StocksentError
from stocksent.inference import DEFAULT_BATCH, Engine, describe, engine_for, sigmoid
from stocksent.inference.workers import map_chunks
from stocksent.labels import prediction_fields
from stocksent.rates import RATES
from stocksent.text import TextOptions
from stocksent.version import __version__
from stocksent.vocab import Vocabulary


@dataclass(frozen=True)
class Prediction:
    """One message's label and P(bullish); both None, with the `reason`, where it has no words to score."""

    label: str | None  # labels.LABELS: "bearish" or "bullish"
    p_bullish: float | None
    reason: str | None = None

    def to_dict(self) -> dict:
        """{"label", "p_bullish"}, and "reason" where there is no label (as `labels.prediction_fields`)."""
        fields = asdict(self)
        if fields["reason"] is None:
            del fields["reason"]
        return fields


class SentimentModel:
    """A network, the vocabulary and text options it was trained with, its threshold, and one engine.

    Build one with `load` (a model directory) or `build` (parts in memory); the constructor only
    stores what it is given. Predictions always run the network in eval mode.
    """

    def __init__(
        self,
        network,
        vocab: Vocabulary,
        engine: Engine,
        text_options: TextOptions | None = None,
        threshold: float = 0.5,
        config: dict | None = None,
        directory: Path | None = None,
    ):
        self.network = network
        self.vocab = vocab
        self.engine = engine
        self.text_options = text_options if text_options is not None else TextOptions()
        self.encoder = TextEncoder(vocab, self.text_options)  # compiled where available (encoding.py)
        self.threshold = threshold
        self.config = config if config is not None else {}
        self.directory = directory
        self.sha256: dict[str, str] = {}  # set by `load`: {file name: sha256} of the files it read

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(
        cls,
        directory: str | Path,
        backend: str = "torch",
        precision: str = "auto",
        device: str = "cpu",
        sha256: Mapping[str, str] | None = None,
    ) -> SentimentModel:
        """The model in `directory` (written by `stocksent train` or `save`), with one engine.

        `backend`: "torch" (on the CPU the fast CPU engine; on `device` "cuda" the module's forward)
        or "onnx" (ONNX Runtime: DIR/model.onnx when `stocksent export` wrote it from these weights,
        else built in memory; loading never writes into the directory). `precision` of the torch
        backend on the CPU: float32, bfloat16, or auto: bfloat16 where the CPU does it natively
        (AVX512-BF16 or AMX) for calls of at least 64 messages, float32 for smaller ones, where
        bfloat16's per-product overhead doubles latency (one message p50 0.86 ms float32, 1.78 ms
        bfloat16). The ONNX backend is float32. `sha256` ({file name: digest}, see
        `artifacts.sha256_files`) refuses a directory whose files differ from those digests.

        Every tensor, the threshold, temperature and text options are checked as they are read: a
        damaged or tampered directory is a `StocksentError` naming the file and field, never a model
        that loads and answers wrongly.

        >>> SentimentModel.load("runs/demo", precision="float32")  # doctest: +SKIP
        """
        network, config, vocab, digests = load_model_files(directory, sha256)
        model = cls.build(network, vocab, config, backend, precision, device, Path(directory))
        model.sha256 = digests
        return model

    @classmethod
    def build(
        cls,
        network,
        vocab: Vocabulary,
        config: dict,
        backend: str = "torch",
        precision: str = "auto",
        device: str = "cpu",
        directory: Path | None = None,
    ) -> SentimentModel:
        """A model from a network, its vocabulary and its config.json content (`text`, `threshold`)."""
        if not isinstance(config, Mapping):
            raise StocksentError(f"a model's config must be a dict, got {type(config).__name__}")
        check_model_config(config, f"{directory / CONFIG}" if directory else "the model's config")
        text_options = TextOptions.from_dict(config.get("text", {}))
        threshold = float(config.get("threshold", 0.5))
        network.eval()
        engine = engine_for(network, backend, precision, device, directory)
        return cls(network, vocab, engine, text_options, threshold, config, directory)

    @property
    def engine_info(self) -> dict:
        """What runs this model, for reports (`stocksent bench`, the service's /v1/model): the engine,
        its arithmetic and kernel, the text path, and why the reference runs where it does.

        >>> model.engine_info  # doctest: +SKIP
        {'engine': 'native', 'precision': 'float32', 'kernel': 'avx512', 'text': 'native'}
        """
        info = {**describe(self.engine), "text": self.encoder.core}
        reason = compiled.status()["reason"]
        return {**info, "reference_because": reason} if reason else info

    @property
    def model_id(self) -> str | None:
        """`NAME-SHA12` of a loaded model (`artifacts.model_id`): the id serve, index, score and report show."""
        if self.directory is None or WEIGHTS not in self.sha256:
            return None
        return model_id(self.directory, self.sha256[WEIGHTS])

    @property
    def precision(self) -> str:
        """The engine's arithmetic: float32 or bfloat16 (precision "auto": bfloat16 for large calls)."""
        return self.engine.precision

    # ------------------------------------------------------------------ text to ids

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Word ids per message (what training's batches hold)."""
        ids, lengths = self.encode_flat(texts)
        return np.split(ids, np.cumsum(lengths)[:-1]) if len(lengths) else []

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All messages' word ids end to end, and each message's length: an engine's input."""
        return self.encoder.encode(texts)

    # ------------------------------------------------------------------ scoring

    def logits(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH, threads: int | None = None) -> np.ndarray:
        """The engine's logit per message (float32, input order), before the sigmoid; NaN for a
        message with no tokens (no evidence).

        Where the engine allows it (the compiled and the fast CPU engines), chunks of a large call
        are encoded and scored side by side on `threads` worker threads (default: torch's intra-op
        thread count; workers.map_chunks); a small call to the compiled engine runs in the calling
        thread. `threads=1` runs the whole call in the calling thread: for callers that run threads
        of their own (`stocksent score`'s scoring threads). The numbers are the same either way.
        """
        return self._logits(as_list(texts), batch_size, threads)

    def _logits(self, texts: list[str], batch_size: int, threads: int | None = None) -> np.ndarray:
        import torch

        if not texts:
            return np.empty(0, dtype=np.float32)

        def score(chunk: Sequence[str]) -> np.ndarray:
            ids, lengths = self.encode_flat(chunk)
            logits = self.engine.logits(ids, lengths, batch_size)
            logits[lengths == 0] = np.nan  # nothing to read: no evidence either way
            return logits

        if not self.engine.parallel:
            threads = 1
        elif threads is None:
            threads = torch.get_num_threads()
        return map_chunks(score, texts, batch_size, threads, small_inline=self.engine.name == "native")

    @overload
    def predict_proba(self, texts: str, batch_size: int = ..., threads: int | None = ...) -> float: ...
    @overload
    def predict_proba(self, texts: Sequence[str], batch_size: int = ..., threads: int | None = ...) -> np.ndarray: ...

    def predict_proba(self, texts, batch_size: int = DEFAULT_BATCH, threads: int | None = None):
        """P(bullish): one string in, a float out; a list in, a float32 array in input order out.
        NaN for a message that normalises to no tokens (`""`, `"!!!"`): it has no evidence.
        `threads`: as in `logits` (1: all in the calling thread).

        >>> model.predict_proba(["$SPY puts", "calls!"])  # doctest: +SKIP
        array([0.08, 0.91], dtype=float32)
        """
        p = sigmoid(self._logits(as_list(texts), batch_size, threads))
        return float(p[0]) if isinstance(texts, str) else p

    def predict_proba_encoded(self, tokens, words: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """P(bullish) of messages already normalised (with this model's text options) and held as ids
        into `words` (`tokens.TokenArrays`, as `corpus.read_corpus` reads them): the same numbers as
        `predict_proba` on their texts, without normalising them again (`evaluate`).
        """
        import torch

        mapping = self.vocab.mapping(words)

        def score(rows: np.ndarray) -> np.ndarray:
            ids, lengths = tokens.subset(rows).flat()
            logits = self.engine.logits(mapping[ids].astype(np.int64), lengths, batch_size)
            logits[lengths == 0] = np.nan  # nothing to read: no evidence either way
            return logits

        if not len(tokens):
            return np.empty(0, dtype=np.float32)
        threads = torch.get_num_threads() if self.engine.parallel else 1
        return sigmoid(map_chunks(score, np.arange(len(tokens)), batch_size, threads))

    @overload
    def predict(self, texts: str, batch_size: int = ...) -> Prediction: ...
    @overload
    def predict(self, texts: Sequence[str], batch_size: int = ...) -> list[Prediction]: ...

    def predict(self, texts, batch_size: int = DEFAULT_BATCH):
        """Label and P(bullish) per message; one string in, one Prediction out; a list in, a list out."""
        predictions = self.to_predictions(sigmoid(self._logits(as_list(texts), batch_size)))
        return predictions[0] if isinstance(texts, str) else predictions

    def to_predictions(self, p_bullish: np.ndarray) -> list[Prediction]:
        """The threshold step (`labels.prediction_fields`): bullish where P(bullish) >= the threshold."""
        p = np.asarray(p_bullish, dtype=np.float32).tolist()
        return [Prediction(**prediction_fields(value, self.threshold)) for value in p]

    def evaluate(self, data: str | Path | None = None, split: str | None = None) -> dict:
        """Metrics on labelled data: the recorded test split of the training file, or every row of another.

        >>> model.evaluate("other.csv")["accuracy"]  # doctest: +SKIP
        0.79
        """
        from stocksent.evaluation.evaluate import evaluate

        return evaluate(self, data, split)

    # ------------------------------------------------------------------ saving

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write a model directory that `load` reads back to identical probabilities; returns its path.

        The directory appears whole or not at all (written beside it, then renamed into place).
        metrics.json, rates.json and learning_curve.png come along from the loaded directory (they
        describe these weights). A directory that already holds this very model is left as it is; one that
        holds another model is refused unless `overwrite=True`, which replaces it whole; a
        non-empty directory holding no model is always refused.

        >>> model.save("runs/copy")  # doctest: +SKIP
        PosixPath('runs/copy')
        """
        target = Path(directory)
        if target.exists() and not target.is_dir():
            raise StocksentError(f"{target} is a file: give a directory to save the model in")
        occupied = target.is_dir() and any(target.iterdir())
        if occupied and not (target / CONFIG).is_file():
            raise StocksentError(f"{target} is not empty and holds no model: choose a new or empty directory")
        # Written in this stocksent's format, whoever wrote the directory it came from (check_format_version).
        config = {**self.config, "text": self.text_options.to_dict(), "threshold": self.threshold}
        config["stocksent_version"] = __version__
        config.pop("model", None)  # save_model_dir writes the network's own sizes
        staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(staging)  # mode 0777 less the umask, as a plain mkdir (mkdtemp would give 0700)
            save_model_dir(staging, self.network, config, self.vocab)
            for name in (METRICS, RATES, CURVE):
                if self.directory is not None and (self.directory / name).is_file():
                    shutil.copyfile(self.directory / name, staging / name)
            if occupied and _same_files(staging, target, (WEIGHTS, CONFIG, VOCAB)):
                return target
            if occupied and not overwrite:
                raise StocksentError(
                    f"{target} already holds a different model: choose another directory or pass overwrite=True"
                )
            _replace_dir(staging, target)
        except OSError as err:
            raise StocksentError(f"cannot save the model to {target}: {err.strerror or err}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def _same_files(a: Path, b: Path, names: Sequence[str]) -> bool:
    return all((b / n).is_file() and (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _replace_dir(new: Path, target: Path) -> None:
    """Put directory `new` at `target`: one rename where `target` is absent or empty, else the old
    one is moved aside first and deleted after (restored if the second rename fails)."""
    with contextlib.suppress(OSError):
        target.rmdir()  # only succeeds when empty
    if not target.exists():
        os.rename(new, target)
        return
    old = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.old"
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
