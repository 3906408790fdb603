"""Scoring files of any size on every core: what `stocksent score` runs.

The parent process reads chunks (`readers.read_chunks`), sends each chunk's messages to a pool of
worker processes (one torch thread each, the model loaded once per worker), and writes the results
in input order. At most `2 × workers` chunks are in flight, so memory does not grow with the input.

Why processes: text normalisation is pure Python and holds the GIL, so threads in one process
cannot normalise in parallel; the network releases the GIL but is only part of the time.

Resumable: each finished chunk's output rows are also kept in a work folder beside the output
(`.NAME.score/chunk-NNNNNNNN.arrow`, Arrow IPC). `resume=True` replays the chunks kept there, scores
the rest and writes the same bytes as an uninterrupted run: chunks are the same whatever the number
of workers, and the writers are deterministic. The output appears atomically at the end, and the
work folder is removed.

>>> summary = score_files(["day.csv.gz"], "runs/demo", "day.parquet", workers=2)  # doctest: +SKIP
>>> summary.rows
412345
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stocksent.artifacts import model_id
from stocksent.atomic import atomic_open, write_json, write_target
from stocksent.batch.scorer import BatchScorer, arrow_columns, usable_cores
from stocksent.errors import StocksentError
from stocksent.readers import BadRow, expand_inputs, read_chunks
from stocksent.version import __version__
from stocksent.writers import TableWriter, output_format, refuse_inputs

__all__ = ["ScoreSummary", "score_files"]

log = logging.getLogger(__name__)

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
) -> ScoreSummary:
    """Score every message of `inputs` into `output`; see the module doc. `progress(rows, bytes_done,
    bytes_total)` is called after each chunk is written."""
    import pyarrow as pa

    started = time.perf_counter()
    output = Path(output)
    kind, gz = output_format(output, fmt)
    files = expand_inputs(inputs)
    refuse_inputs([output], files)
    workers = usable_cores() if workers is None else workers
    if workers < 1 or chunk_rows < 1:
        raise StocksentError("workers and chunk_rows must be at least 1")
    scorer = BatchScorer(model_dir, text_column=text_column, batch_rows=chunk_rows, precision=precision, threads=1)
    try:
        target = write_target(output)
    except OSError as exc:
        raise StocksentError(f"cannot write {output}: {exc.strerror or exc}") from None
    # A stream (/dev/stdout, a FIFO) is written as it goes: no work folder, so no --resume.
    work = target.path.parent / f".{target.path.name}.score" if target.kind == "replace" else None
    if work is None and resume:
        raise StocksentError(f"{output} is not a regular file: --resume needs one")
    state = {
        "stocksent": __version__,
        "inputs": [_fingerprint(f) for f in files],
        "model": [_fingerprint(f) for f in sorted(Path(model_dir).iterdir()) if f.is_file()],
        "options": {"format": kind, "gzip": gz, "text_column": text_column, "columns": columns,
                    "chunk_rows": chunk_rows, "precision": precision, "strict": strict},
    }  # fmt: skip
    done = _prepare_work_dir(work, state, resume) if work is not None else 0
    summary = ScoreSummary(
        files=len(files), workers=workers, output=str(output), resumed_chunks=done, model_id=model_id(model_dir)
    )

    def on_bad_row(row: BadRow) -> None:
        summary.bad_rows += 1
        if len(summary.bad_examples) < BAD_ROW_EXAMPLES:
            summary.bad_examples.append(str(row))
            log.warning("skipped %s", row)

    chunks = read_chunks(files, text_column, chunk_rows, None, strict, on_bad_row)
    keep: list[str] | None = None
    try:
        with TableWriter(output, fmt) as writer, _pool(scorer, workers, done) as pool:
            pending: deque = deque()

            def finish(index: int, chunk, result) -> None:
                nonlocal keep
                if keep is None:
                    keep = _output_columns(
                        chunk.batch.schema.names, columns, scorer.text_column_of(chunk.batch.schema.names)
                    )
                if isinstance(result, pa.RecordBatch):  # replayed from the work folder
                    batch = result
                else:
                    probs, bullish = result
                    p, label = arrow_columns(probs, bullish)
                    batch = chunk.batch.select(keep)
                    batch = batch.append_column("p_bullish", p).append_column("label", label)
                    if work is not None:
                        _save_chunk(work, index, batch)
                writer.write(batch)
                summary.no_words += batch.column("p_bullish").null_count
                summary.rows += batch.num_rows
                summary.chunks += 1
                if progress is not None:
                    progress(summary.rows, chunk.bytes_done, chunk.bytes_total)

            text_name = None
            for index, chunk in enumerate(chunks):
                if index < done:
                    finish(index, chunk, _load_chunk(work, index, chunk.batch.num_rows))
                    continue
                text_name = text_name or scorer.text_column_of(chunk.batch.schema.names)
                pending.append((index, chunk, pool.submit(_score_chunk, chunk.batch.column(text_name))))
                while len(pending) >= 2 * workers or (pending and pending[0][2].done()):
                    index_, chunk_, future = pending.popleft()
                    finish(index_, chunk_, future.result())
            while pending:
                index_, chunk_, future = pending.popleft()
                finish(index_, chunk_, future.result())
            if summary.rows == 0:
                raise StocksentError(
                    f"no messages to score in {', '.join(map(str, files))}"
                    + (f" ({summary.bad_rows} bad rows, e.g. {summary.bad_examples[0]})" if summary.bad_rows else "")
                )
    except BrokenProcessPool:
        raise StocksentError(
            "a worker process died (out of memory?); run again with --resume, perhaps with fewer --workers"
        ) from None
    except KeyboardInterrupt:
        if work is not None:
            log.warning(
                "interrupted: finished chunks are kept in %s; run the same command with --resume to go on", work
            )
        raise
    except StocksentError:  # bad input or options: a rerun needs other input, so the kept chunks are no use
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _fingerprint(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


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


# --------------------------------------------------------------------------- the work folder (resume)


def _prepare_work_dir(work: Path, state: dict, resume: bool) -> int:
    """Chunks already done (resume), else 0 with a fresh work folder holding this run's state."""
    state_file = work / "state.json"
    if resume and state_file.is_file():
        try:
            previous = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if previous != json.loads(json.dumps(state)):
            raise StocksentError(
                f"{work} holds an interrupted run with other inputs, model or options; "
                "run the same command as before with --resume, or without --resume to start afresh"
            )
        done = 0
        while (work / _chunk_name(done)).is_file():
            done += 1
        log.info("resuming: %d finished chunks kept in %s", done, work)
        return done
    if resume:
        log.info("nothing to resume in %s: starting from the beginning", work)
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir(parents=True)
        write_json(state_file, state)
    except OSError as exc:
        raise StocksentError(f"cannot write beside the output in {work.parent}: {exc.strerror or exc}") from None
    return 0


