"""`stocksent predict`: label messages given as arguments, in a file, or on stdin.

A file or stdin is read, scored and written `CHUNK` messages at a time, so memory stays flat however
long the input (measured in benchmarks/predict_memory.py). `--output` appears whole or not at all
(stocksent.atomic); written to stdout, a run that fails part way has printed the chunks before it.
What is printed never holds a raw control character: a message's ANSI escapes are shown, not run.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import re
import sys
from collections.abc import Iterator

from stocksent.cli.terminal import json_line, printable

CHUNK = 10_000  # messages per read-score-write step: ~15 MB in flight; larger chunks are no faster
# Lone UTF-16 surrogates (from a JSON escape such as "\ud800", or undecodable bytes in an argument)
# cannot be written as UTF-8: every output shows each as U+FFFD, the replacement character.
_SURROGATE = re.compile("[\ud800-\udfff]")


def register(sub) -> None:
    p = sub.add_parser("predict", help="label messages as bullish or bearish")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (else --input, else stdin)")
    p.add_argument("--input", help="CSV/CSV.gz (message column), JSON Lines (message/body) or text, one per line")
    p.add_argument("--output", help="write results here (CSV if it ends in .csv, else JSON Lines)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--backend", default="torch", help="torch (default) or onnx")
    p.add_argument(
        "--precision",
        default="auto",
        help="auto (default: bfloat16 where the CPU has it natively), float32 or bfloat16",
    )
    p.set_defaults(handler=run)


def input_chunks(args: argparse.Namespace) -> Iterator[list[str]]:
    """The messages to score, in lists of up to CHUNK, from the arguments, --input or stdin."""
    from stocksent.data import iter_stdin_texts, iter_texts
    from stocksent.errors import StocksentError

    if args.texts and args.input:
        raise StocksentError("give messages as arguments or with --input, not both")
    if args.texts:
        return iter([list(args.texts)])
    if args.input:
        return iter_texts(args.input, CHUNK)
    if sys.stdin is None or sys.stdin.isatty():
        raise StocksentError("no messages: pass TEXT arguments, --input PATH, or pipe messages on stdin")
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stream (tests, embedding): already decoded
        lines = [line.removesuffix("\r") for line in sys.stdin.read().split("\n") if line.strip()]
        return iter([lines] if lines else [])
    return iter_stdin_texts(stream, CHUNK)


def writable(text: str) -> str:
    """`text` with each lone surrogate as U+FFFD, so that it can be written as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


def prediction_rows(texts: list[str], predictions) -> list[dict]:
    if _SURROGATE.search("".join(texts)):  # one scan of the chunk; rare, so then per message
        texts = [writable(t) for t in texts]
    return [{"message": t, "label": p.label, "p_bullish": round(p.p_bullish, 6)} for t, p in zip(texts, predictions)]


def run(args: argparse.Namespace) -> int:
    from stocksent.sentiment import SentimentModel

    model = SentimentModel.load(args.model, backend=args.backend, precision=args.precision)
    chunks = input_chunks(args)
    first = next(chunks, None)  # a missing or malformed input fails here, before any output is opened

    def scored() -> Iterator[list[dict]]:
        if first is not None:  # None: empty stdin, which gives empty output as before
            for texts in itertools.chain([first], chunks):
                yield prediction_rows(texts, model.predict(texts))

    if args.output:
        count, where = write_output(args.output, scored())
        print(f"wrote {count} predictions to {where}", file=sys.stderr)
    elif args.json:  # to the terminal (or a pipe): no control character left raw (cli.terminal)
        for rows in scored():
            sys.stdout.write("".join(json_line(row) + "\n" for row in rows))
            sys.stdout.flush()
    else:
        for rows in scored():
            for row in rows:
                print(f"{row['label']:<8} {row['p_bullish']:.3f}  {printable(row['message'])}")
    return 0


def write_output(path: str, chunks: Iterator[list[dict]]) -> tuple[int, str]:
    """Write every chunk's rows to `path`: (rows written, how to name the place in a message)."""
    from stocksent.atomic import atomic_open, write_target
    from stocksent.errors import StocksentError

    as_csv = path.lower().endswith(".csv")
    count = 0
    try:
        target = write_target(path)
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            if as_csv:
                write_header(handle)
            for rows in chunks:
                write_rows(handle, rows, as_csv=as_csv)
                count += len(rows)
    except OSError as exc:  # a directory, no permission, disk full: the old file is left as it was
        raise StocksentError(f"cannot write {path}: {exc.strerror or exc}") from None
    where = f"{path} (the symlink's target {target.path})" if target.via_symlink else path
    return count, where


FIELDS = ["message", "label", "p_bullish"]


def write_header(handle: io.TextIOBase) -> None:
    csv.DictWriter(handle, fieldnames=FIELDS).writeheader()


def write_rows(handle: io.TextIOBase, rows: list[dict], as_csv: bool) -> None:
    if as_csv:
        csv.DictWriter(handle, fieldnames=FIELDS).writerows(rows)
    else:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
