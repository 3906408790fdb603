"""`stocksent predict`: label messages given as arguments, in a file, or on stdin.

A file or stdin is read, scored and written `CHUNK` messages at a time, so memory stays flat however
long the input (measured in benchmarks/predict_memory.py). `--output` appears whole or not at all
(stocksent.atomic); written to stdout, a run that fails part way has printed the chunks before it.
What is printed never holds a raw control character: a message's ANSI escapes are shown, not run.
"""

from __future__ import annotations

import argparse
import io
import itertools
import re
import sys
from collections.abc import Iterator
from typing import Any

from stocksent.cli.terminal import json_escaped, printable
from stocksent.labels import NO_WORDS

CHUNK = 10_000  # messages per read-score-write step: ~15 MB in flight; larger chunks are no faster
# Lone UTF-16 surrogates (from a JSON escape such as "\ud800", or undecodable bytes in an argument)
# cannot be written as UTF-8: every output shows each as U+FFFD, the replacement character.
_SURROGATE = re.compile("[\ud800-\udfff]")


def register(sub) -> None:
    p = sub.add_parser("predict", help="label messages as bullish or bearish")
    p.add_argument("--model", required=True, help="model directory written by train")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (else --input, else stdin)")
    p.add_argument(
        "--input",
        help="file, glob or directory: CSV (.gz), JSON Lines, StockTwits API JSON, Parquet, or text, one message per line",
    )
    p.add_argument("--text-column", help="column holding the messages (default: message, else body, else text)")
    p.add_argument("--output", help="write results here: .csv, .jsonl or .parquet (.csv.gz, .jsonl.gz)")
    p.add_argument("--format", choices=("parquet", "csv", "jsonl"), help="output format (default: from --output)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--backend", default="torch", help="torch (default) or onnx")
    p.add_argument(
        "--precision",
        default="auto",
        help="auto (default: bfloat16 where the CPU has it natively), float32 or bfloat16",
    )
    p.set_defaults(handler=run)


def input_chunks(args: argparse.Namespace) -> Iterator[list[str]]:
    """The messages to score, in lists of up to CHUNK, from the arguments, --input or stdin: every
    row in its place (a blank line is a message without words), a bad row one clear error."""
    from stocksent.errors import StocksentError
    from stocksent.readers import read_chunks, read_stream

    def refuse(row) -> None:
        raise StocksentError(f"{row}; fix that row (predict keeps every row in its place, so it skips none)")

    if args.texts and args.input:
        raise StocksentError("give messages as arguments or with --input, not both")
    if args.texts:
        return iter([list(args.texts)])
    if args.input:
        chunks = read_chunks(args.input, args.text_column, CHUNK, on_bad_row=refuse)
        return _texts(chunks, args.text_column, f"{args.input} contains no messages; give a file with one or more")
    if sys.stdin is None or sys.stdin.isatty():
        raise StocksentError("no messages: pass TEXT arguments, --input PATH, or pipe messages on stdin")
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stream (tests, embedding): already decoded
        stream = io.BytesIO(sys.stdin.read().encode("utf-8", "surrogatepass"))
    return _texts(read_stream(stream, "stdin", CHUNK, on_bad_row=refuse), None, None)


def _texts(chunks, text_column: str | None, none_read: str | None) -> Iterator[list[str]]:
    """Each chunk's messages; `none_read`: the error when not one is read."""
    from stocksent.columns import resolve_text_column
    from stocksent.errors import StocksentError

    read = False
    for chunk in chunks:
        read = True
        yield chunk.batch.column(resolve_text_column(chunk.batch.schema.names, text_column, chunk.source)).to_pylist()
    if not read and none_read is not None:
        raise StocksentError(none_read)


def writable(text: str) -> str:
    """`text` with each lone surrogate as U+FFFD, so that it can be written as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


def prediction_batch(texts: list[str], predictions) -> Any:
    """One chunk's results as an Arrow batch: message, label, p_bullish (to 6 places; null without words)."""
    import pyarrow as pa

    if _SURROGATE.search("".join(texts)):  # one scan of the chunk; rare, so then per message
        texts = [writable(t) for t in texts]
    return pa.RecordBatch.from_arrays(
        [
            pa.array(texts, pa.string()),
            pa.array([p.label for p in predictions], pa.string()),
            pa.array([None if p.p_bullish is None else round(p.p_bullish, 6) for p in predictions], pa.float64()),
        ],
        schema=result_schema(),
    )


def result_schema() -> Any:
    """message, label, p_bullish: the columns of every output (pyarrow loads only when results are written)."""
    import pyarrow as pa

    return pa.schema([("message", pa.string()), ("label", pa.string()), ("p_bullish", pa.float64())])


def terminal_line(message: str, label: str | None, p_bullish: float | None) -> str:
    """What `predict` prints per message: label, P(bullish) and the message (its control characters
    shown as escapes); a dash for no label."""
    if label is None:
        return f"{'-':<8} {'-':<5}  {printable(message)}  ({NO_WORDS})"
    return f"{label:<8} {p_bullish:.3f}  {printable(message)}"


def run(args: argparse.Namespace) -> int:
    from stocksent.sentiment import SentimentModel
    from stocksent.writers import jsonl_text, output_format

    if args.output:
        output_format(args.output, args.format)  # an unknown extension fails before the model loads
        if args.input:
            from stocksent.readers import expand_inputs
            from stocksent.writers import refuse_inputs

            refuse_inputs([args.output], expand_inputs(args.input))
    model = SentimentModel.load(args.model, backend=args.backend, precision=args.precision)
    chunks = input_chunks(args)
    first = next(chunks, None)  # a missing or malformed input fails here, before any output is opened
    no_words = 0

    def scored() -> Iterator[Any]:
        nonlocal no_words
        if first is not None:  # None: empty stdin, which gives empty output as before
            for texts in itertools.chain([first], chunks):
                predictions = model.predict(texts)
                no_words += sum(p.label is None for p in predictions)
                yield prediction_batch(texts, predictions)

    if args.output:
        count, where = write_output(args.output, args.format, scored())
        print(f"wrote {count} predictions to {where}", file=sys.stderr)
    elif args.json:  # to the terminal (or a pipe): no control character left raw (cli.terminal)
        for batch in scored():
            sys.stdout.write(json_escaped(jsonl_text(batch)))
            sys.stdout.flush()
    else:
        for batch in scored():
            for row in batch.to_pylist():
                print(terminal_line(row["message"], row["label"], row["p_bullish"]))
    if no_words and (args.output or args.json):
        print(f"{no_words} message(s) have no label: {NO_WORDS}", file=sys.stderr)
    return 0


def write_output(path: str, fmt: str | None, chunks: Iterator[Any]) -> tuple[int, str]:
    """Write every chunk to `path` (`writers`: the format from `fmt` or the extension): (rows written,
    how to name the place in a message)."""
    from stocksent.atomic import write_target
    from stocksent.errors import StocksentError
    from stocksent.writers import TableWriter

    count = 0
    try:
        target = write_target(path)
    except OSError as exc:  # a directory, a disk: nothing is opened
        raise StocksentError(f"cannot write {path}: {exc.strerror or exc}") from None
    with TableWriter(path, fmt, schema=result_schema()) as writer:
        for batch in chunks:
            writer.write(batch)
            count += batch.num_rows
    where = f"{path} (the symlink's target {target.path})" if target.via_symlink else path
    return count, where
