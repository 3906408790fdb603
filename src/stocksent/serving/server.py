"""`stocksent serve`: an HTTP scoring service (FastAPI + uvicorn) with a small web page.

FastAPI and uvicorn are an optional extra (`stocksent[serve]`), so this module never imports them
at import time: the CLI registers `serve` without them. The routes live in app.py, the limits on a
request's head in protocol.py.

`--workers N`: the parent loads (so checks) the model and pins the sha256 of its weights, config
and vocabulary; each worker loads the files only if they still have those digests, else it refuses
to start, uvicorn stops the others, and `run` raises: one port never serves two models.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import socket
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from stocksent.artifacts import METRICS, MODEL_FILES, WEIGHTS, read_json, sha256_files
from stocksent.errors import StocksentError
from stocksent.sentiment import SentimentModel
from stocksent.serving.limits import (
    BODY_IDLE_TIMEOUT_S,
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_CHARS,
    MAX_HEADER_BYTES,
    MAX_MESSAGES,
)

log = logging.getLogger(__name__)

# How `--workers N` hands its options to worker processes, which build their app from a factory.
MODEL_ENV, BACKEND_ENV, THREADS_ENV = "STOCKSENT_SERVE_MODEL", "STOCKSENT_SERVE_BACKEND", "STOCKSENT_SERVE_THREADS"
SHA256_ENV, BODY_TIMEOUT_ENV = "STOCKSENT_SERVE_SHA256", "STOCKSENT_SERVE_BODY_TIMEOUT"
REFUSED = 3  # a worker's exit status when it refuses to start (uvicorn's STARTUP_FAILURE: the parent stops)


def model_id(directory: Path, weights_sha256: str | None = None) -> str:
    """Directory name plus the weights' sha256 prefix: two different models never share an id."""
    digest = weights_sha256 or sha256_files(directory, (WEIGHTS,))[WEIGHTS]
    return f"{directory.name}-{digest[:12]}"


def file_names_only(value: Any) -> Any:
    """`value` with every string that holds a path cut to its last part: /v1/model shows file names,
    never where the server keeps them (train.data, train.out, data.path, data.files[].path)."""
    if isinstance(value, dict):
        return {k: file_names_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [file_names_only(v) for v in value]
    if isinstance(value, str) and ("/" in value or "\\" in value):
        path = PureWindowsPath(value) if "\\" in value else PurePosixPath(value)
        return path.name or value.strip("/\\").rsplit("/", 1)[-1]
    return value


def model_info(model: SentimentModel, backend: str) -> dict:
    """What GET /v1/model returns; read once at start-up."""
    directory, config = model.directory, model.config
    sha256 = model.sha256 or sha256_files(directory)
    metrics = read_json(directory / METRICS) if (directory / METRICS).is_file() else {}
    metrics = metrics if isinstance(metrics, dict) else {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    return {
        "id": model_id(directory, sha256[WEIGHTS]),
        "backend": backend,
        "threshold": model.threshold,
        "files": {name: {"sha256": sha256[name]} for name in MODEL_FILES},
        "data_sha256": data.get("sha256"),
        "metrics": metrics.get("test"),
        "best_epoch": metrics.get("best_epoch"),
        "config": file_names_only(config),
        "limits": {
            "max_messages": MAX_MESSAGES,
            "max_chars": MAX_CHARS,
            "max_body_bytes": MAX_BODY_BYTES,
            "max_header_bytes": MAX_HEADER_BYTES,
        },
    }


def require_serve_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import swagger_ui_bundle  # noqa: F401  (/docs without a CDN)
        import uvicorn  # noqa: F401
    except ImportError:
        raise StocksentError(
            "serving needs FastAPI, uvicorn and swagger-ui-bundle: pip install 'stocksent[serve]'"
        ) from None


def create_app(
    model_dir: str | Path,
    backend: str = "torch",
    threads: int = 1,
    sha256: dict[str, str] | None = None,
    body_timeout: float = BODY_TIMEOUT_S,
):
    """The FastAPI app serving one model directory, loaded here before any request arrives.

    `threads` scoring threads share concurrent requests' work; give each one intra-op thread
    (`torch.set_num_threads(1)`, as `run` does) so they do not fight over the cores. `sha256`
    ({file name: digest}) refuses a directory whose files have changed since they were pinned.
    """
    require_serve_extra()
    from stocksent.serving.app import build_app

    # float32: requests are micro-batched together, and a message's probability must not depend on
    # what else arrived with it (precision "auto" switches on the batch size).
    model = SentimentModel.load(model_dir, backend=backend, precision="float32", sha256=sha256)
    idle = min(BODY_IDLE_TIMEOUT_S, body_timeout)
    app = build_app(model, model_info(model, backend), threads, body_timeout, idle)
    app.state.sha256 = model.sha256  # of the bytes this app serves
    return app


def app_from_env():
    """Factory for uvicorn's worker processes (`--workers N`): the options come from the environment.

    A worker that finds the model files changed since the parent pinned them logs one line and
    exits with status REFUSED, which makes uvicorn stop the parent rather than restart it.
    """
    import torch

    torch.set_num_threads(1)
    try:
        return create_app(
            os.environ[MODEL_ENV],
            os.environ.get(BACKEND_ENV, "torch"),
            int(os.environ.get(THREADS_ENV, 1)),
            json.loads(os.environ[SHA256_ENV]) if SHA256_ENV in os.environ else None,
            float(os.environ.get(BODY_TIMEOUT_ENV, BODY_TIMEOUT_S)),
        )
    except StocksentError as err:
        logging.getLogger("uvicorn.error").error("worker %d refuses to start: %s", os.getpid(), err)
        sys.exit(REFUSED)


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
) -> None:
    """Serve until interrupted. The model is loaded (so checked) before the port opens.

    A request's head must arrive within `header_timeout` seconds and its body within `body_timeout`
    (a 408 and the connection closed otherwise); idle keep-alive connections close after 5 s.
    """
    require_serve_extra()
    import torch
    import uvicorn

    from stocksent.serving.protocol import GuardedHttp

    check_port_free(host, port)
    torch.set_num_threads(1)  # one core per scoring thread; more cores: more --workers
    app = create_app(model_dir, backend, threads, body_timeout=body_timeout)  # a bad model directory fails here
    pinned = app.state.sha256  # what every worker must find
    http = functools.partial(GuardedHttp, header_timeout=header_timeout, max_header_bytes=MAX_HEADER_BYTES)
    options = dict(
        host=host,
        port=port,
        access_log=access_log,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=5,
        http=http,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    if workers == 1:
        uvicorn.run(app, **options)
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
        }
    )
    try:
        uvicorn.run("stocksent.serving.server:app_from_env", factory=True, workers=workers, **options)
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
