"""A real `stocksent serve` in a subprocess on 127.0.0.1, for the API and browser tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

STOCKSENT = str(Path(sys.executable).with_name("stocksent"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    log: Any  # the server's stdout and stderr, a file

    def log_text(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


@contextlib.contextmanager
def serving(model_dir: Path, *args: str, timeout: float = 90.0) -> Iterator[Served]:
    """A started server (its URL, process and log) once /healthz answers 200; stopped afterwards."""
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
        yield Served(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def running_server(model_dir: Path, *args: str, timeout: float = 90.0) -> Iterator[str]:
    """Yields the base URL once /healthz answers 200; stops the server (and its workers) afterwards."""
    with serving(model_dir, *args, timeout=timeout) as served:
        yield served.url
