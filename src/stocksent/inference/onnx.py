"""ONNX: export the network (embedding through sigmoid) and score with ONNX Runtime.

The exported graph takes `ids` int64 (batch, time), right-padded with 0, and `lengths` int64
(batch,), both with dynamic sizes, and returns `p_bullish` float32 (batch,). Text normalisation and
the vocabulary stay in Python, so an ONNX model scores exactly what `SentimentModel.encode` gives it.

`SentimentModel.load(dir, backend="onnx")` uses DIR/model.onnx, exporting it on first use. The file
records the sha256 of the weights it came from, so a retrained directory is re-exported rather than
silently scored with stale weights.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stocksent.artifacts import WEIGHTS, load_model_dir
from stocksent.atomic import write_bytes
from stocksent.batching import iterate_batches
from stocksent.errors import StocksentError
from stocksent.model import LSTMClassifier

ONNX_FILE = "model.onnx"
WEIGHTS_SHA_KEY = "stocksent.weights_sha256"
OPSET = 17
INPUTS, OUTPUT = ("ids", "lengths"), "p_bullish"
# ONNX Runtime's LSTM computes every padded step, so small length-sorted batches are cheapest:
# 256 messages score in about 40% of the time of one padded batch of 256.
ORT_BATCH = 32


class _WithSigmoid(nn.Module):
    """The exported graph ends in a probability, so no client has to apply the sigmoid itself."""

    def __init__(self, network: LSTMClassifier):
        super().__init__()
        self.network = network

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.network(ids, lengths))


def weights_sha256(directory: Path) -> str:
    return hashlib.sha256((directory / WEIGHTS).read_bytes()).hexdigest()


def onnx_bytes(network: LSTMClassifier, weights_sha: str = "") -> bytes:
    """The serialised ONNX model of `network` (eval mode), tagged with the weights' sha256."""
    import onnx

    # Batch 2, time 3 with one padded row: example shapes only; both axes are declared dynamic.
    ids = torch.tensor([[2, 3, 4], [5, 6, 0]], dtype=torch.int64).clamp(max=network.embedding.num_embeddings - 1)
    lengths = torch.tensor([3, 2], dtype=torch.int64)
    buffer = io.BytesIO()
    was_training = network.training
    network.eval()
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter handles nn.LSTM with dynamic axes and needs no onnxscript;
            # its deprecation and tracer warnings are about code paths this model does not take.
            warnings.simplefilter("ignore")
            # Older torch has only this exporter and no `dynamo` switch.
            legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
            torch.onnx.export(
                _WithSigmoid(network),
                (ids, lengths),
                buffer,
                **legacy,
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                opset_version=OPSET,
                dynamic_axes={"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, OUTPUT: {0: "batch"}},
            )
    finally:
        network.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {WEIGHTS_SHA_KEY: weights_sha})
    proto.doc_string = "stocksent LSTM: ids (batch, time) right-padded with 0, lengths (batch,) -> p_bullish (batch,)"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_model_dir(directory: str | Path, out: str | Path) -> Path:
    """Write the model directory's network as ONNX to `out` (atomically); returns the path."""
    _require_onnx()
    directory, out = Path(directory), Path(out)
    network, _, _ = load_model_dir(directory)
    if out.is_dir():
        raise StocksentError(f"--onnx {out} is a directory: give a file path such as {out / ONNX_FILE}")
    write_bytes(out, onnx_bytes(network, weights_sha256(directory)))
    return out


class OnnxBackend:
    """Scores encoded messages with ONNX Runtime, batched exactly as the PyTorch path batches them."""

    def __init__(self, model: bytes | str | Path, threads: int | None = None):
        _require_onnx()
        import onnxruntime as ort

        options = ort.SessionOptions()
        # The process's one thread budget: as many as torch uses (the server sets 1 per scoring thread).
        options.intra_op_num_threads = threads or torch.get_num_threads()
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise StocksentError(
                f"cannot load ONNX model {'(in memory)' if isinstance(model, bytes) else model}: "
                f"{str(err).splitlines()[0]}; export it again with stocksent export"
            ) from None
        self.weights_sha = self.session.get_modelmeta().custom_metadata_map.get(WEIGHTS_SHA_KEY, "")

    @classmethod
    def for_model_dir(cls, directory: str | Path, network: LSTMClassifier | None = None) -> OnnxBackend:
        """DIR/model.onnx, (re-)exported first when it is missing or was made from other weights."""
        directory = Path(directory)
        path, sha = directory / ONNX_FILE, weights_sha256(directory)
        if path.is_file():
            try:
                backend = cls(path)
            except StocksentError:  # a damaged cache file is simply made again
                backend = None
            if backend is not None and backend.weights_sha == sha:
                return backend
        _require_onnx()
        if network is None:
            network, _, _ = load_model_dir(directory)
        data = onnx_bytes(network, sha)
        try:
            write_bytes(path, data)
        except OSError as err:  # a read-only model directory still works, just without the cache
            print(f"stocksent: could not save {path} ({err.strerror}); using the ONNX model in memory", file=sys.stderr)
        return cls(data)

    def predict_proba_sequences(self, sequences: Sequence[np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """P(bullish) per encoded message, in input order (float32), like `model.predict_proba_sequences`."""
        out = np.empty(len(sequences), dtype=np.float32)
        for batch in iterate_batches(sequences, min(batch_size, ORT_BATCH)):
            feed = {"ids": batch.ids.numpy(), "lengths": batch.lengths.numpy()}
            out[batch.index] = self.session.run([OUTPUT], feed)[0]
        return out


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise StocksentError("the ONNX backend needs onnx and onnxruntime: pip install 'stocksent[onnx]'") from None
