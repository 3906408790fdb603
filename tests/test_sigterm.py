"""A real `stocksent predict/score --output` killed by SIGTERM mid-write: exit 143, one line, no temp file.

The CLI turns SIGTERM into an exception in the main thread (cli.terminate_as_exception), so
atomic_open's cleanup runs: the temp file goes, the old output stays as it was.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stocksent.atomic import TEMP_TAG

STOCKSENT = str(Path(sys.executable).with_name("stocksent"))


@pytest.fixture(scope="module")
def many_messages(tmp_path_factory) -> Path:
    """100,000 real messages, one per line: long enough to be caught mid-write."""
    from conftest import DATA_PATH, texts_of

    texts = [t.replace("\n", " ").replace("\r", " ") for t in texts_of(DATA_PATH)[:20_000] if t.strip()]
    path = tmp_path_factory.mktemp("in") / "messages.txt"
    path.write_text("\n".join(texts[i % len(texts)] for i in range(100_000)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def many_rows(many_messages) -> Path:
    """The first 40,000 of them as a CSV file with a message column, as `score` reads."""
    path = many_messages.with_name("messages.csv")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "message"])
        writer.writerows(enumerate(many_messages.read_text(encoding="utf-8").splitlines()[:40_000]))
    return path


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if TEMP_TAG in p.name]


def kill_once_writing(command: list[str], directory: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Start `command`, SIGTERM it as soon as the temp file of its output (in `directory`) exists."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not [p for p in directory.iterdir() if TEMP_TAG in p.name]:
        if process.poll() is not None:
            raise AssertionError(f"finished before it could be killed: {process.returncode} {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no temp file appeared")
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def assert_stopped_cleanly(result: subprocess.CompletedProcess, directory: Path) -> None:
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "stocksent: stopped by SIGTERM", result.stderr
    assert "Traceback" not in result.stderr
    assert temp_files(directory) == []


@pytest.mark.parametrize("name", ["out.csv", "out.jsonl"])
def test_predict_output_killed_mid_write(small_model_dir, many_messages, tmp_path, name):
    output = tmp_path / name
    output.write_text("the previous output\n")
    command = [STOCKSENT, "predict", "--model", str(small_model_dir), "--input", str(many_messages)]
    result = kill_once_writing([*command, "--output", str(output)], tmp_path)
    assert_stopped_cleanly(result, tmp_path)
    assert output.read_text() == "the previous output\n"  # untouched: never half a file
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_score_output_killed_mid_write(small_model_dir, many_rows, tmp_path, workers):
    output = tmp_path / "out.csv"
    command = [STOCKSENT, "score", str(many_rows), "--model", str(small_model_dir), "--output", str(output)]
    command += ["--workers", workers, "--chunk-rows", "2000", "--no-progress"]
    result = kill_once_writing(command, tmp_path)
    assert_stopped_cleanly(result, tmp_path)
    assert not output.exists()
    # What it had finished is kept for --resume, which completes the run.
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert output.is_file() and temp_files(tmp_path) == []
    assert sum(1 for _ in output.open(encoding="utf-8")) == 40_001  # the header and every message


def test_a_signal_while_the_worker_pool_starts_leaves_no_thread_behind(monkeypatch):
    """SIGTERM between the pool's two thread starts: the first thread must not wait at the start
    barrier forever, which would block the interpreter's exit (a killed `predict` that never ends)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from stocksent.cli import Terminated
    from stocksent.inference import workers

    real_submit, calls = ThreadPoolExecutor.submit, []

    def submit(self, fn, *args, **kwargs):
        calls.append(fn)
        if len(calls) == 2:
            raise Terminated(signal.SIGTERM)  # what the CLI's handler raises in the main thread
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
    monkeypatch.setattr(workers, "_POOLS", {})
    before = set(threading.enumerate())
    with pytest.raises(Terminated):
        workers.worker_pool(2)
    started = [t for t in threading.enumerate() if t not in before]
    assert started  # the first worker thread did start
    for thread in started:
        thread.join(timeout=10)
    assert not [t for t in started if t.is_alive()]
