"""Tests for the fast CPU engine: the same answers as the module's forward (correctness, not speed).

float32 must match the module's own forward within 1e-5 (they agree to ~1e-7); bfloat16 must keep
accuracy within 0.3 points of float32 on real messages. tests/test_engines.py checks every engine.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conftest import texts_of
from stocksent import StocksentError
from stocksent.inference import TorchEngine, flatten, network_logits, sigmoid
from stocksent.inference.fast_cpu import InferenceLSTM, fast_path_for, pack
from stocksent.inference.workers import map_chunks
from stocksent.model import LSTMClassifier
from stocksent.sentiment import SentimentModel
from stocksent.text import TextOptions, normalise, normalise_flat


def random_model(vocab_size=300, embed=24, sizes=(16, 8), seed=0, ngram_buckets=0) -> LSTMClassifier:
    torch.manual_seed(seed)
    model = LSTMClassifier(vocab_size, embed, sizes, keep_prob=0.5, ngram_buckets=ngram_buckets).eval()
    with torch.no_grad():  # larger weights than the initialisation: saturated gates get tested too
        for lstm in model.lstms:
            for p in lstm.parameters():
                p.mul_(3)
        if ngram_buckets:
            model.ngrams.weight[1:].normal_()
    return model


def plain_logits(model, sequences, batch_size=1024) -> np.ndarray:
    """The module's own forward (the torch engine): the reference."""
    return TorchEngine(model).logits(*flatten(sequences), batch_size)


def random_sequences(n, vocab_size=300, seed=0, longest=60) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [rng.integers(0, vocab_size, size=int(rng.integers(0, longest))) for _ in range(n)]
    return out + [np.array([], dtype=np.int64), np.array([5]), rng.integers(2, vocab_size, size=100)]


@pytest.fixture(scope="module")
def real_model(synthetic_model_dir) -> SentimentModel:
    return SentimentModel.load(synthetic_model_dir, precision="float32")


@pytest.fixture(scope="module")
def unseen(synthetic_model_dir):
    """10,000 real labelled messages the small model never trained on (it saw the first 3,000)."""
    from conftest import DATA_PATH, labelled_of

    messages, labels = labelled_of(DATA_PATH)
    return messages[3000:13000], np.asarray(labels[3000:13000], dtype=np.float32)


# --------------------------------------------------------------------------- the network


@pytest.mark.parametrize("sizes,ngram_buckets", [((16, 8), 0), ((16, 8), 101), ((12,), 0), ((10, 9, 7), 0)])
@pytest.mark.parametrize("batch_size", [1, 7, 1024])
def test_float32_fast_path_matches_the_module(sizes, ngram_buckets, batch_size) -> None:
    model = random_model(sizes=sizes, ngram_buckets=ngram_buckets)
    sequences = random_sequences(60, seed=len(sizes))
    plain = plain_logits(model, sequences, batch_size)
    fast = InferenceLSTM(model).logits(*flatten(sequences), batch_size)
    assert fast.dtype == np.float32 and fast.shape == (len(sequences),)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-5)
    # Training's helper takes the fast path on the CPU, and leaves the module's mode alone.
    model.train()
    np.testing.assert_allclose(network_logits(model, sequences, batch_size=batch_size), plain, rtol=0, atol=1e-5)
    assert model.training


def test_bfloat16_fast_path_is_close() -> None:
    model = random_model()
    sequences = random_sequences(200, seed=5)
    plain = sigmoid(plain_logits(model, sequences))
    low = sigmoid(InferenceLSTM(model, "bfloat16").logits(*flatten(sequences)))
    assert np.abs(low - plain).max() < 0.03


def test_packing_orders_words_step_by_step() -> None:
    ids = np.arange(10, 20)  # three messages end to end: [10..13], [14..15], [16..19]
    packed, sizes = pack(ids, starts=np.array([0, 6, 4]), lengths=np.array([4, 4, 2]))
    assert sizes == [3, 3, 2, 2]
    assert packed.tolist() == [10, 16, 14, 11, 17, 15, 12, 18, 13, 19]


def test_out_of_range_ids_raise() -> None:
    with pytest.raises(IndexError):
        InferenceLSTM(random_model(vocab_size=50)).logits(np.array([3, 50]), np.array([2]))


def test_cached_fast_path_follows_weight_changes() -> None:
    model = random_model()
    sequences = random_sequences(20, seed=2)
    first = network_logits(model, sequences)
    assert fast_path_for(model) is fast_path_for(model)  # built once while the weights stay put
    with torch.no_grad():
        model.output.bias += 1.0  # in place, as an optimizer step or calibration does
    again = network_logits(model, sequences)
    np.testing.assert_allclose(again, plain_logits(model, sequences), rtol=0, atol=1e-5)
    assert (again > first).all()


