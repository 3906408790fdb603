"""ONNX export and the ONNX Runtime engine: same numbers as PyTorch, dynamic shapes, DIR/model.onnx used
when current and never written by loading."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import DATA_PATH
from process_helpers import run_in_read_only
from stocksent.artifacts import load_model_dir, save_weights
from stocksent.batching import iterate_batches
from stocksent.cli import main
from stocksent.inference import flatten
from stocksent.inference import onnx as export
from stocksent.sentiment import SentimentModel
from stocksent.splits import load_splits

STOCKSENT = str(Path(sys.executable).with_name("stocksent"))
MESSAGES = [
    "$SPY breaking out to new highs, loading calls 🚀",
    "$SPY this is going to crash hard, buying puts",
    "Fed meeting today, staying flat",
    "",
]


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference, NaN (a message with no words: no evidence) required at the same places."""
    assert (np.isnan(a) == np.isnan(b)).all()
    return float(np.nanmax(np.abs(a - b)))


def module_logits(network, sequences) -> np.ndarray:
    """Logits from the nn.Module's own forward, the graph that was exported."""
    out = np.empty(len(sequences), dtype=np.float32)
    with torch.inference_mode():
        for batch in iterate_batches(sequences, 256):
            out[batch.index] = network.eval()(batch.ids, batch.lengths).numpy()
    return out


def snapshot(directory) -> dict:
    """Every file's name, size and modification time: what "loading never writes" compares."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def torch_proba(model_dir, messages=MESSAGES) -> np.ndarray:
    return SentimentModel.load(model_dir, precision="float32").predict_proba(messages)


@pytest.fixture
def model_dir(synthetic_model_dir, tmp_path):
    """A private copy: these tests export model.onnx into it and change its weights."""
    return shutil.copytree(synthetic_model_dir, tmp_path / "model")


@pytest.fixture(scope="module")
def test_split(small_model_dir):
    """The trained model's own test split, rebuilt from what training recorded (as `evaluate` does)."""
    config = json.loads((small_model_dir / "config.json").read_text())
    model = SentimentModel.load(small_model_dir)
    splits = load_splits(
        DATA_PATH, model.text_options, config["data"]["split_seed"], config["data"]["max_examples"]
    ).splits
    assert len(splits.test) == config["data"]["split"]["test"] > 100
    return splits.test


def test_onnx_matches_pytorch_on_the_whole_test_split(small_model_dir, tmp_path, test_split):
    model_dir = shutil.copytree(small_model_dir, tmp_path / "model")
    torch_model = SentimentModel.load(model_dir, precision="float32")
    onnx_model = SentimentModel.load(model_dir, backend="onnx")
    assert isinstance(onnx_model.engine, export.OnnxEngine) and onnx_model.precision == "float32"
    sequences = torch_model.encode(list(test_split.messages))
    reference = module_logits(torch_model.network, sequences)
    for batch_size in (1024, 7):
        got = onnx_model.engine.logits(*flatten(sequences), batch_size)
        assert got.dtype == np.float32 and got.shape == (len(test_split),)
        assert np.abs(got - reference).max() <= 1e-5
    # and through the public API, whatever the PyTorch path does inside
    messages = test_split.messages
    assert max_diff(onnx_model.predict_proba(messages), torch_model.predict_proba(messages)) <= 1e-5
    assert [p.label for p in onnx_model.predict(test_split.messages)] == [
        p.label for p in torch_model.predict(test_split.messages)
    ]


def test_export_cli_writes_a_valid_model_with_dynamic_axes(model_dir, tmp_path, capsys):
    out = tmp_path / "out" / "stocksent.onnx"
    out.parent.mkdir()  # an output's folder must exist (a missing one is refused, not made)
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
    # p_bullish first, as the only output of earlier exports was; then the logit the engine reads.
    assert [o.name for o in proto.graph.output] == ["p_bullish", "logit"]
    for output in proto.graph.output:
        assert dims(output) == ["batch"] and output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {p.key: p.value for p in proto.metadata_props}[export.WEIGHTS_SHA_KEY] == export.weights_sha256(model_dir)
    assert not list(tmp_path.joinpath("out").glob(".*.tmp"))  # written atomically: no temp file left


