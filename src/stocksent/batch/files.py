"""Scoring files of any size on every core: what `stocksent score` runs.

Chunks are read (`readers.read_chunks`), scored on `workers` cores and written in input order; at
most `IN_FLIGHT × workers` chunks are in flight, so memory does not grow with the input. Where the compiled
core normalises the text (`encoding.compiled_text()`, the normal case), one process scores:
`workers` threads (`threads.ordered_threads`) read and score chunks, the model loaded once, and the
calling thread writes; the GIL is released for the text and the network, and nothing is pickled.
Elsewhere (the reference path, whose text.py holds the GIL) the calling process reads and writes
and sends each chunk's messages to `workers` worker processes (`processes.worker_processes`, one
torch thread each, the model loaded once per worker). Both give the same bytes.

Resumable: each finished chunk's output rows are also kept in a work folder beside the output
(`workdir.WorkDir`). `resume=True` replays the chunks kept there, scores the rest and writes the
same bytes as an uninterrupted run: chunks are the same whatever the number of workers, and the
writers are deterministic. The output appears atomically at the end, and the work folder is removed.

>>> summary = score_files(["day.csv.gz"], "runs/demo", "day.parquet", workers=2)  # doctest: +SKIP
>>> summary.rows
412345
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from stocksent.artifacts import model_id
from stocksent.batch.processes import score_chunk, worker_processes
from stocksent.batch.scorer import BatchScorer, arrow_columns, usable_cores
from stocksent.batch.threads import OrderedThreads, ordered_threads
from stocksent.batch.workdir import WorkDir, fingerprint
from stocksent.encoding import compiled_text
from stocksent.errors import StocksentError
from stocksent.readers import BadRow, Chunk, expand_inputs, read_chunks
from stocksent.version import __version__
from stocksent.writers import TableWriter, output_format, refuse_inputs

__all__ = ["ScoreSummary", "score_files"]

log = logging.getLogger(__name__)

IN_FLIGHT = 4  # chunks in flight per worker: a descheduled worker holds up the writing, the others go on
DEFAULT_CHUNK_ROWS = 16384  # a worker's unit: ~0.8 s of one core, so the last chunks leave a core idle briefly
BAD_ROW_EXAMPLES = 5


@dataclass
class ScoreSummary:
    """What a run did: rows written, rows left out (with the first few), time, where it went."""

    rows: int = 0
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    files: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    seconds: float = 0.0
    workers: int = 1
    output: str = ""
    model_id: str = ""  # artifacts.model_id: the id serve, index and report show for the same model
    no_words: int = 0  # rows with no words to score: null p_bullish and label (stocksent.labels)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def bad_row(self, row: BadRow) -> None:
        """Count a row the reader left out; the first few are kept, and logged, as examples."""
        self.bad_rows += 1
        if len(self.bad_examples) < BAD_ROW_EXAMPLES:
            self.bad_examples.append(str(row))
            log.warning("skipped %s", row)

    def written(self, batch) -> None:
        self.rows += batch.num_rows
        self.no_words += batch.column("p_bullish").null_count
        self.chunks += 1


def score_files(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fmt: str | None = None,
    text_column: str | None = None,
    columns: list[str] | None = None,
    workers: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    precision: str = "float32",
    resume: bool = False,
    strict: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
    in_threads: bool | None = None,
) -> ScoreSummary:
    """Score every message of `inputs` into `output`; see the module doc. `progress(rows, bytes_done,
    bytes_total)` is called after each chunk is written. `in_threads`: threads of this process
    (True) or worker processes (False); by default threads where the compiled core normalises."""
    started = time.perf_counter()
    output = Path(output)
    kind, gz = output_format(output, fmt)
    files = expand_inputs(inputs)
    refuse_inputs([output], files)
    workers = usable_cores() if workers is None else workers
    if workers < 1 or chunk_rows < 1:
        raise StocksentError("workers and chunk_rows must be at least 1")
    in_threads = compiled_text() if in_threads is None else in_threads
    # A worker process runs one torch thread; in threads, each call runs in its thread (score_texts' threads=1).
    threads = None if in_threads else 1
    scorer = BatchScorer(
        model_dir, text_column=text_column, batch_rows=chunk_rows, precision=precision, threads=threads
    )
    state = {
        "stocksent": __version__,
        "inputs": [fingerprint(f) for f in files],
        "model": [fingerprint(f) for f in sorted(Path(model_dir).iterdir()) if f.is_file()],
        "options": {"format": kind, "gzip": gz, "text_column": text_column, "columns": columns,
                    "chunk_rows": chunk_rows, "precision": precision, "strict": strict},
    }  # fmt: skip
    work = WorkDir(output, state, resume)
    summary = ScoreSummary(
        files=len(files), workers=workers, output=str(output), resumed_chunks=work.done, model_id=model_id(model_dir)
    )
    chunks = read_chunks(files, text_column, chunk_rows, None, strict, summary.bad_row)
    try:
        scoring = ordered_threads(workers, IN_FLIGHT * workers) if in_threads else worker_processes(scorer, workers)
        with TableWriter(output, fmt) as writer, scoring as pool:
            for chunk, batch in _scored(chunks, scorer, pool, workers, work, columns):
                writer.write(batch)
                summary.written(batch)
                if progress is not None:
                    progress(summary.rows, chunk.bytes_done, chunk.bytes_total)
            if summary.rows == 0:
                unread = f" ({summary.bad_rows} bad rows, e.g. {summary.bad_examples[0]})" if summary.bad_rows else ""
                raise StocksentError(f"no messages to score in {', '.join(map(str, files))}{unread}")
    except BrokenProcessPool:
        raise StocksentError(
            "a worker process died (out of memory?); run again with --resume, perhaps with fewer --workers"
        ) from None
    except KeyboardInterrupt:
        work.say_kept()
        raise
    except StocksentError:  # bad input or options: a rerun needs other input, so the kept chunks are no use
        work.remove()
        raise
    work.remove()
    summary.seconds = time.perf_counter() - started
    return summary


def _scored(chunks: Iterator[Chunk], scorer: BatchScorer, pool, workers: int, work: WorkDir, columns):
    """(chunk, its output batch) in input order: the chunks kept in `work` replayed, the rest scored
    by `pool` (threads or processes) and each kept in `work` as it is finished."""
    indexed = enumerate(chunks)
    for index, chunk in indexed:
        if index < work.done:
            yield chunk, work.load(index, chunk.batch.num_rows)
            continue
        rest = itertools.chain([(index, chunk)], indexed)
        if isinstance(pool, OrderedThreads):
            score = functools.partial(_score_in_thread, scorer, columns, work)

            def keep(item: tuple[int, Chunk], result: tuple) -> None:  # in order, holding no core
                work.store(item[0], result[1])

            for (_, scored), (batch, _) in pool.map(score, rest, in_order=keep):
                yield scored, batch
        else:
            yield from _scored_in_processes(rest, scorer, pool, workers, work, columns)
        return


def _score_in_thread(scorer: BatchScorer, columns, work: WorkDir, indexed: tuple[int, Chunk]) -> tuple:
    """One chunk's output batch, scored in this thread, and the bytes `work` keeps of it."""
    _, chunk = indexed
    names = chunk.batch.schema.names
    text = scorer.text_column_of(names)
    probs, bullish = scorer.score_texts(chunk.batch.column(text).to_pylist(), threads=1)
    batch = _output_batch(chunk, _output_columns(names, columns, text), (probs, bullish))
    return batch, work.encode(batch)


