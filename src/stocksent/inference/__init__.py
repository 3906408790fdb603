"""Inference engines: the only code that turns word ids into logits.

Four engines implement `Engine.logits(ids, lengths)` (engine.py) over flat word ids: the compiled
engine (`native.NativeLSTM`, fused C++ kernels, float32 or bfloat16), `TorchEngine` (the module's
forward, on any device: the reference), the fast CPU engine in torch (`fast_cpu.InferenceLSTM`,
float32 or bfloat16, and `AutoPrecision` over both: the fallback where the compiled core is not
installed) and `onnx.OnnxEngine` (ONNX Runtime). `engine_for` picks one for a network and
`describe` says which one a model runs; `network_logits` is what training's validation,
calibration and the blend call.

>>> engine = engine_for(network, backend="torch", precision="float32")   # doctest: +SKIP
>>> sigmoid(engine.logits(ids, lengths))                                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stocksent.errors import StocksentError
from stocksent.inference.engine import DEFAULT_BATCH, Engine, TorchEngine, flatten, sigmoid

__all__ = [
    "BACKENDS",
    "DEFAULT_BATCH",
    "PRECISIONS",
    "Engine",
    "TorchEngine",
    "describe",
    "engine_for",
    "flatten",
    "network_logits",
    "sigmoid",
]

BACKENDS = ("torch", "onnx")
PRECISIONS = ("auto", "float32", "bfloat16")


def engine_for(
    network,
    backend: str = "torch",
    precision: str = "auto",
    device: str = "cpu",
    directory: str | Path | None = None,
) -> Engine:
    """The engine for a network (eval mode): "torch" on the CPU is the compiled engine where this
    install has it (`compiled.status()`), else the fast CPU engine in torch (both give the module's
    answers to ~1e-7 in float32); on another device the module's forward; "onnx" is ONNX Runtime,
    from DIR/model.onnx when `directory` holds a current one.

    `precision`: float32, bfloat16, or auto: bfloat16 for calls of at least 64 messages where the
    CPU makes it faster (the compiled engine: AMX; the torch engine: AVX512-BF16 or AMX), float32
    otherwise. Errors a user can cause are `StocksentError`s.
    """
    import torch

    if backend not in BACKENDS:
        raise StocksentError(f"unknown backend {backend!r}: use torch or onnx")
    if precision not in PRECISIONS:
        raise StocksentError(f"unknown precision {precision!r}: use auto, float32 or bfloat16")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise StocksentError(f"unknown device {device!r}: use cpu or cuda") from None
    if backend == "onnx":
        if precision == "bfloat16":
            raise StocksentError("precision bfloat16 is for the torch backend; ONNX runs float32")
        if device.type != "cpu":
            raise StocksentError("the ONNX backend runs on the CPU: use backend torch for another device")
        from stocksent.inference.onnx import OnnxEngine

        return OnnxEngine.for_network(network, directory)
    if device.type == "cpu":
        from stocksent.inference.native import native_engine

        engine = native_engine(network.cpu(), precision)
        if engine is not None:
            return engine
        from stocksent.inference.fast_cpu import fast_engine

        return fast_engine(network.cpu(), precision)
    if precision == "bfloat16":
        raise StocksentError(f"precision bfloat16 is the CPU engine's; on {device.type} the network runs float32")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StocksentError("device cuda requested but no CUDA GPU is available: use device cpu")
    return TorchEngine(network.to(device))


def describe(engine: Engine) -> dict:
    """What an engine is, for reports (`stocksent bench`, the service's /v1/model): its name, its
    arithmetic, and for the compiled engine the kernel this CPU runs.

    >>> describe(engine_for(network, precision="float32"))   # doctest: +SKIP
    {'engine': 'native', 'precision': 'float32', 'kernel': 'avx512'}
    """
    report = {"engine": engine.name, "precision": engine.precision}
    if getattr(engine, "kernel", None):
        report["kernel"] = engine.kernel
    return report


def network_logits(model, sequences: Sequence[np.ndarray], device="cpu", batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Logits (float32) of encoded messages in input order: what training's validation, calibration
    and the blend consume. On the CPU the fast engine in float32 (rebuilt only when the weights
    changed), elsewhere the module's forward on its device; the module's mode is left as it was.

    >>> network_logits(model, [np.array([5, 9]), np.array([], dtype=np.int64)])   # doctest: +SKIP
    array([ 0.7, -0.1], dtype=float32)
    """
    import torch

    ids, lengths = flatten(sequences)
    on_cpu = torch.device(device).type == "cpu" and model.embedding.weight.device.type == "cpu"
    if not on_cpu:
        return TorchEngine(model).logits(ids, lengths, batch_size)
    from stocksent.inference.fast_cpu import fast_path_for

    # One intra-op thread: a matrix product split over two threads can round its last bit
    # differently, and a run on one thread or two must choose the same epoch, temperature and blend.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fast_path_for(model, "float32").logits(ids, lengths, batch_size)
    finally:
        torch.set_num_threads(before)
