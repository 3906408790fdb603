"""The sentiment index at scale: the local `sentiment_index` against `stocksent.spark.sentiment_index`
in Spark local[2], on the same scored rows, both timed in one run.

Input: `--rows` scored messages (default 10M) in one Parquet file under --workdir (default
/tmp/stocksent-index-bench, never the repository), written once and reused: the dated messages of
the public corpus (times, 3,770 tickers, crypto), scored once by `--model`, resampled with
replacement (seeded) into a time-ordered stream over 2019-2020 (times uniform over the two years,
so nights, weekends and holidays occur), with fresh ids, authors drawn from 50,000 ids, and 1% of
rows repeating a recent message with its id (which the index must count once). The columns are
those `stocksent score` writes (id, created_at, message, sentiment, symbols, user_id, p_bullish,
label); with `--model`'s rates.json the corrected shares (ACC, PACC, EM) are computed too.

Measured, after both are ready (the Spark session started and its Python workers warmed by the
same index on 10,000 rows, so start-up is printed apart): the local index of the file written to
Parquet, and the Spark index of `spark.read.parquet(file)` written to Parquet by Spark. The two
tables' row counts and message totals are compared; their values are equal by
tests/test_spark_index.py.

    .venv/bin/python benchmarks/index_spark.py --model runs/default              # 10M rows
    .venv/bin/python benchmarks/index_spark.py --model runs/default --rows 1000000

The machine's load (`uptime`) is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "StockTwits_public_2012_2026.csv.gz"
START = np.datetime64("2019-01-01T00:00:00", "s").astype(np.int64)
SPAN = 2 * 365 * 86400  # seconds: 2019 and 2020
CHUNK = 1_000_000
ROW_GROUP = 131_072  # rows per Parquet row group: Spark splits the file at these


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def pool(model: str | None):
    """The public corpus's dated messages with a p_bullish and label each (the model's, else a hash-derived stand-in)."""
    import pandas as pd
    import pyarrow as pa

    df = pd.read_csv(PUBLIC, keep_default_na=False)
    df = df[(df["created_at"] != "") & (df["symbols"] != "")].reset_index(drop=True)
    if model:
        from stocksent.batch.scorer import BatchScorer

        scorer = BatchScorer(model, precision="float32")
        p = scorer.predict_proba(df["message"].tolist())
        threshold = float(scorer.model.threshold)
    else:
        p = ((pd.util.hash_array(df["message"].to_numpy(dtype=object)) % 1000) / 1000.0).astype(np.float32)
        threshold = 0.5
    return pa.table(
        {
            "message": pa.array(df["message"].astype(str)),
            "sentiment": pa.array(df["sentiment"].astype(str)),
            "symbols": pa.array(df["symbols"].astype(str)),
            "p_bullish": pa.array(p, pa.float32()),
            "label": pa.array(np.where(p >= threshold, "bullish", "bearish")),
        }
    )


def make_input(path: Path, rows: int, model: str | None, seed: int = 11) -> Path:
    """`rows` resampled scored messages as one Parquet file (kept, and reused while rows, seed and model agree)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    done = path.with_suffix(".json")
    recipe = {"rows": rows, "seed": seed, "model": str(Path(model).resolve()) if model else None}
    if path.is_file() and done.is_file() and json.loads(done.read_text()) == recipe:
        return path
    source = pool(model)
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(START, START + SPAN, rows))
    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(str(partial), _schema()) as writer:
        for first in range(0, rows, CHUNK):
            n = min(CHUNK, rows - first)
            pick = rng.integers(0, source.num_rows, n)
            ids = np.arange(first, first + n, dtype=np.int64) + 900_000_000
            users = rng.integers(1, 50_001, n)
            again = np.flatnonzero(rng.random(n) < 0.01)
            again = again[again >= 10]
            back = again - rng.integers(1, 10, len(again))  # a recent message, read again
            pick[again], ids[again], users[again] = pick[back], ids[back], users[back]
            at = seconds[first : first + n].copy()
            at[again] = at[back]
            created = pc.strftime(pa.array(at * 1_000_000, pa.timestamp("us", "UTC")), format="%Y-%m-%dT%H:%M:%SZ")
            chunk = source.take(pa.array(pick))
            table = pa.table(
                {
                    "id": ids,
                    "created_at": created,
                    "message": chunk["message"],
                    "sentiment": chunk["sentiment"],
                    "symbols": chunk["symbols"],
                    "user_id": users,
                    "p_bullish": chunk["p_bullish"],
                    "label": chunk["label"],
                }
            ).cast(_schema())
            writer.write_table(table, row_group_size=ROW_GROUP)
    partial.replace(path)
    done.write_text(json.dumps(recipe))
    return path


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("created_at", pa.string()),
            ("message", pa.string()),
            ("sentiment", pa.string()),
            ("symbols", pa.string()),
            ("user_id", pa.int64()),
            ("p_bullish", pa.float32()),
            ("label", pa.string()),
        ]
    )


def spark_session(partitions: int):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("stocksent-index-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "3g")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory: scores the pool once; its rates.json adds corrected shares")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workdir", default="/tmp/stocksent-index-bench")
    parser.add_argument("--freq", default="1D")
    parser.add_argument("--calendar", default="auto")
    parser.add_argument("--partitions", type=int, default=8, help="spark.sql.shuffle.partitions (default 8)")
    args = parser.parse_args()

    import pandas as pd

    from stocksent.rates import read_rates
    from stocksent.signals import sentiment_index as local_index
    from stocksent.spark import sentiment_index as spark_index

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    data = make_input(work / f"scored-{args.rows}.parquet", args.rows, args.model)
    print(f"input {data} ({data.stat().st_size / 2**20:.0f} MiB) ready in {time.perf_counter() - t:.1f} s", flush=True)
    rates = read_rates(args.model) if args.model else None
    options = {"freq": args.freq, "calendar": args.calendar, "rates": rates}
    print(f"{args.rows:,} rows, {options['freq']} {options['calendar']}, corrected shares: {rates is not None}")
    print(load(), flush=True)

    t = time.perf_counter()
    spark = spark_session(args.partitions)
    started = time.perf_counter() - t
    warm = spark.read.parquet(str(data)).limit(10_000)
    t = time.perf_counter()
    spark_index(warm, **options).write.mode("overwrite").parquet(str(work / "warm-up.parquet"))
    print(f"spark: session {started:.1f} s, warm-up index of 10,000 rows {time.perf_counter() - t:.1f} s", flush=True)

    t = time.perf_counter()
    local = local_index([str(data)], **options)
    local.to_parquet(work / "index-local.parquet", index=False)
    local_s = time.perf_counter() - t
    print(f"local: {local_s:.1f} s, {len(local):,} rows, {local['ticker'].nunique():,} tickers", flush=True)

    t = time.perf_counter()
    out = work / "index-spark.parquet"
    spark_index(spark.read.parquet(str(data)), **options).write.mode("overwrite").parquet(str(out))
    spark_s = time.perf_counter() - t
    written = pd.read_parquet(out, columns=["n_msgs"])
    print(f"spark local[2]: {spark_s:.1f} s, {len(written):,} rows", flush=True)
    same = len(written) == len(local) and int(written["n_msgs"].sum()) == int(local["n_msgs"].sum())
    print(f"spark / local: {spark_s / local_s:.2f}x (target: within 3x); same rows and messages: {same}")
    print(load())
    spark.stop()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
