"""Tests for stocksent.vocab: built from training tokens only, reserved ids, min_count, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stocksent.splits import load_splits
from stocksent.text import TextOptions
from stocksent.vocab import PAD, UNK, Vocabulary

TOKENS = [["buy", "calls", "now"], ["sell", "puts", "now"], ["buy", "now"], ["hold"]]


def test_reserved_ids_and_frequency_order() -> None:
    vocab = Vocabulary.build(TOKENS)
    assert vocab.words[:2] == [PAD, UNK] == ["<pad>", "<unk>"]
    assert vocab.index["<pad>"] == 0 and vocab.index["<unk>"] == 1
    # Most frequent first, ties in order of first appearance.
    assert vocab.words[2:] == ["now", "buy", "calls", "sell", "puts", "hold"]
    assert len(vocab) == 8


def test_encode_known_and_unknown_words() -> None:
    vocab = Vocabulary.build(TOKENS)
    ids = vocab.encode(["buy", "moon", "now", "lambo"])
    assert ids.dtype == np.int64
    assert ids.tolist() == [3, 1, 2, 1]
    assert vocab.encode([]).tolist() == []
    assert [a.tolist() for a in vocab.encode_many([["hold"], [], ["xyz"]])] == [[7], [], [1]]


def test_min_count_sends_rare_words_to_unk() -> None:
    vocab = Vocabulary.build(TOKENS, min_count=2)
    assert vocab.words == ["<pad>", "<unk>", "now", "buy"]
    assert vocab.encode(["sell", "buy", "hold"]).tolist() == [1, 3, 1]
    assert Vocabulary.build(TOKENS, min_count=4).words == ["<pad>", "<unk>"]


def test_reserved_words_in_the_data_are_not_duplicated() -> None:
    vocab = Vocabulary.build([["<pad>", "<unk>", "a"], ["<unk>"]])
    assert vocab.words == ["<pad>", "<unk>", "a"]


def test_ids_are_deterministic() -> None:
    first = Vocabulary.build(TOKENS)
    for _ in range(3):
        assert Vocabulary.build([list(t) for t in TOKENS]).words == first.words
    # Same counts, different first appearance: the order follows the data, not hashing.
    assert Vocabulary.build([["b", "a"], ["a", "b"]]).words[2:] == ["b", "a"]
    assert Vocabulary.build([["a", "b"], ["b", "a"]]).words[2:] == ["a", "b"]


def test_json_round_trip() -> None:
    vocab = Vocabulary.build([*TOKENS, ["🚀", "<TICKER>", "café"]])
    text = json.dumps(vocab.to_dict())
    again = Vocabulary.from_dict(json.loads(text))
    assert again.words == vocab.words
    assert again.index == vocab.index
    probe = ["buy", "🚀", "<TICKER>", "never-seen", "café"]
    assert again.encode(probe).tolist() == vocab.encode(probe).tolist()


@pytest.mark.parametrize("words", [["a", "b"], ["<unk>", "<pad>", "x"], ["<pad>", "<unk>", "x", "x"], []])
def test_invalid_word_lists_are_rejected(words: list[str]) -> None:
    with pytest.raises(ValueError):
        Vocabulary(words)


def test_real_vocabulary_comes_from_the_training_split_only(real_data_path) -> None:
    splits = load_splits(real_data_path, TextOptions(), seed=5, max_examples=4000).splits
    vocab = Vocabulary.build(splits.train.tokens, min_count=1)
    train_words = {w for tokens in splits.train.tokens for w in tokens}
    held_out_only = {w for tokens in [*splits.val.tokens, *splits.test.tokens] for w in tokens} - train_words
    assert held_out_only, "a 4,000-message sample always has words seen only outside training"
    assert set(vocab.words[2:]) == train_words
    for word in held_out_only:
        assert vocab.encode([word]).tolist() == [1]
    # Every training word gets its own id, and the ids are a permutation of 0..len-1.
    assert sorted(vocab.index.values()) == list(range(len(vocab)))
    assert all(i >= 2 for i in vocab.encode(sorted(train_words)).tolist())
