"""`stocksent score` at scale: messages/s and peak memory, 1 vs 2 workers, 1M vs 10M messages, and the
same rows through Spark local[2], Ray Data and fastText's in-memory `predict` (the peer figure).

Inputs are CSV files (`id,created_at,message`) made by resampling the real messages of the SPY
dataset with replacement (seeded), with increasing ids and timestamps; messages keep their newlines,
so the CSV has quoted multi-line fields, as exports do. They are written once under --workdir
(default /tmp/stocksent-score-bench, never the repository) and reused by later runs.

Measured, in one run, for every size and worker count: end-to-end messages/s of a fresh
`python -m stocksent score --model M IN.csv --output OUT.parquet --workers N` process (wall time
from start to exit: interpreter start, model load, reading, scoring, writing), and the peak memory of
its whole process tree. The tree (the command, its fork server and workers) is sampled every 0.1 s
from /proc: the peak of the summed RSS (what `ps` shows; pages shared between the fork server and
its workers are counted once per process, so it over-states) and of the summed PSS (shared pages
split between their processes: the memory the tree really holds). ru_maxrss cannot give a tree's
peak: RUSAGE_CHILDREN reports the largest single descendant, not a sum.

Then, on the smallest size's rows, after start-up (session and workers up, model loaded by a
warm-up job on 1,000 rows): Spark local[2] (`spark.read.csv(multiLine, escape)` -> `stocksent.batch.spark.score`
-> Parquet) and Ray Data (`read_csv` -> `stocksent.batch.ray.score`, two actors of half a CPU each
under `ray.init(num_cpus=2)` -> Parquet); `SentimentModel.predict_proba` on the messages in memory
(one process, one thread); and fastText (`fasttext-numpy2`, trained here on the model's own training
split, wordNgrams=2) predicting the same messages in memory.

    .venv/bin/stocksent train --out /tmp/score_model --epochs 1 --threads 1   # default sizes
    .venv/bin/python benchmarks/score.py --model /tmp/score_model
    .venv/bin/python benchmarks/score.py --model /tmp/score_model --sizes 1000000 --only score,fasttext

Sizes of the network set the speed, not its accuracy: a default-size model of one epoch scores as
fast as a fully trained one. The machine's load (`uptime`) is printed before and after every run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"
ENGINES = ("score", "inmemory", "fasttext", "spark", "ray")
START = "2017-01-03T14:30:00"


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------------------- inputs


def make_input(path: Path, rows: int, messages: list[str], seed: int = 7) -> Path:
    """`rows` messages drawn with replacement from `messages`, with ids and timestamps, as CSV (kept)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    done = path.with_suffix(".json")
    if path.is_file() and done.is_file() and json.loads(done.read_text()) == {"rows": rows, "seed": seed}:
        return path
    rng = np.random.default_rng(seed)
    pool = pa.array(messages, pa.string())
    start = np.datetime64(START, "s").astype(np.int64)
    schema = pa.schema([("id", pa.int64()), ("created_at", pa.string()), ("message", pa.string())])
    partial = path.with_suffix(".partial")
    with pcsv.CSVWriter(str(partial), schema) as writer:
        seconds = start
        for first in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - first)
            gaps = np.cumsum(rng.integers(0, 3, n)) + seconds  # a message every second or so
            seconds = int(gaps[-1])
            created = pc.strftime(pa.array(gaps * 1_000_000, pa.timestamp("us", "UTC")), format="%Y-%m-%dT%H:%M:%SZ")
            ids = pa.array(np.arange(800_000_000 + first, 800_000_000 + first + n, dtype=np.int64))
            writer.write_table(pa.table([ids, created, pool.take(rng.integers(0, len(pool), n))], schema=schema))
    partial.replace(path)
    done.write_text(json.dumps({"rows": rows, "seed": seed}))
    return path


# ---------------------------------------------------------------------------- process-tree memory


