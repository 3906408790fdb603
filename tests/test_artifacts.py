"""Tests for stocksent.artifacts: the model directory round trip, and a clear error for every bad one."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from stocksent.artifacts import CONFIG, VOCAB, WEIGHTS, load_model_dir, load_tensors, save_model_dir, save_tensors
from stocksent.errors import StocksentError
from stocksent.inference import network_logits
from stocksent.model import LSTMClassifier
from stocksent.sentiment import SentimentModel
from stocksent.version import __version__
from stocksent.vocab import Vocabulary

MESSAGES = [
    "$SPY breaking out, loading calls 🚀",
    "$SPY crash incoming, buying puts",
    "flat",
    "",
    "@bob $AAPL $12.50 to 13 http://x.co",
]


@pytest.fixture
def model_copy(synthetic_model_dir, tmp_path) -> Path:
    """A private copy of the trained model directory, free to break."""
    copy = tmp_path / "model"
    shutil.copytree(synthetic_model_dir, copy)
    return copy


def tiny_model_dir(directory: Path, seed: int = 0) -> tuple[LSTMClassifier, Vocabulary]:
    torch.manual_seed(seed)
    vocab = Vocabulary.build([["buy", "calls"], ["sell", "puts", "<TICKER>"]])
    model = LSTMClassifier(len(vocab), embed_size=8, lstm_sizes=(6, 4), keep_prob=0.7, ngram_buckets=16)
    with torch.no_grad():
        model.ngrams.weight[1:].normal_()
    save_model_dir(directory, model, {"text": {"keep_emoji": True}, "threshold": 0.5}, vocab)
    return model, vocab


def assert_one_line_error(directory: Path, *words: str) -> str:
    with pytest.raises(StocksentError) as info:
        load_model_dir(directory)
    message = str(info.value)
    assert message and "\n" not in message
    for word in words:
        assert word in message, message
    # The public loader gives the same error.
    with pytest.raises(StocksentError):
        SentimentModel.load(directory)
    return message


# --------------------------------------------------------------------------- round trip


def test_save_load_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model, vocab = tiny_model_dir(tmp_path / "m")
    loaded, config, loaded_vocab = load_model_dir(tmp_path / "m")
    assert not loaded.training
    assert loaded_vocab.words == vocab.words
    assert config["model"] == {
        "vocab_size": len(vocab),
        "embed_size": 8,
        "lstm_sizes": [6, 4],
        "keep_prob": pytest.approx(0.7),
        "ngram_buckets": 16,
    }
    assert config["text"] == {"keep_emoji": True}
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    sequences = [np.array(s) for s in ([2, 3], [4, 5, 6, 1], [1])]
    np.testing.assert_array_equal(network_logits(loaded, sequences), network_logits(model.eval(), sequences))


def test_trained_model_round_trip(synthetic_model_dir: Path, tmp_path: Path) -> None:
    original = SentimentModel.load(synthetic_model_dir)
    model, config, vocab = load_model_dir(synthetic_model_dir)
    again = tmp_path / "again"
    save_model_dir(again, model, {k: v for k, v in config.items() if k != "model"}, vocab)
    reloaded = SentimentModel.load(again)
    np.testing.assert_array_equal(reloaded.predict_proba(MESSAGES), original.predict_proba(MESSAGES))
    assert reloaded.text_options == original.text_options
    assert json.loads((again / CONFIG).read_text()) == json.loads((synthetic_model_dir / CONFIG).read_text())


def test_files_are_safetensors_and_json_never_pickle(small_model_dir: Path, monkeypatch) -> None:
    names = {p.name for p in small_model_dir.iterdir()}
    assert {WEIGHTS, CONFIG, VOCAB, "metrics.json", "learning_curve.png"} <= names
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".bin", ".ckpt"))]
    assert not [n for n in names if n.endswith(".tmp")]
    for name in names:
        path = small_model_dir / name
        raw = path.read_bytes()
        assert not raw.startswith(b"\x80"), f"{name} looks like a pickle"
        assert not raw.startswith(b"PK"), f"{name} looks like a torch zip archive"
        if name.endswith(".safetensors"):
            # safetensors: an 8-byte little-endian header length, then a JSON header.
            (header_len,) = struct.unpack("<Q", raw[:8])
            header = json.loads(raw[8 : 8 + header_len])
            assert all("dtype" in v and "shape" in v for k, v in header.items() if k != "__metadata__")
        elif name.endswith(".json"):
            json.loads(raw)
        else:
            assert name.endswith(".png")
    # Loading works with every unpickler disabled.

    def forbidden(*args, **kwargs):
        raise AssertionError("a model directory must load without unpickling")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    assert SentimentModel.load(small_model_dir).predict("$SPY up").label in ("bullish", "bearish")


def test_files_are_readable_like_any_other_new_file(synthetic_model_dir: Path, tmp_path: Path) -> None:
    # Written atomically (temp file + rename) but with ordinary permissions, so another user or a
    # service account can read a model directory just like a file copied there.
    reference = tmp_path / "reference"
    reference.write_text("x")
    expected = reference.stat().st_mode & 0o777
    for name in (WEIGHTS, CONFIG, VOCAB):
        assert (synthetic_model_dir / name).stat().st_mode & 0o777 == expected, name


def test_save_tensors_is_atomic(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.safetensors"
    save_tensors(path, {"a": torch.ones(3)})
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        save_tensors(path, {"a": torch.zeros(300)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]
    assert torch.equal(load_tensors(path)["a"], torch.ones(3))


# --------------------------------------------------------------------------- bad directories


def test_missing_directory(tmp_path: Path) -> None:
    message = assert_one_line_error(tmp_path / "nope", "not found", "nope")
    assert "stocksent train" in message


def test_a_file_instead_of_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    assert_one_line_error(path, str(path))


@pytest.mark.parametrize("name", [WEIGHTS, CONFIG, VOCAB])
def test_missing_file(model_copy: Path, name: str) -> None:
    (model_copy / name).unlink()
    assert_one_line_error(model_copy, "missing", name)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda raw: b"\x00garbage bytes, not tensors" * 50, id="garbage"),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated-half"),
        pytest.param(lambda raw: raw[:4], id="truncated-header"),
        pytest.param(lambda raw: raw[:-1], id="truncated-one-byte"),
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: pickle.dumps({"weight": [1.0]}), id="a-pickle"),
    ],
)
def test_corrupted_safetensors(model_copy: Path, corrupt) -> None:
    path = model_copy / WEIGHTS
    path.write_bytes(corrupt(path.read_bytes()))
    assert_one_line_error(model_copy, WEIGHTS)


def test_weights_of_another_shape(model_copy: Path) -> None:
    config = json.loads((model_copy / CONFIG).read_text())
    config["model"]["lstm_sizes"] = [16, 4]
    (model_copy / CONFIG).write_text(json.dumps(config))
    assert_one_line_error(model_copy, WEIGHTS, "config.json")


@pytest.mark.parametrize("name", [CONFIG, VOCAB])
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"model": ', id="cut-off"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(b"{}", id="no-fields"),
    ],
)
def test_corrupted_json(model_copy: Path, name: str, content: bytes) -> None:
    (model_copy / name).write_bytes(content)
    assert_one_line_error(model_copy, name)


@pytest.mark.parametrize("field, value", [("text", "keep emoji"), ("threshold", "high"), ("text", [1])])
def test_config_fields_of_the_wrong_type(model_copy: Path, field: str, value) -> None:
    config = json.loads((model_copy / CONFIG).read_text())
    config[field] = value
    (model_copy / CONFIG).write_text(json.dumps(config))
    with pytest.raises(StocksentError) as info:
        SentimentModel.load(model_copy)
    assert CONFIG in str(info.value) and "\n" not in str(info.value)


def with_version(model: Path, value) -> Path:
    config = json.loads((model / CONFIG).read_text())
    if value is KeyError:
        config.pop("stocksent_version", None)
    else:
        config["stocksent_version"] = value
    (model / CONFIG).write_text(json.dumps(config))
    return model


@pytest.mark.parametrize("version", ["99.0.0", "0.2.0", "1.0rc1"])
def test_a_model_of_a_newer_format_is_refused_saying_to_upgrade(model_copy: Path, version: str) -> None:
    message = assert_one_line_error(with_version(model_copy, version), CONFIG, version, __version__, "upgrade")
    assert "newer" in message


@pytest.mark.parametrize("version", [None, 123, {"major": 0}, [0, 1], "", "latest", True])
def test_a_version_that_is_no_version_is_refused(model_copy: Path, version) -> None:
    assert_one_line_error(with_version(model_copy, version), CONFIG, "stocksent_version must be a version")


@pytest.mark.parametrize("version", [__version__, "0.1.7", "0.0.9", "0.1.0.dev3", KeyError])
def test_this_an_older_a_patch_release_or_no_version_is_read(model_copy: Path, version) -> None:
    """The rule: newer major.minor is refused; the same or older, a patch release, or no field
    (a directory from before it was recorded) is read."""
    model = SentimentModel.load(with_version(model_copy, version))
    assert model.predict("$SPY calls").label in ("bullish", "bearish")


def test_save_writes_this_stocksents_version(model_copy: Path, tmp_path: Path) -> None:
    SentimentModel.load(with_version(model_copy, KeyError)).save(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / CONFIG).read_text())["stocksent_version"] == __version__


def test_vocabulary_size_mismatch(model_copy: Path) -> None:
    vocab = json.loads((model_copy / VOCAB).read_text())
    n = len(vocab["words"])
    vocab["words"] = vocab["words"][:-3]
    (model_copy / VOCAB).write_text(json.dumps(vocab))
    message = assert_one_line_error(model_copy, VOCAB, str(n - 3), str(n))
    assert "vocab" in message


def test_invalid_vocabulary_words(model_copy: Path) -> None:
    (model_copy / VOCAB).write_text(json.dumps({"words": ["a", "b", "c"]}))
    assert_one_line_error(model_copy, VOCAB)


# --------------------------------------------------------------------------- tampered or damaged models


def rewrite_config(directory: Path, change) -> None:
    config = json.loads((directory / CONFIG).read_text())
    change(config)
    (directory / CONFIG).write_text(json.dumps(config))  # json writes NaN and Infinity as Python reads them


def rewrite_tensor(directory: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(directory / WEIGHTS)
    change(tensors)
    save_file(tensors, directory / WEIGHTS)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("threshold", float("nan"), ["threshold", "nan"]),
        ("threshold", float("inf"), ["threshold", "inf"]),
        ("threshold", -0.1, ["threshold", "-0.1"]),
        ("threshold", 1.5, ["threshold", "1.5"]),
        ("threshold", True, ["threshold"]),
        ("threshold", None, ["threshold"]),
        ("temperature", float("nan"), ["temperature"]),
        ("temperature", 0, ["temperature"]),
        ("temperature", "1", ["temperature"]),
    ],
)
def test_tampered_scoring_fields_are_refused(model_copy: Path, field: str, value, words) -> None:
    rewrite_config(model_copy, lambda c: c.__setitem__(field, value))
    assert_one_line_error(model_copy, CONFIG, *words)


@pytest.mark.parametrize(
    "text, words",
    [
        ({"max_tokens": -5}, ["text.max_tokens", "-5"]),
        ({"max_tokens": 0}, ["text.max_tokens"]),
        ({"max_tokens": 2.5}, ["text.max_tokens"]),
        ({"max_tokens": 10**9}, ["text.max_tokens"]),
        ({"keep_emoji": "yes"}, ["text.keep_emoji"]),
        ({"keep_cashtags": 1}, ["text.keep_cashtags"]),
    ],
)
def test_tampered_text_options_are_refused(model_copy: Path, text: dict, words) -> None:
    rewrite_config(model_copy, lambda c: c["text"].update(text))
    assert_one_line_error(model_copy, CONFIG, *words)


def test_the_api_door_is_checked_too(small_model_dir: Path) -> None:
    network, config, vocab = load_model_dir(small_model_dir)
    with pytest.raises(StocksentError, match="threshold"):
        SentimentModel.build(network, vocab, {**config, "threshold": float("nan")})
    with pytest.raises(StocksentError, match="max_tokens"):
        SentimentModel.build(network, vocab, {**config, "text": {"max_tokens": -1}})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused(model_copy: Path, bad: float) -> None:
    def poison(tensors):
        name = sorted(tensors)[0]
        tensors[name].view(-1)[3] = bad

    rewrite_tensor(model_copy, poison)
    name = sorted(load_tensors(model_copy / WEIGHTS))[0]
    assert_one_line_error(model_copy, WEIGHTS, name, "NaN or infinite")


@pytest.mark.parametrize("name", ["embedding.weight", "ngrams.weight"])
def test_a_non_zero_padding_row_is_refused(model_copy: Path, name: str) -> None:
    """Row 0 is padding: training keeps it zero, and engines that sum padded positions rely on it."""
    rewrite_tensor(model_copy, lambda t: t[name][0].fill_(0.5))
    assert_one_line_error(model_copy, WEIGHTS, name, "padding row")


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_integer_weights_are_refused(model_copy: Path, dtype) -> None:
    rewrite_tensor(model_copy, lambda t: t.__setitem__("output.weight", t["output.weight"].to(dtype)))
    assert_one_line_error(model_copy, WEIGHTS, "output.weight", "not floating point")


def test_half_precision_weights_load_as_float32(model_copy: Path) -> None:
    """float16 is a floating type: allowed, and cast to the network's float32 as it loads."""
    rewrite_tensor(model_copy, lambda t: t.__setitem__("output.weight", t["output.weight"].half()))
    network, _, _ = load_model_dir(model_copy)
    assert network.output.weight.dtype == torch.float32


