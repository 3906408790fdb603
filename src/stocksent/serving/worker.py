"""The entry point of `serve --workers N`'s worker processes, and how the parent hands them its options.

A worker first checks the model files against the sha256 digests the parent pinned, before it
imports torch: one that finds other files refuses within a second of starting, while uvicorn's
supervisor still answers its health pings promptly, so the parent stops at once (a worker that dies
in the middle of a slow import can leave the supervisor waiting a whole health-check timeout). The
load checks the digests again on the very bytes it reads (artifacts.load_model_files). And first of
all a worker ties its life to the parent's (lifetime.exit_with): a `kill -9` of `serve` leaves no
worker answering on the port.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from stocksent.lifetime import exit_with

MODEL_ENV, BACKEND_ENV, THREADS_ENV = "STOCKSENT_SERVE_MODEL", "STOCKSENT_SERVE_BACKEND", "STOCKSENT_SERVE_THREADS"
SHA256_ENV, BODY_TIMEOUT_ENV = "STOCKSENT_SERVE_SHA256", "STOCKSENT_SERVE_BODY_TIMEOUT"
PARENT_ENV = "STOCKSENT_SERVE_PARENT"  # the PID of `serve` itself: a worker ends as soon as it does
INDEX_ENV = "STOCKSENT_SERVE_INDEX"  # serve --index and its flags, as IndexOptions.to_json writes them
REFUSED = 3  # a worker's exit status when it refuses to start (uvicorn's STARTUP_FAILURE: the parent stops)


def refuse(message: str) -> None:
    """One line in the server's log, then exit with REFUSED."""
    logging.getLogger("uvicorn.error").error("worker %d refuses to start: %s", os.getpid(), message)
    sys.exit(REFUSED)


def changed_files(directory: Path, pinned: dict[str, str]) -> list[str]:
    """Names of the pinned files whose sha256 differs now (or that cannot be read)."""
    changed = []
    for name, digest in pinned.items():
        try:
            actual = hashlib.sha256((directory / name).read_bytes()).hexdigest()
        except OSError:
            actual = None
        if actual != digest:
            changed.append(name)
    return changed


def app():
    """uvicorn's app factory in each worker: tied to the parent's life, the pinned files checked, then
    the model loaded (the digests checked again on the bytes it reads), with one torch thread as the
    parent has."""
    if PARENT_ENV in os.environ:
        exit_with(int(os.environ[PARENT_ENV]))
    directory = Path(os.environ[MODEL_ENV])
    pinned = json.loads(os.environ.get(SHA256_ENV, "{}"))
    changed = changed_files(directory, pinned)
    if changed:
        refuse(
            f"{', '.join(changed)} in {directory} changed since the server started: refusing to serve a "
            "second model; restart the server to serve the new one"
        )
    import torch

    from stocksent.errors import StocksentError
    from stocksent.serving.factory import create_app
    from stocksent.serving.index_source import IndexOptions

    torch.set_num_threads(1)
    try:
        return create_app(
            directory,
            os.environ.get(BACKEND_ENV, "torch"),
            int(os.environ.get(THREADS_ENV, 1)),
            pinned or None,
            float(os.environ.get(BODY_TIMEOUT_ENV, 60.0)),
            IndexOptions.from_json(os.environ[INDEX_ENV]) if INDEX_ENV in os.environ else None,
        )
    except StocksentError as err:  # e.g. the files changed between the check above and the load
        refuse(str(err))
