"""stocksent.splits, the one split path: tune, bench and baseline split as train does, so none of them
ever trains on, or chooses by, a message of train's test split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import stocksent.training.run
from conftest import DATA_PATH, labelled_of
from stocksent import train
from stocksent.artifacts import read_json
from stocksent.config import preset
from stocksent.labels import LABELS
from stocksent.splits import load_splits, recorded_splits, splits_sha256
from stocksent.text import TextOptions


@pytest.fixture(scope="module")
def repeated(tmp_path_factory) -> Path:
    """600 labelled rows with repeated ids (a post exported twice, with its text or an edited one) and
    repeated texts under other ids (1,022 messages of the tutorial's file are just "$SPY")."""
    messages, labels = labelled_of(DATA_PATH)
    rows = [(str(i), messages[i], LABELS[labels[i]]) for i in range(400)]
    rows += [(str(i), messages[i] + (" again" if i % 3 else ""), LABELS[labels[i]]) for i in range(0, 300, 3)]
    rows += [(str(1000 + i), messages[i], LABELS[labels[i]]) for i in range(100, 200)]
    path = tmp_path_factory.mktemp("repeated") / "repeated.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "message", "sentiment"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(repeated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "m"
    train(preset("default", data=str(repeated), out=str(out), epochs=1, embed_size=8, lstm_sizes=(4,), num_threads=1))
    return out


def train_test_split(trained: Path):
    config = read_json(trained / "config.json")
    return recorded_splits(config["data"], TextOptions.from_dict(config["text"]))


def test_train_drops_repeated_ids_before_it_splits(trained):
    config = read_json(trained / "config.json")
    assert config["data"]["duplicates"] == 100  # the 100 rows that repeat an id
    assert sum(config["data"]["split"].values()) == 500


def test_baseline_splits_as_train_does(repeated, trained, tmp_path):
    from stocksent.tools.baseline import run_baseline

    splits = train_test_split(trained)
    metrics = run_baseline(str(repeated), tmp_path / "b", seed=1, grid_c=(1.0,), grid_min_df=(1,))
    assert metrics["split_sha256"] == splits_sha256(splits)
    assert metrics["test"]["n"] == len(splits.test)
    by_model = run_baseline(str(repeated), tmp_path / "c", grid_c=(1.0,), grid_min_df=(1,), model_dir=trained)
    assert by_model["split_sha256"] == splits_sha256(splits)


def test_bench_splits_as_train_does(repeated, trained):
    from stocksent.tools.bench.training import bench_config, bench_data

    prepared = bench_data(repeated, bench_config())
    assert splits_sha256(prepared.splits) == splits_sha256(train_test_split(trained))
    assert len(prepared.train_x) == len(prepared.splits.train)


def test_tune_never_sees_a_message_of_trains_test_split(repeated, trained, tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    import stocksent.tools.tune as tune_module

    test_messages = set(train_test_split(trained).test.messages)
    seen: list[list[str]] = []

    def trial(config, on_epoch=None):
        seen.append(labelled_of(config.data)[0])
        on_epoch({"epoch": 1, "val_accuracy": 0.5})

    monkeypatch.setattr(stocksent.training.run, "train", trial)
    result = tune_module.tune(str(repeated), trials=2, out=tmp_path / "t.json", epochs=1)
    assert len(seen) == 2 and result["tune"]["held_out_test_messages"] == len(train_test_split(trained).test)
    for messages in seen:
        assert messages and not set(messages) & test_messages
    assert json.loads((tmp_path / "t.json").read_text())["train"]["split_seed"] == 1


def test_one_rule_for_every_group_size():
    """The rule `splits.split_positions` applies: 80/10/10 by int(), test the rest, deterministic."""
    from stocksent.splits import split_positions

    for n in (0, 7, 20, 1001):
        train_rows, val_rows, test_rows = split_positions(n, "random", 1, None)
        assert (len(train_rows), len(val_rows)) == (int(n * 0.8), int(n * 0.1))
        assert sorted([*train_rows, *val_rows, *test_rows]) == list(range(n))
    again = load_splits(DATA_PATH, TextOptions(), 1, 500).splits
    assert splits_sha256(again) == splits_sha256(load_splits(DATA_PATH, TextOptions(), 1, 500).splits)