def test_extra_and_missing_tensors_are_refused(model_copy: Path) -> None:
    rewrite_tensor(model_copy, lambda t: t.__setitem__("backdoor.weight", torch.ones(2)))
    assert_one_line_error(model_copy, WEIGHTS, "unexpected backdoor.weight")
    rewrite_tensor(model_copy, lambda t: [t.pop("backdoor.weight"), t.pop("output.bias")])
    assert_one_line_error(model_copy, WEIGHTS, "missing output.bias")


def test_a_tensor_of_another_shape_is_refused(model_copy: Path) -> None:
    rewrite_tensor(model_copy, lambda t: t.__setitem__("output.bias", torch.zeros(2)))
    assert_one_line_error(model_copy, WEIGHTS, "output.bias", "[2]", "[1]")


def test_vocabulary_words_must_be_strings(model_copy: Path) -> None:
    vocab = json.loads((model_copy / VOCAB).read_text())
    vocab["words"][5] = 12345
    (model_copy / VOCAB).write_text(json.dumps(vocab))
    assert_one_line_error(model_copy, VOCAB, "words[5]")


def test_a_huge_vocab_size_is_refused_before_anything_is_allocated(model_copy: Path) -> None:
    rewrite_config(model_copy, lambda c: c["model"].__setitem__("vocab_size", 10**12))
    assert_one_line_error(model_copy, CONFIG, "vocab_size")


