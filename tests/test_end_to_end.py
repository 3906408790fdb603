"""The whole dataset, the way a user runs it: train the default preset, evaluate, predict."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import DATA_PATH

pytestmark = pytest.mark.slow


def stocksent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stocksent", *args], capture_output=True, text=True, check=False)


def test_default_preset_on_full_dataset(tmp_path) -> None:
    out = tmp_path / "default"
    run = stocksent("train", "--data", str(DATA_PATH), "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Epoch: 1/" in run.stderr and "Val Accuracy:" in run.stderr

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == {"train": 77572, "val": 9696, "test": 9698}
    # The accuracy issue's bar (the tutorial reported 0.717). Measured here: 0.793 on this split;
    # 0.784 and 0.782 with split seeds 2 and 3 (README), so another CPU's rounding leaves margin.
    assert metrics["test"]["accuracy"] >= 0.78, metrics["test"]

    evaluated = stocksent("evaluate", "--model", str(out), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)

    predicted = stocksent("predict", "--model", str(out), "--json",
                          "$SPY breaking out, loading calls, new highs coming",
                          "$SPY crash incoming, buying puts, this market is going down hard")
    labels = [json.loads(line)["label"] for line in predicted.stdout.splitlines()]
    assert labels == ["bullish", "bearish"]
