"""A real `stocksent serve` in a subprocess on 127.0.0.1, for the API and browser tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

STOCKSENT = str(Path(sys.executable).with_name("stocksent"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(model_dir: Path, *args: str, timeout: float = 90.0) -> Iterator[str]:
    """Yields the base URL once /healthz answers 200; stops the server (and its workers) afterwards."""
    port = free_port()
    command = [STOCKSENT, "serve", "--model", str(model_dir), "--port", str(port), *args]
    log = tempfile.TemporaryFile(mode="w+")  # not a pipe: a full pipe would block the server
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"server exited with {process.returncode}:\n{log.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not healthy after {timeout:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
