"""Scoring a trained model on labelled data: its own test split, or every row of another file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stocksent.data import read_labelled, sha256_file
from stocksent.errors import StocksentError
from stocksent.evaluation.metrics import classification_metrics
from stocksent.splits import prepare_splits

if TYPE_CHECKING:
    from stocksent.sentiment import SentimentModel


def evaluate(model: SentimentModel, data_path: str | Path | None = None, split: str | None = None) -> dict:
    """Metrics dict as `evaluate --json` prints it.

    `split="test"` rebuilds the test split recorded at training, which is only meaningful on the very
    file the model was trained on (checked by sha256); `split=None` picks it for that file and
    `"all"` for any other.
    """
    recorded = model.config.get("data", {})
    given = data_path or recorded.get("path")
    if not given:  # not Path(""): that is ".", which exists
        raise StocksentError("no data file recorded with this model; pass --data PATH")
    data_path = Path(given)
    if not data_path.exists():
        raise StocksentError(f"data file not found: {data_path}; pass --data PATH")
    if data_path.is_dir():
        raise StocksentError(f"{data_path} is a directory, not a file; pass --data PATH of a labelled data file")
    is_training_file = sha256_file(data_path) == recorded.get("sha256")
    split = split or ("test" if is_training_file else "all")
    if split not in ("test", "all"):
        raise StocksentError("--split must be test or all")
    data = read_labelled(data_path)
    if split == "test":
        if not is_training_file:
            raise StocksentError(
                f"--split test needs the file the model was trained on; {data_path} differs "
                "(its sha256 does not match): use --split all"
            )
        splits = prepare_splits(data, model.text_options, recorded["split_seed"], recorded.get("max_examples"))
        messages, labels = splits.test.messages, splits.test.labels
    else:
        messages, labels = data.messages, data.labels
    result = classification_metrics(labels, model.predict_proba(messages), model.threshold)
    return {**result, "split": split, "skipped_unlabelled": data.skipped}
