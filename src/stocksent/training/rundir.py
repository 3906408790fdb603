"""The output directory of a training run: one run at a time, and never two runs mixed in one directory.

A run holds an exclusive `fcntl` lock on DIR/.stocksent.lock (which records its PID and is removed
at the end) from start to finish, so a second `train --out DIR` stops at once with the first run's PID. What a directory holds
says what may happen to it:

- `config.json`: a finished model. It is written last, so a directory with it is complete.
  A new run refuses it; `--resume` re-finishes it (identical result).
- `checkpoint.json` but no `config.json`: an interrupted run; only `--resume` continues it.
- neither: nothing worth keeping; a new run starts afresh and removes what an earlier run killed
  before its first checkpoint left behind (only the files a run writes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from stocksent.artifacts import CONFIG, CURVE, METRICS, VOCAB, WEIGHTS
from stocksent.errors import StocksentError

LOCK = ".stocksent.lock"
CHECKPOINT_WEIGHTS, CHECKPOINT_STATE = "checkpoint.safetensors", "checkpoint.json"
BEST_WEIGHTS = "checkpoint-best.safetensors"  # the best epoch so far, before the blend and calibration
RUN_FILES = (VOCAB, WEIGHTS, METRICS, CURVE, CHECKPOINT_WEIGHTS, BEST_WEIGHTS)


@contextlib.contextmanager
def claimed(out: Path, resume: bool) -> Iterator[Path]:
    """Lock `out` for this run and check that the run may start there (see the module docstring).

    A run that fails leaves no empty folder behind: those it created are removed again if nothing
    was written in them (a run that got as far as a checkpoint leaves it, for --resume).
    """
    created = [p for p in (out.absolute(), *out.absolute().parents) if not p.exists()]  # the deepest first
    try:
        with _locked(out, resume):
            yield out
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()  # refuses a folder that is not empty
            except OSError:
                break
        raise


@contextlib.contextmanager
def _locked(out: Path, resume: bool) -> Iterator[Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StocksentError(f"--out {out} is a file; give a directory") from None
    except OSError as err:
        raise StocksentError(f"cannot create --out {out}: {err.strerror or err}") from None
    try:
        handle = open(out / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 (held for the whole run)
    except OSError as err:
        raise StocksentError(f"cannot write in --out {out}: {err.strerror or err}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise StocksentError(
                f"{out} is in use by another training run (PID {pid}); wait for it to end or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            check_state(out, resume)
            yield out
        finally:  # still locked: a run that opens the file now finds the state this run left
            (out / LOCK).unlink(missing_ok=True)


def check_state(out: Path, resume: bool) -> None:
    finished, interrupted = (out / CONFIG).is_file(), (out / CHECKPOINT_STATE).is_file()
    if resume:
        if not interrupted:
            raise StocksentError(f"nothing to resume in {out}: no {CHECKPOINT_STATE} (start without --resume)")
        return
    if finished:
        raise StocksentError(f"{out} already holds a model: choose another --out, delete it, or pass --resume")
    if interrupted:
        raise StocksentError(
            f"{out} holds an interrupted run: add --resume to continue it, or delete the directory to start again"
        )
    for name in RUN_FILES:  # left by a run killed before its first checkpoint: nothing to resume from
        (out / name).unlink(missing_ok=True)
