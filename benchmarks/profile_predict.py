"""Where `SentimentModel.predict_proba` spends its time on real messages: a profile, not a benchmark.

Three runs on the same messages (the last N of the SPY file): one call on 1 thread under cProfile
(every function, grouped into normalisation / encoding / network / Python glue), one call on 2
threads with the phases timed inside the worker threads (cProfile sees only the calling thread),
and one message at a time under cProfile.

    .venv/bin/python benchmarks/profile_predict.py --model /work/scratch/models/spy-default
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import threading
import time
from collections import defaultdict
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"

# (phase, substrings of "file:function" in the profile) in the order they are tried.
PHASES = (
    ("encoding", ("vocab.py", "fromiter")),
    ("normalisation", ("text.py", "re.Pattern", "method 'split'", "method 'lower'", "method 'join'", "isascii")),
    ("network", ("fast_cpu.py", "torch._C", "built-in method torch", "engine.py:", "model.py", "numpy")),
)


def phase_of(key: tuple) -> str:
    where = f"{key[0]}:{key[2]}"
    for phase, marks in PHASES:
        if any(mark in where for mark in marks):
            return phase
    return "glue"


def profiled(fn) -> tuple[dict, list, float]:
    """(seconds per phase, top functions by own time, wall seconds) of one call of `fn`."""
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(fn)
    wall = time.perf_counter() - started
    stats = pstats.Stats(profile)
    phases: dict[str, float] = defaultdict(float)
    rows = []
    for key, (_, calls, own, cumulative, _) in stats.stats.items():
        phases[phase_of(key)] += own
        rows.append((own, calls, cumulative, f"{Path(key[0]).name}:{key[1]}({key[2]})"))
    rows.sort(reverse=True)
    return dict(phases), rows[:15], wall


def timed_phases(model, messages: list[str], threads: int) -> dict:
    """Wall time of one call on `threads` worker threads, and the time each phase took inside them."""
    import torch

    spent: dict[str, float] = defaultdict(float)
    lock = threading.Lock()
    encode, logits = model.encode_flat, model.engine.logits

    def timing(name, fn):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    spent[name] += time.perf_counter() - started

        return run

    torch.set_num_threads(threads)
    model.predict_proba(messages[:2048])
    model.encode_flat, model.engine.logits = timing("text (normalise + encode)", encode), timing("network", logits)
    try:
        started = time.perf_counter()
        model.predict_proba(messages)
        wall = time.perf_counter() - started
    finally:
        model.encode_flat, model.engine.logits = encode, logits
    return {"threads": threads, "wall_s": wall, "msgs_per_s": len(messages) / wall, "inside_workers_s": dict(spent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--single-calls", type=int, default=2_000)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()

    import torch

    from stocksent.sentiment import SentimentModel

    messages = messages_of(args.data)[-args.messages :]
    model = SentimentModel.load(args.model, precision="float32")
    result: dict = {"messages": len(messages), "model": args.model}

    torch.set_num_threads(1)
    model.predict_proba(messages[:2048])
    phases, top, wall = profiled(lambda: model.predict_proba(messages))
    result["one_thread"] = {"wall_s": wall, "phases_s": phases, "top": top}

    result["two_threads"] = timed_phases(model, messages, 2)
    result["one_thread_timed"] = timed_phases(model, messages, 1)

    singles = messages[: args.single_calls]
    for threads in (1, 2):  # on 2 threads the call is handed to a worker thread, which cProfile does not see
        torch.set_num_threads(threads)
        for text in singles[:50]:
            model.predict_proba(text)
        started = time.perf_counter()
        for text in singles:
            model.predict_proba(text)
        result[f"one_message_ms_{threads}_threads"] = 1e3 * (time.perf_counter() - started) / len(singles)
    torch.set_num_threads(1)
    phases, top, wall = profiled(lambda: [model.predict_proba(text) for text in singles])
    result["one_message"] = {"calls": len(singles), "wall_s": wall, "phases_s": phases, "top": top}

    for name in ("one_thread", "one_message"):
        part = result[name]
        total = sum(part["phases_s"].values())
        print(f"\n== {name}: wall {part['wall_s']:.3f} s (under cProfile)")
        for phase, seconds in sorted(part["phases_s"].items(), key=lambda kv: -kv[1]):
            print(f"  {phase:<14} {seconds:8.3f} s  {100 * seconds / total:5.1f}%")
        for own, calls, cumulative, where in part["top"]:
            print(f"  {own:8.3f} own {cumulative:8.3f} cum {calls:>9} calls  {where}")
    for name in ("one_thread_timed", "two_threads"):
        part = result[name]
        print(f"\n== {name}: {part['msgs_per_s']:,.0f} msgs/s, wall {part['wall_s']:.3f} s")
        for phase, seconds in part["inside_workers_s"].items():
            print(f"  {phase:<28} {seconds:.3f} s (summed over threads)")
    print(
        f"\none message, mean ms per call: 1 thread {result['one_message_ms_1_threads']:.3f}, 2 threads {result['one_message_ms_2_threads']:.3f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def messages_of(path) -> list[str]:
    """Every message of a file, in file order, as the commands read it."""
    from stocksent.readers import iter_batches

    return [t for batch in iter_batches(path) for t in batch.column("message").to_pylist()]


if __name__ == "__main__":
    main()
