"""rates.json: written by train from the model's own validation split, checked on load, used by the index."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_PATH
from stocksent import SentimentModel
from stocksent.errors import StocksentError
from stocksent.rates import RATES, ValidationRates, read_rates
from stocksent.signals import sentiment_index
from stocksent.signals.index import CORRECTED
from stocksent.signals.quantify import measure_rates

EMOTIONS = DATA_PATH.parent / "StockEmotions_2020.csv.gz"


def test_train_writes_the_rates_of_its_own_validation_split(small_model_dir):
    saved = read_rates(small_model_dir)
    model = SentimentModel.load(small_model_dir, precision="float32")
    again = measure_rates(model)
    assert saved.threshold == model.threshold
    assert (saved.n_pos, saved.n_neg) == (again.n_pos, again.n_neg)
    assert saved.n == json.loads((small_model_dir / "metrics.json").read_text())["split"]["val"]
    # Training's logits and the served engine's agree to float32 round-off: counts within a message or two.
    assert abs(saved.tp - again.tp) <= 2 and abs(saved.fp - again.fp) <= 2
    assert saved.sum_p_pos == pytest.approx(again.sum_p_pos, rel=1e-4)
    assert saved.sum_p2_neg == pytest.approx(again.sum_p2_neg, rel=1e-4)
    assert 0.5 < saved.tpr < 1 and 0 < saved.fpr < 0.5  # a model that learnt something


def test_save_keeps_the_rates_with_the_weights(small_model_dir, tmp_path):
    copy = SentimentModel.load(small_model_dir).save(tmp_path / "copy")
    assert (copy / RATES).read_bytes() == (small_model_dir / RATES).read_bytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, "format 2"),
        ({"tp": -1}, "tp must be a whole number"),
        ({"tp": 10**9}, "cannot exceed"),
        ({"sum_p_pos": float("nan")}, "sum_p_pos must be a finite number"),
        ({"sum_p2_pos": 1e9}, "not those of probabilities"),
        ({"n_neg": 0}, "both classes"),
    ],
)
def test_a_damaged_rates_file_is_refused_in_one_line(small_model_dir, tmp_path, change, message):
    directory = tmp_path / "m"
    shutil.copytree(small_model_dir, directory)
    data = {**json.loads((directory / RATES).read_text()), **change}
    (directory / RATES).write_text(json.dumps(data))
    with pytest.raises(StocksentError, match=message) as caught:
        read_rates(directory)
    assert "\n" not in str(caught.value) and RATES in str(caught.value)


def test_rates_of_other_weights_are_refused(small_model_dir, tmp_path):
    directory = tmp_path / "m"
    shutil.copytree(small_model_dir, directory)
    (directory / RATES).write_text("{not json")
    with pytest.raises(StocksentError, match="not valid JSON"):
        read_rates(directory)
    threshold = read_rates(small_model_dir).threshold
    with pytest.raises(StocksentError, match="other weights"):
        read_rates(small_model_dir, threshold=threshold + 0.01)


@pytest.fixture(scope="module")
def emotions() -> pd.DataFrame:
    return pd.read_csv(EMOTIONS, nrows=2000)


def test_the_index_reports_corrected_shares_beside_the_plain_one(small_model_dir, emotions):
    df = sentiment_index(emotions, small_model_dir, freq="1W")
    columns = list(df.columns)
    assert columns[columns.index("ci_hi") + 1 : columns.index("ci_hi") + 1 + len(CORRECTED)] == list(CORRECTED)
    busy = df[df.n_msgs > 0]
    for name in ("acc", "pacc", "em", "adj"):
        share = busy[f"share_bull_{name}"]
        assert share.between(0, 1).all()
        assert ((busy[f"{name}_lo"] <= share) & (share <= busy[f"{name}_hi"])).all()
        assert busy[f"{name}_clipped"].dtype == bool
    assert (df[df.n_msgs == 0].share_bull_em.isna()).all()


@pytest.mark.parametrize("bullish", [0.15, 0.9])
def test_corrected_shares_recover_a_prior_shift_of_real_messages(small_model_dir, bullish):
    """The validation split the rates came from, resampled to a known share of bullish tags (the source: 54%).

    Real messages and a real model, so the whole path (rates.json, the index's sums and histogram, the
    columns) is checked; how well the rates carry to other data is benchmarks/index_validation.py's question.
    """
    from stocksent.splits import recorded_splits

    model = SentimentModel.load(small_model_dir, precision="float32")
    validation = recorded_splits(model.config["data"], model.text_options).val
    rng = np.random.default_rng(int(bullish * 10))
    pos, neg = np.flatnonzero(validation.labels == 1), np.flatnonzero(validation.labels == 0)
    pick = np.r_[rng.choice(pos, int(2000 * bullish)), rng.choice(neg, int(2000 * (1 - bullish)))]
    table = pd.DataFrame({"date": "2017-06-05", "ticker": "SPY", "message": [validation.messages[i] for i in pick]})
    row = sentiment_index(table, small_model_dir).iloc[0]
    assert abs(row.share_bull - bullish) > 0.09  # counting misses the shift
    for name in ("acc", "pacc", "em"):
        assert abs(row[f"share_bull_{name}"] - bullish) < 0.05, name
        assert row[f"{name}_lo"] <= bullish <= row[f"{name}_hi"], name


def test_em_on_the_index_histogram_is_em_on_the_messages(small_model_dir, emotions):
    from stocksent.signals.quantify import em_prior

    rates = read_rates(small_model_dir)
    model = SentimentModel.load(small_model_dir, precision="float32")
    scored = emotions.assign(p_bullish=model.predict_proba(emotions.message.tolist()))
    df = sentiment_index(scored, rates=rates)
    errors = []
    for (ticker, date), group in scored.groupby(["ticker", "date"]):
        if len(group) < 5:
            continue
        exact, _ = em_prior(group.p_bullish.to_numpy(), np.ones(len(group)), rates.calibrated_prior)
        here = df[(df.ticker == ticker) & (df.session_date.astype(str) == date)]
        if len(here) == 1 and here.n_msgs.iloc[0] == len(group):  # weekend dates share a session
            errors.append(abs(here.share_bull_em.iloc[0] - exact[0]))
    assert len(errors) > 30
    assert max(errors) < 0.01 and np.median(errors) < 0.001


def test_a_model_without_rates_gets_a_note_and_no_corrected_columns(small_model_dir, tmp_path, emotions, caplog):
    directory = tmp_path / "old"
    shutil.copytree(small_model_dir, directory)
    (directory / RATES).unlink()
    with caplog.at_level(logging.WARNING, logger="stocksent"):
        df = sentiment_index(emotions.head(200), directory)
    assert not set(CORRECTED) & set(df.columns)
    notes = [r.getMessage() for r in caplog.records if RATES in r.getMessage()]
    assert len(notes) == 1 and "train the model again" in notes[0]


def test_measured_rates_are_those_of_the_labels_and_scores():
    rates = ValidationRates.measure([1, 1, 1, 0, 0], [0.9, 0.6, 0.3, 0.7, 0.1], threshold=0.5)
    assert (rates.tp, rates.fp, rates.n_pos, rates.n_neg) == (2, 1, 3, 2)
    assert rates.mean_p_pos == pytest.approx(0.6) and rates.mean_p_neg == pytest.approx(0.4)
    assert rates.calibrated_prior == pytest.approx(0.52)
    assert ValidationRates.from_dict(rates.to_dict()) == rates
    with pytest.raises(ValueError, match="both classes"):
        ValidationRates.measure([1, 1], [0.2, 0.9], threshold=0.5)
