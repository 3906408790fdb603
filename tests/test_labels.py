"""stocksent.labels: one rule from P(bullish) to a label, and a message without words has none, on every path."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stocksent.batch.scorer import BatchScorer
from stocksent.cli import main
from stocksent.labels import LABELS, NO_WORDS, is_bullish, label_for, labels_for, prediction_fields

NO_WORD_MESSAGES = ["!!!", "\x00\x00", "   ", "..."]


def test_the_threshold_step():
    assert LABELS == ("bearish", "bullish")
    assert label_for(0.5, 0.5) == "bullish" and label_for(0.4999, 0.5) == "bearish"
    assert label_for(float("nan"), 0.5) is None and label_for(None, 0.5) is None
    assert labels_for([0.9, 0.1, math.nan], 0.3) == ["bullish", "bearish", None]
    assert is_bullish([0.3, 0.29, math.nan], 0.3).tolist() == [True, False, False]
    assert prediction_fields(0.75, 0.5) == {"label": "bullish", "p_bullish": 0.75}
    assert prediction_fields(math.nan, 0.5) == {"label": None, "p_bullish": None, "reason": NO_WORDS}


def test_predict_gives_no_label_to_a_message_without_words(small_model_dir, capsys):
    code = main(["predict", "--model", str(small_model_dir), "--json", "$SPY calls", *NO_WORD_MESSAGES])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["message"] for r in rows] == ["$SPY calls", *NO_WORD_MESSAGES]  # every message, in order
    assert rows[0]["label"] in LABELS
    assert all(r["label"] is None and r["p_bullish"] is None for r in rows[1:])
    assert f"4 message(s) have no label: {NO_WORDS}" in err
    code = main(["predict", "--model", str(small_model_dir), "!!!"])
    assert code == 0 and NO_WORDS in capsys.readouterr().out


def test_score_and_the_batch_scorer_give_null_p_and_label(small_model_dir, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    no_words = [m for m in NO_WORD_MESSAGES if m.strip()]
    source.write_text("".join(json.dumps({"message": m}) + "\n" for m in ["$SPY calls", *no_words]))
    out = tmp_path / "out.parquet"
    code = main(["score", str(source), "--model", str(small_model_dir), "-o", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    table = pq.read_table(out)
    assert table.column("p_bullish").null_count == 3 and table.column("label").null_count == 3
    assert table.column("label")[0].as_py() in LABELS
    assert "3 with no words to score" in err and "with model small-" in err
    frame = BatchScorer(small_model_dir)(pd.DataFrame({"message": ["$SPY calls", "!!!"]}))
    assert frame["label"].tolist()[1] is None and math.isnan(frame["p_bullish"].tolist()[1])
    arrow = BatchScorer(small_model_dir)(pa.table({"message": ["!!!"]}))
    assert arrow.column("p_bullish").null_count == 1 and arrow.column("label").null_count == 1


def test_the_index_counts_messages_without_words_apart(small_model_dir):
    from stocksent.signals import sentiment_index

    frame = pd.DataFrame(
        {"created_at": ["2020-07-06T15:00:00Z"] * 3, "symbols": ["AAPL"] * 3, "message": ["$AAPL up", "!!!", ""]}
    )
    df = sentiment_index(frame, small_model_dir, calendar="24x7", freq="1h")
    assert df.n_msgs.sum() == 1 and df.mean_p.notna().all()


@pytest.mark.parametrize("message", NO_WORD_MESSAGES)
def test_the_python_api_agrees(model, message):
    assert math.isnan(model.predict_proba(message))
    assert model.predict(message).to_dict() == {"label": None, "p_bullish": None, "reason": NO_WORDS}
