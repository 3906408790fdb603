"""`stocksent bench`: training and prediction speed on the real data, measured side by side in one run.

- `training`: train's own split of the data, our pipeline's epoch against the tutorial's padded way;
- `prediction`: load time, throughput, latency and accuracy of each engine, in a fresh process;
- `machine`: what the figures were measured on; `report`: the table `stocksent bench` prints.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from stocksent.tools.bench.machine import machine_info, peak_rss_mb
from stocksent.tools.bench.prediction import gpu_predict, run_predict_subprocess
from stocksent.tools.bench.report import format_table
from stocksent.tools.bench.training import bench_config, bench_data, padded_arm, train_arm

__all__ = ["LATENCY_CALLS", "TARGETS", "bench", "format_table"]

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
    from stocksent.dataset import locate_dataset
    from stocksent.model import LSTMClassifier
    from stocksent.sentiment import SentimentModel
    from stocksent.splits import load_splits, recorded_splits
    from stocksent.training.epochs import resolve_device, train_one_epoch

    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    result: dict = {"machine": machine_info(device), "quick": quick}
    config = bench_config(max_examples)
    data_path = locate_dataset(data)
    started = time.perf_counter()
    prepared = bench_data(data_path, config)
    splits, vocab, train_x, train_y = prepared.splits, prepared.vocab, prepared.train_x, prepared.train_y
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
            messages, labels = list(splits.test.messages), splits.test.labels
        else:
            loaded = SentimentModel.load(model_dir)
            recorded = loaded.config.get("data", {})
            if recorded.get("files"):  # its own test split, from its recorded files
                test = recorded_splits(recorded, loaded.text_options, data).test
            else:
                seed, limit = recorded.get("split_seed", config.seed), recorded.get("max_examples")
                test = load_splits(data_path, loaded.text_options, seed, limit).splits.test
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
