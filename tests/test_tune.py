"""`tune`: short real trials end to end, pruning through train's on_epoch hook, validation-only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest

import stocksent.tools.tune as tune_module
import stocksent.training.run
from conftest import DATA_PATH, labelled_of
from stocksent.cli import main
from stocksent.config import load_config_file, preset
from stocksent.labels import LABELS
from stocksent.splits import load_splits
from stocksent.text import TextOptions


def tiny_space(trial, text_params=()):
    """Tiny networks so each trial takes seconds; the real space is exercised by `suggest` itself."""
    return {
        "lr": trial.suggest_float("lr", 3e-3, 1e-2, log=True),
        "keep_prob": trial.suggest_float("keep_prob", 0.5, 0.9),
        "embed_size": 16,
        "lstm_sizes": tune_module.lstm_sizes(trial.suggest_categorical("lstm_sizes", ["8"])),
        "batch_size": 128,
    }


def keys(obj) -> set:
    if isinstance(obj, dict):
        return set(obj) | set().union(*(keys(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(keys(v) for v in obj)) if obj else set()
    return set()


@pytest.fixture(scope="module")
def subset_file(tmp_path_factory) -> Path:
    """The first 2,500 labelled real messages as a CSV: a small file whose own test split is held out."""
    messages, labels = labelled_of(DATA_PATH)
    path = tmp_path_factory.mktemp("tune-data") / "subset.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["message", "sentiment"])
        writer.writerows((m, LABELS[y]) for m, y in zip(messages[:2500], labels[:2500]))
    return path


def test_tune_two_trials_end_to_end_writes_a_preset_train_accepts(subset_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tune_module, "suggest", tiny_space)
    real_train = stocksent.training.train
    trial_data: list[str] = []

    def train_without_results(config, on_epoch=None):
        trial_data.append(config.data)
        seen = labelled_of(config.data)[0]
        real_train(config, on_epoch=on_epoch)
        trial_data.append(seen)
        return None  # tune must decide from the per-epoch validation rows alone, never the test block

    monkeypatch.setattr(stocksent.training.run, "train", train_without_results)
    preset_file = tmp_path / "tuned.json"
    assert (
        main(
            [
                "tune",
                "--data",
                str(subset_file),
                "--trials",
                "2",
                "--epochs",
                "1",
                "--max-examples",
                "2000",
                "--out",
                str(preset_file),
            ]
        )
        == 0
    )
    assert "train --config" in capsys.readouterr().out
    written = json.loads(preset_file.read_text())
    info = written["tune"]
    assert info["trials"] == 2 and info["completed"] == 2
    assert info["best_val_accuracy"] == max(t["val_accuracy"] for t in info["history"])
    assert set(info["searched_text_options"]) <= set(tune_module.TEXT_PARAMS)
    assert "test" not in keys(written)
    assert not list(tmp_path.glob("trial-*"))  # trial directories are temporary
    assert written["train"]["split_seed"] == 1

    monkeypatch.undo()
    options = load_config_file(str(preset_file))
    assert options["embed_size"] == 16 and options["lstm_sizes"] == (8,)
    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                "--config",
                str(preset_file),
                "--data",
                str(subset_file),
                "--out",
                str(model),
                "--epochs",
                "1",
                "--seed",
                "7",
            ]
        )
        == 0
    )
    config = json.loads((model / "config.json").read_text())
    assert config["train"]["lr"] == written["train"]["lr"] and config["train"]["lstm_sizes"] == [8]
    # The final model's test split: no trial trained or validated on any of its messages.
    test = load_splits(subset_file, TextOptions.from_dict(config["text"]), config["data"]["split_seed"]).splits.test
    test = list(test.messages)
    assert len(trial_data) == 4 and len(test) == 250
    for seen in trial_data[1::2]:
        # Copies of test messages go too (the real data repeats some), so at most 2,250 rows remain.
        assert 2000 < len(seen) <= 2500 - len(test) and not set(seen) & set(test)


def test_weak_trials_are_pruned_after_their_first_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(tune_module, "suggest", tiny_space)
    objective = tune_module.make_objective(
        {"data": str(DATA_PATH), "epochs": 3, "max_examples": 1000, "seed": 1}, tmp_path, ()
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]  # stopped after epoch 1 of 3
    assert not (tmp_path / "trial-0").exists()


def test_suggest_gives_valid_train_configs():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        params = tune_module.suggest(study.ask())
        preset("default", **params)  # validates every field


def test_text_options_that_reshuffle_the_split_are_not_searched(tmp_path):
    messages = [f"$SPY message number {i} going up" for i in range(40)]
    base = preset("default")

    def labelled_file(name: str, rows: list[str]) -> list[Path]:
        path = tmp_path / name
        path.write_text("message,sentiment\n" + "".join(f"{m},bullish\n" for m in rows), encoding="utf-8")
        return [path]

    # keep_emoji=False empties rocket-only messages: another split, so text options must stay fixed.
    assert tune_module.text_params(labelled_file("rockets.csv", messages + ["🚀🚀🚀"] * 5), base) == ()
    assert tune_module.text_params(labelled_file("plain.csv", messages), base) == tuple(
        n for n in tune_module.TEXT_PARAMS if n in base.__dataclass_fields__
    )


def test_tune_user_errors(tmp_path, capsys):
    assert main(["tune", "--data", str(DATA_PATH), "--trials", "1", "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err
    assert main(["tune", "--data", str(DATA_PATH), "--trials", "1", "--out", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tune", "--trials", "0"])
