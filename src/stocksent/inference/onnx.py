"""ONNX: export the network (embedding through the logit) and score with ONNX Runtime.

The exported graph takes `ids` int64 (batch, time), right-padded with 0, and `lengths` int64
(batch,), both with dynamic sizes, and returns two float32 (batch,) outputs: `p_bullish`, the
sigmoid of the logit (the only output of files exported before the engines returned logits, and
still the first, so `session.run(None, feed)[0]` means what it meant), and `logit`, which
`OnnxEngine` reads, as every engine returns logits. Text normalisation and the vocabulary stay in
Python, so an ONNX model scores exactly what `SentimentModel.encode` gives it.

`SentimentModel.load(dir, backend="onnx")` uses DIR/model.onnx when it was exported from the
directory's weights (the file records their sha256) and has the `logit` output; otherwise it builds
the ONNX model in memory. Loading never writes into the model directory: `stocksent export` does.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stocksent.artifacts import METRICS, MODEL_FILES, WEIGHTS, load_model_dir
from stocksent.atomic import cannot_write, check_output_file, write_bytes
from stocksent.errors import StocksentError
from stocksent.inference.engine import DEFAULT_BATCH, LengthBatch, by_length
from stocksent.model import LSTMClassifier

log = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"
WEIGHTS_SHA_KEY = "stocksent.weights_sha256"
OPSET = 17
INPUTS = ("ids", "lengths")
P_BULLISH, LOGIT = "p_bullish", "logit"
OUTPUTS = (P_BULLISH, LOGIT)
# ONNX Runtime's LSTM computes every padded step, so small length-sorted batches are cheapest:
# 256 messages score in about 40% of the time of one padded batch of 256.
ORT_BATCH = 32


class _Outputs(nn.Module):
    """The exported graph: P(bullish) for clients that want a probability, and the logit."""

    def __init__(self, network: LSTMClassifier):
        super().__init__()
        self.network = network

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit = self.network(ids, lengths)
        return torch.sigmoid(logit), logit


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
                _Outputs(network),
                (ids, lengths),
                buffer,
                **legacy,
                input_names=list(INPUTS),
                output_names=list(OUTPUTS),
                opset_version=OPSET,
                dynamic_axes={
                    "ids": {0: "batch", 1: "time"},
                    "lengths": {0: "batch"},
                    **{o: {0: "batch"} for o in OUTPUTS},
                },
            )
    finally:
        network.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {WEIGHTS_SHA_KEY: weights_sha})
    proto.doc_string = (
        "stocksent LSTM: ids (batch, time) right-padded with 0, lengths (batch,) -> p_bullish, logit (batch,)"
    )
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_model_dir(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write the model directory's network as ONNX to `out` (default DIR/model.onnx, the file
    `SentimentModel.load(dir, backend="onnx")` uses), atomically; returns the path."""
    _require_onnx()
    from stocksent.writers import refuse_inputs

    directory = Path(directory)
    out = directory / ONNX_FILE if out is None else Path(out)
    refuse_inputs([out], [directory / name for name in (*MODEL_FILES, METRICS)])
    network, _, _ = load_model_dir(directory)
    if out.is_dir():
        raise StocksentError(f"--onnx {out} is a directory: give a file path such as {out / ONNX_FILE}")
    hint = "give --onnx a path in a folder you can write"
    check_output_file(out, hint)  # before the export's work
    try:
        write_bytes(out, onnx_bytes(network, weights_sha256(directory)))
    except OSError as err:
        raise cannot_write(out, err, hint) from None
    return out


def open_session(model: bytes | str | Path, threads: int | None = None):
    """An ONNX Runtime session of a file or of serialised bytes; StocksentError if it cannot load."""
    _require_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    # The process's one thread budget: as many as torch uses (the server sets 1 per scoring thread).
    options.intra_op_num_threads = threads or torch.get_num_threads()
    try:
        return ort.InferenceSession(
            model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises its own exception types for bad files
        where = "(in memory)" if isinstance(model, bytes) else str(model)
        raise StocksentError(
            f"cannot load ONNX model {where}: {str(err).splitlines()[0]}; export it again with stocksent export"
        ) from None


def has_logit(session) -> bool:
    return LOGIT in {o.name for o in session.get_outputs()}


def session_weights_sha(session) -> str:
    return session.get_modelmeta().custom_metadata_map.get(WEIGHTS_SHA_KEY, "")


class OnnxEngine:
    """The ONNX Runtime engine (`engine.Engine`): the `logit` output, in length-sorted batches."""

    name = "onnx"
    precision = "float32"
    parallel = False  # ONNX Runtime runs each call on its own intra-op threads

    def __init__(self, session, vocab_size: int):
        if not has_logit(session):
            raise StocksentError(
                f"this ONNX model has no {LOGIT!r} output (exported by an earlier stocksent): "
                "export it again with stocksent export"
            )
        self.session = session
        self.vocab_size = vocab_size

    @classmethod
    def open(cls, model: bytes | str | Path, vocab_size: int, threads: int | None = None) -> OnnxEngine:
        """The engine of an exported file (or its bytes) for a vocabulary of `vocab_size` words."""
        return cls(open_session(model, threads), vocab_size)

    @classmethod
    def for_network(cls, network: LSTMClassifier, directory: str | Path | None = None) -> OnnxEngine:
        """DIR/model.onnx when it holds these weights (see the module's docstring), else built in memory.

        >>> OnnxEngine.for_network(network, "runs/demo").logits(ids, lengths)  # doctest: +SKIP
        """
        _require_onnx()
        vocab_size = network.embedding.num_embeddings
        sha = weights_sha256(Path(directory)) if directory is not None else ""
        path = Path(directory) / ONNX_FILE if directory is not None else None
        if path is not None and path.is_file():
            try:
                session = open_session(path)
                reason = (
                    f"exported by an earlier stocksent, without the {LOGIT!r} output"
                    if not has_logit(session)
                    else "exported from other weights"
                    if session_weights_sha(session) != sha
                    else ""
                )
            except StocksentError:
                reason = "not a readable ONNX model"
            if not reason:
                return cls(session, vocab_size)
            log.warning(
                f"not using {path} ({reason}): scoring with an ONNX model built in memory; "
                f"stocksent export --model {directory} writes a current file"
            )
        return cls.open(onnx_bytes(network, sha), vocab_size)

    def logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        def run(flat: np.ndarray, batch: LengthBatch) -> np.ndarray:
            return self.session.run([LOGIT], {"ids": batch.padded(flat), "lengths": batch.lengths})[0]

        return by_length(ids, lengths, min(batch_size, ORT_BATCH), self.vocab_size, run)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise StocksentError("the ONNX backend needs onnx and onnxruntime: pip install 'stocksent[onnx]'") from None
