"""The bench's prediction figures, measured in a fresh process so that its peak memory and load time
are a user's, not the bench's: `python -m stocksent.tools.bench.prediction SPEC_JSON`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from stocksent.tools.bench.machine import peak_rss_mb


def predict_worker(spec: dict) -> dict:
    """Prediction measurements in this (fresh) process; `spec` names the model and the test data."""
    import numpy as np
    import torch

    from stocksent.inference import TorchEngine, sigmoid
    from stocksent.labels import is_bullish
    from stocksent.sentiment import SentimentModel

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    payload = json.loads(Path(spec["messages"]).read_text(encoding="utf-8"))
    messages, labels = payload["messages"], np.asarray(payload["labels"], dtype=np.float32)
    directory, repeats, batch = spec["model"], spec["repeats"], spec["batch_size"]

    loads = []
    for _ in range(5):
        started = time.perf_counter()
        model = SentimentModel.load(directory)
        loads.append(time.perf_counter() - started)
    result = {"load_seconds": float(np.median(loads))}

    def throughput(m) -> float:
        m.predict(messages[:batch], batch_size=batch)  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            m.predict(messages, batch_size=batch)
            times.append(time.perf_counter() - started)
        return len(messages) / float(np.median(times))

    result["predict_msgs_per_second"] = throughput(model)
    result["predict_precision"] = model.precision  # "auto": bfloat16 where the CPU has it natively
    result["predict_engine"] = model.engine_info  # the compiled core or the reference path, and its kernel
    by_precision = {p: SentimentModel.load(directory, precision=p) for p in ("float32", "bfloat16")}
    for name, other in by_precision.items():
        result[f"predict_msgs_per_second_{name}"] = throughput(other)
    threads = torch.get_num_threads()
    result["predict_threads"] = threads
    if threads > 1:  # one core's worth, for comparison (SentimentModel uses torch's thread count)
        torch.set_num_threads(1)
        result["predict_msgs_per_second_one_thread"] = throughput(model)
        torch.set_num_threads(threads)
    calls = spec["latency_calls"]
    for text in messages[:20]:
        model.predict(text)
    latencies = []
    for k in range(calls):
        text = messages[k % len(messages)]
        started = time.perf_counter()
        model.predict(text)
        latencies.append(time.perf_counter() - started)
    result["latency_ms_p50"] = float(np.percentile(latencies, 50) * 1e3)
    result["latency_ms_p99"] = float(np.percentile(latencies, 99) * 1e3)
    result["latency_calls"] = calls
    result["predict_peak_rss_mb"] = peak_rss_mb()

    # Accuracy of each path on the same test messages, at the model's own threshold.
    def accuracy(p) -> float:
        return float((is_bullish(p, model.threshold) == (labels >= 0.5)).mean())

    fast = by_precision["float32"].predict_proba(messages, batch_size=batch)
    low = by_precision["bfloat16"].predict_proba(messages, batch_size=batch)
    plain_engine = TorchEngine(model.network)  # the module's own forward: the reference
    plain = sigmoid(plain_engine.logits(*model.encode_flat(messages), batch))
    result["predict_msgs_per_second_plain"] = len(messages) / _timed(
        lambda: sigmoid(plain_engine.logits(*model.encode_flat(messages), batch))
    )
    result["test_accuracy"] = {
        "float32_fast": accuracy(fast),
        "bfloat16_fast": accuracy(low),
        "float32_plain": accuracy(plain),
    }
    result["max_abs_diff_vs_plain"] = {
        "float32_fast": float(np.abs(fast - plain).max()),
        "bfloat16_fast": float(np.abs(low - plain).max()),
    }
    result["test_messages"] = len(messages)
    return result


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def gpu_predict(model_dir: str, messages: list[str], labels, device, batch: int, repeats: int) -> dict:
    """On a GPU: text and vocabulary on the CPU, the module's forward on the device."""
    import numpy as np

    from stocksent.labels import is_bullish
    from stocksent.sentiment import SentimentModel

    model = SentimentModel.load(model_dir, device=str(device))  # the module's forward on the device
    run = lambda: model.predict_proba(messages, batch)  # noqa: E731
    run()
    p = run()
    seconds = float(np.median([_timed(run) for _ in range(repeats)]))
    return {
        "predict_msgs_per_second_gpu": len(messages) / seconds,
        "test_accuracy_gpu": float((is_bullish(p, model.threshold) == (labels >= 0.5)).mean()),
    }


def run_predict_subprocess(spec: dict) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[3]), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "stocksent.tools.bench.prediction", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prediction worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # the prediction worker
    print(json.dumps(predict_worker(json.loads(sys.argv[1]))))
