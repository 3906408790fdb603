"""`stocksent serve`: an HTTP scoring service (FastAPI + uvicorn) with a small web page.

FastAPI and uvicorn are an optional extra (`stocksent[serve]`), so this module never imports them
at import time: the CLI registers `serve` without them. The app is built in factory.py, its routes
live in app.py, the limits on a request's head in protocol.py, the workers' entry in worker.py and
their supervisor in supervisor.py.

`--workers N`: the parent loads (so checks) the model and pins the sha256 of its weights, config
and vocabulary; each worker loads the files only if they still have those digests, else it refuses
to start, uvicorn stops the others, and `run` raises: one port never serves two models. Each worker
ends as soon as the parent does, however it ends (kill -9 included), so the port is free again.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import socket
from pathlib import Path

from stocksent.artifacts import MODEL_FILES, sha256_files
from stocksent.errors import StocksentError
from stocksent.serving.factory import create_app, require_serve_extra
from stocksent.serving.index_source import IndexOptions
from stocksent.serving.limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_HEADER_BYTES, SHUTDOWN_GRACE_S
from stocksent.serving.worker import (
    BACKEND_ENV,
    BODY_TIMEOUT_ENV,
    INDEX_ENV,
    MODEL_ENV,
    PARENT_ENV,
    SHA256_ENV,
    THREADS_ENV,
)

__all__ = ["run"]


def check_port_free(host: str, port: int) -> None:
    """One clear line before anything loads, rather than uvicorn's log and exit 1."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise StocksentError(
                f"cannot listen on {host}:{port} ({err.strerror}): choose another --port or --host"
            ) from None


def run(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    backend: str = "torch",
    access_log: bool = False,
    threads: int = 1,
    header_timeout: float = HEADER_TIMEOUT_S,
    body_timeout: float = BODY_TIMEOUT_S,
    http: str | None = None,
    index: IndexOptions | None = None,
) -> None:
    """Serve until interrupted. The model is loaded (so checked) before the port opens, and with
    `index` the sentiment index of its scored messages computed (GET /v1/index, the page at /index).

    A request's head must arrive within `header_timeout` seconds and its body within `body_timeout`
    (a 408 and the connection closed otherwise); idle keep-alive connections close after 5 s. `http`:
    the HTTP parser, "httptools" (the default where installed) or "h11".

    SIGTERM (or Ctrl-C) stops it gracefully: requests waiting for room get a 503 at once, those in
    flight have SHUTDOWN_GRACE_S seconds to finish (then a 503), and the signal is raised again once
    every worker is down, so that the command ends as any other stopped by it (exit status 143).
    """
    require_serve_extra()
    import torch
    import uvicorn

    from stocksent.serving.protocol import DEFAULT_HTTP, PROTOCOLS

    if (http or DEFAULT_HTTP) not in PROTOCOLS:
        raise StocksentError(f"--http {http}: use one of {', '.join(sorted(PROTOCOLS))}")
    check_port_free(host, port)
    torch.set_num_threads(1)  # one core per scoring thread; more cores: more --workers
    app = create_app(
        model_dir, backend, threads, body_timeout=body_timeout, index=index
    )  # a bad model or index fails here
    pinned = app.state.sha256  # what every worker must find
    protocol = functools.partial(
        PROTOCOLS[http or DEFAULT_HTTP], header_timeout=header_timeout, max_header_bytes=MAX_HEADER_BYTES
    )
    options = dict(
        host=host,
        port=port,
        access_log=access_log,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        timeout_keep_alive=5,
        http=protocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    if workers == 1:
        uvicorn.run(app, **options)  # uvicorn raises the signal that stopped it again on the way out
        return
    del app  # each worker process loads its own copy, of the pinned files only
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # A worker importing torch on a busy machine can miss uvicorn's 5 s ping and be restarted forever.
        options["timeout_worker_healthcheck"] = 60
    os.environ.update(
        {
            MODEL_ENV: str(Path(model_dir).resolve()),
            BACKEND_ENV: backend,
            THREADS_ENV: str(threads),
            SHA256_ENV: json.dumps(pinned),
            BODY_TIMEOUT_ENV: repr(body_timeout),
            PARENT_ENV: str(os.getpid()),  # each worker ends with this process (lifetime.exit_with)
        }
    )
    if index is not None:  # each worker computes its own copy of the index
        os.environ[INDEX_ENV] = index.to_json()
    else:
        os.environ.pop(INDEX_ENV, None)
    from stocksent.serving.supervisor import Supervisor

    config = uvicorn.Config("stocksent.serving.worker:app", factory=True, workers=workers, **options)
    try:
        Supervisor(config, sockets=[config.bind_socket()]).run()
    except SystemExit as stop:  # uvicorn exits 3 when a worker refused to start
        if stop.code not in (0, None):
            raise StocksentError(_stopped_because(model_dir, pinned)) from None
        raise
    if sha256_files(model_dir) != pinned:  # a worker refused (uvicorn then stops and returns)
        raise StocksentError(_stopped_because(model_dir, pinned))


def _stopped_because(model_dir: str | Path, pinned: dict[str, str] | None) -> str:
    try:
        now = sha256_files(model_dir)
    except OSError:
        now = {}
    changed = [name for name in MODEL_FILES if now.get(name) != (pinned or {}).get(name)]
    if not changed:
        return "a worker failed to start; the server log above has the reason"
    return (
        f"stopped: {', '.join(changed)} in {model_dir} changed while the server ran, and a worker refused to "
        "load a second model; start the server again to serve the new one"
    )
