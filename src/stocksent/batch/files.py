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

from stocksent.atomic import atomic_open, write_json, write_target
from stocksent.batch.scorer import BatchScorer, arrow_columns, usable_cores
from stocksent.errors import StocksentError
from stocksent.processes import start_worker, stop_fork_server
from stocksent.readers import BadRow, expand_inputs, read_chunks
from stocksent.version import __version__

__all__ = ["OUTPUT_FORMATS", "ScoreSummary", "output_format", "score_files"]

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("parquet", "csv", "jsonl")
_OUTPUT_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_CHUNK_ROWS = 16384  # a worker's unit: ~0.8 s of one core, so the last chunks leave a core idle briefly
ROW_GROUP_ROWS = 131072  # Parquet row groups: chunks gathered, so readers get groups of a useful size
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

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def output_format(path: str | os.PathLike, fmt: str | None = None) -> tuple[str, bool]:
    """(parquet|csv|jsonl, gzip?) from `fmt` or the output's extension (.csv.gz and .jsonl.gz compress)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes.pop()
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise StocksentError(f"unknown output format {fmt!r}: use {', '.join(OUTPUT_FORMATS)}")
    else:
        fmt = _OUTPUT_EXTENSIONS.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise StocksentError(
                f"cannot tell the output format of {path}: name it .parquet, .csv or .jsonl, or pass --format"
            )
    if gz and fmt == "parquet":
        raise StocksentError("Parquet compresses its own pages: drop the .gz from the output name")
    return fmt, gz


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
    if any(_same_file(f, output) for f in files):
        raise StocksentError(f"{output} is also an input; write the scores to another file")
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
    summary = ScoreSummary(files=len(files), workers=workers, output=str(output), resumed_chunks=done)

    def on_bad_row(row: BadRow) -> None:
        summary.bad_rows += 1
        if len(summary.bad_examples) < BAD_ROW_EXAMPLES:
            summary.bad_examples.append(str(row))
            log.warning("skipped %s", row)

    chunks = read_chunks(files, text_column, chunk_rows, None, strict, on_bad_row)
    keep: list[str] | None = None
    try:
        with _Writer(output, kind, gz) as writer, _pool(scorer, workers, done) as pool:
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


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
    # Each worker ends with this process, however it ends (kill -9 included): see processes.py.
    initargs = (os.getpid(), _init_worker, (scorer,))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker, initargs=initargs)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
        stop_fork_server()  # now, not when this process exits: a finished run leaves no process behind


# --------------------------------------------------------------------------- writers


class _Writer:
    """Writes batches to `path` (Parquet, CSV or JSON Lines) through a temporary file renamed at the end."""

    def __init__(self, path: Path, kind: str, gz: bool):
        self.path, self.kind, self.gz = path, kind, gz
        self._stack = contextlib.ExitStack()
        self._writer = None
        self._buffer: list = []
        self._buffered = 0

    def __enter__(self) -> _Writer:
        try:
            handle = self._stack.enter_context(atomic_open(self.path, "wb"))
        except OSError as exc:
            raise StocksentError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        if self.gz:
            import gzip

            # mtime=0 and no file name: the same rows give the same bytes, as resume promises.
            handle = self._stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0))
        self._handle = handle
        return self

    def write(self, batch) -> None:
        if self.kind == "parquet":
            self._buffer.append(batch)
            self._buffered += batch.num_rows
            if self._buffered >= ROW_GROUP_ROWS:
                self._flush_parquet()
        elif self.kind == "csv":
            self._write_csv(batch)
        else:
            self._write_jsonl(batch)

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        table = pa.Table.from_batches(self._buffer)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._handle, table.schema)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._buffer, self._buffered = [], 0

    def _write_csv(self, batch) -> None:
        import pyarrow.csv as pcsv

        batch = _flat_for_text(batch)
        if self._writer is None:
            self._writer = pcsv.CSVWriter(self._handle, batch.schema)
        self._writer.write_batch(batch)

    def _write_jsonl(self, batch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = batch.drop_columns(["p_bullish"]).to_pylist()
        # float32's shortest decimal (0.8231411), not the double's (0.8231410980224609)
        probs = [None if p is None else float(p) for p in pc.cast(batch.column("p_bullish"), pa.string()).to_pylist()]
        lines = []
        for row, p in zip(rows, probs):
            label = row.pop("label")
            row["p_bullish"], row["label"] = p, label
            lines.append(json.dumps(row, ensure_ascii=False, default=str))
        self._handle.write(("\n".join(lines) + "\n").encode("utf-8"))

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if exc is None and self.kind == "parquet":
                self._flush_parquet()
            if self._writer is not None and exc is None:
                self._writer.close()
        finally:
            self._stack.__exit__(kind, exc, tb)


def _flat_for_text(batch):
    """CSV holds no lists or structs: such columns (API `symbols`) are written as JSON text."""
    import pyarrow as pa

    if not any(pa.types.is_nested(t) for t in batch.schema.types):
        return batch
    arrays = []
    for column in batch.columns:
        if pa.types.is_nested(column.type):
            column = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False) for v in column.to_pylist()], pa.string()
            )
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
