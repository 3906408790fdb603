"""`BatchScorer`: one picklable scorer for tables, used by `stocksent score`, Spark, Ray and Dask alike.

Contract (other modules rely on it: `stocksent score`, `stocksent.batch.spark`, `.ray`, `stocksent.signals`):

    scorer = BatchScorer(model, text_column=None, batch_rows=8192, precision="float32", threads=None)
    scorer(data) -> data of the same type with two columns added:
        p_bullish  float32, P(bullish) exactly as `SentimentModel.predict_proba` gives it
        label      "bullish" / "bearish" (p_bullish >= the model's threshold: `stocksent.labels`)
    data: pyarrow.Table, pyarrow.RecordBatch or pandas.DataFrame; a null message, and one with no
    words to score (`""`, `"!!!"`: NaN from `predict_proba`), gets a null p_bullish and label.
    scorer.predict_proba(texts) -> numpy float32 array, for a list (or Arrow array) of strings.

- `model`: a model directory (str/Path), or a function returning one (called where the model is
  loaded, e.g. `lambda: SparkFiles.get("model")` on a Spark executor). `embed=True` reads the
  directory's files into the scorer, so it travels by pickling to machines that cannot see the path.
- Picklable and cheap to pickle: the model is loaded on first use, once per process (a process-wide
  cache, so the copies Spark deserialises for every task share one model).
- Threads: on first use in a process, torch's intra-op thread count is set to `threads`, else
  `OMP_NUM_THREADS`, else the cores this process may use (`os.sched_getaffinity`). `stocksent score`
  gives each worker process one.
- float32 by default, so a probability never depends on which rows share a batch or on the CPU's
  bfloat16 support: every engine agrees with `SentimentModel.load(d, precision="float32").predict_proba`.

>>> scorer = BatchScorer("runs/demo")                                  # doctest: +SKIP
>>> scorer(pandas.DataFrame({"message": ["$SPY to the moon", "$SPY puts"]}))  # doctest: +SKIP
            message  p_bullish    label
0  $SPY to the moon   0.912345  bullish
1         $SPY puts   0.101234  bearish
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stocksent.errors import StocksentError

__all__ = ["BatchScorer", "none_for_missing", "usable_cores"]

_MODELS: dict[tuple, Any] = {}  # (model key, precision) -> SentimentModel, per process
_LOCK = threading.Lock()
_THREADS_SET = False


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class BatchScorer:
    """Adds `p_bullish` (float32) and `label` to a table of messages; see the module doc."""

    def __init__(
        self,
        model: str | os.PathLike | Callable[[], str | os.PathLike],
        text_column: str | None = None,
        batch_rows: int = 8192,
        precision: str = "float32",
        threads: int | None = None,
        embed: bool = False,
    ):
        if batch_rows < 1:
            raise StocksentError("batch_rows must be at least 1")
        if threads is not None and threads < 1:
            raise StocksentError("threads must be at least 1")
        self.text_column = text_column
        self.batch_rows = batch_rows
        self.precision = precision
        self.threads = threads
        self._files: dict[str, bytes] | None = None
        if callable(model):
            self.model_dir: str | Callable | None = model
        else:
            self.model_dir = os.fspath(model)
            if not Path(self.model_dir, "config.json").is_file():
                raise StocksentError(
                    f"{self.model_dir} is not a model directory (no config.json); pass one made by train"
                )
        if embed:
            if callable(model):
                raise StocksentError("embed=True needs a model directory, not a function")
            self._files = {p.name: p.read_bytes() for p in sorted(Path(self.model_dir).iterdir()) if _model_file(p)}
            self.model_dir = None

    # ------------------------------------------------------------------ pickling and loading

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_model"}

    @property
    def model(self):
        """The `SentimentModel`, loaded on first use in this process and shared by every copy of the scorer."""
        model = self.__dict__.get("_model")
        if model is None:
            model = self.__dict__["_model"] = _load(self._key(), self._directory, self.precision, self.threads)
        return model

    def _key(self) -> tuple:
        if self._files is not None:
            digest = hashlib.sha256()
            for name, data in self._files.items():
                digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
            return ("bytes", digest.hexdigest(), self.precision)
        return ("dir", os.fspath(self._resolve()), self.precision)

    def _resolve(self) -> str | os.PathLike:
        return self.model_dir() if callable(self.model_dir) else self.model_dir

    def _directory(self) -> str | os.PathLike:
        if self._files is None:
            return self._resolve()
        target = Path(tempfile.mkdtemp(prefix="stocksent-model-"))
        for name, data in self._files.items():
            (target / name).write_bytes(data)
        return target

    def with_options(self, **changes: Any) -> BatchScorer:
        """A copy with other `text_column` or `batch_rows` (sharing the loaded model, if any).

        >>> BatchScorer("runs/demo").with_options(text_column="body")  # doctest: +SKIP
        """
        unknown = set(changes) - {"text_column", "batch_rows"}
        if unknown:
            raise StocksentError(f"with_options changes text_column or batch_rows, not {', '.join(sorted(unknown))}")
        new = copy.copy(self)
        new.__dict__.update(changes)
        return new

    @property
    def threshold(self) -> float:
        return self.model.threshold

    # ------------------------------------------------------------------ scoring

    def predict_proba(self, texts: Sequence[str] | Any, threads: int | None = None) -> Any:
        """P(bullish) per message (numpy float32), `batch_rows` messages at a time; `threads` as in
        `SentimentModel.predict_proba` (1: all in the calling thread)."""
        import numpy as np

        if hasattr(texts, "to_pylist"):  # an Arrow array
            texts = texts.to_pylist()
        texts = list(texts)
        model = self.model
        parts = [
            model.predict_proba(texts[i : i + self.batch_rows], threads=threads)
            for i in range(0, len(texts), self.batch_rows)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.empty(0, np.float32)

    def score_texts(self, texts: Sequence[str | None], threads: int | None = None) -> tuple[Any, Any]:
        """(p_bullish float32 with NaN for None, is_bullish bool) for a list of messages or Nones;
        `threads` as in `predict_proba`."""
        import numpy as np

        texts = list(texts)
        present = [i for i, t in enumerate(texts) if t is not None]
        wrong = next((t for t in texts if t is not None and not isinstance(t, str)), None)
        if wrong is not None:
            raise StocksentError(f"messages must be strings, got {type(wrong).__name__}; check the text column")
        probs = np.full(len(texts), np.nan, dtype=np.float32)
        if len(present) == len(texts):
            probs = self.predict_proba(texts, threads)
        elif present:
            probs[present] = self.predict_proba([texts[i] for i in present], threads)
        from stocksent.labels import is_bullish

        return probs, is_bullish(probs, self.threshold)

    def __call__(self, data: Any) -> Any:
        """`data` (Arrow Table/RecordBatch or pandas DataFrame) with `p_bullish` and `label` added."""
        if hasattr(data, "schema") and hasattr(data, "column"):  # pyarrow Table or RecordBatch
            return self._score_arrow(data)
        if hasattr(data, "columns") and hasattr(data, "iloc"):  # pandas DataFrame
            return self._score_pandas(data)
        raise StocksentError(
            f"BatchScorer scores a pyarrow Table/RecordBatch or a pandas DataFrame, got {type(data).__name__}"
        )

    def text_column_of(self, names: Sequence[str]) -> str:
        from stocksent.columns import resolve_text_column

        return resolve_text_column(names, self.text_column, "the table")

    def _score_arrow(self, data):
        import pyarrow as pa

        column = data.column(self.text_column_of(data.schema.names))
        if not (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_null(column.type)
        ):
            raise StocksentError(f"the text column holds {column.type}, not text; pass text_column=")
        probs, bullish = self.score_texts(column.to_pylist())
        p, label = arrow_columns(probs, bullish)
        data = _drop(data, ("p_bullish", "label"))
        return data.append_column("p_bullish", p).append_column("label", label)

    def _score_pandas(self, frame):
        import pandas as pd

        from stocksent.labels import labels_for

        probs, _ = self.score_texts(none_for_missing(frame[self.text_column_of(list(frame.columns))].tolist()))
        out = frame.copy()
        out["p_bullish"] = pd.Series(probs, index=frame.index, dtype="float32")
        out["label"] = pd.Series(labels_for(probs, self.threshold), index=frame.index, dtype=object)
        return out


def none_for_missing(values: list) -> list:
    """None where pandas or numpy mark a missing message with NaN (pandas 3 strings, object arrays)."""
    return [None if isinstance(v, float) and v != v else v for v in values]


def arrow_columns(probs, bullish) -> tuple[Any, Any]:
    """`p_bullish` (float32, null where NaN) and `label` (string) Arrow arrays from score_texts' output."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from stocksent.labels import LABELS

    missing = np.isnan(probs)
    mask = missing if missing.any() else None
    p = pa.array(probs, pa.float32(), mask=mask)
    label = pc.if_else(pa.array(bullish, pa.bool_(), mask=mask), LABELS[1], LABELS[0])
    return p, label


