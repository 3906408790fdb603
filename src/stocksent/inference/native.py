"""The compiled engine: `NativeLSTM`, the network's inference as fused C++ kernels (csrc/).

The same maths as `LSTMClassifier.forward` in eval mode, as one call per batch of messages:
- Layer 1's input projection (embedding x W_ih + both biases) is a (vocabulary x 4H) table computed
  here once, with torch: per word a row lookup instead of a 300 x 4H product.
- Messages are sorted longest first and run in batches; at word t only the messages still going are
  computed, every layer advances one word per step, and each tile of rows x 16 hidden units holds
  all four gates, so the gate activations and the cell update run in registers on the tile the
  moment its products are done.
- The kernel is chosen at run time for this CPU (AVX-512, AVX2+FMA, or portable C++ elsewhere),
  float32 or bfloat16 products (AMX tiles or vdpbf16ps where the CPU has them; elsewhere the same
  bfloat16-rounded values multiplied in float32), with float32 gates, cell state and sums.
- Precision "auto": float32 for calls of fewer than 64 messages (one message: no tile set-up), AMX
  bfloat16 from there where the CPU has AMX (about 2.4x float32's speed), float32 elsewhere.
- A message's logit never depends on which other messages share its call: every row's arithmetic
  is the same whatever the batch.
- The whole call runs with the GIL released and allocates nothing once its thread has run one.

>>> engine = NativeLSTM(network, "float32")                          # doctest: +SKIP
>>> engine.logits(np.array([5, 9, 2, 7]), np.array([3, 0, 1]))       # doctest: +SKIP
array([ 1.3, -0.2,  0.4], dtype=float32)
"""

from __future__ import annotations

import numpy as np
import torch

from stocksent.compiled import native
from stocksent.inference.engine import DEFAULT_BATCH

ROWS = 256  # messages per batch inside a call: the state of 256 rows stays in the core's L2 cache


class NativeLSTM:
    """The compiled engine (`engine.Engine`) for an `LSTMClassifier`, precision float32, bfloat16 or
    auto; `kernel` forces one of `kernels(precision)` (tests run every one this CPU has).
    `precision` then names the arithmetic of large calls, as `fast_cpu.AutoPrecision` does.
    Immutable: threads may share it."""

    name = "native"
    parallel = True  # the call releases the GIL: chunks of a call run side by side (workers.py)

    def __init__(self, model, precision: str = "float32", kernel: str | None = None):
        module = native()
        if module is None:
            raise RuntimeError("the compiled core is not available (stocksent.compiled.status())")
        if precision not in ("float32", "bfloat16", "auto"):
            raise ValueError("precision must be float32, bfloat16 or auto")
        with torch.no_grad():
            first = model.lstms[0]
            bias = (first.bias_ih_l0 + first.bias_hh_l0).detach().cpu().float()
            emb = model.embedding.weight.detach().cpu().float()
            table = torch.addmm(bias, emb, first.weight_ih_l0.detach().cpu().float().t()).numpy()
            layers = []
            for k, lstm in enumerate(model.lstms):
                w_hh = _array(lstm.weight_hh_l0)
                if k == 0:
                    layers.append((lstm.hidden_size, 0, None, w_hh, None))
                else:
                    both = _array(lstm.bias_ih_l0 + lstm.bias_hh_l0)
                    layers.append((lstm.hidden_size, lstm.input_size, _array(lstm.weight_ih_l0), w_hh, both))
            ngram = _array(model.ngrams.weight).ravel() if model.ngram_buckets else None
            self._lstm = module.LSTM(
                table,
                layers,
                _array(model.output.weight).ravel(),
                float(model.output.bias.detach().cpu()[0]),
                ngram,
                int(model.ngram_buckets),
                precision,
                kernel or "",
            )
        self.vocab_size = table.shape[0]
        large = self._lstm.large_kernel
        self.kernel = (
            f"{self._lstm.kernel}, {large} from {module.auto_bf16_min()} messages" if large else self._lstm.kernel
        )
        self.precision = "bfloat16" if precision == "bfloat16" or large else "float32"
        self.nbytes = self._lstm.bytes  # the packed network: table, weights, n-gram weights

    def logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Logits per message from all word ids end to end (`ids`) and each message's length; the
        same checks (IndexError, ValueError) as the other engines."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        return np.frombuffer(self._lstm.logits(ids, lengths, min(batch_size, ROWS)), dtype=np.float32)


def native_engine(model, precision: str = "auto") -> NativeLSTM | None:
    """The compiled engine for `precision` float32, bfloat16 or auto, or None where the compiled
    core is not installed.

    >>> native_engine(network, "auto").kernel   # doctest: +SKIP
    'avx512, amx from 64 messages'
    """
    if native() is None:
        return None
    return NativeLSTM(model, precision)


def kernels(precision: str) -> list[str]:
    """The kernels this CPU runs for `precision`, best first (empty without the compiled core)."""
    module = native()
    return module.kernels(precision == "bfloat16") if module is not None else []


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().float().numpy())
