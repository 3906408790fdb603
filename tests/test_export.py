"""ONNX export and the ONNX Runtime backend: same numbers as PyTorch, dynamic shapes, the DIR/model.onnx cache."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import DATA_PATH
from stocksent.artifacts import load_model_dir, save_weights
from stocksent.batching import iterate_batches
from stocksent.cli import main
from stocksent.data import read_labelled
from stocksent.inference import onnx as export
from stocksent.sentiment import SentimentModel
from stocksent.splits import prepare_splits

MESSAGES = [
    "$SPY breaking out to new highs, loading calls 🚀",
    "$SPY this is going to crash hard, buying puts",
    "Fed meeting today, staying flat",
    "",
]


def module_proba(network, sequences) -> np.ndarray:
    """P(bullish) from the nn.Module's own forward, the graph that was exported."""
    out = np.empty(len(sequences), dtype=np.float32)
    with torch.inference_mode():
        for batch in iterate_batches(sequences, 256):
            out[batch.index] = torch.sigmoid(network.eval()(batch.ids, batch.lengths)).numpy()
    return out


@pytest.fixture
def model_dir(small_model_dir, tmp_path):
    """A private copy: these tests write model.onnx into it and change its weights."""
    return shutil.copytree(small_model_dir, tmp_path / "model")


@pytest.fixture(scope="module")
def test_split(small_model_dir):
    """The model's own test split, rebuilt from what training recorded (as `evaluate` does)."""
    config = json.loads((small_model_dir / "config.json").read_text())
    model = SentimentModel.load(small_model_dir)
    splits = prepare_splits(
        read_labelled(DATA_PATH), model.text_options, config["data"]["split_seed"], config["data"]["max_examples"]
    )
    assert len(splits.test) == config["data"]["split"]["test"] > 100
    return splits.test


def test_onnx_matches_pytorch_on_the_whole_test_split(model_dir, test_split):
    torch_model = SentimentModel.load(model_dir, precision="float32")
    onnx_model = SentimentModel.load(model_dir, backend="onnx")
    assert isinstance(onnx_model.backend, export.OnnxBackend)
    sequences = torch_model.encode(test_split.messages)
    reference = module_proba(torch_model.network, sequences)
    for batch_size in (1024, 7):
        got = onnx_model.backend.predict_proba_sequences(sequences, batch_size)
        assert got.dtype == np.float32 and got.shape == (len(test_split),)
        assert np.abs(got - reference).max() <= 1e-5
    # and through the public API, whatever the PyTorch path does inside
    messages = test_split.messages
    assert np.abs(onnx_model.predict_proba(messages) - torch_model.predict_proba(messages)).max() <= 1e-5
    assert [p.label for p in onnx_model.predict(test_split.messages)] == [
        p.label for p in torch_model.predict(test_split.messages)
    ]


def test_export_cli_writes_a_valid_model_with_dynamic_axes(model_dir, tmp_path, capsys):
    out = tmp_path / "out" / "stocksent.onnx"
    assert main(["export", "--model", str(model_dir), "--onnx", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)

    def dims(value_info):
        return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]

    inputs = {i.name: i for i in proto.graph.input}
    assert list(inputs) == ["ids", "lengths"]
    assert inputs["ids"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert inputs["lengths"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert dims(inputs["ids"]) == ["batch", "time"] and dims(inputs["lengths"]) == ["batch"]
    (output,) = proto.graph.output
    assert output.name == "p_bullish" and dims(output) == ["batch"]
    assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {p.key: p.value for p in proto.metadata_props}[export.WEIGHTS_SHA_KEY] == export.weights_sha256(model_dir)
    assert not list(tmp_path.joinpath("out").glob(".*.tmp"))  # written atomically: no temp file left


@pytest.mark.parametrize("batch, time", [(1, 1), (3, 7), (64, 100)])
def test_dynamic_batch_and_sequence_length(model_dir, tmp_path, batch, time):
    path = export.export_model_dir(model_dir, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    network, _, vocab = load_model_dir(model_dir)
    rng = np.random.default_rng(batch)
    lengths = rng.integers(1, time + 1, batch)
    lengths[0] = time
    ids = rng.integers(1, len(vocab), (batch, time))
    ids[np.arange(time)[None, :] >= lengths[:, None]] = 0  # right padding
    (got,) = session.run(None, {"ids": ids, "lengths": lengths})
    with torch.inference_mode():
        want = torch.sigmoid(network(torch.from_numpy(ids), torch.from_numpy(lengths))).numpy()
    assert got.shape == (batch,) and np.abs(got - want).max() <= 1e-5


def test_onnx_backend_exports_on_first_use_and_follows_new_weights(model_dir):
    path = model_dir / export.ONNX_FILE
    assert not path.exists()
    first = SentimentModel.load(model_dir, backend="onnx").predict_proba(MESSAGES)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    SentimentModel.load(model_dir, backend="onnx")
    assert path.stat().st_mtime_ns == stamp  # reused, not exported again

    network, _, _ = load_model_dir(model_dir)  # retrained weights: the cached file is stale
    with torch.no_grad():
        network.output.bias += 1.0
    save_weights(model_dir, network)
    again = SentimentModel.load(model_dir, backend="onnx")
    assert path.stat().st_mtime_ns != stamp
    assert (
        np.abs(
            again.predict_proba(MESSAGES) - SentimentModel.load(model_dir, precision="float32").predict_proba(MESSAGES)
        ).max()
        <= 1e-5
    )
    assert (again.predict_proba(MESSAGES) > first).all()


def test_damaged_cache_is_exported_again(model_dir):
    (model_dir / export.ONNX_FILE).write_bytes(b"not an onnx model")
    model = SentimentModel.load(model_dir, backend="onnx")
    assert model.predict_proba(MESSAGES).shape == (len(MESSAGES),)
    onnx.checker.check_model(onnx.load(str(model_dir / export.ONNX_FILE)))


def test_unwritable_model_directory_scores_from_memory(model_dir, monkeypatch, capsys):
    def refuse(path, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export, "write_bytes", refuse)
    model = SentimentModel.load(model_dir, backend="onnx")
    assert "in memory" in capsys.readouterr().err
    assert not (model_dir / export.ONNX_FILE).exists()
    assert (
        np.abs(
            model.predict_proba(MESSAGES) - SentimentModel.load(model_dir, precision="float32").predict_proba(MESSAGES)
        ).max()
        <= 1e-5
    )


def test_predict_cli_backend_onnx(model_dir, capsys):
    assert main(["predict", "--model", str(model_dir), "--precision", "float32", "--json", *MESSAGES[:3]]) == 0
    torch_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", "--model", str(model_dir), "--backend", "onnx", "--json", *MESSAGES[:3]]) == 0
    onnx_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows]
    assert np.allclose([r["p_bullish"] for r in onnx_rows], [r["p_bullish"] for r in torch_rows], atol=2e-6)


def test_user_errors_are_one_line(model_dir, tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "missing"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "model directory not found" in capsys.readouterr().err
    assert main(["export", "--model", str(model_dir), "--onnx", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["predict", "--model", str(model_dir), "--backend", "tensorflow", "x"]) == 2
    assert "unknown backend" in capsys.readouterr().err
