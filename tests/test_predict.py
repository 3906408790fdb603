"""Tests for stocksent.sentiment: the SentimentModel API on a real (small) trained model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import labelled_of
from stocksent import Prediction, SentimentModel, StocksentError
from stocksent.artifacts import CONFIG, METRICS, VOCAB, WEIGHTS, load_model_dir
from stocksent.inference import TorchEngine, flatten, sigmoid
from stocksent.inference.fast_cpu import AUTO_BFLOAT16_MIN, InferenceLSTM
from stocksent.labels import LABELS
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


def test_load_uses_the_saved_vocabulary_text_options_and_threshold(model, synthetic_model_dir) -> None:
    config = json.loads((synthetic_model_dir / "config.json").read_text())
    assert model.vocab.words == Vocabulary.from_dict(json.loads((synthetic_model_dir / "vocab.json").read_text())).words
    assert model.text_options == TextOptions.from_dict(config["text"])
    assert model.threshold == config["threshold"] and 0 < model.threshold < 1
    assert not model.network.training
    assert model.directory == synthetic_model_dir
    # Accepts a str path as well as a Path.
    assert SentimentModel.load(str(synthetic_model_dir)).vocab.words == model.vocab.words


def test_one_string_gives_one_prediction(model) -> None:
    prediction = model.predict("$SPY to the moon 🚀")
    assert isinstance(prediction, Prediction)
    assert prediction.label in ("bullish", "bearish")
    assert isinstance(prediction.p_bullish, float) and 0.0 < prediction.p_bullish < 1.0
    assert prediction.label == ("bullish" if prediction.p_bullish >= model.threshold else "bearish")
    assert prediction.to_dict() == {"label": prediction.label, "p_bullish": prediction.p_bullish}
    proba = model.predict_proba("$SPY to the moon 🚀")
    assert isinstance(proba, float) and proba == prediction.p_bullish


@pytest.fixture(scope="module")
def model(synthetic_model_dir) -> SentimentModel:
    """An explicit precision; "auto" (the default) has its own test below."""
    return SentimentModel.load(synthetic_model_dir, precision="float32")


def test_list_keeps_order_and_matches_the_pipeline(model) -> None:
    proba = model.predict_proba(MESSAGES)
    assert proba.shape == (len(MESSAGES),)
    assert proba.dtype == np.float32
    # The same path by hand: normalise with the saved options, encode, the engine, the sigmoid; a
    # message left without tokens ("", "!!!") has no evidence: NaN.
    sequences = [model.vocab.encode(normalise(m, model.text_options)) for m in MESSAGES]
    ids, lengths = flatten(sequences)
    logits = model.engine.logits(ids, lengths)
    logits[lengths == 0] = np.nan
    np.testing.assert_array_equal(proba, sigmoid(logits))
    np.testing.assert_array_equal(model.logits(MESSAGES), logits)
    predictions = model.predict(MESSAGES)
    assert isinstance(predictions, list) and len(predictions) == len(MESSAGES)
    assert [p.p_bullish for p in predictions] == [None if p != p else float(p) for p in proba]
    # Reversing the input reverses the output; tuples and generators work like lists.
    np.testing.assert_allclose(model.predict_proba(MESSAGES[::-1]), proba[::-1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(tuple(MESSAGES)), proba, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(m for m in MESSAGES), proba, rtol=0, atol=1e-6)


@pytest.mark.parametrize("message", ["", "   ", "!!!", "\x00\x00", "...?!"])
def test_a_message_without_words_has_no_evidence(model, message) -> None:
    """No tokens after normalisation: no probability, no label, and the reason (never a constant 0.6)."""
    from stocksent.labels import NO_WORDS

    assert np.isnan(model.predict_proba(message))
    prediction = model.predict(message)
    assert prediction == Prediction(label=None, p_bullish=None, reason=NO_WORDS)
    assert prediction.to_dict() == {"label": None, "p_bullish": None, "reason": NO_WORDS}
    batch = model.predict([message, "$SPY calls"])
    assert batch[0].label is None and batch[1].label in ("bullish", "bearish")


def test_threshold_decides_the_label(synthetic_model_dir) -> None:
    model = SentimentModel.load(synthetic_model_dir)
    p = model.predict_proba(MESSAGES)
    model.threshold = float(np.nanmedian(p))
    labels = [x.label for x in model.predict(MESSAGES)]
    assert labels == [None if v != v else "bullish" if v >= model.threshold else "bearish" for v in p]
    assert {"bullish", "bearish"} <= set(labels) or len(set(p.tolist())) == 1


def test_different_messages_get_different_probabilities(model) -> None:
    from conftest import DATA_PATH

    messages = labelled_of(DATA_PATH)[0][3000:3300]
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


def test_precision_auto_is_bfloat16_only_where_the_cpu_has_it(synthetic_model_dir, monkeypatch) -> None:
    import stocksent.inference.fast_cpu as fastpath
    import stocksent.inference.native as native

    # The torch engines' "auto" (tests/test_native.py checks the compiled engine's).
    monkeypatch.setattr(native, "native", lambda: None)

    assert SentimentModel.load(synthetic_model_dir).precision == fastpath.resolve_precision("auto")
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert SentimentModel.load(synthetic_model_dir).precision == "float32"
    monkeypatch.setattr(fastpath, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    auto = SentimentModel.load(synthetic_model_dir)
    assert auto.precision == "bfloat16"
    # "auto" runs small calls in float32 (latency) and larger ones in bfloat16 (throughput).
    many = [f"{m} {k}" for k in range(AUTO_BFLOAT16_MIN) for m in MESSAGES][:AUTO_BFLOAT16_MIN]
    low = SentimentModel.load(synthetic_model_dir, precision="bfloat16")
    high = SentimentModel.load(synthetic_model_dir, precision="float32")
    np.testing.assert_array_equal(auto.predict_proba(many), low.predict_proba(many))
    np.testing.assert_array_equal(auto.predict_proba(many[:3]), high.predict_proba(many[:3]))
    exact = SentimentModel.load(synthetic_model_dir, precision="float32")
    ids, lengths = exact.encode_flat(MESSAGES)
    plain = sigmoid(TorchEngine(exact.network).logits(ids, lengths))
    plain[lengths == 0] = np.nan  # no tokens: no evidence
    np.testing.assert_allclose(exact.predict_proba(MESSAGES), plain, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        SentimentModel.load(synthetic_model_dir).predict_proba(MESSAGES), plain, rtol=0, atol=0.02
    )
    with pytest.raises(StocksentError, match="precision"):
        SentimentModel.load(synthetic_model_dir, precision="float16")
    with pytest.raises(StocksentError, match="ONNX"):
        SentimentModel.load(synthetic_model_dir, backend="onnx", precision="bfloat16")


def test_unknown_backend(synthetic_model_dir) -> None:
    with pytest.raises(StocksentError, match="backend"):
        SentimentModel.load(synthetic_model_dir, backend="tensorflow")


def test_missing_model_directory(tmp_path) -> None:
    with pytest.raises(StocksentError, match="not found"):
        SentimentModel.load(tmp_path / "no-model")


def test_constructor_only_stores(model) -> None:
    engine = InferenceLSTM(model.network)
    made = SentimentModel(model.network, model.vocab, engine, model.text_options, 0.3)
    assert made.engine is engine and made.threshold == 0.3 and made.config == {} and made.directory is None
    np.testing.assert_array_equal(made.predict_proba(MESSAGES), model.predict_proba(MESSAGES))
    assert [p.label for p in made.predict(MESSAGES)] == [
        None if p != p else LABELS[int(p >= 0.3)] for p in made.predict_proba(MESSAGES)
    ]
    built = SentimentModel.build(model.network, model.vocab, model.config, precision="float32")
    np.testing.assert_array_equal(built.predict_proba(MESSAGES), model.predict_proba(MESSAGES))
    with pytest.raises(StocksentError, match="threshold must be a finite number"):
        SentimentModel.build(model.network, model.vocab, {"threshold": "high"})


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_save_round_trip_gives_identical_probabilities(small_model_dir, tmp_path, backend) -> None:
    model = SentimentModel.load(small_model_dir)  # trained: its metrics.json comes along
    model.threshold = 0.42  # a changed threshold is saved too
    try:
        path = model.save(tmp_path / "copy")
    finally:
        model.threshold = json.loads((small_model_dir / "config.json").read_text())["threshold"]
    assert path == tmp_path / "copy"
    assert {p.name for p in path.iterdir()} >= {WEIGHTS, CONFIG, VOCAB, METRICS}
    assert not [p.name for p in tmp_path.iterdir() if p.name != "copy"]  # no staging directory left
    again = SentimentModel.load(path, backend=backend, precision="float32")
    original = SentimentModel.load(small_model_dir, backend=backend, precision="float32")
    assert again.threshold == 0.42
    np.testing.assert_array_equal(again.predict_proba(MESSAGES), original.predict_proba(MESSAGES))
    assert again.text_options == model.text_options and again.vocab.words == model.vocab.words
    assert not (path / "model.onnx").exists()  # loading with backend onnx wrote nothing


def test_save_refuses_to_overwrite_another_model(model, synthetic_model_dir, tmp_path) -> None:
    target = model.save(tmp_path / "m")
    stamp = (target / WEIGHTS).stat().st_mtime_ns
    model.save(target)  # this very model again: fine, and left as it is
    assert (target / WEIGHTS).stat().st_mtime_ns == stamp
    network, config, vocab = load_model_dir(synthetic_model_dir)
    with torch.no_grad():
        network.output.bias += 1.0
    other = SentimentModel.build(network, vocab, config, precision="float32")
    with pytest.raises(StocksentError, match="different model.*overwrite=True"):
        other.save(target)
    np.testing.assert_array_equal(SentimentModel.load(target).predict_proba(MESSAGES), model.predict_proba(MESSAGES))
    other.save(target, overwrite=True)
    np.testing.assert_array_equal(
        SentimentModel.load(target, precision="float32").predict_proba(MESSAGES), other.predict_proba(MESSAGES)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # the old copy moved aside is gone


def test_save_refuses_a_directory_holding_other_things(model, tmp_path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(StocksentError, match="not empty and holds no model"):
        model.save(tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(StocksentError, match="is a file"):
        model.save(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    SentimentModel.load(model.save(tmp_path / "empty"))  # an empty directory is fine


def test_a_failed_save_leaves_nothing_behind(model, tmp_path, monkeypatch) -> None:
    import stocksent.sentiment as sentiment

    def disk_full(directory, *args):
        (directory / "half").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sentiment, "save_model_dir", disk_full)
    with pytest.raises(StocksentError, match="No space left"):
        model.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_torch_backend_on_a_gpu(synthetic_model_dir) -> None:
    """The module's forward on CUDA agrees with the CPU engine (run where a GPU is present)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    gpu = SentimentModel.load(synthetic_model_dir, device="cuda")
    assert isinstance(gpu.engine, TorchEngine) and gpu.network.embedding.weight.is_cuda
    cpu = SentimentModel.load(synthetic_model_dir, precision="float32")
    assert np.abs(gpu.predict_proba(MESSAGES) - cpu.predict_proba(MESSAGES)).max() <= 1e-5
