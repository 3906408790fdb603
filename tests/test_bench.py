"""Tests for `stocksent bench`: a quick run on a slice of the real data gives every figure (not speed goals)."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from stocksent.cli import main
from stocksent.tools.bench import TARGETS, format_table


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory) -> dict:
    from conftest import DATA_PATH

    if not DATA_PATH.is_file():
        pytest.fail(f"real dataset missing: expected it at {DATA_PATH}")
    out = tmp_path_factory.mktemp("bench") / "out.json"
    threads = torch.get_num_threads()
    try:
        with open(out, "w") as handle, contextlib.redirect_stdout(handle):
            code = main(
                ["bench", "--quick", "--json", "--data", str(DATA_PATH), "--max-examples", "2000", "--threads", "1"]
            )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return json.loads(out.read_text())


def test_quick_bench_reports_every_figure(quick_result) -> None:
    r = quick_result
    for key in (
        "train_epoch_seconds",
        "padded_epoch_seconds",
        "train_speedup",
        "train_peak_rss_mb",
        "padded_peak_rss_mb",
        "predict_msgs_per_second",
        "predict_msgs_per_second_bfloat16",
        "predict_msgs_per_second_float32",
        "predict_msgs_per_second_plain",
        "latency_ms_p50",
        "latency_ms_p99",
        "load_seconds",
        "predict_peak_rss_mb",
        "accuracy_gap_points",
    ):
        assert isinstance(r[key], (int, float)) and r[key] >= 0, key
    assert r["train_epoch_seconds"] > 0 and r["padded_epoch_seconds"] > 0
    assert r["train_speedup"] == pytest.approx(r["padded_epoch_seconds"] / r["train_epoch_seconds"])
    assert r["latency_ms_p50"] <= r["latency_ms_p99"]
    assert r["predict_precision"] == r["predict_engine"]["precision"]
    assert r["predict_engine"]["engine"] == "native" and r["predict_engine"]["text"] == "native"  # the compiled core
    assert set(r["test_accuracy"]) == {"float32_fast", "bfloat16_fast", "float32_plain"}
    assert all(0 <= a <= 1 for a in r["test_accuracy"].values())
    # float32 fast path and plain forward agree (the test of correctness, not of speed).
    assert r["max_abs_diff_vs_plain"]["float32_fast"] < 1e-4
    assert r["quick"] is True and r["data"]["train"] == 1600 and r["test_messages"] == r["data"]["test"]
    assert "extrapolated" in r["padded_epoch_method"] or "times" in r["padded_epoch_method"]
    assert "trained here" in r["model"]


def test_quick_bench_records_the_machine_and_the_targets(quick_result) -> None:
    m = quick_result["machine"]
    assert {"cpu", "cores", "torch", "torch_threads", "device", "load_average_start", "load_average_end"} <= set(m)
    assert m["torch_threads"] == 1 and m["device"] == "cpu"
    assert set(quick_result["targets"]) == set(TARGETS)
    for key, target in quick_result["targets"].items():
        assert target["value"] == quick_result[key] and isinstance(target["met"], bool)
    table = format_table(quick_result)
    assert table.startswith("machine: ") and "training speedup" in table and "msgs/s" in table
