"""`stocksent bench`: training and prediction speed on the real data, measured side by side in one run.

Training: one epoch of our pipeline (length buckets, Adam with sparse embedding gradients) against the
tutorial's way (every message left-padded to 244 words, dense gradients, Adadelta + MSE), on the
tutorial's architecture (embedding 300, LSTM 128/64, batch 256) and the same messages.
Prediction runs in a fresh subprocess, so its peak memory and load time are a user's, not the bench's.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TUTORIAL_WIDTH = 244  # the tutorial's padded length: its longest message
LATENCY_CALLS = 1000
TARGETS = {  # (key, comparison, goal) on the 2-core CPU
    "train_epoch_seconds": ("<=", 20),
    "train_speedup": (">=", 15),
    "predict_msgs_per_second": (">=", 35_000),
    "latency_ms_p99": ("<=", 3),
    "load_seconds": ("<=", 1),
    "train_peak_rss_mb": ("<=", 2_000),
    "accuracy_gap_points": ("<=", 0.3),
}

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the machine


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device) -> dict:
    import torch

    from stocksent.inference.fast_cpu import cpu_flags

    flags = cpu_flags()
    info = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_tile" in flags,
        "device": str(device),
        "load_average_start": round(os.getloadavg()[0], 2),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# --------------------------------------------------------------------------- training arms


def train_arm(model, config, train_x, train_y, device, max_batches: int | None) -> dict:
    """Our pipeline: `training.train_one_epoch` over the whole split, or over `max_batches` batches
    of it (then extrapolated to the whole split)."""
    import numpy as np

    from stocksent.training.epochs import loss_function, make_optimizers, train_one_epoch

    optimizers, criterion = make_optimizers(model, config), loss_function(config.loss)
    batches = math.ceil(len(train_x) / config.batch_size)
    rng = np.random.default_rng(config.seed)
    x, y, measured = train_x, train_y, batches
    if max_batches and max_batches < batches:
        pick = rng.permutation(len(train_x))[: max_batches * config.batch_size]
        x, y, measured = [train_x[i] for i in pick], train_y[pick], max_batches
    started, cpu = time.perf_counter(), time.process_time()
    train_one_epoch(
        model, optimizers, criterion, x, y, config.batch_size, rng, device, word_dropout=config.word_dropout
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "train_epoch_seconds": seconds * batches / measured,
        "train_batches_timed": measured,
        "train_epoch_cpu_seconds": cpu * batches / measured,
        "train_batches_per_epoch": batches,
        "train_epoch_method": "measured" if measured == batches else f"extrapolated from {measured} batches",
        "optimizers": optimizers,
        "criterion": criterion,
    }


def left_padded(sequences, index, width: int):
    import numpy as np
    import torch

    ids = np.zeros((len(index), width), dtype=np.int64)
    for row, i in enumerate(index):
        seq = sequences[i][-width:]
        if len(seq):
            ids[row, width - len(seq) :] = seq
    return torch.from_numpy(ids), torch.full((len(index),), width, dtype=torch.int64)


def padded_arm(vocab_size: int, train_x, train_y, device, batch_size: int, timed_batches: int) -> dict:
    """The tutorial's way on the same model shape and messages: each message left-padded to 244
    words, the output read at the last position, no packing or buckets, dense embedding gradients,
    Adadelta on squared error. A fixed number of random batches (after one warm-up), extrapolated."""
    import numpy as np
    import torch

    from stocksent.model import LSTMClassifier
    from stocksent.training.epochs import loss_function

    torch.manual_seed(0)
    model = LSTMClassifier(vocab_size, 300, (128, 64), 0.5).to(device).train()
    optimizer, criterion = torch.optim.Adadelta(model.parameters(), lr=0.1), loss_function("mse")
    order = np.random.default_rng(0).permutation(len(train_x))
    times, cpu_times = [], []
    for b in range(timed_batches + 1):
        index = order[b * batch_size : (b + 1) * batch_size]
        ids, lengths = left_padded(train_x, index, TUTORIAL_WIDTH)
        y = torch.from_numpy(train_y[index]).to(device)
        started, cpu = time.perf_counter(), time.process_time()
        loss = criterion(model(ids.to(device), lengths), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # waits for the device
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
    per_batch = float(np.median(times[1:]))
    batches = math.ceil(len(train_x) / batch_size)
    return {
        "padded_epoch_seconds": per_batch * batches,
        "padded_epoch_cpu_seconds": float(np.median(cpu_times[1:])) * batches,
        "padded_epoch_method": f"median of {timed_batches} batches after 1 warm-up, times {batches} batches",
    }


# --------------------------------------------------------------------------- prediction (subprocess)


def predict_worker(spec: dict) -> dict:
    """Prediction measurements in this (fresh) process; `spec` names the model and the test data."""
    import numpy as np
    import torch

    from stocksent.inference import TorchEngine, sigmoid
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
        return float(((p >= model.threshold) == (labels >= 0.5)).mean())

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

    from stocksent.sentiment import SentimentModel

    model = SentimentModel.load(model_dir, device=str(device))  # the module's forward on the device
    run = lambda: model.predict_proba(messages, batch)  # noqa: E731
    run()
    p = run()
    seconds = float(np.median([_timed(run) for _ in range(repeats)]))
    return {
        "predict_msgs_per_second_gpu": len(messages) / seconds,
        "test_accuracy_gpu": float(((p >= model.threshold) == (labels >= 0.5)).mean()),
    }


def run_predict_subprocess(spec: dict) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "stocksent.tools.bench", json.dumps(spec)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"prediction worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the whole bench


def bench(
    data: str | None = None,
    device_name: str = "auto",
    quick: bool = False,
    model_dir: str | None = None,
    max_examples: int | None = None,
    threads: int | None = None,
) -> dict:
    import numpy as np
    import torch

    from stocksent.artifacts import save_model_dir
    from stocksent.config import preset
    from stocksent.data import locate_dataset, read_labelled
    from stocksent.model import LSTMClassifier
    from stocksent.sentiment import SentimentModel
    from stocksent.splits import prepare_splits, recorded_splits
    from stocksent.training.epochs import resolve_device, train_one_epoch
    from stocksent.vocab import Vocabulary

    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    result: dict = {"machine": machine_info(device), "quick": quick}
    config = preset("default", batch_size=256, embed_size=300, lstm_sizes=(128, 64), max_examples=max_examples)
    data_path = locate_dataset(data)
    started = time.perf_counter()
    splits = prepare_splits(
        read_labelled(data_path), config.text_options, config.effective_split_seed, config.max_examples
    )
    vocab = Vocabulary.build(splits.train.tokens, config.min_count)
    train_x, train_y = vocab.encode_many(splits.train.tokens), splits.train.labels
    result["data"] = {
        "path": str(data_path),
        **splits.sizes(),
        "vocabulary": len(vocab),
        "prepare_seconds": time.perf_counter() - started,
    }
    log.info(f"data: {splits.sizes()}, vocabulary {len(vocab)}")

    torch.manual_seed(config.seed)
    model = LSTMClassifier(
        len(vocab), 300, (128, 64), config.keep_prob, sparse_embedding=True, ngram_buckets=config.ngram_buckets
    ).to(device)
    log.info("training one epoch of our pipeline" + (" (20 batches)" if quick else ""))
    arm = train_arm(model, config, train_x, train_y, device, 20 if quick else None)
    optimizers, criterion = arm.pop("optimizers"), arm.pop("criterion")
    result.update(arm)
    result["train_peak_rss_mb"] = peak_rss_mb()
    log.info("training the tutorial's way (left-padded to 244)")
    result.update(padded_arm(len(vocab), train_x, train_y, device, 256, 2 if quick else 5))
    result["train_speedup"] = result["padded_epoch_seconds"] / result["train_epoch_seconds"]
    result["padded_peak_rss_mb"] = peak_rss_mb()

    with tempfile.TemporaryDirectory(prefix="stocksent-bench-") as tmp:
        if model_dir is None:
            if not quick:
                log.info("a second epoch, for a model worth predicting with")
                train_one_epoch(
                    model,
                    optimizers,
                    criterion,
                    train_x,
                    train_y,
                    256,
                    np.random.default_rng([config.seed, 2]),
                    device,
                    word_dropout=config.word_dropout,
                )
            model_dir = str(Path(tmp) / "model")
            save_model_dir(
                Path(model_dir), model.cpu().eval(), {"text": config.text_options.to_dict(), "threshold": 0.5}, vocab
            )
            result["model"] = (
                "trained here: our pipeline, " + ("20 batches (quick)" if quick else "2 epochs") + ", threshold 0.5"
            )
            messages, labels = splits.test.messages, splits.test.labels
        else:
            loaded = SentimentModel.load(model_dir)
            recorded = loaded.config.get("data", {})
            if recorded.get("files") or recorded.get("path"):  # its own test split, from its recorded files
                test = recorded_splits(recorded, loaded.text_options, data).test
            else:
                seed, limit = recorded.get("split_seed", config.seed), recorded.get("max_examples")
                test = prepare_splits(read_labelled(data_path), loaded.text_options, seed, limit).test
            messages, labels = list(test.messages), test.labels
            result["model"] = str(model_dir)
        spec = {
            "model": model_dir,
            "messages": str(Path(tmp) / "test.json"),
            "threads": threads,
            "repeats": 3 if quick else 7,
            "batch_size": 1024,
            "latency_calls": 200 if quick else LATENCY_CALLS,
        }
        Path(spec["messages"]).write_text(
            json.dumps({"messages": messages, "labels": labels.tolist()}), encoding="utf-8"
        )
        log.info(f"prediction on {len(messages)} test messages, in a fresh process")
        result.update(run_predict_subprocess(spec))
        if device.type == "cuda":
            result.update(gpu_predict(model_dir, messages, labels, device, 1024, spec["repeats"]))
    accuracy = result["test_accuracy"]
    result["accuracy_gap_points"] = 100 * max(abs(accuracy[k] - accuracy["float32_plain"]) for k in accuracy)
    result["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
    result["targets"] = {
        key: {
            "value": result[key],
            "goal": f"{op} {goal}",
            "met": result[key] <= goal if op == "<=" else result[key] >= goal,
        }
        for key, (op, goal) in TARGETS.items()
    }
    return result


# --------------------------------------------------------------------------- command line

ROWS = [  # (key, label, format)
    ("train_epoch_seconds", "train epoch, our pipeline (s)", "{:.1f}"),
    ("padded_epoch_seconds", "train epoch, tutorial's padded way (s)", "{:.0f}"),
    ("train_speedup", "training speedup", "{:.1f}x"),
    ("train_peak_rss_mb", "training peak RSS (MB)", "{:.0f}"),
    ("predict_msgs_per_second", "predict, raw text -> labels (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_one_thread", "  the same on one thread (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_float32", "  precision float32 (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_bfloat16", "  precision bfloat16 (msgs/s)", "{:,.0f}"),
    ("predict_msgs_per_second_plain", "  plain module forward (msgs/s)", "{:,.0f}"),
    ("latency_ms_p50", "latency, one message, p50 (ms)", "{:.2f}"),
    ("latency_ms_p99", "latency, one message, p99 (ms)", "{:.2f}"),
    ("load_seconds", "SentimentModel.load (s)", "{:.2f}"),
    ("predict_peak_rss_mb", "prediction peak RSS (MB)", "{:.0f}"),
    ("accuracy_gap_points", "largest accuracy gap to float32 plain (points)", "{:.2f}"),
]


def format_table(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"device {m['device']}"
        + (f" ({m['gpu']})" if "gpu" in m else "")
        + f", load average {m['load_average_start']} -> {m['load_average_end']}",
        f"model for prediction: {result['model']}; test messages: {result['test_messages']}; "
        f"default precision here: {result['predict_precision']}",
        "engine: " + ", ".join(f"{k} {v}" for k, v in result.get("predict_engine", {}).items()),
        f"train epoch: {result['train_epoch_method']}; padded epoch: {result['padded_epoch_method']}",
        f"process CPU seconds per epoch (all threads; steadier than wall time on a busy machine): "
        f"ours {result['train_epoch_cpu_seconds']:.1f}, padded {result['padded_epoch_cpu_seconds']:.0f}",
        "",
    ]
    targets = result["targets"]
    for key, label, fmt in ROWS:
        if key not in result:
            continue
        goal = (
            f"  (goal {targets[key]['goal']}: {'met' if targets[key]['met'] else 'NOT met'})" if key in targets else ""
        )
        lines.append(f"{label:<48} {fmt.format(result[key]):>10}{goal}")
    accuracy = ", ".join(f"{k} {v:.4f}" for k, v in result["test_accuracy"].items())
    lines.append(f"test accuracy: {accuracy}")
    if "predict_msgs_per_second_gpu" in result:
        lines.append(f"GPU forward, raw text -> probabilities: {result['predict_msgs_per_second_gpu']:,.0f} msgs/s")
    return "\n".join(lines)


if __name__ == "__main__":  # the prediction worker: python -m stocksent.tools.bench SPEC_JSON
    print(json.dumps(predict_worker(json.loads(sys.argv[1]))))
