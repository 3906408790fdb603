"""The linear peer: TF-IDF word 1-2 grams + logistic regression on the LSTM's own split.

An LSTM that loses to this model is not worth its cost, so the comparison must be fair: the same
messages (train's split, `splits.load_splits`, with the default preset's text options and the same
seed, or a trained model's recorded one), the same tokens the LSTM sees, C and min_df chosen on
the validation split only, one look at the test split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stocksent.atomic import write_json
from stocksent.errors import StocksentError
from stocksent.training.blend import fit_logreg

log = logging.getLogger(__name__)
METRICS = "metrics.json"
GRID_C: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
GRID_MIN_DF: tuple[int, ...] = (1, 2)


def _tokens(tokens: list[str]) -> list[str]:
    """Documents are already token lists (the LSTM's): the vectorizer must not re-tokenise them."""
    return tokens


def vectorizer(min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="word",
        tokenizer=_tokens,
        preprocessor=_tokens,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        min_df=min_df,
        sublinear_tf=True,
    )


def run_baseline(
    data: str | Sequence[str] | None,
    out: str | Path,
    seed: int = 1,
    max_examples: int | None = None,
    preset_name: str = "default",
    grid_c: Sequence[float] = GRID_C,
    grid_min_df: Sequence[int] = GRID_MIN_DF,
    split: str = "random",
    model_dir: str | Path | None = None,
) -> dict:
    """Tune on validation, score once on test, write `out/metrics.json`; returns the metrics dict.

    `model_dir`: the splits that model was trained and tested on, rebuilt from its config.json
    (files checked by sha256; `data` then points at them where they moved), with its text options;
    `seed`, `max_examples` and `split` are then the model's.
    """
    from stocksent.config import preset
    from stocksent.evaluation.metrics import classification_metrics
    from stocksent.readers import expand_inputs
    from stocksent.splits import load_splits, recorded_splits, splits_sha256
    from stocksent.writers import refuse_inputs

    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StocksentError(f"--out {out} is a file; give a directory")
    if data is not None:
        refuse_inputs([out], expand_inputs(data), directories=True)
    # Validates seed/max_examples exactly as `train` would, and gives its text options.
    if model_dir is not None:
        from stocksent.artifacts import CONFIG, read_json
        from stocksent.text import TextOptions

        trained = read_json(Path(model_dir) / CONFIG)
        record, text_options = trained.get("data", {}), TextOptions.from_dict(trained.get("text", {}))
        splits = recorded_splits(record, text_options, data)
        data_path = record.get("path")
    else:
        config = preset(preset_name, data=data, seed=seed, max_examples=max_examples, split=split)
        text_options = config.text_options
        loaded = load_splits(
            config.data, text_options, config.effective_split_seed, config.max_examples, split=config.split
        )
        data_path, splits = loaded.path, loaded.splits
        record = loaded.record(config.effective_split_seed, config.max_examples)
    if len(np.unique(splits.train.labels)) < 2:
        raise StocksentError(f"the training split of {data_path} has only one class; use more data")
    train_y = splits.train.labels.astype(int)
    val_y = splits.val.labels.astype(int)

    grid, best = [], None
    for min_df in grid_min_df:
        vec = vectorizer(min_df)
        x_train = vec.fit_transform(splits.train.tokens)
        x_val = vec.transform(splits.val.tokens)
        for c in grid_c:
            model = fit_logreg(x_train, train_y, c, seed)
            accuracy = float((model.predict(x_val) == val_y).mean())
            grid.append({"C": c, "min_df": min_df, "val_accuracy": accuracy, "features": x_train.shape[1]})
            log.info(f"C={c:<6g} min_df={min_df}  val accuracy {accuracy:.4f}")
            if best is None or accuracy > best[0]:
                best = (accuracy, c, min_df, vec, model)

    val_accuracy, c, min_df, vec, model = best
    test_p = model.predict_proba(vec.transform(splits.test.tokens))[:, 1]
    metrics = {
        "model": "tfidf-logreg",
        "description": "TF-IDF word 1-2 grams (sublinear tf) + logistic regression (liblinear), "
        "C and min_df chosen on the validation split",
        "test": classification_metrics(splits.test.labels, test_p),
        "validation": {"accuracy": val_accuracy, "chosen": {"C": c, "min_df": min_df}, "grid": grid},
        "features": len(vec.vocabulary_),
        "split": splits.sizes(),
        "split_sha256": splits_sha256(splits),
        "seed": seed,
        "text": text_options.to_dict(),
        "data": record,
        "seconds_total": time.perf_counter() - started,
    }
    write_json(out / METRICS, metrics)
    return metrics
