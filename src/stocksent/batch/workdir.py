"""The work folder that makes `stocksent score --resume` exact: each finished chunk's output rows, kept.

`.NAME.score/` beside the output holds `state.json` (the inputs' and the model's fingerprints and the
options) and `chunk-NNNNNNNN.arrow` (Arrow IPC, lz4) per finished chunk. A resumed run replays the
kept chunks and scores the rest; the same command with other inputs, model or options is refused.
A stream output (/dev/stdout, a FIFO) has no work folder, so no --resume.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from stocksent.atomic import write_bytes, write_json, write_target
from stocksent.errors import StocksentError

__all__ = ["WorkDir", "fingerprint"]

log = logging.getLogger(__name__)


def fingerprint(path: Path) -> list:
    """What says a file is the same one: its resolved path, size and modification time."""
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


class WorkDir:
    """The work folder beside `output` (None `path` for a stream), and how many chunks it already holds."""

    def __init__(self, output: Path, state: dict, resume: bool):
        try:
            target = write_target(output)
        except OSError as exc:
            raise StocksentError(f"cannot write {output}: {exc.strerror or exc}") from None
        self.path = target.path.parent / f".{target.path.name}.score" if target.kind == "replace" else None
        if self.path is None and resume:
            raise StocksentError(f"{output} is not a regular file: --resume needs one")
        self.done = self._prepare(state, resume) if self.path is not None else 0

    def _prepare(self, state: dict, resume: bool) -> int:
        """Chunks already done (resume), else 0 with a fresh work folder holding this run's state."""
        state_file = self.path / "state.json"
        if resume and state_file.is_file():
            try:
                previous = json.loads(state_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = None
            if previous != json.loads(json.dumps(state)):
                raise StocksentError(
                    f"{self.path} holds an interrupted run with other inputs, model or options; "
                    "run the same command as before with --resume, or without --resume to start afresh"
                )
            done = 0
            while (self.path / _chunk_name(done)).is_file():
                done += 1
            log.info("resuming: %d finished chunks kept in %s", done, self.path)
            return done
        if resume:
            log.info("nothing to resume in %s: starting from the beginning", self.path)
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.path.mkdir(parents=True)
            write_json(state_file, state)
        except OSError as exc:
            raise StocksentError(
                f"cannot write beside the output in {self.path.parent}: {exc.strerror or exc}"
            ) from None
        return 0

    def save(self, index: int, batch) -> None:
        """Keep chunk `index`'s output rows (nothing for a stream output): `store(index, encode(batch))`."""
        self.store(index, self.encode(batch))

    def encode(self, batch):
        """A chunk's output rows as `store` keeps them: a `pyarrow.Buffer` of Arrow IPC (lz4), None for a
        stream output. The CPU half of `save`: `stocksent score`'s threads encode, and the thread that
        writes the output stores, the half that waits on the disk."""
        import pyarrow as pa

        if self.path is None:
            return None
        # lz4, ~1 GB/s: the spool costs little next to scoring; in this thread (no pool of its own), so
        # `--workers N` stays N cores.
        options = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
            writer.write_batch(batch)
        return sink.getvalue()

    def store(self, index: int, data) -> None:
        """Keep `encode`'s bytes as chunk `index` (atomically, flushed to disk)."""
        if self.path is not None:
            write_bytes(self.path / _chunk_name(index), data)

    def load(self, index: int, rows: int):
        """Chunk `index`'s kept output rows, checked against the input chunk's `rows`."""
        import pyarrow as pa

        path = self.path / _chunk_name(index)
        try:
            with pa.OSFile(str(path), "rb") as handle:
                table = pa.ipc.open_stream(handle).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise StocksentError(f"{path} is damaged ({exc}); run without --resume to start afresh") from None
        if table.num_rows != rows:
            raise StocksentError(f"{path} does not match the input (it changed?); run without --resume to start afresh")
        return table.combine_chunks().to_batches()[0]

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    def say_kept(self) -> None:
        """After an interruption: where the finished chunks are, and how to go on."""
        if self.path is not None:
            log.warning(
                "interrupted: finished chunks are kept in %s; run the same command with --resume to go on", self.path
            )


def _chunk_name(index: int) -> str:
    return f"chunk-{index:08d}.arrow"
