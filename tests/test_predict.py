"""Tests for stocksent.sentiment: the SentimentModel API on a real (small) trained model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stocksent import SentimentModel, StocksentError
from stocksent.data import read_labelled
from stocksent.model import predict_proba_sequences
from stocksent.sentiment import AUTO_BFLOAT16_MIN, Prediction
from stocksent.text import TextOptions, normalise
from stocksent.vocab import Vocabulary

MESSAGES = [
    "$SPY breaking out to new highs, loading calls 🚀",
    "$SPY this is going to crash hard, buying puts",
    "Fed meeting today, staying flat",
    "",
    "!!!",
    "@bob $AAPL $12.50 → 13 https://x.co/a",
]


def test_load_uses_the_saved_vocabulary_text_options_and_threshold(model, small_model_dir) -> None:
    config = json.loads((small_model_dir / "config.json").read_text())
    assert model.vocab.words == Vocabulary.from_dict(json.loads((small_model_dir / "vocab.json").read_text())).words
    assert model.text_options == TextOptions.from_dict(config["text"])
    assert model.threshold == config["threshold"] and 0 < model.threshold < 1
    assert not model.network.training
    assert model.directory == small_model_dir
    # Accepts a str path as well as a Path.
    assert SentimentModel.load(str(small_model_dir)).vocab.words == model.vocab.words


def test_one_string_gives_one_prediction(model) -> None:
    prediction = model.predict("$SPY to the moon 🚀")
    assert isinstance(prediction, Prediction)
    assert prediction.label in ("bullish", "bearish")
    assert isinstance(prediction.p_bullish, float) and 0.0 < prediction.p_bullish < 1.0
    assert prediction.label == ("bullish" if prediction.p_bullish >= model.threshold else "bearish")
    assert prediction.to_dict() == {"label": prediction.label, "p_bullish": prediction.p_bullish}
    proba = model.predict_proba("$SPY to the moon 🚀")
    assert proba.shape == (1,) and proba.dtype == np.float32
    assert float(proba[0]) == prediction.p_bullish


@pytest.fixture(scope="module")
def model(small_model_dir) -> SentimentModel:
    """An explicit precision; "auto" (the default) has its own test below."""
    return SentimentModel.load(small_model_dir, precision="float32")


def test_list_keeps_order_and_matches_the_pipeline(model) -> None:
    proba = model.predict_proba(MESSAGES)
    assert proba.shape == (len(MESSAGES),)
    # The same path by hand: normalise with the saved options, encode, run the network.
    by_hand = predict_proba_sequences(
        model.network,
        [model.vocab.encode(normalise(m, model.text_options)) for m in MESSAGES],
        precision=model.precision,
    )
    np.testing.assert_array_equal(proba, by_hand)
    predictions = model.predict(MESSAGES)
    assert isinstance(predictions, list) and len(predictions) == len(MESSAGES)
    assert [p.p_bullish for p in predictions] == [float(p) for p in proba]
    # Reversing the input reverses the output; tuples and generators work like lists.
    np.testing.assert_allclose(model.predict_proba(MESSAGES[::-1]), proba[::-1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(tuple(MESSAGES)), proba, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(m for m in MESSAGES), proba, rtol=0, atol=1e-6)


def test_threshold_decides_the_label(small_model_dir) -> None:
    model = SentimentModel.load(small_model_dir)
    p = model.predict_proba(MESSAGES)
    model.threshold = float(np.median(p))
    labels = [x.label for x in model.predict(MESSAGES)]
    assert labels == ["bullish" if v >= model.threshold else "bearish" for v in p]
    assert {"bullish", "bearish"} <= set(labels) or len(set(p.tolist())) == 1


def test_different_messages_get_different_probabilities(model) -> None:
    from conftest import DATA_PATH

    messages = read_labelled(DATA_PATH).messages[3000:3300]
    proba = model.predict_proba(messages)
    assert np.isfinite(proba).all() and ((proba > 0) & (proba < 1)).all()
    assert len(np.unique(proba)) > 50


def test_empty_list(model) -> None:
    assert model.predict([]) == []
    empty = model.predict_proba([])
    assert empty.shape == (0,) and empty.dtype == np.float32


@pytest.mark.parametrize("bad", [["ok", 3], [None], ["ok", b"bytes"], [["nested"]], 42, None, b"bytes"])
def test_non_strings_are_a_stocksent_error(model, bad) -> None:
    with pytest.raises(StocksentError, match="string"):
        model.predict(bad)
    with pytest.raises(StocksentError, match="string"):
        model.predict_proba(bad)


def test_precision_auto_is_bfloat16_only_where_the_cpu_has_it(small_model_dir, monkeypatch) -> None:
    import stocksent.inference.fast_cpu as fastpath

    assert SentimentModel.load(small_model_dir).precision == fastpath.resolve_precision("auto")
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert SentimentModel.load(small_model_dir).precision == "float32"
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    auto = SentimentModel.load(small_model_dir)
    assert auto.precision == "bfloat16"
    # "auto" runs small calls in float32 (latency) and larger ones in bfloat16 (throughput).
    many = [f"{m} {k}" for k in range(AUTO_BFLOAT16_MIN) for m in MESSAGES][:AUTO_BFLOAT16_MIN]
    low = SentimentModel.load(small_model_dir, precision="bfloat16")
    high = SentimentModel.load(small_model_dir, precision="float32")
    np.testing.assert_array_equal(auto.predict_proba(many), low.predict_proba(many))
    np.testing.assert_array_equal(auto.predict_proba(many[:3]), high.predict_proba(many[:3]))
    exact = SentimentModel.load(small_model_dir, precision="float32")
    plain = predict_proba_sequences(exact.network, exact.encode(MESSAGES), plain=True)
    np.testing.assert_allclose(exact.predict_proba(MESSAGES), plain, rtol=0, atol=1e-5)
    np.testing.assert_allclose(SentimentModel.load(small_model_dir).predict_proba(MESSAGES), plain, rtol=0, atol=0.02)
    with pytest.raises(StocksentError, match="precision"):
        SentimentModel.load(small_model_dir, precision="float16")
    with pytest.raises(StocksentError, match="ONNX"):
        SentimentModel.load(small_model_dir, backend="onnx", precision="bfloat16")


def test_unknown_backend(small_model_dir) -> None:
    with pytest.raises(StocksentError, match="backend"):
        SentimentModel.load(small_model_dir, backend="tensorflow")


def test_missing_model_directory(tmp_path) -> None:
    with pytest.raises(StocksentError, match="not found"):
        SentimentModel.load(tmp_path / "no-model")
