"""Tests for stocksent.evaluation.evaluate: the recorded test split on the training file, every row elsewhere."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from conftest import records_of
from stocksent import SentimentModel, StocksentError
from stocksent.cli import main
from stocksent.evaluation.evaluate import evaluate

METRIC_KEYS = {"n", "accuracy", "precision", "recall", "f1", "roc_auc", "confusion", "majority_accuracy", "threshold"}


@pytest.fixture(scope="module")
def model(small_model_dir) -> SentimentModel:
    """float32, as training scores its test split (and as `stocksent evaluate` loads models)."""
    return SentimentModel.load(small_model_dir, precision="float32")


@pytest.fixture(scope="module")
def other_csv(tmp_path_factory) -> Path:
    """240 real labelled rows the small model never saw, as a plain CSV."""
    from conftest import DATA_PATH

    records = records_of(DATA_PATH)[10_000:10_240]
    path = tmp_path_factory.mktemp("eval") / "other.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["message", "sentiment"])
        writer.writerows([r["message"], r["sentiment"]] for r in records)
    return path


def test_test_split_of_the_training_file_reproduces_metrics_json(model, small_model_dir) -> None:
    recorded = json.loads((small_model_dir / "metrics.json").read_text())["test"]
    result = evaluate(model)  # the recorded data path, its test split
    assert result["split"] == "test"
    assert {k: result[k] for k in recorded} == recorded  # exactly, not approximately
    assert result["n"] == json.loads((small_model_dir / "config.json").read_text())["data"]["split"]["test"]
    assert evaluate(model, model.config["data"]["path"], "test") == result


def test_a_copy_of_the_training_file_is_still_the_training_file(model, small_model_dir, tmp_path) -> None:
    copy = tmp_path / "renamed.gz"
    shutil.copyfile(model.config["data"]["path"], copy)
    recorded = json.loads((small_model_dir / "metrics.json").read_text())["test"]
    result = evaluate(model, copy)
    assert result["split"] == "test"
    assert {k: result[k] for k in recorded} == recorded


def test_another_file_defaults_to_all_rows(model, other_csv) -> None:
    result = evaluate(model, other_csv)
    assert result["split"] == "all"
    assert result["n"] == 240
    assert set(result) == METRIC_KEYS | {"split", "skipped_unlabelled"}
    assert result["skipped_unlabelled"] == 0
    assert sum(map(sum, result["confusion"])) == 240
    assert evaluate(model, other_csv, "all") == result


def test_split_test_on_another_file_is_an_error(model, other_csv) -> None:
    with pytest.raises(StocksentError, match="--split all"):
        evaluate(model, other_csv, "test")


def test_unlabelled_rows_are_counted(model, other_csv, tmp_path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(other_csv.read_text(encoding="utf-8") + "no label here,\nnor here,\n", encoding="utf-8")
    result = evaluate(model, path)
    assert result["n"] == 240 and result["skipped_unlabelled"] == 2
    # A label that is none of bullish/bearish, 1/0, true/false is an error naming it, not a skipped row.
    path.write_text(other_csv.read_text(encoding="utf-8") + "neutral one,neutral\n", encoding="utf-8")
    with pytest.raises(StocksentError, match=r"mixed.csv (line|row) \d+: label 'neutral' is not bullish or bearish"):
        evaluate(model, path)


def test_bad_data_and_split(model, tmp_path) -> None:
    with pytest.raises(StocksentError, match="not found"):
        evaluate(model, tmp_path / "missing.csv")
    with pytest.raises(StocksentError, match="--split"):
        evaluate(model, model.config["data"]["path"], "validation")
    unlabelled = tmp_path / "texts.txt"
    unlabelled.write_text("$SPY up\n$SPY down\n", encoding="utf-8")
    with pytest.raises(StocksentError, match="bullish or bearish"):
        evaluate(model, unlabelled)


def test_recorded_data_file_gone(small_model_dir, tmp_path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(small_model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["data"]["path"] = config["data"]["files"][0]["path"] = str(tmp_path / "moved-away.gz")
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(StocksentError, match="--data"):
        evaluate(SentimentModel.load(copy))


def test_cli_evaluate_json_matches_the_api(small_model_dir, other_csv, capsys) -> None:
    assert main(["evaluate", "--model", str(small_model_dir), "--data", str(other_csv), "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    printed = json.loads(out)
    assert printed == evaluate(SentimentModel.load(small_model_dir, precision="float32"), other_csv)
    assert main(["evaluate", "--model", str(small_model_dir), "--data", str(other_csv), "--split", "test"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "--split all" in err


def test_no_data_path_recorded_and_none_given(small_model_dir, tmp_path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(small_model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    del config["data"]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(StocksentError, match="--data"):
        evaluate(SentimentModel.load(copy))


def test_a_directory_as_data(model, tmp_path) -> None:
    with pytest.raises(StocksentError, match="directory"):
        evaluate(model, tmp_path)


@pytest.fixture(scope="module")
def emotions_csv(tmp_path_factory) -> Path:
    """Every 7th row of StockEmotions 2020 (37 tickers, dated, all months), as a CSV with its columns."""
    import gzip

    from conftest import DATA_PATH

    with gzip.open(DATA_PATH.parent / "StockEmotions_2020.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[::7]
    path = tmp_path_factory.mktemp("emotions") / "emotions.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["id", "date", "ticker", "sentiment", "message"], extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def emotions_model(emotions_csv, tmp_path_factory) -> Path:
    """A tiny model trained with the time-ordered split, through the CLI."""
    out = tmp_path_factory.mktemp("emotions-model") / "m"
    args = ["train", "--data", str(emotions_csv), "--out", str(out), "--split", "time", "--epochs", "1"]
    args += ["--embed-size", "16", "--lstm-sizes", "8", "--ngram-buckets", "4096", "--threads", "1", "--device", "cpu"]
    assert main(args) == 0
    return out


def test_evaluate_by_month_and_ticker_on_the_newest_tenth(emotions_model, emotions_csv, capsys) -> None:
    model = SentimentModel.load(emotions_model, precision="float32")
    with emotions_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    newest = sorted(range(len(rows)), key=lambda i: rows[i]["date"])[int(0.8 * len(rows)) + int(0.1 * len(rows)) :]
    by_month = evaluate(model, by="month")
    assert by_month["split"] == "test" and by_month["n"] == len(newest)
    months = {}
    for i in newest:
        months[rows[i]["date"][:7]] = months.get(rows[i]["date"][:7], 0) + 1
    assert [(g["group"], g["n"]) for g in by_month["groups"]] == sorted(months.items())
    by_ticker = evaluate(model, by="ticker")
    tickers = {}
    for i in newest:
        tickers[rows[i]["ticker"]] = tickers.get(rows[i]["ticker"], 0) + 1
    assert {g["group"]: g["n"] for g in by_ticker["groups"]} == tickers
    assert [g["n"] for g in by_ticker["groups"]] == sorted(tickers.values(), reverse=True)
    # Each group's numbers are those of its messages' own predictions.
    messages = [rows[i]["message"] for i in newest]
    predicted = model.predict_proba(messages) >= model.threshold
    truth = [rows[i]["sentiment"] == "bullish" for i in newest]
    for group in by_ticker["groups"][:3]:
        members = [j for j, i in enumerate(newest) if rows[i]["ticker"] == group["group"]]
        y, p = [truth[j] for j in members], [bool(predicted[j]) for j in members]
        assert group["accuracy"] == pytest.approx(sum(a == b for a, b in zip(y, p)) / len(y))
        assert group["share_bullish_true"] == pytest.approx(sum(y) / len(y))
        assert group["share_bullish_predicted"] == pytest.approx(sum(p) / len(p))
        recalls = [sum(a == b for a, b in zip(y, p) if a == c) / y.count(c) for c in (False, True) if c in y]
        assert group["balanced_accuracy"] == pytest.approx(sum(recalls) / len(recalls))
    assert main(["evaluate", "--model", str(emotions_model), "--by", "month"]) == 0
    out = capsys.readouterr().out
    assert "balanced" in out and all(month in out for month in months)
    assert main(["evaluate", "--model", str(emotions_model), "--by", "ticker", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == by_ticker["groups"]


def test_evaluate_by_month_needs_times(model, other_csv) -> None:
    with pytest.raises(StocksentError, match="--by month needs a time per message"):
        evaluate(model, other_csv, by="month")
    tickers = evaluate(model, other_csv, by="ticker")  # from the $TAGS in the text
    assert tickers["groups"][0]["group"] == "SPY" and sum(g["n"] for g in tickers["groups"]) >= tickers["n"]