def test_deeply_nested_config_is_one_line(model_copy: Path) -> None:
    (model_copy / CONFIG).write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line_error(model_copy, CONFIG, "nested too deeply")


def test_sha256_pins_the_files(model_copy: Path) -> None:
    from stocksent.artifacts import sha256_files

    pinned = sha256_files(model_copy)
    load_model_dir(model_copy, sha256=pinned)  # the same files: loads
    rewrite_config(model_copy, lambda c: c.__setitem__("threshold", 0.9))  # still a valid model
    with pytest.raises(StocksentError) as info:
        load_model_dir(model_copy, sha256=pinned)
    message = str(info.value)
    assert CONFIG in message and pinned[CONFIG][:12] in message and "\n" not in message
    with pytest.raises(StocksentError, match="changed"):
        SentimentModel.load(model_copy, sha256=pinned)
    assert SentimentModel.load(model_copy).threshold == 0.9  # unpinned: the new file is fine


def test_cli_refuses_a_tampered_model_in_one_line(model_copy: Path, capsys) -> None:
    from stocksent.cli import main

    rewrite_config(model_copy, lambda c: c.__setitem__("threshold", float("nan")))
    assert main(["predict", "--model", str(model_copy), "$SPY up"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("stocksent: error: ") and "threshold" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
