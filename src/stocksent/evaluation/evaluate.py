"""Scoring a trained model on labelled data: its own test split, or every row of other files."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stocksent.errors import StocksentError
from stocksent.evaluation.metrics import classification_metrics

if TYPE_CHECKING:
    from stocksent.sentiment import SentimentModel

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


def _recorded_shas(recorded: dict) -> list[str]:
    files = recorded.get("files") or ([{"sha256": recorded.get("sha256")}] if recorded.get("sha256") else [])
    return sorted(f.get("sha256") or "" for f in files)


def evaluate(
    model: SentimentModel, data_path: DataPaths | None = None, split: str | None = None, by: str | None = None
) -> dict:
    """Metrics dict as `evaluate --json` prints it.

    `split="test"` rebuilds the test split recorded at training, which is only meaningful on the very
    files the model was trained on (checked by sha256); `split=None` picks it for those files and
    `"all"` for any other. `by` ("ticker" or "month") adds `groups`: the metrics per ticker or month.

    >>> evaluate(model, by="month")["groups"][0]  # doctest: +SKIP
    {'group': '2020-11', 'n': 312, 'accuracy': 0.71, 'balanced_accuracy': 0.66, ...}
    """
    from stocksent.corpus import read_corpus
    from stocksent.dataset import sha256_file
    from stocksent.evaluation.groups import BY, group_keys, group_metrics
    from stocksent.splits import recorded_splits

    if by is not None and by not in BY:
        raise StocksentError(f"--by must be one of {', '.join(BY)}; got {by!r}")
    if split not in (None, "test", "all"):
        raise StocksentError("--split must be test or all")
    recorded = model.config.get("data", {})
    if data_path is None and not (recorded.get("files") or recorded.get("path")):
        raise StocksentError("no data file recorded with this model; pass --data PATH")
    if data_path is None:
        for f in recorded.get("files") or [{"path": recorded["path"]}]:
            if not Path(f["path"]).is_file():
                raise StocksentError(f"data file not found: {f['path']}; pass --data PATH")
        files = [Path(f["path"]) for f in recorded.get("files") or [{"path": recorded["path"]}]]
    else:
        files = _given_files(data_path)
    is_training_data = sorted(sha256_file(f) for f in files) == _recorded_shas(recorded)
    split = split or ("test" if is_training_data else "all")
    if split == "test":
        if not is_training_data:
            shown = files[0] if len(files) == 1 else f"the {len(files)} files given"
            raise StocksentError(
                f"--split test needs the data the model was trained on; {shown} differs "
                "(its sha256 does not match): use --split all"
            )
        part = recorded_splits(recorded, model.text_options, files, keep_tickers=by == "ticker").test
        messages, labels, times, tickers, skipped = part.messages, part.labels, part.times, part.tickers, None
    else:
        corpus = read_corpus(files, model.text_options, keep_text=True, keep_tickers=by == "ticker", drop_empty=False)
        messages, labels, times, tickers, skipped = corpus.texts, corpus.labels, corpus.times, corpus.tickers, corpus
    p_bullish = model.predict_proba(messages.tolist() if hasattr(messages, "tolist") else list(messages))
    result = classification_metrics(labels, p_bullish, model.threshold)
    result = {**result, "split": split, "skipped_unlabelled": skipped.skipped if skipped else _test_skipped(recorded)}
    if by is not None:
        keys = group_keys(by, tickers, times)
        result["by"] = by
        result["groups"] = group_metrics(labels, p_bullish, model.threshold, keys, by)
    return result


def _test_skipped(recorded: dict) -> int:
    return int(recorded.get("skipped_unlabelled", 0) or 0)
