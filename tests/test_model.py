"""Tests for stocksent.model: shapes, and a message's output independent of its batch, padding and history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import texts_of
from stocksent.batching import pad
from stocksent.inference import flatten, network_logits
from stocksent.model import NGRAM_HASH, LSTMClassifier, ngram_features
from stocksent.sentiment import SentimentModel


def random_model(vocab_size: int = 200, seed: int = 0, **kwargs) -> LSTMClassifier:
    torch.manual_seed(seed)
    model = LSTMClassifier(vocab_size, embed_size=16, lstm_sizes=(12, 8), **kwargs).eval()
    if model.ngram_buckets:  # they start at zero; random weights make the term visible
        with torch.no_grad():
            model.ngrams.weight[1:].normal_()
    return model


def random_sequences(n: int, vocab_size: int = 200, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(2, vocab_size, size=int(rng.integers(1, 30))) for _ in range(n)]


@pytest.fixture(scope="module")
def real_model(synthetic_model_dir) -> SentimentModel:
    # An explicit precision: "auto" runs small calls in float32 and large ones in bfloat16 on purpose.
    return SentimentModel.load(synthetic_model_dir, precision="float32")


@pytest.fixture(scope="module")
def real_messages() -> list[str]:
    from conftest import DATA_PATH

    return texts_of(DATA_PATH)[5000:5250]  # messages the small model never trained on


def test_layers_and_output_shape() -> None:
    model = LSTMClassifier(50, embed_size=8, lstm_sizes=(6, 5, 4), keep_prob=0.8)
    assert model.embedding.num_embeddings == 50 and model.embedding.embedding_dim == 8
    assert model.embedding.padding_idx == 0
    assert [(m.input_size, m.hidden_size) for m in model.lstms] == [(8, 6), (6, 5), (5, 4)]
    assert model.dropout.p == pytest.approx(0.2)
    assert model.output.in_features == 4 and model.output.out_features == 1
    batch = pad(random_sequences(7, 50), np.arange(7))
    logits = model(batch.ids, batch.lengths)
    assert logits.shape == (7,)
    assert logits.dtype == torch.float32
    one = pad(random_sequences(1, 50), np.arange(1))
    assert model.eval()(one.ids, one.lengths).shape == (1,)


@pytest.mark.parametrize("ngram_buckets", [0, 50])
def test_padding_positions_do_not_change_the_output(ngram_buckets) -> None:
    model = random_model(ngram_buckets=ngram_buckets)
    sequences = random_sequences(20)
    batch = pad(sequences, np.arange(20))
    expected = model(batch.ids, batch.lengths)
    # Extra padding columns.
    wider = torch.cat([batch.ids, torch.zeros(20, 15, dtype=torch.int64)], dim=1)
    torch.testing.assert_close(model(wider, batch.lengths), expected, rtol=0, atol=1e-6)
    # Garbage (real word ids) where the padding is: only the positions up to each length count.
    noisy = batch.ids.clone()
    for row, seq in enumerate(sequences):
        noisy[row, len(seq) :] = torch.randint(2, 200, (noisy.shape[1] - len(seq),))
    torch.testing.assert_close(model(noisy, batch.lengths), expected, rtol=0, atol=1e-6)
    # The padding embedding row is zero and stays so.
    assert not model.embedding.weight[0].any()


def test_ngram_term_is_a_scaled_sum_of_word_and_pair_weights() -> None:
    model = random_model(vocab_size=20, ngram_buckets=7)
    w = model.ngrams.weight.detach().squeeze(-1)
    batch = pad([np.array([3, 4, 5]), np.array([6])], np.arange(2))
    pair = lambda a, b: 20 + (a * NGRAM_HASH + b) % 7
    expected = torch.stack([(w[3] + w[4] + w[5] + w[pair(3, 4)] + w[pair(4, 5)]) / 5**0.5, w[6]])
    torch.testing.assert_close(model.ngram_logit(batch.ids, batch.lengths), expected)
    assert not model.ngrams.weight[0].any()  # padding's weight
    # The term is added to the LSTM's logit, and temperature scaling scales both.
    before = model(batch.ids, batch.lengths)
    model.scale_logit_(0.5)
    torch.testing.assert_close(model(batch.ids, batch.lengths), before * 0.5)


def test_no_state_is_carried_between_calls() -> None:
    model = random_model()
    sequences = random_sequences(10, seed=1)
    batch = pad(sequences, np.arange(10))
    first = model(batch.ids, batch.lengths).detach().clone()
    other = pad(random_sequences(10, seed=2), np.arange(10))
    for _ in range(3):
        model(other.ids, other.lengths)
    assert torch.equal(model(batch.ids, batch.lengths), first)
    # And through the engines, repeated calls give the same answer.
    z1 = network_logits(model, sequences)
    network_logits(model, random_sequences(30, seed=3))
    np.testing.assert_array_equal(network_logits(model, sequences), z1)


def test_dropout_only_in_training_mode() -> None:
    model = random_model(keep_prob=0.5)
    batch = pad(random_sequences(64, seed=4), np.arange(64))
    model.train()
    torch.manual_seed(0)
    a = model(batch.ids, batch.lengths)
    b = model(batch.ids, batch.lengths)
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(batch.ids, batch.lengths), model(batch.ids, batch.lengths))


@pytest.mark.parametrize("buckets", [7, 4096])
def test_numpy_ngram_features_are_the_modules_ngram_term(buckets) -> None:
    """The two implementations of the n-gram features (torch for training, numpy for the fast CPU
    engine and the blend) agree, empty messages included."""
    model = random_model(vocab_size=200, ngram_buckets=buckets)
    sequences = random_sequences(50, seed=6) + [np.array([], dtype=np.int64), np.array([0, 0]), np.array([7])]
    batch = pad(sequences, np.arange(len(sequences)))
    expected = model.ngram_logit(batch.ids, batch.lengths).detach().double().numpy()
    rows, features, values = ngram_features(*flatten(sequences), 200, buckets)
    weights = model.ngrams.weight.detach().double().numpy().ravel()
    got = np.bincount(rows, weights[features] * values, minlength=len(sequences))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert features.max() < 200 + buckets and got[-3] == 0.0


def test_network_logits_restores_mode_and_keeps_order() -> None:
    model = random_model().train()
    sequences = random_sequences(37, seed=5)
    z = network_logits(model, sequences, batch_size=8)
    assert model.training  # left as it was found
    assert z.shape == (37,) and z.dtype == np.float32
    # Each position is its own message's logit, whatever the batching order.
    model.eval()
    with torch.no_grad():
        for i in (0, 17, 36):
            one = pad(sequences, np.array([i]))
            assert z[i] == pytest.approx(float(model(one.ids, one.lengths)[0]), abs=1e-5)
    assert network_logits(model, []).shape == (0,)


def test_batched_and_one_at_a_time_agree_on_real_messages(real_model, real_messages) -> None:
    sequences = real_model.encode(real_messages)
    lengths = {len(s) for s in sequences}
    assert len(lengths) > 10  # batches really mix lengths and get padded
    together = network_logits(real_model.network, sequences, batch_size=1024)
    alone = np.array([network_logits(real_model.network, [s], batch_size=1)[0] for s in sequences])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
    small_batches = network_logits(real_model.network, sequences, batch_size=7)
    np.testing.assert_allclose(small_batches, alone, rtol=0, atol=1e-5)
    # Reversed order: a message's neighbours change, its logit does not.
    reversed_z = network_logits(real_model.network, sequences[::-1], batch_size=64)[::-1]
    np.testing.assert_allclose(reversed_z, alone, rtol=0, atol=1e-5)


def test_sentiment_model_is_batch_independent(real_model, real_messages) -> None:
    messages = real_messages[:100]
    together = real_model.predict_proba(messages)
    alone = np.array([real_model.predict_proba(m) for m in messages])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
    # Mixed with other messages (short and long), the same message gets the same probability.
    mixed = real_model.predict_proba(["$SPY"] + messages[:10] + ["x " * 80])[1:11]
    np.testing.assert_allclose(mixed, alone[:10], rtol=0, atol=1e-5)
    assert not real_model.network.training
