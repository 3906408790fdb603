"""Peak memory of `sentiment_index` for 1M and 10M messages: the same, since the index streams.

Real StockEmotions 2020 messages (text, ticker, tag) are resampled into a time-ordered stream over
2020 (each batch a consecutive slice of the year, random times of day, so all parts of the NYSE
day occur), with fresh message ids, authors drawn from 50,000 ids, and 1% duplicates of recent
messages (which the index must drop). Each size runs in its own process, so each peak RSS
(`ru_maxrss` of that child) is its own. Scoring 10M messages with the LSTM would take most of an
hour on this 2-core machine, so the batches are pre-scored: every resampled message carries the
p_bullish the model gave its source message (`--model`), scored once; without `--model` it carries
a hash-derived score. What is measured is the index, not the model.

    .venv/bin/python benchmarks/index_memory.py --model /tmp/spy_default            # 1M and 10M
    .venv/bin/python benchmarks/index_memory.py --sizes 200000 --freq 1h
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "StockEmotions_2020.csv.gz"
BATCH = 65536
YEAR_START = np.datetime64("2020-01-01T00:00:00", "ns").astype(np.int64)
YEAR_NS = 366 * 86400 * 10**9


def pool(model: str | None):
    """The real messages and a p_bullish for each (the model's, or a cheap stand-in)."""
    import pandas as pd
    import pyarrow as pa

    df = pd.read_csv(DATA)
    if model:
        from stocksent.sentiment import SentimentModel

        p = SentimentModel.load(model, precision="float32").predict_proba(df["message"].tolist())
    else:
        p = (pd.util.hash_array(df["message"].to_numpy(dtype=object)) % 1000) / 1000.0
    return pa.table(
        {
            "message": pa.array(df["message"].astype(str)),
            "ticker": pa.array(df["ticker"].astype(str)),
            "sentiment": pa.array(df["sentiment"].astype(str)),
            "p_bullish": pa.array(np.asarray(p, dtype=np.float32)),
        }
    )


def stream(source, n: int, seed: int = 0):
    """n resampled messages in time order, as pyarrow batches of BATCH rows, generated lazily."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    done = 0
    while done < n:
        size = min(BATCH, n - done)
        take = rng.integers(0, source.num_rows, size)
        batch = source.take(pa.array(take))
        lo = YEAR_START + YEAR_NS * done // n  # this batch's slice of the year
        hi = YEAR_START + YEAR_NS * (done + size) // n
        ts = np.sort(rng.integers(lo, max(hi, lo + 1), size))
        ids = np.arange(done, done + size, dtype=np.int64)
        dup = rng.random(size) < 0.01  # a re-crawled page: the same id (and time) as an earlier message
        src = np.flatnonzero(dup)
        back = np.maximum(src - rng.integers(1, 500, len(src)), 0)
        ids[src], ts[src] = ids[back], ts[back]
        batch = batch.append_column("id", pa.array(ids))
        batch = batch.append_column("created_at", pa.array(ts.astype("datetime64[ns]"), pa.timestamp("ns", "UTC")))
        batch = batch.append_column("user_id", pa.array(rng.integers(0, 50_000, size)))
        yield from batch.to_batches()
        done += size


def child(n: int, freq: str, model: str | None, max_resident: int) -> None:
    from stocksent.signals import sentiment_index

    source = pool(model)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    df = sentiment_index(stream(source, n), freq=freq, max_resident_keys=max_resident, model_id="pre-scored")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "messages": n,
                "counted": int(df["n_msgs"].sum()),
                "rows": len(df),
                "seconds": round(seconds, 1),
                "peak_rss_mib": round(peak / 1024, 1),
                "before_index_mib": round(base / 1024, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated message counts")
    parser.add_argument("--freq", default="1D")
    parser.add_argument("--model", help="model directory: resampled messages carry its p_bullish")
    parser.add_argument("--max-resident-keys", type=int, default=2_000_000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.freq, args.model, args.max_resident_keys)
        return
    print(f"{'messages':>11} {'counted':>11} {'rows':>7} {'seconds':>8} {'peak RSS MiB':>13} {'before index':>13}")
    for n in (int(s) for s in args.sizes.split(",")):
        command = [sys.executable, __file__, "--child", str(n), "--freq", args.freq]
        command += ["--max-resident-keys", str(args.max_resident_keys)]
        command += ["--model", args.model] if args.model else []
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"size {n} failed:\n{result.stderr[-2000:]}")
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{r['messages']:>11,} {r['counted']:>11,} {r['rows']:>7,} {r['seconds']:>8} "
            f"{r['peak_rss_mib']:>13} {r['before_index_mib']:>13}"
        )


if __name__ == "__main__":
    main()
