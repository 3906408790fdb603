"""`stocksent serve`: an HTTP scoring service (FastAPI + uvicorn) with a small web page.

FastAPI and uvicorn are an optional extra (`stocksent[serve]`), so this module never imports them
at import time: the CLI registers `serve` without them. The routes live in serve_app.py.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import socket
from pathlib import Path

from stocksent.artifacts import METRICS, WEIGHTS, read_json
from stocksent.errors import StocksentError
from stocksent.sentiment import SentimentModel
from stocksent.serving.limits import MAX_BODY_BYTES, MAX_CHARS, MAX_MESSAGES

# How `--workers N` hands its options to worker processes, which build their app from a factory.
MODEL_ENV, BACKEND_ENV, THREADS_ENV = "STOCKSENT_SERVE_MODEL", "STOCKSENT_SERVE_BACKEND", "STOCKSENT_SERVE_THREADS"


def model_id(directory: Path) -> str:
    """Directory name plus the weights' sha256 prefix: two different models never share an id."""
    digest = hashlib.sha256((directory / WEIGHTS).read_bytes()).hexdigest()
    return f"{directory.name}-{digest[:12]}"


def model_info(model: SentimentModel, backend: str) -> dict:
    """What GET /v1/model returns; read once at start-up."""
    directory, config = model.directory, model.config
    metrics = read_json(directory / METRICS) if (directory / METRICS).is_file() else {}
    return {
        "id": model_id(directory),
        "backend": backend,
        "threshold": model.threshold,
        "data_sha256": config.get("data", {}).get("sha256"),
        "metrics": metrics.get("test"),
        "best_epoch": metrics.get("best_epoch"),
        "config": config,
        "limits": {"max_messages": MAX_MESSAGES, "max_chars": MAX_CHARS, "max_body_bytes": MAX_BODY_BYTES},
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


def create_app(model_dir: str | Path, backend: str = "torch", threads: int = 1):
    """The FastAPI app serving one model directory, loaded here before any request arrives.

    `threads` scoring threads share concurrent requests' work; give each one intra-op thread
    (`torch.set_num_threads(1)`, as `run` does) so they do not fight over the cores.
    """
    require_serve_extra()
    from stocksent.serving.app import build_app

    # float32: requests are micro-batched together, and a message's probability must not depend on
    # what else arrived with it (precision "auto" switches on the batch size).
    model = SentimentModel.load(model_dir, backend=backend, precision="float32")
    return build_app(model, model_info(model, backend), threads)


def app_from_env():
    """Factory for uvicorn's worker processes (`--workers N`): the options come from the environment."""
    import torch

    torch.set_num_threads(1)
    return create_app(os.environ[MODEL_ENV], os.environ.get(BACKEND_ENV, "torch"), int(os.environ.get(THREADS_ENV, 1)))


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
) -> None:
    """Serve until interrupted. The model is loaded (so checked) before the port opens."""
    require_serve_extra()
    import torch
    import uvicorn

    check_port_free(host, port)
    torch.set_num_threads(1)  # one core per scoring thread; more cores: more --workers
    app = create_app(model_dir, backend, threads)  # a bad model directory fails here, as one line
    options = dict(host=host, port=port, access_log=access_log, timeout_graceful_shutdown=5)
    if workers == 1:
        uvicorn.run(app, **options)
        return
    del app  # each worker process loads its own copy
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # A worker importing torch on a busy machine can miss uvicorn's 5 s ping and be restarted forever.
        options["timeout_worker_healthcheck"] = 60
    os.environ.update({MODEL_ENV: str(Path(model_dir).resolve()), BACKEND_ENV: backend, THREADS_ENV: str(threads)})
    uvicorn.run("stocksent.serving.server:app_from_env", factory=True, workers=workers, **options)
