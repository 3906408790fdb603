"""Scoring a trained model on labelled data: its own test split, or every row of other files."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from stocksent.errors import StocksentError
from stocksent.evaluation.metrics import classification_metrics


class Scored(Protocol):
    """What `evaluate` needs of a model (a `SentimentModel`), named here so that this module, which
    `SentimentModel.evaluate` calls, never imports the model back (not even for a type)."""

    config: dict
    text_options: Any
    threshold: float

    def predict_proba_encoded(self, tokens: Any, words: Sequence[str]) -> Any: ...


DataPaths = str | os.PathLike | Sequence[str | os.PathLike]


def _given_files(data_path: DataPaths) -> list[Path]:
    """The files named (paths, directories, globs), with the errors users understand for one path."""
    from stocksent.corpus import expand_data

    items = [data_path] if isinstance(data_path, (str, os.PathLike)) else list(data_path)
    for item in items:
        path = Path(item).expanduser()
        if not path.exists() and not glob.has_magic(os.fspath(item)):
            raise StocksentError(f"data file not found: {path}; pass --data PATH")
    return expand_data(items)


def evaluate(
    model: Scored, data_path: DataPaths | None = None, split: str | None = None, by: str | None = None
) -> dict:
    """Metrics dict as `evaluate --json` prints it.

    `split="test"` rebuilds the test split recorded at training, which is only meaningful on the very
    files the model was trained on (checked by sha256); `split=None` picks it for those files and
    `"all"` for any other. `by` ("ticker" or "month") adds `groups`: the metrics per ticker or month.
    Each file is read, hashed and normalised once: the split and the predictions come from that read.

    >>> evaluate(model, by="month")["groups"][0]  # doctest: +SKIP
    {'group': '2020-11', 'n': 312, 'accuracy': 0.71, 'balanced_accuracy': 0.66, ...}
    """
    from stocksent.corpus import read_corpus
    from stocksent.evaluation.groups import BY, group_keys, group_metrics
    from stocksent.splits import recorded_entries, recorded_splits

    if by is not None and by not in BY:
        raise StocksentError(f"--by must be one of {', '.join(BY)}; got {by!r}")
    if split not in (None, "test", "all"):
        raise StocksentError("--split must be test or all")
    recorded = model.config.get("data", {})
    entries = recorded_entries(recorded)
    if data_path is None:
        if not entries:
            raise StocksentError("no data file recorded with this model; pass --data PATH")
        for f in entries:
            if not Path(f["path"]).is_file():
                raise StocksentError(f"data file not found: {f['path']}; pass --data PATH")
        files = [Path(f["path"]) for f in entries]
    else:
        files = _given_files(data_path)
    corpus = read_corpus(files, model.text_options, keep_tickers=by == "ticker", files=files, drop_empty=False)
    is_training_data = sorted(f["sha256"] for f in corpus.files) == sorted(f.get("sha256") or "" for f in entries)
    split = split or ("test" if is_training_data else "all")
    if split == "test":
        if not is_training_data:
            shown = files[0] if len(files) == 1 else f"the {len(files)} files given"
            raise StocksentError(
                f"--split test needs the data the model was trained on; {shown} differs "
                "(its sha256 does not match): use --split all"
            )
        splits = recorded_splits(recorded, model.text_options, files, keep_tickers=by == "ticker", corpus=corpus)
        part = splits.test
        words, tokens, labels, times, tickers = splits.words, part.encoded, part.labels, part.times, part.tickers
        skipped = int(recorded.get("skipped_unlabelled", 0) or 0)
    else:
        every = corpus.select(None)  # messages without words have no prediction: left out, as in training
        words, tokens, labels, times, tickers = corpus.words, every.tokens, every.labels, every.times, every.tickers
        skipped = corpus.skipped
    p_bullish = model.predict_proba_encoded(tokens, words)
    result = classification_metrics(labels, p_bullish, model.threshold)
    result = {**result, "split": split, "skipped_unlabelled": skipped}
    if by is not None:
        keys = group_keys(by, tickers, times)
        result["by"] = by
        result["groups"] = group_metrics(labels, p_bullish, model.threshold, keys, by)
    return result
