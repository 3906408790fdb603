"""Raw text -> probability, side by side in one run: stocksent (compiled float32, compiled bfloat16,
the reference path), fastText and TF-IDF + logistic regression on the same real messages, 1 and 2
threads; one message at a time; `stocksent score` CSV -> Parquet end to end with 1 and 2 workers;
and the machine's physical limit for this network, with the fraction of it reached.

    .venv/bin/pip install -e '.[bench]'                      # fastText (fasttext-numpy2)
    .venv/bin/python benchmarks/inference.py --model /work/scratch/models/spy-default --json runs/inference.json

- Messages: the last 20,000 of StockTwits_SPY_Sentiment_2017.gz (raw text; fastText gets them with
  newlines made spaces, as it requires, before the clock starts). fastText (wordNgrams=2, 5 epochs)
  and TF-IDF + LR (tools/baseline's vectorizer, min_df 2, C 1) are trained here on the model's own
  training split. Every arm predicts the whole list in one call; the arms take turns, round after
  round, and each reports its median, so load from other processes falls on all of them alike.
- 2 threads: stocksent's own (torch.set_num_threads(2): chunks of a call on 2 worker threads);
  fastText and TF-IDF as two Python threads on halves of the list (they gain only where they
  release the GIL).
- Physical limit: multiply-adds per message from the model's shapes (per word: every layer's
  recurrent product, every layer's input product but the first's, which is a table lookup) times
  the mean words per message, over the peak multiply-add rate of this machine's cores, measured
  here by `stocksent._native.peak_macs` (a loop of independent FMAs / tile products per core, CPU
  time of the measuring thread) for each core alone and for both at once.
- `score`: fresh `python -m stocksent score` processes on a CSV of --score-rows messages drawn from
  the SPY file (benchmarks/score.py's input and runner), wall time from start to exit, with the
  command's default precision (float32) and with --precision bfloat16.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"
TARGETS = {  # (description, key, comparison, goal): issue 22's targets, as ratios in this run
    "2 threads in memory, float32, vs fastText predict": ("native_float32_vs_fasttext_2t", ">=", 1.3),
    "2 threads in memory, bfloat16 (precision auto's here), vs fastText": ("native_bfloat16_vs_fasttext_2t", ">=", 1.3),
    "reference path vs its speed before the compiled core": ("reference_vs_before", ">=", 1.0),
    "one message p50 (ms)": ("one_message_p50_ms", "<=", 0.15),
    "one message p99 (ms)": ("one_message_p99_ms", "<=", 0.5),
    "score: 2 workers vs 1 (float32)": ("score_2_vs_1", ">=", 1.8),
    "score 2 workers (faster precision) vs fastText in memory": ("score_2_vs_fasttext", ">=", 1.0),
    "SPY test accuracy, compiled float32 minus torch (4th decimal)": ("accuracy_gap_float32", "<=", 0.00005),
}


def score_bench():
    """benchmarks/score.py as a module: its CSV input and its `stocksent score` runner."""
    spec = importlib.util.spec_from_file_location("score_bench", HERE / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- the machine


def machine() -> dict:
    import torch

    from stocksent import compiled
    from stocksent.tools.bench.machine import cpu_name

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "compiled": compiled.status(),
        "load_average_start": os.getloadavg()[0],
    }


def peaks() -> dict:
    """Multiply-adds per second per core and for all cores at once, by instruction kind."""
    from stocksent.compiled import native

    module = native()
    out = {}
    for kind in ("avx512-fp32", "amx-bf16", "avx2-fp32"):
        alone = module.peak_macs(kind, 0.5)
        if not alone:
            continue
        rates: list[float] = []

        def measure(kind=kind, rates=rates) -> None:
            rates.append(module.peak_macs(kind, 0.5))

        threads = [threading.Thread(target=measure) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out[kind] = {"one_core": alone, "two_cores": sum(rates)}
    return out


def macs_per_word(network) -> int:
    """Multiply-adds per word of the LSTM (layer 1's input product is a table lookup)."""
    total = 0
    for k, lstm in enumerate(network.lstms):
        gates = 4 * lstm.hidden_size
        total += gates * lstm.hidden_size + (gates * lstm.input_size if k else 0)
    return total


# ---------------------------------------------------------------------------- the arms


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def halves(predict, items: list) -> None:
    """`predict` on the two halves of `items` in two Python threads."""
    mid = len(items) // 2
    threads = [threading.Thread(target=predict, args=(part,)) for part in (items[:mid], items[mid:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def stocksent_arms(model_dir: str, messages: list[str]) -> tuple[dict, dict]:
    """{arm: (call, threads)} for stocksent's paths, and what each runs on."""
    import torch

    from stocksent import SentimentModel, compiled

    models = {p: SentimentModel.load(model_dir, precision=p) for p in ("float32", "bfloat16")}
    os.environ[compiled.SWITCH] = "0"  # the reference path: text.py and the torch engine
    compiled.reset()
    try:
        models["reference"] = SentimentModel.load(model_dir, precision="float32")
    finally:
        del os.environ[compiled.SWITCH]
        compiled.reset()
    arms = {}
    for name, model in models.items():
        for threads in (1, 2):

            def call(model=model, threads=threads):
                torch.set_num_threads(threads)
                model.predict_proba(messages)

            arms[f"stocksent_{name}_{threads}t"] = call
    before = before_compiled_core(models["reference"])
    for threads in (1, 2):

        def call(threads=threads):
            torch.set_num_threads(threads)
            before(messages)

        arms[f"stocksent_before_{threads}t"] = call
    return arms, {name: model.engine_info for name, model in models.items()}


def before_compiled_core(model):
    """predict_proba as it was before the compiled core (the same objects as the reference path,
    the calls SentimentModel made then): the reference path must be no slower."""
    import torch

    from stocksent.inference import sigmoid
    from stocksent.inference.workers import map_chunks
    from stocksent.text import normalise_flat

    def score(chunk):
        tokens, lengths = normalise_flat(chunk, model.text_options)
        return model.engine.logits(model.vocab.encode(tokens), np.asarray(lengths, dtype=np.int64), 1024)

    return lambda texts: sigmoid(map_chunks(score, texts, 1024, torch.get_num_threads()))


def fasttext_model(train_messages, train_labels, workdir: Path):
    import fasttext

    lines = [f"__label__{int(y)} {flat(m)}" for m, y in zip(train_messages, train_labels)]
    path = workdir / "fasttext-train.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return fasttext.train_supervised(str(path), epoch=5, wordNgrams=2, lr=0.5, verbose=0, thread=2, seed=1)


def flat(message: str) -> str:
    return message.replace("\n", " ").replace("\r", " ")


def tfidf_model(train_messages, train_labels, options):
    from stocksent.text import normalise_flat
    from stocksent.tools.baseline import vectorizer
    from stocksent.training.blend import fit_logreg

    def token_lists(texts):  # the reference normaliser, as tools/baseline's splits hold tokens
        tokens, lengths = normalise_flat(texts, options)
        ends = np.cumsum(lengths).tolist()
        return [tokens[e - n : e] for n, e in zip(lengths, ends)]

    vec = vectorizer(2)
    x = vec.fit_transform(token_lists(train_messages))
    model = fit_logreg(x, np.asarray(train_labels).astype(int), 1.0, 1)

    def predict(texts):
        return model.predict_proba(vec.transform(token_lists(texts)))[:, 1]

    return predict


def percentiles(calls, texts: list[str]) -> dict:
    for text in texts[:50]:
        calls(text)
    times = []
    for text in texts:
        started = time.perf_counter()
        calls(text)
        times.append(time.perf_counter() - started)
    return {"p50_ms": float(np.percentile(times, 50) * 1e3), "p99_ms": float(np.percentile(times, 99) * 1e3)}


# ---------------------------------------------------------------------------- the run


def run(args) -> dict:
    import torch

    from stocksent import SentimentModel
    from stocksent.inference import TorchEngine, sigmoid
    from stocksent.splits import recorded_splits
    from stocksent.text import normalise_flat

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": machine(), "model": args.model}
    messages = messages_of(args.data)[-args.messages :]
    base = SentimentModel.load(args.model, precision="float32")
    splits = recorded_splits(base.config["data"], base.text_options, args.data)
    ids, lengths = base.encode_flat(messages)
    words = float(lengths.mean())
    macs = macs_per_word(base.network) * words
    result["messages"] = {"count": len(messages), "mean_words": words, "macs_per_message": macs}
    result["fast_path_share"] = float(base.encoder.tokens(messages)[2].mean())

    arms, engines = stocksent_arms(args.model, messages)
    result["engines"] = engines
    ft = fasttext_model(splits.train.messages, splits.train.labels, workdir)
    flat_messages = [flat(m) for m in messages]
    arms["fasttext_1t"] = lambda: ft.predict(flat_messages)
    arms["fasttext_2t"] = lambda: halves(ft.predict, flat_messages)
    tfidf = tfidf_model(splits.train.messages, splits.train.labels, base.text_options)
    arms["tfidf_1t"] = lambda: tfidf(messages)
    arms["tfidf_2t"] = lambda: halves(tfidf, messages)
    for call in arms.values():  # warm-up: worker pools, caches
        call()
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, call in arms.items():
            seconds[name].append(timed(call))
    result["in_memory_msgs_per_s"] = {name: len(messages) / statistics.median(s) for name, s in seconds.items()}

    torch.set_num_threads(1)
    auto = SentimentModel.load(args.model)  # the default precision: one message runs float32
    singles = messages[: args.single_calls]
    result["one_message"] = {
        "stocksent": percentiles(auto.predict_proba, singles),
        "stocksent_reference": percentiles(
            lambda t, m=stocksent_reference(args.model): m.predict_proba(t), singles[: args.single_calls // 4]
        ),
        "fasttext": percentiles(ft.predict, [flat(m) for m in singles]),
    }

    # Accuracy on the model's test split: the compiled engine against the module's own forward.
    test = list(splits.test.messages)
    bullish = np.asarray(splits.test.labels) >= 0.5
    tokens, test_lengths = normalise_flat(test, base.text_options)
    reference = sigmoid(TorchEngine(base.network).logits(base.vocab.encode(tokens), np.asarray(test_lengths)))
    probs = {
        "torch": reference,
        **{p: SentimentModel.load(args.model, precision=p).predict_proba(test) for p in ("float32", "bfloat16")},
    }
    words = np.asarray(test_lengths) > 0  # messages with no words have no probability (NaN)
    accuracy = {name: float(((p[words] >= base.threshold) == bullish[words]).mean()) for name, p in probs.items()}
    result["test_split"] = {
        "messages": len(test),
        "accuracy": accuracy,
        "max_abs_diff_vs_torch": {p: float(np.abs(probs[p] - reference)[words].max()) for p in ("float32", "bfloat16")},
        "fasttext_accuracy": float(
            np.mean([p[0] == f"__label__{int(y)}" for p, y in zip(ft.predict([flat(m) for m in test])[0], bullish)])
        ),
    }

    result["peak_macs_per_s"] = peaks()
    if args.score_rows:
        bench = score_bench()
        source = bench.make_input(workdir / f"score-{args.score_rows}.csv", args.score_rows, messages_of(args.data))
        result["score"] = {  # float32: the command's default; bfloat16: --precision bfloat16
            f"{p}_{w}_workers": bench.run_score(Path(args.model), source, workdir / f"out-{w}.parquet", w, precision=p)
            for p in ("float32", "bfloat16")
            for w in (1, 2)
        }
    result["machine"]["load_average_end"] = os.getloadavg()[0]
    result["limits"] = limits(result)
    result["targets"] = targets(result)
    return result


def stocksent_reference(model_dir: str):
    from stocksent import SentimentModel, compiled

    os.environ[compiled.SWITCH] = "0"
    compiled.reset()
    try:
        return SentimentModel.load(model_dir, precision="float32")
    finally:
        del os.environ[compiled.SWITCH]
        compiled.reset()


def limits(result: dict) -> dict:
    """Physical limit (messages/s) of the network's multiply-adds at the measured peak, and the fraction reached."""
    macs = result["messages"]["macs_per_message"]
    rates, peaks_ = result["in_memory_msgs_per_s"], result["peak_macs_per_s"]
    out = {}
    for precision, kind in (("float32", "avx512-fp32"), ("bfloat16", "amx-bf16")):
        if kind not in peaks_:
            continue
        for threads, cores in ((1, "one_core"), (2, "two_cores")):
            limit = peaks_[kind][cores] / macs
            reached = rates.get(f"stocksent_{precision}_{threads}t")
            out[f"{precision}_{threads}t"] = {"peak": kind, "limit_msgs_per_s": limit, "fraction": reached / limit}
    return out


def targets(result: dict) -> dict:
    rates = result["in_memory_msgs_per_s"]
    fasttext = max(rates["fasttext_1t"], rates["fasttext_2t"])  # its better one
    values = {
        "native_float32_vs_fasttext_2t": rates["stocksent_float32_2t"] / fasttext,
        "native_bfloat16_vs_fasttext_2t": rates["stocksent_bfloat16_2t"] / fasttext,
        "reference_vs_before": min(
            rates[f"stocksent_reference_{t}t"] / rates[f"stocksent_before_{t}t"] for t in (1, 2)
        ),
        "one_message_p50_ms": result["one_message"]["stocksent"]["p50_ms"],
        "one_message_p99_ms": result["one_message"]["stocksent"]["p99_ms"],
        "accuracy_gap_float32": abs(
            result["test_split"]["accuracy"]["float32"] - result["test_split"]["accuracy"]["torch"]
        ),
    }
    if "score" in result:
        one, two = result["score"]["float32_1_workers"]["rate"], result["score"]["float32_2_workers"]["rate"]
        values["score_2_vs_1"] = two / one
        fastest = max(result["score"][f"{p}_2_workers"]["rate"] for p in ("float32", "bfloat16"))
        values["score_2_vs_fasttext"] = fastest / fasttext
    out = {}
    for label, (key, op, goal) in TARGETS.items():
        value = values.get(key)
        met = None if value is None else (value <= goal if op == "<=" else value >= goal)
        out[label] = {"value": value, "goal": f"{op} {goal}", "met": met}
    return out


def table(result: dict) -> str:
    m = result["machine"]
    rates, limits_ = result["in_memory_msgs_per_s"], result["limits"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores; torch {m['torch']}; compiled core: {m['compiled']['core']}; "
        f"load average {m['load_average_start']:.2f} -> {m['load_average_end']:.2f}",
        f"{result['messages']['count']:,} messages, {result['messages']['mean_words']:.2f} words each, "
        f"{result['messages']['macs_per_message'] / 1e6:.2f}M multiply-adds each; compiled text path for "
        f"{100 * result['fast_path_share']:.2f}% of them",
        "",
        f"{'raw text -> probability, in memory':<44} {'1 thread':>10} {'2 threads':>10} {'limit (2)':>10} {'reached':>8}",
    ]
    names = [
        ("stocksent compiled float32", "stocksent_float32", "float32"),
        ("stocksent compiled bfloat16 (AMX)", "stocksent_bfloat16", "bfloat16"),
        ("stocksent reference (text.py + torch)", "stocksent_reference", None),
        ("  the same calls as before the compiled core", "stocksent_before", None),
        ("fastText predict", "fasttext", None),
        ("TF-IDF + logistic regression", "tfidf", None),
    ]
    for label, key, precision in names:
        limit = limits_.get(f"{precision}_2t") if precision else None
        tail = f"{limit['limit_msgs_per_s']:>10,.0f} {100 * limit['fraction']:>7.0f}%" if limit else ""
        lines.append(f"{label:<44} {rates[key + '_1t']:>10,.0f} {rates[key + '_2t']:>10,.0f} {tail}")
    lines.append("")
    for name, p in result["one_message"].items():
        lines.append(f"one message, {name:<32} p50 {p['p50_ms']:.3f} ms  p99 {p['p99_ms']:.3f} ms")
    if "score" in result:
        for w, s in result["score"].items():
            lines.append(
                f"stocksent score CSV -> Parquet, {w.replace('_', ' '):<14} {s['rate']:>10,.0f} msgs/s ({s['rows']:,} rows)"
            )
    for kind, p in result["peak_macs_per_s"].items():
        lines.append(
            f"peak {kind}: {p['one_core'] / 1e9:,.0f} G multiply-adds/s per core, {p['two_cores'] / 1e9:,.0f} on both"
        )
    t = result["test_split"]
    lines.append(
        f"SPY test split ({t['messages']}): accuracy torch {t['accuracy']['torch']:.4f}, compiled float32 "
        f"{t['accuracy']['float32']:.4f}, bfloat16 {t['accuracy']['bfloat16']:.4f} (fastText {t['fasttext_accuracy']:.4f}); "
        f"max |p - torch| {t['max_abs_diff_vs_torch']['float32']:.1e} / {t['max_abs_diff_vs_torch']['bfloat16']:.1e}"
    )
    lines.append("")
    for label, target in result["targets"].items():
        value = "n/a" if target["value"] is None else f"{target['value']:.4g}"
        verdict = "" if target["met"] is None else ("met" if target["met"] else "NOT met")
        lines.append(f"target: {label:<62} {value:>9} (goal {target['goal']}) {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory (the seed-1 default model)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--single-calls", type=int, default=2_000)
    parser.add_argument("--score-rows", type=int, default=1_000_000, help="0: skip the end-to-end score runs")
    parser.add_argument("--workdir", default="/tmp/stocksent-inference-bench")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(table(result))


def messages_of(path) -> list[str]:
    """Every message of a file, in file order, as the commands read it."""
    from stocksent.readers import iter_batches

    return [t for batch in iter_batches(path) for t in batch.column("message").to_pylist()]


if __name__ == "__main__":
    main()
