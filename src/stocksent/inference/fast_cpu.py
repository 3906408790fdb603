"""Inference on the CPU: the same network as `LSTMClassifier.forward`, in fewer and cheaper operations.

What makes it fast (each measured; see docs/how-it-works.md and docs/results.md):
- Layer 1's input projection, embedding @ W_ih + both biases, is one (vocabulary x 4H) table computed
  once: per word it is a row lookup instead of a 300 x 4H product (more than half of all FLOPs).
- Messages run longest first in "packed" order: at step t only the rows still going are computed, so
  no work is spent on padding, and layer 2's input projection is one matrix product over all words.
- One sigmoid covers all four gates. tanh(x) = 2 sigmoid(2x) - 1, with the factor 2 folded into the
  weights: PyTorch's CPU tanh costs about six sigmoids.
- The state carried is -h and 2c, which turns each step's cell update into five element-wise ops.
- Optionally the matrix products run in bfloat16 (AVX512-BF16 does them about twice as fast); the
  gates, the cell state and the embedding table stay float32.
"""

from __future__ import annotations

import numpy as np
import torch

from stocksent.inference.engine import DEFAULT_BATCH, LengthBatch, by_length, check_flat
from stocksent.model import ngram_features

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
AUTO_BFLOAT16_MIN = 64  # messages per call from which precision "auto" uses bfloat16


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision: str) -> str:
    """ "auto": bfloat16 where the CPU multiplies it natively (AVX512-BF16 or AMX): on the dev box
    38,399 vs 29,966 msgs/s with test accuracy 0.01 points apart (docs/results.md; tests/test_fastpath.py
    bounds the gap); float32 elsewhere, where emulated bfloat16 would be slower."""
    if precision != "auto":
        return precision
    return "bfloat16" if cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"


