"""Training at scale: peak memory and speed of training preparation and an epoch, for 1M and 10M messages.

The real $SPY messages (96,967 labelled) are resampled with replacement into files of 1M and 10M
rows (CSV.gz, `message,sentiment`, no ids: every row is kept, as in the tutorial's file). Each file
is trained on in a fresh process (`measure`), so its peak RSS is that run's alone:

- preparation: `training.prepare.prepare_data` with the default preset (read and hash the file,
  normalise, split 80/10/10, build the vocabulary, map the ids in place: the flat `TokenArrays`);
- the epoch: the default model (embedding 300, LSTM 128/64, 2^20 n-gram buckets, Adam, batch 64)
  trained by `training.epochs.train_one_epoch` on a bounded number of batches drawn from the
  whole training split's order (`--steps`; the full order is built, so its memory is counted),
  then the epoch's time extrapolated from the measured batches' rate (messages/s), stated as such.

For the DDP comparison, `resampled_file(n, directory)` makes the same files and
`measure(path, steps, threads, options)` runs one measurement in a fresh process (`options` reach
`preset`); the epoch here is one process's `train_one_epoch`, so a multi-process arm needs its own
loop (benchmarks/train_ddp.py).

    python benchmarks/train_scale.py                      # 1M and 10M, 300 batches each
    python benchmarks/train_scale.py --sizes 1000000 --steps 1000 --json out.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"


def resampled_file(n: int, directory: Path, seed: int = 0, source: Path = DATA) -> Path:
    """`n` labelled messages drawn with replacement from `source`, as CSV.gz (written in 1M-row parts)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from stocksent.readers import iter_batches

    path = Path(directory) / f"resampled_{n}.csv.gz"
    if path.is_file():
        return path
    table = pa.Table.from_batches(list(iter_batches(source, columns=["sentiment"])))
    messages, labels = table.column("message").combine_chunks(), table.column("sentiment").combine_chunks()
    rng = np.random.default_rng(seed)
    partial = path.with_suffix(".part")
    with gzip.open(partial, "wb", compresslevel=1) as out:  # level 1: 10M rows in a minute, not 20
        for start in range(0, n, 1_000_000):
            pick = pa.array(rng.integers(0, len(messages), size=min(1_000_000, n - start)))
            table = pa.table({"message": messages.take(pick), "sentiment": labels.take(pick)})
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=start == 0))
    partial.rename(path)
    return path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(path: str, steps: int, threads: int, options: dict) -> dict:
    """One measurement in this (fresh) process; see the module docstring."""
    import math

    import numpy as np
    import torch

    from stocksent.batching import bucketed_order
    from stocksent.config import preset
    from stocksent.model import LSTMClassifier
    from stocksent.training.epochs import loss_function, make_optimizers, train_one_epoch
    from stocksent.training.prepare import prepare_data
    from stocksent.training.run import model_config

    torch.set_num_threads(threads)
    config = preset("default", data=path, device="cpu", num_threads=threads, **options)
    rss_start = _peak_rss_mb()
    started = time.perf_counter()
    data = prepare_data(config, Path(tempfile.mkdtemp(prefix="train-scale-")))
    prepare_seconds = time.perf_counter() - started
    rss_prepared = _peak_rss_mb()

    torch.manual_seed(config.seed)
    model = LSTMClassifier.from_config(model_config(config, data), sparse_embedding=True)
    optimizers = make_optimizers(model, config)
    rng = np.random.default_rng([config.seed, 1])
    order = bucketed_order(data.train_x.lengths, config.batch_size, rng)  # the whole epoch's order, kept alive
    picked = np.concatenate(order[:steps])
    batches = math.ceil(len(data.train_x) / config.batch_size)
    started = time.perf_counter()
    train_one_epoch(
        model,
        optimizers,
        loss_function(config.loss),
        data.train_x.subset(picked),
        data.splits.train.labels[picked],
        config.batch_size,
        rng,
        torch.device("cpu"),
        word_dropout=config.word_dropout,
    )
    seconds = time.perf_counter() - started
    rate = len(picked) / seconds
    return {
        "file": path,
        "messages": sum(data.splits.sizes().values()),
        "split": data.splits.sizes(),
        "vocabulary": len(data.vocab),
        "token_bytes": data.train_x.nbytes,  # ids + offsets (shared by the splits) + the train rows
        "prepare_seconds": round(prepare_seconds, 1),
        "prepare_messages_per_s": round(sum(data.splits.sizes().values()) / prepare_seconds),
        "measured_batches": min(steps, len(order)),
        "epoch_batches": batches,
        "train_messages_per_s": round(rate),
        "epoch_seconds_extrapolated": round(len(data.train_x) / rate),
        "rss_at_start_mb": round(rss_start),
        "peak_rss_prepared_mb": round(rss_prepared),
        "peak_rss_mb": round(_peak_rss_mb()),
        "threads": threads,
        "options": options,
    }


def measure(path: Path, steps: int = 300, threads: int = 2, options: dict | None = None) -> dict:
    """`child` in a fresh Python process (peak RSS is the run's alone); its JSON result."""
    command = [sys.executable, __file__, "--child", str(path), "--steps", str(steps), "--threads", str(threads)]
    command += ["--options", json.dumps(options or {})]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode:
        raise RuntimeError(f"measurement failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="messages per resampled file")
    parser.add_argument("--steps", type=int, default=300, help="batches measured per epoch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="where the resampled files go (kept between runs)")
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.threads, json.loads(args.options))))
        return
    workdir = Path(args.workdir or tempfile.gettempdir()) / "stocksent-train-scale"
    workdir.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    results = {"machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}, "runs": []}
    for n in [int(s) for s in args.sizes.split(",")]:
        started = time.perf_counter()
        path = resampled_file(n, workdir)
        print(f"{n:,} messages: {path} ({path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - started:.0f} s)")
        load = os.getloadavg()[0]
        result = {**measure(path, args.steps, args.threads), "load_before": round(load, 2)}
        result["load_after"] = round(os.getloadavg()[0], 2)
        results["runs"].append(result)
        print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
