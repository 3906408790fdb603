"""The compiled engine through the public API: every path takes it, one message runs without a
thread hand-off, and the seed-1 default model answers as the torch engine on the SPY test split.

The kernels against the module, message by message, are in tests/test_engines.py; the compiled
normaliser against text.py in tests/test_encoding.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA_PATH, texts_of
from stocksent import SentimentModel, compiled
from stocksent.inference import TorchEngine, describe, sigmoid
from stocksent.splits import recorded_splits
from stocksent.text import normalise_flat


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return texts_of(DATA_PATH)[:3000]


def test_a_loaded_model_runs_the_compiled_core(synthetic_model_dir) -> None:
    model = SentimentModel.load(synthetic_model_dir, precision="float32")
    assert describe(model.engine)["engine"] == "native" and model.encoder.core == "native"


def test_one_message_runs_in_the_calling_thread(synthetic_model_dir, texts, monkeypatch) -> None:
    import stocksent.inference.workers as workers

    model = SentimentModel.load(synthetic_model_dir)
    many = model.predict_proba(texts[:50])
    torch.set_num_threads(2)  # large calls would go to 2 worker threads; a small one never does

    def no_pool(threads):
        raise AssertionError("a small call was handed to a worker thread")

    monkeypatch.setattr(workers, "worker_pool", no_pool)
    # The same logits; torch's sigmoid may round a lone value and a vector's last bit apart.
    assert [model.predict_proba(t) for t in texts[:50]] == pytest.approx(many.tolist(), abs=1e-7)
    assert model.predict(texts[0]).p_bullish == pytest.approx(float(many[0]), abs=1e-7)


def test_two_threads_give_one_thread_s_answers(synthetic_model_dir, texts) -> None:
    model = SentimentModel.load(synthetic_model_dir)
    one = model.predict_proba(texts, batch_size=256)
    torch.set_num_threads(2)
    np.testing.assert_array_equal(model.predict_proba(texts, batch_size=256), one)


def test_without_the_compiled_core_the_reference_path_answers_the_same(synthetic_model_dir, texts, monkeypatch) -> None:
    fast = SentimentModel.load(synthetic_model_dir, precision="float32").predict_proba(texts)
    monkeypatch.setenv(compiled.SWITCH, "0")
    compiled.reset()
    try:
        reference = SentimentModel.load(synthetic_model_dir, precision="float32")
        assert describe(reference.engine)["engine"] == "torch-fast" and reference.encoder.core == "reference"
        np.testing.assert_allclose(reference.predict_proba(texts), fast, rtol=0, atol=1e-5)
    finally:
        compiled.reset()


@pytest.mark.slow
def test_the_default_model_answers_as_the_torch_engine_on_the_spy_test_split(default_model_dir) -> None:
    """Probabilities within 1e-5 (float32) and 1e-2 (bfloat16) of the module's own forward on the
    reference normalisation; accuracy the same to the fourth decimal in float32."""
    model = SentimentModel.load(default_model_dir, precision="float32")
    test = recorded_splits(model.config["data"], model.text_options).test
    messages, bullish = list(test.messages), np.asarray(test.labels) >= 0.5
    assert len(messages) == 9698
    tokens, lengths = normalise_flat(messages, model.text_options)
    reference = sigmoid(TorchEngine(model.network).logits(model.vocab.encode(tokens), np.asarray(lengths)))
    words = np.asarray(lengths) > 0  # a message with no words has no probability (NaN)
    p32 = model.predict_proba(messages)
    p16 = SentimentModel.load(default_model_dir, precision="bfloat16").predict_proba(messages)
    assert np.isnan(p32[~words]).all() and np.isnan(p16[~words]).all()
    assert np.abs(p32 - reference)[words].max() <= 1e-5
    assert np.abs(p16 - reference)[words].max() <= 1e-2
    accuracy = {
        name: float(((p[words] >= model.threshold) == bullish[words]).mean())
        for name, p in [("32", p32), ("ref", reference)]
    }
    assert round(accuracy["32"], 4) == round(accuracy["ref"], 4), accuracy
