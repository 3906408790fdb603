"""Hyperparameter search with Optuna, judged on validation data only, written as a preset file.

Each trial is an ordinary `train(config)` run in a throw-away directory, on a copy of the data
without the messages of the test split that `train --config FILE` will later make (the one split
path, `splits.load_splits`: the same files, the same dedup, the same pinned split seed), so no
choice here is informed by those messages, whatever subset or seed the trials use. The objective is the best validation accuracy seen through `train`'s `on_epoch` hook,
which also reports it per epoch so the pruner can stop weak trials early; the test score `train`
computes at the end is never read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stocksent.atomic import write_json
from stocksent.errors import StocksentError

logger = logging.getLogger(__name__)
BASE_PRESET = "default"
LSTM_CHOICES = ("64", "128", "256", "64,32", "128,64", "256,128")  # strings: Optuna's categoricals are scalars
# Options that change normalisation; searched only if they leave the split unchanged (see text_params).
TEXT_PARAMS: tuple[str, ...] = ("keep_emoji", "keep_cashtags")


def suggest(trial, text_params: tuple[str, ...] = TEXT_PARAMS) -> dict[str, Any]:
    """One point of the search space, as TrainConfig fields (the default preset supplies the rest)."""
    params = {
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "keep_prob": trial.suggest_float("keep_prob", 0.3, 0.9),
        "embed_size": trial.suggest_categorical("embed_size", [64, 128, 200, 300]),
        "lstm_sizes": lstm_sizes(trial.suggest_categorical("lstm_sizes", LSTM_CHOICES)),
        "min_count": trial.suggest_int("min_count", 1, 5),
        "word_dropout": trial.suggest_float("word_dropout", 0.0, 0.4),
        "lr_decay": trial.suggest_float("lr_decay", 0.6, 1.0),
        "ngram_lr": trial.suggest_float("ngram_lr", 3e-3, 0.1, log=True),
    }
    for name in text_params:
        params[name] = trial.suggest_categorical(name, [True, False])
    return params


def lstm_sizes(choice: str) -> tuple[int, ...]:
    return tuple(int(size) for size in choice.split(","))


def text_params(data, base, candidates: tuple[str, ...] = TEXT_PARAMS) -> tuple[str, ...]:
    """The text options safe to search: those whose every combination yields the very same split.

    The split drops messages left without tokens before splitting, so an option that empties a
    different number of messages reshuffles it, and the held-out test split would depend on the
    trial. Such options stay at the preset's value. `data`: the files, read once here.
    """
    from stocksent.corpus import read_corpus
    from stocksent.splits import load_splits, splits_sha256

    names = tuple(n for n in candidates if n in base.__dataclass_fields__)
    if not names:
        return ()
    fingerprints = set()
    for values in itertools.product([True, False], repeat=len(names)):
        options = dataclasses.replace(base, **dict(zip(names, values))).text_options
        corpus = read_corpus(data, options, keep_text=True, files=data, drop_empty=False)
        loaded = load_splits(None, options, base.effective_split_seed, files=data, corpus=corpus)
        fingerprints.add(tuple(splits_sha256(loaded.splits).values()))
    if len(fingerprints) > 1:
        log(f"not searching {', '.join(names)}: they change which messages fall in each split")
        return ()
    return names


def write_without_test(corpus, test_messages: set[str], path: Path) -> int:
    """The labelled messages (duplicates already dropped) whose text is not in train's test split, as
    JSON Lines, in input order.

    Trials split this file as they like (any --max-examples, any seed): none of it can be a test
    message of the model later trained with the preset, copies of test messages included.
    """
    from stocksent.labels import LABELS

    kept = 0
    with open(path, "w", encoding="ascii") as handle:
        for message, label in zip(corpus.texts, corpus.labels.astype(int).tolist()):
            if message not in test_messages:
                handle.write(json.dumps({"message": message, "sentiment": LABELS[label]}) + "\n")
                kept += 1
    return kept


def log(message: str) -> None:
    logger.info(message)


def make_objective(base_overrides: dict[str, Any], workdir: Path, searched_text: tuple[str, ...]) -> Callable:
    import optuna

    from stocksent.config import preset
    from stocksent.training.run import train

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, searched_text)
        # The options exactly as TrainConfig takes them (JSON-ready), for the preset file.
        trial.set_user_attr("train", {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})
        out = workdir / f"trial-{trial.number}"
        best = [0.0]

        def on_epoch(row: dict) -> None:
            best[0] = max(best[0], row["val_accuracy"])
            trial.report(row["val_accuracy"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation accuracy {row['val_accuracy']:.4f} at epoch {row['epoch']}")

        try:
            # The blend runs after the last epoch and the objective never sees it: skip its ~15 s here
            # (the preset file leaves it at the default preset's value, on).
            train(preset(BASE_PRESET, out=str(out), **base_overrides, **params, linear_blend=False), on_epoch=on_epoch)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        # Only validation numbers: the returned metrics' test block is deliberately ignored.
        return best[0]

    return objective


def tune(
    data: str | None,
    trials: int,
    timeout: float | None = None,
    out: str | Path | None = None,
    epochs: int | None = None,
    max_examples: int | None = None,
    seed: int = 1,
    num_threads: int | None = None,
    pruner=None,
) -> dict:
    """Run the study and write the preset file; returns what was written."""
    try:
        import optuna
    except ImportError:
        raise StocksentError("tune needs Optuna: pip install 'stocksent[tune]'") from None
    from stocksent.config import preset
    from stocksent.corpus import expand_data, read_corpus
    from stocksent.dataset import locate_dataset
    from stocksent.splits import load_splits

    if trials < 1:
        raise StocksentError("--trials must be at least 1")
    if timeout is not None and timeout <= 0:
        raise StocksentError("--timeout must be positive")
    data_path = locate_dataset(data)
    files = expand_data(data_path)
    overrides = {
        k: v
        for k, v in dict(epochs=epochs, max_examples=max_examples, seed=seed, num_threads=num_threads).items()
        if v is not None
    }
    base = preset(BASE_PRESET, data=str(data_path), **overrides)  # validates before any trial runs
    out = Path(out) if out else Path("runs") / f"tune-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    if out.is_dir():
        raise StocksentError(f"--out {out} is a directory; give a file name such as tuned.json")
    from stocksent.writers import refuse_inputs

    refuse_inputs([out], [data_path])
    searched_text = text_params(files, base)
    # The test split that `train --config OUT` will make: train's split of the full file, this seed
    # (pinned in the preset).
    corpus = read_corpus(files, base.text_options, keep_text=True, files=files, drop_empty=False)
    loaded = load_splits(None, base.text_options, seed, files=files, corpus=corpus)
    held_out = loaded.splits.test

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stocksent-tune-") as workdir:
        tune_data = Path(workdir) / "without-test.jsonl"
        rows = write_without_test(corpus.select(None), set(held_out.messages), tune_data)
        labelled = sum(f["labelled"] for f in loaded.files)
        log(f"tuning on {rows} of {labelled} labelled rows: the test split's messages are left out")
        study.optimize(
            make_objective({"data": str(tune_data), **overrides}, Path(workdir), searched_text),
            n_trials=trials,
            timeout=timeout,
            callbacks=[report_trial],
            catch=(),
        )
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise StocksentError("no trial finished: give more --trials or a longer --timeout")

    best = study.best_trial
    result = {
        # `train --config FILE` reads this block (load_config_file accepts a "train" key).
        # split_seed is pinned: another split would put messages the trials learned from in its test split.
        "train": {"preset": BASE_PRESET, "split_seed": seed, **best.user_attrs["train"]},
        "tune": {
            "objective": "best validation accuracy over epochs; trials never see the test split",
            "best_val_accuracy": best.value,
            "best_trial": best.number,
            "trials": len(study.trials),
            "completed": len(completed),
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
            "searched_text_options": list(searched_text),
            "data": {"path": str(data_path), "sha256": loaded.sha256},
            "rows_used": rows,
            "held_out_test_messages": len(held_out),
            "settings": overrides,
            "seconds_total": time.perf_counter() - started,
            "history": [
                {
                    "number": t.number,
                    "state": t.state.name,
                    "val_accuracy": t.value,
                    "epochs": len(t.intermediate_values),
                    "params": t.params,
                }
                for t in study.trials
            ],
        },
    }
    write_json(out, result)
    result["path"] = str(out)
    return result


def report_trial(study, trial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    log(f"trial {trial.number}: {trial.state.name.lower()}  val accuracy {value}  {trial.params}")