def tree(pid: int) -> list[int]:
    """`pid` and every descendant, from /proc/*/stat's parent ids."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB (0, 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line and not line[0].isdigit())
        return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0, 0


class TreeSampler:
    """Peak summed RSS and PSS (MiB) of a process tree, sampled every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0.0
        self.processes = 0
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds at its last sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = tree(self.pid)
            sums = [memory_kib(p) for p in pids]
            for p in pids:
                self.cpu[p] = max(self.cpu.get(p, 0.0), cpu_seconds(p))
            self.processes = max(self.processes, sum(1 for s in sums if s[0]))
            self.peak_rss = max(self.peak_rss, sum(s[0] for s in sums) / 1024)
            self.peak_pss = max(self.peak_pss, sum(s[1] for s in sums) / 1024)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_score(
    model: Path, source: Path, out: Path, workers: int, max_seconds: float | None = None, precision: str | None = None
) -> dict:
    """One fresh `stocksent score` process: wall seconds, peak tree RSS/PSS, its own summary line
    (`precision`: its --precision, else the command's default).

    With `max_seconds`, a run still going then is stopped (its whole tree) and measured up to there:
    the rows are those of the chunks it had finished (its resume folder), the result marked partial.
    """
    chunk_rows = 16384
    command = [sys.executable, "-m", "stocksent", "score", "--model", str(model), str(source)]
    command += ["--output", str(out), "--workers", str(workers), "--chunk-rows", str(chunk_rows), "--no-progress"]
    command += ["--precision", precision] if precision else []
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    before = load()
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    partial = False
    with TreeSampler(process.pid) as sampler:
        try:
            _, stderr = process.communicate(timeout=max_seconds)
        except subprocess.TimeoutExpired:
            partial = True
            work = out.with_name(f".{out.name}.score")
            done = len(list(work.glob("chunk-*")))
            for pid in reversed(tree(process.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    if partial:
        shutil.rmtree(work, ignore_errors=True)
        for leftover in out.parent.glob(f".{out.name}.stocksent-tmp-*"):
            leftover.unlink()
        rows, summary = done * chunk_rows, f"stopped after {seconds:.0f} s: {done} chunks of {chunk_rows} done"
    elif process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    else:
        summary = stderr.strip().splitlines()[-1]
        rows = int(re.search(r"scored ([\d,]+) messages", summary).group(1).replace(",", ""))
    cpu = dict(sampler.cpu)
    parent = cpu.pop(process.pid, 0.0)
    return {
        "cpu_parent_s": parent,  # reading, writing, the resume folder (sampled: the last 0.1 s may be missed)
        "cpu_others_s": sum(cpu.values()),  # fork server and workers
        "partial": partial,
        "rows": rows,
        "seconds": seconds,
        "rate": rows / seconds,
        "peak_rss_mib": sampler.peak_rss,
        "peak_pss_mib": sampler.peak_pss,
        "processes": sampler.processes,
        "summary": summary,
        "load_before": before,
        "load_after": load(),
    }


# ---------------------------------------------------------------------------- peers on the same rows


def in_memory(model: Path, messages: list[str]) -> float:
    """Messages/s of SentimentModel.predict_proba on a list in memory, one process, one thread."""
    import torch

    from stocksent import SentimentModel

    torch.set_num_threads(1)
    scorer = SentimentModel.load(model, precision="float32")
    scorer.predict_proba(messages[:1000])
    start = time.perf_counter()
    for i in range(0, len(messages), 16384):
        scorer.predict_proba(messages[i : i + 16384])
    return len(messages) / (time.perf_counter() - start)


def fasttext_rate(model: Path, messages: list[str], workdir: Path) -> tuple[float, float] | str:
    """(messages/s of fastText's predict on `messages` in memory, its test accuracy), or why it was skipped."""
    try:
        import fasttext
    except ImportError:
        return "skipped: no fastText binding installed (pip install fasttext-numpy2; fasttext-wheel breaks on numpy 2)"
    from stocksent.splits import recorded_splits
    from stocksent.text import TextOptions

    config = json.loads((model / "config.json").read_text())
    splits = recorded_splits(config["data"], TextOptions.from_dict(config["text"]))

    def lines(split) -> list[str]:
        return [f"__label__{int(y)} {flat(m)}" for m, y in zip(split.messages, split.labels)]

    train_file = workdir / "fasttext-train.txt"
    train_file.write_text("\n".join(lines(splits.train)) + "\n", encoding="utf-8")
    ft = fasttext.train_supervised(str(train_file), epoch=5, wordNgrams=2, lr=0.5, verbose=0, thread=2, seed=1)
    test = [flat(m) for m in splits.test.messages]
    predicted, _ = ft.predict(test)
    accuracy = sum(p[0] == f"__label__{int(y)}" for p, y in zip(predicted, splits.test.labels)) / len(test)
    texts = [flat(m) for m in messages]  # fastText refuses newlines; done before the clock starts
    ft.predict(texts[:1000])
    start = time.perf_counter()
    ft.predict(texts)
    return len(texts) / (time.perf_counter() - start), accuracy


def flat(message: str) -> str:
    return message.replace("\n", " ").replace("\r", " ")


def spark_rate(model: Path, source: Path, out: Path) -> tuple[float, float]:
    """(messages/s of CSV -> score -> Parquet in local[2] after start-up, start-up seconds)."""
    from pyspark.sql import SparkSession

    from stocksent.batch.spark import score

    os.environ["PYSPARK_PYTHON"] = sys.executable
    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def read():  # quoted multi-line messages: multiLine (one task reads the file) and "" as the escape
        return spark.read.csv(str(source), header=True, multiLine=True, escape='"', schema=schema)

    schema = "id LONG, created_at STRING, message STRING"
    score(read().limit(1000).repartition(2), str(model)).write.mode("overwrite").parquet(str(out))  # warm-up
    startup = time.perf_counter() - start
    start = time.perf_counter()
    score(read().repartition(2), str(model)).write.mode("overwrite").parquet(str(out))
    seconds = time.perf_counter() - start
    rows = spark.read.parquet(str(out)).count()
    spark.stop()
    return rows / seconds, startup


def ray_rate(model: Path, source: Path, out: Path) -> tuple[float, float]:
    """(messages/s of CSV -> score -> Parquet with ray.init(num_cpus=2) after start-up, start-up seconds)."""
    import pyarrow.csv as pcsv
    import ray

    from stocksent.batch.ray import score

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    parse = pcsv.ParseOptions(newlines_in_values=True)  # quoted multi-line messages

    def scored(ds):  # two actors of half a CPU: one CPU stays free for the read and write tasks
        return score(ds, str(model), concurrency=2, num_cpus=0.5)

    scored(ray.data.read_csv(str(source), parse_options=parse).limit(1000)).write_parquet(str(out / "warm"))
    startup = time.perf_counter() - start
    start = time.perf_counter()
    scored(ray.data.read_csv(str(source), parse_options=parse)).write_parquet(str(out / "run"))
    seconds = time.perf_counter() - start
    rows = ray.data.read_parquet(str(out / "run")).count()
    ray.shutdown()
    return rows / seconds, startup


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model directory (default sizes: see above)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stocksent-score-bench"))
    parser.add_argument("--only", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}")
    parser.add_argument(
        "--peer-rows", type=int, help="in-memory predict_proba on only the first N of those rows (a rate; default: all)"
    )
    parser.add_argument(
        "--max-seconds", type=float, help="stop a score run after this long and measure it up to there (partial)"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    engines = set(args.only.split(","))
    if engines - set(ENGINES):
        parser.error(f"--only takes {', '.join(ENGINES)}")
    if Path(__file__).resolve().parents[1] in args.workdir.resolve().parents:
        parser.error("--workdir must be outside the repository (the inputs are gigabytes)")
    args.workdir.mkdir(parents=True, exist_ok=True)

    from stocksent.readers import iter_batches

    messages = [t for batch in iter_batches(DATA) for t in batch.column("message").to_pylist()]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"model {args.model}; {len(messages):,} real messages resampled; {os.cpu_count()} CPUs ({cpu}); {load()}")
    results: dict = {"model": str(args.model), "cpu": cpu, "score": [], "peers": {}}
    sources = {}
    for rows in args.sizes:
        start = time.perf_counter()
        sources[rows] = make_input(args.workdir / f"messages-{rows}.csv", rows, messages)
        size = sources[rows].stat().st_size / 2**20
        print(f"input {sources[rows]}: {rows:,} rows, {size:,.0f} MiB ({time.perf_counter() - start:.0f} s)")

    if "score" in engines:
        print(
            f"\n{'rows':>11} {'workers':>7} {'seconds':>8} {'msgs/s':>9} {'RSS MiB':>8} {'PSS MiB':>8}  CPU s (parent/workers)  load"
        )
        for rows in args.sizes:
            for workers in args.workers:  # back to back, so the load is as alike as it gets
                out = args.workdir / f"out-{rows}-{workers}.parquet"
                r = run_score(args.model, sources[rows], out, workers, args.max_seconds)
                results["score"].append({"size": rows, "workers": workers, **r})
                note = f"  PARTIAL: {r['summary']}" if r["partial"] else ""
                print(
                    f"{rows:>11,} {workers:>7} {r['seconds']:>8.1f} {r['rate']:>9,.0f} {r['peak_rss_mib']:>8.0f} "
                    f"{r['peak_pss_mib']:>8.0f}  {r['cpu_parent_s']:>9.0f} / {r['cpu_others_s']:<9.0f}  "
                    f"{r['load_before']} -> {r['load_after']}{note}",
                    flush=True,
                )
                out.unlink(missing_ok=True)

    smallest = min(args.sizes)
    peers = results["peers"]
    if engines & {"inmemory", "fasttext"}:
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(sources[smallest], parse_options=pcsv.ParseOptions(newlines_in_values=True))
        same = table.column("message").to_pylist()
        del table
        if "inmemory" in engines:
            peers["inmemory"] = {"rate": in_memory(args.model, same[: args.peer_rows]), "load": load()}
        if "fasttext" in engines:
            got = fasttext_rate(args.model, same, args.workdir)
            peers["fasttext"] = {"skipped": got} if isinstance(got, str) else {"rate": got[0], "accuracy": got[1]}
            peers["fasttext"]["load"] = load()
        del same
    if "spark" in engines:
        out = args.workdir / "spark-out"
        rate, startup = spark_rate(args.model, sources[smallest], out)
        peers["spark"] = {"rate": rate, "startup_s": startup, "load": load()}
        shutil.rmtree(out, ignore_errors=True)
    if "ray" in engines:
        out = args.workdir / "ray-out"
        rate, startup = ray_rate(args.model, sources[smallest], out)
        peers["ray"] = {"rate": rate, "startup_s": startup, "load": load()}
        shutil.rmtree(out, ignore_errors=True)

    print(f"\nthe {smallest:,} rows in one run, after start-up ({load()}):")
    scored = {r["workers"]: r["rate"] for r in results["score"] if r["size"] == smallest and not r["partial"]}
    for workers, rate in sorted(scored.items()):
        print(f"  stocksent score, {workers} worker{'s' * (workers != 1)} (end to end) {rate:>10,.0f} msgs/s")
    labels = {
        "inmemory": "SentimentModel.predict_proba in memory, 1 thread",
        "fasttext": "fastText predict in memory",
        "spark": "Spark local[2] (CSV -> Parquet)",
        "ray": "Ray Data, 2 CPUs (CSV -> Parquet)",
    }
    for name, peer in peers.items():
        if "skipped" in peer:
            print(f"  {labels[name]}: {peer['skipped']}")
            continue
        extra = f" (start-up {peer['startup_s']:.0f} s)" if "startup_s" in peer else ""
        extra += f" (test accuracy {peer['accuracy']:.3f})" if "accuracy" in peer else ""
        print(f"  {labels[name]:<48} {peer['rate']:>10,.0f} msgs/s{extra}")
    if 1 in scored and 2 in scored:
        print(f"  2 workers / 1 worker: {scored[2] / scored[1]:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
