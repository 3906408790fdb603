"""Every inference engine against the module's own forward, on one random model and varied messages.

The reference is `LSTMClassifier.forward` on right-padded batches built by `batching.pad` (the
training path), not by the engines' shared ordering helper, so a bug in that helper shows too.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from stocksent import StocksentError
from stocksent.batching import pad
from stocksent.inference import TorchEngine, describe, engine_for, flatten, network_logits, sigmoid
from stocksent.inference.engine import Engine, by_length, length_batches
from stocksent.inference.fast_cpu import AUTO_BFLOAT16_MIN, AutoPrecision, InferenceLSTM, fast_engine
from stocksent.inference.native import NativeLSTM, kernels
from stocksent.model import LSTMClassifier

VOCAB, BUCKETS = 300, 101


def random_model(seed: int = 0) -> LSTMClassifier:
    torch.manual_seed(seed)
    model = LSTMClassifier(VOCAB, 24, (16, 8), keep_prob=0.5, ngram_buckets=BUCKETS).eval()
    with torch.no_grad():  # larger weights than the initialisation: saturated gates get tested too
        for lstm in model.lstms:
            for p in lstm.parameters():
                p.mul_(3)
        model.ngrams.weight[1:].normal_()
    return model


def random_messages(n: int = 150, seed: int = 0) -> list[np.ndarray]:
    """Lengths 0 to 59 (empty ones included, some messages repeated), a 1-word and a 100-word one."""
    rng = np.random.default_rng(seed)
    out = [rng.integers(0, VOCAB, size=int(rng.integers(0, 60))) for _ in range(n)]
    out += [np.array([], dtype=np.int64)] * 3 + [np.array([5]), rng.integers(2, VOCAB, size=100), out[0]]
    return out


def module_logits(model: LSTMClassifier, sequences: list[np.ndarray]) -> np.ndarray:
    """The reference: one message at a time through the module (no batch, no ordering)."""
    out = []
    with torch.inference_mode():
        for i in range(len(sequences)):
            batch = pad(sequences, np.array([i]))
            out.append(float(model(batch.ids, batch.lengths)[0]))
    return np.array(out, dtype=np.float32)


def onnx_engine(model):
    pytest.importorskip("onnxruntime")
    from stocksent.inference.onnx import OnnxEngine, onnx_bytes

    return OnnxEngine.open(onnx_bytes(model), VOCAB)


def cuda_engine(model):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    return TorchEngine(copy.deepcopy(model).to("cuda"))


def native_engine(precision: str, kernel: str):
    def build(model):
        if kernel not in kernels(precision):
            pytest.skip(f"the compiled {kernel} kernel does not run on this CPU")
        return NativeLSTM(model, precision, kernel)

    return build


# name: (build, bound on |logit - module logit|). Measured on this model and these messages: float32
# engines 0 to 4.8e-7; bfloat16 (float32 gates and cell state, matrix products' inputs rounded to 8
# bits of mantissa) 0.0013 (compiled) to 0.0021 (torch), so its bound is 10x that; on the real model
# bfloat16 keeps accuracy within 0.3 points (tests/test_fastpath.py). The compiled engine: every
# kernel of this build, each where the CPU runs it.
ENGINES = {
    **{f"native-float32-{k}": (native_engine("float32", k), 1e-5) for k in ("avx512", "avx2", "generic")},
    **{
        f"native-bfloat16-{k}": (native_engine("bfloat16", k), 0.02)
        for k in ("amx", "avx512-bf16", "avx512", "avx2", "generic")
    },
    "native-auto": (lambda m: NativeLSTM(m, "auto"), 0.02),
    "torch-cpu": (TorchEngine, 1e-5),
    "fast-float32": (lambda m: InferenceLSTM(m, "float32"), 1e-5),
    "fast-bfloat16": (lambda m: InferenceLSTM(m, "bfloat16"), 0.02),
    "fast-auto": (AutoPrecision, 0.02),
    "onnx": (onnx_engine, 1e-5),
    "torch-cuda": (cuda_engine, 1e-4),
}


@pytest.fixture(scope="module")
def model_and_reference():
    model, messages = random_model(), random_messages()
    return model, messages, module_logits(model, messages)


@pytest.mark.parametrize("batch_size", [1, 7, 1024])
@pytest.mark.parametrize("name", list(ENGINES))
def test_every_engine_matches_the_module(name, batch_size, model_and_reference) -> None:
    model, messages, reference = model_and_reference
    build, bound = ENGINES[name]
    engine = build(model)
    assert isinstance(engine, Engine)
    ids, lengths = flatten(messages)
    got = engine.logits(ids, lengths, batch_size)
    assert got.dtype == np.float32 and got.shape == (len(messages),)
    assert np.abs(got - reference).max() <= bound, name
    # Input order is kept whatever the engine's batching order: reversed in, reversed out.
    again = engine.logits(*flatten(messages[::-1]), batch_size)[::-1]
    assert np.abs(again - got).max() <= (1e-6 if bound < 1e-3 else bound)
    assert engine.logits(np.empty(0, np.int64), np.empty(0, np.int64)).shape == (0,)


def test_the_module_itself_is_not_disturbed() -> None:
    model = random_model().train()
    messages = random_messages(20)
    TorchEngine(model).logits(*flatten(messages))
    assert model.training  # left as it was found
    model.eval()
    np.testing.assert_allclose(network_logits(model, messages), module_logits(model, messages), rtol=0, atol=1e-5)


def test_auto_precision_switches_on_the_call_size() -> None:
    model, messages = random_model(), random_messages(AUTO_BFLOAT16_MIN)
    auto = AutoPrecision(model)
    small, large = messages[: AUTO_BFLOAT16_MIN - 1], messages[:AUTO_BFLOAT16_MIN]
    np.testing.assert_array_equal(auto.logits(*flatten(small)), InferenceLSTM(model).logits(*flatten(small)))
    np.testing.assert_array_equal(
        auto.logits(*flatten(large)), InferenceLSTM(model, "bfloat16").logits(*flatten(large))
    )


def test_compiled_auto_precision_switches_on_the_call_size() -> None:
    model, messages = random_model(), random_messages(AUTO_BFLOAT16_MIN)
    auto = NativeLSTM(model, "auto")
    small, large = messages[: AUTO_BFLOAT16_MIN - 1], messages[:AUTO_BFLOAT16_MIN]
    np.testing.assert_array_equal(auto.logits(*flatten(small)), NativeLSTM(model).logits(*flatten(small)))
    big = NativeLSTM(model, "bfloat16", "amx") if "amx" in kernels("bfloat16") else NativeLSTM(model)
    np.testing.assert_array_equal(auto.logits(*flatten(large)), big.logits(*flatten(large)))
    assert auto.precision == ("bfloat16" if "amx" in kernels("bfloat16") else "float32")


def test_length_ordering_batches_longest_first_and_pads_right() -> None:
    ids = np.arange(10, 20)  # messages [10..13], [], [14, 15], [16..19]
    lengths = np.array([4, 0, 2, 4])
    flat, batches = length_batches(ids, lengths, batch_size=2, vocab_size=100)
    batches = list(batches)
    assert [b.rows.tolist() for b in batches] == [[2, 1], [3, 0]]  # shortest batch first, longest row first
    assert batches[0].lengths.tolist() == [2, 1]  # the empty message is one padding word
    assert batches[0].padded(flat).tolist() == [[14, 15], [0, 0]]
    assert batches[1].padded(flat).tolist() == [[16, 17, 18, 19], [10, 11, 12, 13]]
    out = by_length(ids, lengths, 3, 100, lambda flat, batch: batch.lengths.astype(np.float32))
    assert out.tolist() == [4, 1, 2, 4]  # scattered back to input order


@pytest.mark.parametrize("name", ["torch-cpu", "fast-float32", "onnx", "native-float32-generic"])
def test_bad_input_is_refused(name) -> None:
    engine = ENGINES[name][0](random_model())
    with pytest.raises(IndexError):
        engine.logits(np.array([3, VOCAB]), np.array([2]))
    with pytest.raises(ValueError, match="lengths"):
        engine.logits(np.array([3, 4]), np.array([3]))


def test_a_message_scores_the_same_whatever_shares_its_call() -> None:
    model, messages = random_model(), random_messages(40)
    for precision in ("float32", "bfloat16"):
        engine = NativeLSTM(model, precision)
        together = engine.logits(*flatten(messages))
        alone = np.array([engine.logits(*flatten([m]))[0] for m in messages])
        np.testing.assert_array_equal(together, alone)


def test_engine_for_picks_the_compiled_engine_where_installed(monkeypatch) -> None:
    import stocksent.inference.native as native

    model = random_model()
    engine = engine_for(model, precision="float32")
    assert isinstance(engine, NativeLSTM) and describe(engine) == {
        "engine": "native",
        "precision": "float32",
        "kernel": kernels("float32")[0],
    }
    assert engine_for(model, precision="bfloat16").precision == "bfloat16"
    monkeypatch.setattr(native, "native", lambda: None)  # an install without the compiled core
    assert isinstance(engine_for(model, precision="float32"), InferenceLSTM)
    assert describe(engine_for(model, precision="float32")) == {"engine": "torch-fast", "precision": "float32"}


def test_engine_for_picks_the_engine_and_checks_options(monkeypatch) -> None:
    import stocksent.inference.fast_cpu as fast_cpu
    import stocksent.inference.native as native

    monkeypatch.setattr(native, "native", lambda: None)  # the torch engines' choices
    model = random_model()
    assert isinstance(engine_for(model, precision="float32"), InferenceLSTM)
    monkeypatch.setattr(fast_cpu, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert isinstance(engine_for(model), AutoPrecision) and engine_for(model).precision == "bfloat16"
    monkeypatch.setattr(fast_cpu, "cpu_flags", lambda: {"avx2"})
    assert isinstance(fast_engine(model, "auto"), InferenceLSTM) and engine_for(model).precision == "float32"
    for bad, match in [
        ({"backend": "tensorflow"}, "backend"),
        ({"precision": "float16"}, "precision"),
        ({"backend": "onnx", "precision": "bfloat16"}, "ONNX"),
        ({"device": "banana"}, "device"),
    ]:
        with pytest.raises(StocksentError, match=match):
            engine_for(model, **bad)
    if not torch.cuda.is_available():
        with pytest.raises(StocksentError, match="CUDA"):
            engine_for(model, device="cuda")


def test_sigmoid_is_torch_sigmoid_and_saturates_without_warnings() -> None:
    z = np.array([-200.0, -20.0, -1.0, 0.0, 1.0, 20.0, 200.0], dtype=np.float32)
    with np.errstate(all="raise"):
        p = sigmoid(z)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, torch.sigmoid(torch.from_numpy(z)).numpy())
    assert p[0] == 0.0 and p[-1] == 1.0 and p[3] == 0.5
