"""`stocksent score`: score message files of any size on every core, to Parquet, CSV or JSON Lines."""

from __future__ import annotations

import argparse
import sys

from stocksent.cli.args import positive_int


def column_list(text: str) -> list[str]:
    """`id,created_at` -> ["id", "created_at"]."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated column names like id,created_at")
    return names


def register(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score large message files (CSV, JSON Lines, StockTwits API JSON, Parquet) on every core",
        description="Streaming batch scoring with constant memory: every input column is kept, "
        "p_bullish (float32) and label are added, row order is kept.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, globs or directories")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("--output", "-o", required=True, help="output file: .parquet (default format), .csv, .jsonl (.gz)")
    p.add_argument("--format", choices=("parquet", "csv", "jsonl"), help="output format (default: from --output)")
    p.add_argument("--text-column", help="column holding the messages (default: message, else body)")
    p.add_argument("--columns", type=column_list, help="input columns to keep, e.g. id,created_at (default: all)")
    p.add_argument(
        "--workers",
        type=positive_int,
        help="cores to use: scoring threads with the compiled core, else worker processes (default: the cores "
        "this process may use)",
    )
    p.add_argument("--chunk-rows", type=positive_int, default=16384, help="messages per chunk (default 16384)")
    p.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="float32",
        help="float32 (default: equal to predict_proba to 1e-6), or bfloat16/auto: faster, ~1e-3 apart",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same command")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row (empty, non-text, undecodable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stocksent.batch.files import score_files

    bar = None if args.no_progress else ProgressBar()
    try:
        summary = score_files(
            args.inputs,
            args.model,
            args.output,
            fmt=args.format,
            text_column=args.text_column,
            columns=args.columns,
            workers=args.workers,
            chunk_rows=args.chunk_rows,
            precision=args.precision,
            resume=args.resume,
            strict=args.strict,
            progress=bar.update if bar else None,
        )
    finally:
        if bar:
            bar.close()
    bad = f"; {summary.bad_rows:,} bad rows skipped (first: {summary.bad_examples[0]})" if summary.bad_rows else ""
    bad += f"; {summary.no_words:,} with no words to score (null p_bullish and label)" if summary.no_words else ""
    resumed = f", {summary.resumed_chunks} chunks resumed" if summary.resumed_chunks else ""
    print(
        f"scored {summary.rows:,} messages from {summary.files} file{'s' * (summary.files != 1)} in "
        f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} msgs/s, {summary.workers} "
        f"worker{'s' * (summary.workers != 1)}{resumed}) with model {summary.model_id} -> {summary.output}{bad}",
        file=sys.stderr,
    )
    return 0


class ProgressBar:
    """tqdm on stderr: a bar over the input's bytes (so an ETA), with messages and messages/s beside it."""

    def __init__(self):
        import time

        from tqdm import tqdm

        self._time = time.perf_counter
        self._start = self._time()
        self._bar = tqdm(
            total=None,
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]",
            disable=None,  # off when stderr is not a terminal (CI logs, pipes)
        )

    def update(self, rows: int, done: int, total: int) -> None:
        bar = self._bar
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        rate = rows / max(self._time() - self._start, 1e-9)
        bar.set_postfix_str(f"{rows:,} msgs, {rate:,.0f} msgs/s", refresh=False)

    def close(self) -> None:
        self._bar.close()
