"""Peak memory of `stocksent predict --input FILE --output OUT` as the input grows.

Each run is a fresh `python -m stocksent predict` process; its peak resident set size comes from
wait4's rusage (ru_maxrss), so nothing samples and nothing is missed. Messages are the real
dataset's, cycled to the wanted number of lines (newlines inside a message become spaces).

    .venv/bin/python benchmarks/predict_memory.py --model runs/default --lines 100000 1000000
    # the code as it was, for a before/after table:
    git archive COMMIT src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/predict_memory.py --model runs/default --src /tmp/before/src

Without --model a tiny model is trained first (a minute); the weights' size shifts every number by
the same amount, so the growth per line is what to compare.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"


def make_input(path: Path, lines: int, fmt: str) -> None:
    from stocksent.readers import iter_batches

    texts = (t for batch in iter_batches(DATA) for t in batch.column("message").to_pylist())
    messages = [m.replace("\n", " ").replace("\r", " ") for m in texts]
    with path.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            import csv

            writer = csv.writer(handle)
            writer.writerow(["message"])
            writer.writerows([m] for m in itertools.islice(itertools.cycle(messages), lines))
        else:
            for message in itertools.islice(itertools.cycle(messages), lines):
                handle.write(message + "\n")


def tiny_model(out: Path) -> Path:
    from stocksent import preset, train

    train(preset("default", data=str(DATA), out=str(out), epochs=1, max_examples=3000, num_threads=1, device="cpu"))
    return out


def peak_rss(command: list[str], env: dict) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model directory (default: train a tiny one)")
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", choices=["txt", "csv"], default="txt")
    parser.add_argument("--src", type=Path, help="put this src/ first on PYTHONPATH (the code before a change)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the median is printed")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if args.src:
        env["PYTHONPATH"] = str(args.src.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "model")
        print(f"model {model}, format {args.format}, code {args.src or 'this tree'}")
        print(f"{'lines':>10} {'input MiB':>10} {'peak RSS MiB':>13} {'seconds':>8}")
        for lines in args.lines:
            source = tmp / f"in.{args.format}"
            make_input(source, lines, args.format)
            command = [sys.executable, "-m", "stocksent", "predict", "--model", str(model)]
            command += ["--input", str(source), "--output", str(tmp / "out.csv")]
            runs = sorted(peak_rss(command, env) for _ in range(args.repeat))
            rss, seconds = runs[len(runs) // 2]
            print(f"{lines:>10,} {source.stat().st_size / 2**20:>10.1f} {rss:>13.0f} {seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