def test_export_writes_the_model_directorys_file_by_default(model_dir, capsys):
    assert main(["export", "--model", str(model_dir)]) == 0
    assert str(model_dir / export.ONNX_FILE) in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(model_dir / export.ONNX_FILE)))


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
    p_bullish, logit = session.run(None, {"ids": ids, "lengths": lengths})
    with torch.inference_mode():
        want = network(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    assert logit.shape == p_bullish.shape == (batch,)
    assert np.abs(logit - want).max() <= 1e-5
    assert np.abs(p_bullish - torch.sigmoid(torch.from_numpy(want)).numpy()).max() <= 1e-6


def test_loading_never_writes_and_uses_a_current_export(model_dir, monkeypatch):
    before = snapshot(model_dir)
    in_memory = SentimentModel.load(model_dir, backend="onnx").predict_proba(MESSAGES)
    assert snapshot(model_dir) == before  # no model.onnx appeared: built in memory
    assert max_diff(in_memory, torch_proba(model_dir)) <= 1e-5

    export.export_model_dir(model_dir)
    exported = snapshot(model_dir)
    # A current DIR/model.onnx is used as it is: nothing is exported again.
    monkeypatch.setattr(export, "onnx_bytes", lambda *a, **k: pytest.fail("exported although model.onnx is current"))
    from_file = SentimentModel.load(model_dir, backend="onnx").predict_proba(MESSAGES)
    np.testing.assert_array_equal(from_file, in_memory)
    assert snapshot(model_dir) == exported


def test_a_stale_export_is_not_used_nor_rewritten(model_dir, capsys):
    export.export_model_dir(model_dir)
    first = SentimentModel.load(model_dir, backend="onnx").predict_proba(MESSAGES)
    network, _, _ = load_model_dir(model_dir)  # retrained weights: the exported file is stale
    with torch.no_grad():
        network.output.bias += 1.0
    save_weights(model_dir, network)
    capsys.readouterr()
    before = snapshot(model_dir)
    again = SentimentModel.load(model_dir, backend="onnx")
    assert "exported from other weights" in capsys.readouterr().err  # logged, with what to do
    assert snapshot(model_dir) == before
    assert max_diff(again.predict_proba(MESSAGES), torch_proba(model_dir)) <= 1e-5
    assert (again.predict_proba(MESSAGES)[:3] > first[:3]).all()  # the last has no words


def test_damaged_or_old_exports_fall_back_to_memory(model_dir, capsys):
    (model_dir / export.ONNX_FILE).write_bytes(b"not an onnx model")
    model = SentimentModel.load(model_dir, backend="onnx")
    assert "not a readable ONNX model" in capsys.readouterr().err
    assert model.predict_proba(MESSAGES).shape == (len(MESSAGES),)
    assert (model_dir / export.ONNX_FILE).read_bytes() == b"not an onnx model"

    # A file of an earlier stocksent: right weights, but p_bullish only.
    proto = onnx.load_from_string(export.onnx_bytes(load_model_dir(model_dir)[0], export.weights_sha256(model_dir)))
    kept = [o for o in proto.graph.output if o.name == "p_bullish"]
    del proto.graph.output[:]
    proto.graph.output.extend(kept)
    (model_dir / export.ONNX_FILE).write_bytes(proto.SerializeToString())
    old = SentimentModel.load(model_dir, backend="onnx")
    assert "without the 'logit' output" in capsys.readouterr().err
    assert max_diff(old.predict_proba(MESSAGES), torch_proba(model_dir)) <= 1e-5


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


@pytest.mark.parametrize("where", ["/proc/x.onnx", "nonexist/dir/x.onnx"])
def test_an_output_that_cannot_be_written_is_one_line_and_no_folder_is_made(model_dir, tmp_path, where, capsys):
    where = where if where.startswith("/") else str(tmp_path / where)
    assert main(["export", "--model", str(model_dir), "--onnx", where]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"stocksent: error: cannot write {where}: ") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "nonexist").exists() and not Path("/proc/x.onnx").exists()


def test_a_read_only_model_directory_is_one_line(model_dir, tmp_path):
    """The default output, MODEL/model.onnx, in a folder no one may write: one line, exit 2."""
    (done,) = run_in_read_only(model_dir, [STOCKSENT, "export", "--model", str(model_dir)])
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"stocksent: error: cannot write {model_dir / 'model.onnx'}: Permission denied; "
        "give --onnx a path in a folder you can write"
    )
    assert not (model_dir / "model.onnx").exists()
