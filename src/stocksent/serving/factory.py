"""The app of `stocksent serve` built from a model directory, and what GET /v1/model says about it.

FastAPI and uvicorn are an optional extra (`stocksent[serve]`): they are imported only when an app
is built. Used by the server's parent process (server.run) and by each worker (worker.app).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from stocksent.artifacts import METRICS, MODEL_FILES, WEIGHTS, model_id, read_json, sha256_files
from stocksent.errors import StocksentError
from stocksent.sentiment import SentimentModel
from stocksent.serving.index_source import IndexOptions, IndexSource
from stocksent.serving.limits import (
    BODY_IDLE_TIMEOUT_S,
    BODY_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_CHARS,
    MAX_HEADER_BYTES,
    MAX_MESSAGES,
)


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
        "engine": model.engine_info,
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
    index: IndexOptions | None = None,
):
    """The FastAPI app serving one model directory, loaded here before any request arrives.

    `threads` scoring threads share concurrent requests' work; give each one intra-op thread
    (`torch.set_num_threads(1)`, as `run` does) so they do not fight over the cores. `sha256`
    ({file name: digest}) refuses a directory whose files have changed since they were pinned.
    `index`: also serve the sentiment index of scored messages (`serve --index`), computed here at
    the default frequency, with the model's rates.json for the corrected shares.
    """
    require_serve_extra()
    from stocksent.serving.app import build_app

    # float32: requests are micro-batched together, and a message's probability must not depend on
    # what else arrived with it (precision "auto" switches on the batch size).
    model = SentimentModel.load(model_dir, backend=backend, precision="float32", sha256=sha256)
    idle = min(BODY_IDLE_TIMEOUT_S, body_timeout)
    info = model_info(model, backend)
    source = None if index is None else IndexSource(index, model.directory, model.threshold, info["id"])
    app = build_app(model, info, threads, body_timeout, idle, index=source)
    app.state.sha256 = model.sha256  # of the bytes this app serves
    return app
