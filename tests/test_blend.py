"""Tests for stocksent.training.blend: the feature matrix is the n-gram term's, and the fold is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA_PATH
from stocksent.model import LSTMClassifier
from stocksent.splits import load_splits
from stocksent.text import TextOptions
from stocksent.tools.baseline import fit_logreg
from stocksent.training.blend import fit_blend, fit_linear, fold_blend_, ngram_matrix
from stocksent.training.calibration import binary_nll
from stocksent.vocab import Vocabulary

BUCKETS = 4096


@pytest.fixture(scope="module")
def encoded():
    splits = load_splits(DATA_PATH, TextOptions(), seed=4, max_examples=4000).splits
    vocab = Vocabulary.build(splits.train.tokens, 2)
    return splits, vocab, vocab.encode_many(splits.train.tokens), vocab.encode_many(splits.val.tokens)


def module_logits(model: LSTMClassifier, sequences) -> np.ndarray:
    from stocksent.batching import iterate_batches

    model.eval()
    out = np.empty(len(sequences))
    with torch.no_grad():
        for batch in iterate_batches(sequences, 512):
            out[batch.index] = model(batch.ids, batch.lengths).double().numpy()
    return out


def test_ngram_matrix_times_the_weights_is_the_ngram_term(encoded) -> None:
    _, vocab, _, val_x = encoded
    torch.manual_seed(0)
    model = LSTMClassifier(len(vocab), 8, (4,), ngram_buckets=BUCKETS)
    with torch.no_grad():
        model.ngrams.weight.normal_()[0] = 0.0  # row 0 is padding, zero as in training
    from stocksent.batching import pad

    batch = pad(val_x, np.arange(len(val_x)))
    expected = model.ngram_logit(batch.ids, batch.lengths).detach().double().numpy()
    x = ngram_matrix(val_x, len(vocab), BUCKETS)
    assert x.shape == (len(val_x), len(vocab) + BUCKETS)
    np.testing.assert_allclose(x @ model.ngrams.weight.detach().double().numpy().ravel(), expected, atol=1e-5)


def test_blend_folds_exactly_into_the_model_and_lowers_validation_loss(encoded) -> None:
    splits, vocab, train_x, val_x = encoded
    torch.manual_seed(1)
    model = LSTMClassifier(len(vocab), 8, (4,), ngram_buckets=BUCKETS)
    with torch.no_grad():  # a weak, untrained stand-in for the network; row 0 is padding
        model.ngrams.weight.normal_(std=0.3)[0] = 0.0
    before = module_logits(model, val_x)
    linear = fit_linear(
        train_x, splits.train.labels, val_x, splits.val.labels, len(vocab), BUCKETS, seed=4, grid_c=(1.0, 4.0)
    )
    fitted = fit_blend(before, linear, splits.val.labels)
    fold_blend_(model, linear, fitted)
    after = module_logits(model, val_x)

    # The regression on its own, refitted here: the folded model must be exactly the weighted sum.
    regression = fit_logreg(ngram_matrix(train_x, len(vocab), BUCKETS), splits.train.labels.astype(int), linear.c, 4)
    linear_logits = regression.decision_function(ngram_matrix(val_x, len(vocab), BUCKETS))
    np.testing.assert_allclose(linear.val_logits, linear_logits)
    expected = fitted.network_weight * before + fitted.linear_weight * linear_logits + fitted.offset
    np.testing.assert_allclose(after, expected, atol=1e-4)
    # The blend's family includes the model alone (weights 1, 0, 0): fitted on validation, it can only help there.
    assert binary_nll(splits.val.labels, after) <= binary_nll(splits.val.labels, before) + 1e-6
    assert fitted.val_accuracy_blend == pytest.approx(float(((after >= 0) == (splits.val.labels >= 0.5)).mean()))
    assert fitted.linear_weight > 0 and fitted.val_accuracy_linear > 0.6


def test_blend_needs_the_ngram_term(encoded) -> None:
    splits, vocab, train_x, val_x = encoded
    linear = fit_linear(
        train_x, splits.train.labels, val_x, splits.val.labels, len(vocab), BUCKETS, seed=0, grid_c=(1.0,)
    )
    fitted = fit_blend(np.zeros(len(val_x)), linear, splits.val.labels)
    with pytest.raises(ValueError, match="n-gram"):
        fold_blend_(LSTMClassifier(len(vocab), 8, (4,)), linear, fitted)
