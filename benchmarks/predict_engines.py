"""Prediction speed of each engine through the public API (a benchmark script, not a test).

Loads one model directory once per (backend, precision), then times `SentimentModel.predict` on a
list of real messages (raw text -> labels: normalisation, vocabulary, engine, sigmoid, threshold)
and on one message at a time. Prints the median of the repeats, since the machine may be shared.

    .venv/bin/python benchmarks/predict_engines.py --model runs/demo --threads 2

Only `SentimentModel.load(dir, backend=, precision=)` and `predict` are used, so the same script
measures any version of the package (before and after a change).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

CONFIGS = [("torch", "auto"), ("torch", "float32"), ("torch", "bfloat16"), ("onnx", "float32")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--data", default=os.environ.get("STOCKSENT_DATA"), help="labelled dataset (messages)")
    parser.add_argument("--messages", type=int, default=10_000, help="messages per timed call")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (scoring threads)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from stocksent.dataset import locate_dataset
    from stocksent.readers import iter_batches
    from stocksent.sentiment import SentimentModel

    torch.set_num_threads(args.threads)
    texts = [t for batch in iter_batches(locate_dataset(args.data)) for t in batch.column("message").to_pylist()]
    messages = texts[-args.messages :]  # the end of the file: a time-ordered model never trained on them
    rows = []
    for backend, precision in CONFIGS:
        try:
            model = SentimentModel.load(args.model, backend=backend, precision=precision)
        except Exception as err:  # e.g. onnxruntime missing: report and go on
            rows.append({"backend": backend, "precision": precision, "error": str(err)})
            continue
        model.predict(messages[:1024])  # warm-up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            model.predict(messages)
            times.append(time.perf_counter() - started)
        latencies = []
        for k in range(args.latency_calls):
            started = time.perf_counter()
            model.predict(messages[k])
            latencies.append(time.perf_counter() - started)
        rows.append(
            {
                "backend": backend,
                "precision": precision,
                "msgs_per_second": len(messages) / float(np.median(times)),
                "latency_ms_p50": float(np.percentile(latencies, 50) * 1e3),
                "latency_ms_p99": float(np.percentile(latencies, 99) * 1e3),
            }
        )
    result = {"threads": args.threads, "messages": len(messages), "load_average": os.getloadavg()[0], "rows": rows}
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{len(messages)} messages per call, {args.threads} threads, median of {args.repeats}; load {result['load_average']:.2f}"
    )
    for row in rows:
        name = f"{row['backend']} {row['precision']}"
        if "error" in row:
            print(f"{name:<18} error: {row['error']}")
        else:
            print(
                f"{name:<18} {row['msgs_per_second']:>10,.0f} msgs/s   one message p50 {row['latency_ms_p50']:.2f} ms"
                f"  p99 {row['latency_ms_p99']:.2f} ms"
            )


if __name__ == "__main__":
    main()