def _model_file(path: Path) -> bool:
    """Files a loaded model needs: not training's checkpoints, curves and reports (20 of 22 MB in a small model)."""
    return path.is_file() and not (
        path.name.startswith(("checkpoint", "."))
        or path.suffix in (".png", ".html", ".onnx")
        or path.name == "metrics.json"
    )


def _drop(data, names: Sequence[str]):
    present = [n for n in names if n in data.schema.names]
    if not present:
        return data
    keep = [n for n in data.schema.names if n not in present]
    return data.select(keep)


def _load(key: tuple, directory: Callable[[], str | os.PathLike], precision: str, threads: int | None):
    """The process's copy of a model; torch's thread count is set when the first one loads."""
    global _THREADS_SET
    with _LOCK:
        model = _MODELS.get(key)
        if model is not None:
            return model
        import torch

        from stocksent.sentiment import SentimentModel

        if not _THREADS_SET or threads is not None:
            torch.set_num_threads(threads or _env_threads() or usable_cores())
            _THREADS_SET = True
        path = directory()
        try:
            model = _MODELS[key] = SentimentModel.load(path, precision=precision)
        finally:
            if key[0] == "bytes":  # the embedded files' temporary copy: everything is in memory now
                shutil.rmtree(path, ignore_errors=True)
        return model


def _env_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None
