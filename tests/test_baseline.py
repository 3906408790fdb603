"""The TF-IDF baseline sees exactly the LSTM's messages, and reaches its known accuracy on the full data."""

from __future__ import annotations

import json

import pytest

from conftest import DATA_PATH
from stocksent.artifacts import read_json
from stocksent.cli import main
from stocksent.config import preset
from stocksent.splits import load_splits, recorded_splits, splits_sha256
from stocksent.text import TextOptions
from stocksent.tools.baseline import run_baseline, vectorizer


def lstm_splits(model_dir):
    """The model's splits rebuilt from what training recorded in config.json (as `evaluate` does)."""
    config = read_json(model_dir / "config.json")
    return recorded_splits(config["data"], TextOptions.from_dict(config["text"]))


def test_baseline_and_lstm_see_identical_messages(small_model_dir, tmp_path, capsys):
    # small_model_dir: seed 3, first 3,000 messages; the baseline is told the same.
    out = tmp_path / "baseline"
    assert main(["baseline", "--data", str(DATA_PATH), "--out", str(out), "--seed", "3", "--max-examples", "3000"]) == 0
    assert "chosen on validation" in capsys.readouterr().out
    baseline = json.loads((out / "metrics.json").read_text())
    lstm_metrics = read_json(small_model_dir / "metrics.json")

    assert baseline["split_sha256"] == splits_sha256(lstm_splits(small_model_dir))  # same messages, same order
    assert baseline["split"] == lstm_metrics["split"]
    # Class counts of the test split, from each model's own confusion matrix.
    assert [sum(row) for row in baseline["test"]["confusion"]] == [
        sum(row) for row in lstm_metrics["test"]["confusion"]
    ]
    assert set(baseline["test"]) == set(lstm_metrics["test"])  # the same test block
    assert baseline["validation"]["chosen"]["C"] in [g["C"] for g in baseline["validation"]["grid"]]
    assert baseline["data"]["sha256"] == read_json(small_model_dir / "config.json")["data"]["sha256"]


def test_vectorizer_uses_the_lstm_tokens_as_they_are():
    vec = vectorizer(1).fit([["<TICKER>", "to", "the", "🚀"], ["<TICKER>", "down"]])
    assert {"<TICKER>", "🚀", "<TICKER> to", "the 🚀", "<TICKER> down"} <= set(vec.vocabulary_)


@pytest.mark.slow
def test_full_data_baseline_seed_1(tmp_path):
    # The two best grid points of the full search (C=4, min_df=1 wins: 0.7919 test), to keep the test short.
    metrics = run_baseline(str(DATA_PATH), tmp_path, seed=1, grid_c=(2.0, 4.0), grid_min_df=(1,))
    expected = load_splits(DATA_PATH, preset("default", seed=1).text_options, 1).splits
    assert metrics["split_sha256"] == splits_sha256(expected)  # what `train --seed 1` splits
    assert metrics["split"] == {"train": 77572, "val": 9696, "test": 9698}
    assert metrics["validation"]["chosen"] == {"C": 4.0, "min_df": 1}
    assert metrics["test"]["accuracy"] == pytest.approx(0.7919, abs=0.003)


def test_baseline_errors_are_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["baseline", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["baseline", "--data", str(DATA_PATH), "--out", str(a_file), "--max-examples", "300"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_baseline_on_a_models_recorded_splits(small_model_dir, tmp_path, capsys):
    # --model: the splits rebuilt from the model's config.json (files checked by sha256), its text options.
    out = tmp_path / "baseline"
    assert main(["baseline", "--model", str(small_model_dir), "--out", str(out)]) == 0
    baseline = json.loads((out / "metrics.json").read_text())
    assert baseline["split_sha256"] == splits_sha256(lstm_splits(small_model_dir))
    assert baseline["data"] == read_json(small_model_dir / "config.json")["data"]
    assert baseline["text"] == read_json(small_model_dir / "config.json")["text"]
    capsys.readouterr()
