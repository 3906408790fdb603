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


def test_default_preset_on_full_dataset(tmp_path, default_model_dir) -> None:
    out = default_model_dir
    log = (out.parent / "train.stderr").read_text()
    assert "Epoch: 1/" in log and "Val Accuracy:" in log

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == {"train": 77572, "val": 9696, "test": 9698}
    # The accuracy issue's bar (the tutorial reported 0.717). Measured here: 0.799 on this split;
    # 0.791 and 0.785 with split seeds 2 and 3 (docs/results.md), so another CPU's rounding leaves margin.
    assert metrics["test"]["accuracy"] >= 0.78, metrics["test"]
    assert metrics["blend"]["linear_weight"] > 0 and metrics["blend"]["network_weight"] > 0

    # The linear peer on the same split, in the same run. Measured here: 0.7994 vs 0.7919; over
    # seeds 1-3 the difference was +0.75, -0.38 and +0.05 points, so the test allows half a point
    # of split noise rather than demanding a win that one split cannot show.
    baseline = stocksent("baseline", "--data", str(DATA_PATH), "--out", str(tmp_path / "baseline"))
    assert baseline.returncode == 0, baseline.stderr[-2000:]
    peer = json.loads((tmp_path / "baseline" / "metrics.json").read_text())["test"]
    assert peer["n"] == metrics["test"]["n"]
    assert metrics["test"]["accuracy"] >= peer["accuracy"] - 0.005, (metrics["test"], peer)

    evaluated = stocksent("evaluate", "--model", str(out), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)

    predicted = stocksent(
        "predict",
        "--model",
        str(out),
        "--json",
        "$SPY breaking out, loading calls, new highs coming",
        "$SPY crash incoming, buying puts, this market is going down hard",
    )
    labels = [json.loads(line)["label"] for line in predicted.stdout.splitlines()]
    assert labels == ["bullish", "bearish"]