def _scored_in_processes(indexed: Iterator[tuple[int, Chunk]], scorer: BatchScorer, pool, workers: int, work, columns):
    """(chunk, its output batch) in input order, scored in `pool`, at most `IN_FLIGHT × workers` in
    flight; each kept in `work` as it is finished."""
    pending: deque = deque()
    keep: list[str] | None = None

    def finish(index: int, chunk: Chunk, result) -> tuple[Chunk, object]:
        batch = _output_batch(chunk, keep, result)
        work.save(index, batch)
        return chunk, batch

    for index, chunk in indexed:
        names = chunk.batch.schema.names
        keep = keep or _output_columns(names, columns, scorer.text_column_of(names))
        pending.append((index, chunk, pool.submit(score_chunk, chunk.batch.column(scorer.text_column_of(names)))))
        while len(pending) >= IN_FLIGHT * workers or (pending and pending[0][2].done()):
            done_index, done_chunk, future = pending.popleft()
            yield finish(done_index, done_chunk, future.result())
    while pending:
        done_index, done_chunk, future = pending.popleft()
        yield finish(done_index, done_chunk, future.result())


def _output_batch(chunk: Chunk, keep: list[str], result):
    """The input columns to keep, then p_bullish and label from `score_texts`' (probs, bullish)."""
    p, label = arrow_columns(*result)
    return chunk.batch.select(keep).append_column("p_bullish", p).append_column("label", label)


def _output_columns(names: list[str], columns: list[str] | None, text: str) -> list[str]:
    """Input columns to write: all (less any old p_bullish/label, which are replaced) or those asked for."""
    if columns is None:
        return [n for n in names if n not in ("p_bullish", "label")]
    missing = [c for c in columns if c not in names]
    if missing:
        raise StocksentError(
            f"no column {', '.join(map(repr, missing))} in the input (columns: {names}); check --columns"
        )
    return [c for c in columns if c not in ("p_bullish", "label")]