def _chunk_name(index: int) -> str:
    return f"chunk-{index:08d}.arrow"


def _save_chunk(work: Path, index: int, batch) -> None:
    import pyarrow as pa

    options = pa.ipc.IpcWriteOptions(compression="lz4")  # ~1 GB/s: the spool costs little next to scoring
    with atomic_open(work / _chunk_name(index), "wb") as handle:
        with pa.ipc.new_stream(handle, batch.schema, options=options) as writer:
            writer.write_batch(batch)


def _load_chunk(work: Path, index: int, rows: int):
    import pyarrow as pa

    path = work / _chunk_name(index)
    try:
        with pa.OSFile(str(path), "rb") as handle:
            table = pa.ipc.open_stream(handle).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        raise StocksentError(f"{path} is damaged ({exc}); run without --resume to start afresh") from None
    if table.num_rows != rows:
        raise StocksentError(f"{path} does not match the input (it changed?); run without --resume to start afresh")
    return table.combine_chunks().to_batches()[0]


# --------------------------------------------------------------------------- worker processes


_WORKER_SCORER: BatchScorer | None = None


def _init_worker(scorer: BatchScorer) -> None:
    global _WORKER_SCORER
    _WORKER_SCORER = scorer
    scorer.model  # noqa: B018 - load now, so the first chunk is as quick as the rest


def _score_chunk(texts) -> tuple[Any, Any]:
    """In a worker: (p_bullish float32, is bullish) for one chunk's messages (an Arrow string array)."""
    return _WORKER_SCORER.score_texts(texts.to_pylist())


@contextlib.contextmanager
def _pool(scorer: BatchScorer, workers: int, done: int):
    """Worker processes started by a fork server (Linux) that has imported torch once: each worker
    starts in ~0.1 s instead of ~2 s for a fresh interpreter; elsewhere spawn."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["torch", "stocksent.sentiment"])
    else:
        context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(scorer,))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