# --------------------------------------------------------------------------- text and ids


def test_batched_normalisation_is_per_message_normalisation(real_data_path) -> None:
    messages = texts_of(real_data_path)[:4000] + [
        "a\x1eb $SPY",
        "x\x1e",
        "\x1e",
        "",
        "http://x.co/a\x1e$SPY",
        "$5\x1e5$",
        "&amp\x1e;",
        "word " * 150,
    ]
    for keep_emoji, keep_cashtags, cap in itertools.product([False, True], [False, True], [100, 3]):
        options = TextOptions(keep_emoji=keep_emoji, keep_cashtags=keep_cashtags, max_tokens=cap)
        expected = [normalise(m, options) for m in messages]
        tokens, lengths = normalise_flat(messages, options)
        assert lengths == [len(t) for t in expected]
        assert tokens == [token for t in expected for token in t]
    assert normalise_flat([]) == ([], [])


def test_faster_patterns_match_exactly_what_the_rules_say(real_data_path) -> None:
    import re

    from stocksent.text import _FASTER_PATTERNS, _SEPARATOR, RULES

    edge = [
        "$5",
        "5$",
        "a5$",
        "5$5",
        "$5k",
        "$5kx",
        "12$",
        "x12$",
        "$1,250.75",
        "1.5$",
        "_5$",
        "$$5",
        "5 $",
        "\u0663$",
        "a\u06635$",
        "é5$",
        "$5.",
        "5.$",
        "$5.5.5$",
        "$5m $5b 3,000$ $3,000.00k",
    ]
    text = _SEPARATOR.join(texts_of(real_data_path) + edge).lower()
    for name, pattern, repl in RULES:
        if name in _FASTER_PATTERNS:
            original, faster = re.compile(pattern), re.compile(_FASTER_PATTERNS[name])
            assert [m.span() for m in faster.finditer(text)] == [m.span() for m in original.finditer(text)]
            for case in edge:
                assert faster.sub(repl, case) == original.sub(repl, case), case


def test_encode_flat_is_encode_per_message(real_model) -> None:
    messages = ["$SPY up 🚀", "", "@a sell $VXX", "!!!", "new highs"] * 3
    ids, lengths = real_model.encode_flat(messages)
    one_by_one = [real_model.vocab.encode(normalise(m, real_model.text_options)) for m in messages]
    assert lengths.tolist() == [len(s) for s in one_by_one]
    assert ids.tolist() == [i for s in one_by_one for i in s.tolist()]
    assert [s.tolist() for s in real_model.encode(messages)] == [s.tolist() for s in one_by_one]


# --------------------------------------------------------------------------- SentimentModel on real text


def test_sentiment_model_fast_path_matches_plain_on_real_messages(real_model, unseen) -> None:
    messages = unseen[0][:3000]
    fast = real_model.predict_proba(messages)
    plain = sigmoid(plain_logits(real_model.network, real_model.encode(messages)))
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-5)


def test_threads_split_the_work_and_keep_order(real_model, unseen) -> None:
    messages = unseen[0][:2500]
    fast = fast_path_for(real_model.network)

    def score(chunk):
        return fast.logits(*real_model.encode_flat(chunk), 128)

    alone = map_chunks(score, messages, 128, threads=1)
    shared = map_chunks(score, messages, 128, threads=2)  # 6 chunks of ~420 on 2 worker threads
    np.testing.assert_allclose(shared, alone, rtol=0, atol=1e-6)
    torch.set_num_threads(2)
    model_shared = real_model.predict_proba(messages, batch_size=128)  # SentimentModel: torch's count, 2
    assert torch.get_num_threads() == 2  # the scoring threads' own setting did not leak into this one
    np.testing.assert_allclose(model_shared, sigmoid(alone), rtol=0, atol=1e-6)


def test_bfloat16_keeps_accuracy_within_0_3_points(synthetic_model_dir, real_model, unseen) -> None:
    messages, labels = unseen
    low_model = SentimentModel.load(synthetic_model_dir, precision="bfloat16")
    plain = sigmoid(plain_logits(real_model.network, real_model.encode(messages)))
    low = low_model.predict_proba(messages)

    def accuracy(p):
        return float(((p >= real_model.threshold) == (labels >= 0.5)).mean())

    assert abs(accuracy(low) - accuracy(plain)) * 100 <= 0.3
    assert np.abs(low - plain).max() < 0.03
    assert low_model.predict("$SPY to the moon").label in ("bullish", "bearish")


def test_precision_is_checked(synthetic_model_dir) -> None:
    with pytest.raises(StocksentError, match="precision"):
        SentimentModel.load(synthetic_model_dir, precision="float16")
    with pytest.raises(StocksentError, match="precision"):
        SentimentModel.load(synthetic_model_dir, backend="onnx", precision="bfloat16")