class InferenceLSTM:
    """A frozen, eval-mode copy of an `LSTMClassifier`'s maths for CPU inference (dropout is identity):
    the fast CPU engine (`engine.Engine`). Its buffers are per call, so threads may share one."""

    name = "torch-fast"
    parallel = True  # every operation releases the GIL: chunks of a call run side by side (workers.py)

    def __init__(self, model, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        self.precision, self.dtype = precision, PRECISIONS[precision]
        self.hidden = [lstm.hidden_size for lstm in model.lstms]
        self.w_in: list[torch.Tensor] = []  # layer 1: the lookup table; then (H_prev, 4H) for input -h
        self.b_in: list[torch.Tensor] = []
        self.w_rec: list[torch.Tensor] = []  # (H, 4H), multiplies the carried -h
        with torch.no_grad():
            for k, lstm in enumerate(model.lstms):
                scale = torch.ones(4 * lstm.hidden_size)
                scale[2 * lstm.hidden_size : 3 * lstm.hidden_size] = 2.0  # the cell gate: tanh via sigmoid
                w_ih, w_hh = lstm.weight_ih_l0.detach().cpu().float(), lstm.weight_hh_l0.detach().cpu().float()
                bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().cpu().float()
                if k == 0:
                    emb = model.embedding.weight.detach().cpu().float()
                    self.w_in.append((torch.addmm(bias, emb, w_ih.t()) * scale).contiguous())
                    self.b_in.append(torch.empty(0))
                else:
                    self.w_in.append((-w_ih.t() * scale).to(self.dtype).contiguous())
                    self.b_in.append((bias * scale).to(self.dtype))
                self.w_rec.append((-w_hh.t() * scale).to(self.dtype).contiguous())
            self.w_out = (-model.output.weight.detach().cpu().float().t()).contiguous()  # (H_last, 1)
            self.b_out = model.output.bias.detach().cpu().float().clone()
            self.ngram_buckets = model.ngram_buckets
            self.ngram_weights = (
                model.ngrams.weight.detach().cpu().float().numpy().ravel().copy() if model.ngram_buckets else None
            )
        self.vocab_size = self.w_in[0].shape[0]

    # ------------------------------------------------------------------ the network

    def _layer(self, k: int, x: torch.Tensor, sizes: list[int], offsets: list[int]) -> torch.Tensor:
        """-h at every word in packed order (rows of step t at offsets[t]...offsets[t] + sizes[t])."""
        H, dtype, rows = self.hidden[k], self.dtype, sizes[0]
        out = torch.empty(offsets[-1], H, dtype=dtype)
        cell, tanh_c = torch.empty(rows, H), torch.empty(rows, H)  # 2c and sigmoid(2c), float32
        gates = torch.empty(rows, 4 * H)  # buffers reused at every step: no allocator traffic
        product = torch.empty(rows, 4 * H, dtype=dtype) if dtype != torch.float32 else None
        table, w_rec = self.w_in[0], self.w_rec[k]
        gates_in = None if k == 0 else torch.addmm(self.b_in[k], x, self.w_in[k])
        for t, n in enumerate(sizes):
            lo = offsets[t]
            if k == 0:
                g = torch.index_select(table, 0, x[lo : lo + n], out=gates[:n])
            elif dtype != torch.float32:
                g = gates[:n].copy_(gates_in[lo : lo + n])
            else:
                g = gates_in[lo : lo + n]
            if t:
                prev = offsets[t - 1]
                h = out[prev : prev + n]
                if dtype == torch.float32:
                    g.addmm_(h, w_rec)
                else:  # bfloat16 in, bfloat16 out (no float32-output product on the CPU), added in float32
                    g.add_(torch.mm(h, w_rec, out=product[:n]))
            g.sigmoid_()
            i, f, c_in, o = g.view(n, 4, H).unbind(1)
            c = cell[:n]
            if t:
                c.mul_(f).addcmul_(i, c_in, value=4.0).sub_(i, alpha=2.0)
            else:
                torch.mul(i, c_in, out=c).mul_(4.0).sub_(i, alpha=2.0)
            torch.addcmul(o, o, torch.sigmoid(c, out=tanh_c[:n]), value=-2.0, out=out[lo : lo + n])
        return out

    def logits_packed(self, ids: torch.Tensor, sizes: list[int], lengths: np.ndarray) -> torch.Tensor:
        """Logits of one batch given word ids in packed order; rows sorted by length, longest first."""
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        x = ids
        for k in range(len(self.hidden)):
            x = self._layer(k, x, sizes, offsets)
        last = np.asarray(offsets[:-1], dtype=np.int64)[lengths - 1] + np.arange(len(lengths))
        final = x[torch.from_numpy(last)].float()
        return torch.addmm(self.b_out, final, self.w_out).squeeze(-1)

    def ngram_logits(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The model's `ngram_logit` for every message at once, from the flat word ids."""
        rows, features, values = ngram_features(ids, lengths, self.vocab_size, self.ngram_buckets)
        return np.bincount(rows, self.ngram_weights[features] * values, minlength=len(lengths)).astype(np.float32)

    # ------------------------------------------------------------------ the engine

    def logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Logits per message from all word ids end to end (`ids`) and each message's length."""
        ids, lengths = check_flat(ids, lengths, self.vocab_size)
        ngram = self.ngram_logits(ids, lengths) if self.ngram_buckets else None

        def run(flat: np.ndarray, batch: LengthBatch) -> np.ndarray:
            batch_ids, sizes = pack(flat, batch.starts, batch.lengths)
            out = self.logits_packed(torch.from_numpy(batch_ids), sizes, batch.lengths)
            if ngram is not None:
                out += torch.from_numpy(ngram[batch.rows])
            return out.numpy()

        with torch.inference_mode():
            return by_length(ids, lengths, batch_size, self.vocab_size, run)


def pack(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Word ids of rows sorted longest first, step by step: step t holds the rows longer than t."""
    longest = int(lengths[0])
    steps = np.arange(longest)
    positions = starts[None, :] + steps[:, None]  # (time, rows)
    live = steps[:, None] < lengths[None, :]
    sizes = live.sum(axis=1).tolist()
    return ids[positions[live]], sizes


def fast_path_for(model, precision: str = "float32") -> InferenceLSTM:
    """The model's InferenceLSTM, rebuilt only when its weights changed (an optimizer step, a load)."""
    key = tuple((p.data_ptr(), p._version) for p in model.parameters())
    cache = model.__dict__.setdefault("_stocksent_fast_paths", {})
    if precision not in cache or cache[precision][0] != key:
        cache[precision] = (key, InferenceLSTM(model, precision))
    return cache[precision][1]


class AutoPrecision:
    """Precision "auto" as one engine: calls of fewer than `AUTO_BFLOAT16_MIN` messages run float32
    and larger ones bfloat16, where bfloat16's per-product overhead would double a small call's
    latency (measured: one message p50 0.86 ms float32, 1.78 ms bfloat16)."""

    name = "torch-fast"
    precision = "bfloat16"
    parallel = True

    def __init__(self, model):
        self.small, self.large = fast_path_for(model, "float32"), fast_path_for(model, "bfloat16")

    def logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        engine = self.large if len(lengths) >= AUTO_BFLOAT16_MIN else self.small
        return engine.logits(ids, lengths, batch_size)


def fast_engine(model, precision: str = "auto"):
    """The fast CPU engine for `precision` float32, bfloat16 or auto (`resolve_precision`; bfloat16
    only for calls of at least `AUTO_BFLOAT16_MIN` messages), built now so the first call is quick.

    >>> fast_engine(network, "float32").logits(ids, lengths)   # doctest: +SKIP
    """
    resolved = resolve_precision(precision)
    if precision == "auto" and resolved != "float32":
        return AutoPrecision(model)
    return fast_path_for(model, resolved)
