"""Training throughput: 1 process x 2 threads against 2 DDP processes x 1 thread (`train --nproc 2`).

Messages: the real $SPY 2017 messages resampled with replacement to a 1M-message CSV.gz (each row a
unique id, so deduplication keeps them all). A full epoch of its 800k training messages takes most
of an hour per run on a 2-core machine, so each run trains one epoch on the first `--max-examples`
rows of that file (80% of them: the training split), default model sizes, and the number reported
is training messages / the epoch's seconds as training records them (its validation included).

The machine is shared: the configurations alternate, each run `--repeats` times, the median is
reported, and `uptime` is printed before every run.

    .venv/bin/python benchmarks/train_ddp.py                      # 3 x 2 runs on 25,000 rows
    .venv/bin/python benchmarks/train_ddp.py --max-examples 1000000 --repeats 1   # whole epochs
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPY = ROOT.parent / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"
CONFIGS = {
    "1 process x 2 threads": ["--threads", "2"],
    "2 processes x 1 thread": ["--nproc", "2", "--threads", "1"],
}


def resampled(path: Path, n: int, seed: int = 0) -> Path:
    """`n` real messages drawn with replacement, each with its own id (written once, then reused)."""
    if path.is_file():
        return path
    frame = pd.read_csv(SPY, usecols=["message", "sentiment"])
    pick = np.random.default_rng(seed).integers(len(frame), size=n)
    out = frame.iloc[pick].reset_index(drop=True)
    out.insert(0, "id", np.arange(n))
    tmp = path.with_suffix(".part")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as handle:
        out.to_csv(handle, index=False)
    tmp.rename(path)
    return path


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def one_run(data: Path, flags: list[str], max_examples: int, work: Path) -> dict:
    out = Path(tempfile.mkdtemp(dir=work))
    command = [sys.executable, "-m", "stocksent", "train", "--data", str(data), "--out", str(out / "run")]
    command += ["--epochs", "1", "--max-examples", str(max_examples), "--device", "cpu", "--no-linear-blend", *flags]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    train_n = metrics["split"]["train"]
    seconds = metrics["history"][0]["seconds"]
    return {
        "train_messages": train_n,
        "epoch_seconds": seconds,
        "messages_per_s": train_n / seconds,
        "val_accuracy": metrics["history"][0]["val_accuracy"],
        "test_accuracy": metrics["test"]["accuracy"],
        "wall_seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="size of the resampled file")
    parser.add_argument("--max-examples", type=int, default=25_000, help="rows of it one run trains on (80%%)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "stocksent-train-ddp")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = resampled(args.work / f"spy_resampled_{args.messages}.csv.gz", args.messages)
    print(f"data: {data} ({args.messages:,} messages); each run: 1 epoch on its first {args.max_examples:,} rows")
    print(
        subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].splitlines()[0].strip()
    )
    results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for repeat in range(args.repeats):
        for name, flags in CONFIGS.items():
            load = uptime()
            row = one_run(data, flags, args.max_examples, args.work)
            results[name].append(row)
            print(
                f"run {repeat + 1} {name}: {row['messages_per_s']:.0f} messages/s "
                f"({row['train_messages']:,} in {row['epoch_seconds']:.1f} s; val accuracy {row['val_accuracy']:.4f}, "
                f"test {row['test_accuracy']:.4f})   [{load}]",
                flush=True,
            )
    print()
    print("| configuration | messages/s (median) | runs | val accuracy (median) |")
    print("|---|---|---|---|")
    medians = {}
    for name, rows in results.items():
        medians[name] = statistics.median(r["messages_per_s"] for r in rows)
        runs = ", ".join(f"{r['messages_per_s']:.0f}" for r in rows)
        accuracy = statistics.median(r["val_accuracy"] for r in rows)
        print(f"| {name} | {medians[name]:.0f} | {runs} | {accuracy:.4f} |")
    one, two = medians.values()
    print(f"\n2 processes / 1 process: {two / one:.2f}x   [{uptime()}]")


if __name__ == "__main__":
    main()
