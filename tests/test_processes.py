"""No process outlives the command that started it: `score --workers 2`, `serve --workers 2` and
`train --nproc 2` killed with SIGKILL leave no worker, fork server or resource tracker behind, a
finished `score` leaves no fork server, and a `serve` started again after the kill gets its port.

Every process a command starts carries a tag in its environment (process_helpers), so the test
finds them in /proc even once init has adopted them. Deadlines are generous and only bound the
wait: nothing here measures speed.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from process_helpers import kill_all, living, tagged_env, wait_until
from serve_helpers import free_port

STOCKSENT = str(Path(sys.executable).with_name("stocksent"))
GONE_WITHIN_S = 120  # what "at once" is allowed to take on a loaded machine before the test fails


def write_rows(path: Path, count: int) -> Path:
    """`count` real messages with ids, as a CSV file that `score` reads."""
    from conftest import DATA_PATH, texts_of

    texts = [t for t in texts_of(DATA_PATH)[:20_000] if t.strip()]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "message"])
        writer.writerows((i, texts[i % len(texts)]) for i in range(count))
    return path


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> Path:
    """300,000 messages: a `score` run long enough to be killed mid-way."""
    return write_rows(tmp_path_factory.mktemp("rows") / "rows.csv", 300_000)


def assert_none_left(tag: str) -> None:
    left = wait_until(lambda: not living(tag), GONE_WITHIN_S)
    leftovers = living(tag)
    kill_all(leftovers)
    assert left and not leftovers, f"still running {GONE_WITHIN_S} s after the parent died: {leftovers}"


def score_command(model: Path, rows: Path, output: Path, *extra: str) -> list[str]:
    return [STOCKSENT, "score", str(rows), "--model", str(model), "--output", str(output), "--no-progress", *extra]


def reference_env() -> tuple[dict[str, str], str]:
    """A tagged environment on the reference path (no compiled core), where `score` runs worker
    processes: with the compiled core it scores in threads of its one process."""
    env, tag = tagged_env()
    return {**env, "STOCKSENT_NATIVE": "0"}, tag


def test_score_killed_with_sigkill_leaves_no_worker_fork_server_or_tracker(small_model_dir, rows, tmp_path):
    env, tag = reference_env()
    output = tmp_path / "scores.parquet"
    command = score_command(small_model_dir, rows, output, "--workers", "2", "--chunk-rows", "2000")
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # The command, the fork server, the resource tracker and both workers, with a chunk done.
        first_chunk = tmp_path / ".scores.parquet.score" / "chunk-00000000.arrow"
        running = wait_until(lambda: len(living(tag)) >= 5 and first_chunk.exists(), GONE_WITHIN_S)
        assert running and parent.poll() is None, (parent.poll(), living(tag))
        children = set(living(tag)) - {parent.pid}
        assert any("forkserver" in c for c in living(tag).values()) and len(children) >= 4, living(tag)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
        assert_none_left(tag)
    finally:
        kill_all([parent.pid, *living(tag)])
        parent.wait()


def test_score_in_threads_killed_with_sigkill_leaves_nothing(small_model_dir, rows, tmp_path):
    """With the compiled core, `score --workers 2` is one process (threads score): killed, nothing is left."""
    from stocksent.encoding import compiled_text

    if not compiled_text():
        pytest.skip("the compiled core is not built here: score runs in processes only")
    env, tag = tagged_env()
    output = tmp_path / "scores.parquet"
    command = score_command(small_model_dir, rows, output, "--workers", "2", "--chunk-rows", "2000")
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first_chunk = tmp_path / ".scores.parquet.score" / "chunk-00000000.arrow"
        assert wait_until(first_chunk.exists, GONE_WITHIN_S) and parent.poll() is None, parent.poll()
        assert set(living(tag)) == {parent.pid}, living(tag)  # no worker process, fork server or tracker
        assert len(list(Path(f"/proc/{parent.pid}/task").iterdir())) >= 3  # the command and its 2 scoring threads
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
        assert_none_left(tag)
    finally:
        kill_all([parent.pid, *living(tag)])
        parent.wait()


def test_a_finished_score_leaves_no_fork_server(small_model_dir, tmp_path):
    env, tag = reference_env()
    small = write_rows(tmp_path / "small.csv", 3000)
    command = score_command(small_model_dir, small, tmp_path / "out.csv", "--workers", "2", "--chunk-rows", "500")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    fork_servers = {pid: c for pid, c in living(tag).items() if "forkserver" in c}  # at once: no waiting
    kill_all(living(tag))
    assert done.returncode == 0, done.stderr
    assert fork_servers == {}
    assert len(list(csv.reader((tmp_path / "out.csv").open(encoding="utf-8", newline="")))) == 3001
    assert_none_left(tag)  # the resource tracker ends once the last of its users has


def test_score_files_returns_leaving_no_fork_server(small_model_dir, tmp_path):
    """In this very process: on return nothing it started is left, not even waiting for the exit."""
    from stocksent.batch.files import score_files

    small = write_rows(tmp_path / "small.csv", 3000)
    summary = score_files(
        [small], small_model_dir, tmp_path / "out.parquet", workers=2, chunk_rows=500, in_threads=False
    )
    assert summary.rows == 3000
    assert [c for c in children_of(os.getpid()).values() if "forkserver" in c] == []


def test_serve_workers_end_with_a_killed_parent_and_the_port_is_free_again(small_model_dir):
    env, tag = tagged_env()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [STOCKSENT, "serve", "--model", str(small_model_dir), "--port", str(port), "--workers", "2"]
    log = open(Path(small_model_dir).parent / f"serve-{tag}.log", "w+")  # noqa: SIM115
    parent = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    again = None
    try:
        assert wait_until(lambda: healthy(url) and len(living(tag)) >= 3, GONE_WITHIN_S), log_of(log)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
        assert_none_left(tag)
        assert not healthy(url)  # nothing answers on the port any more
        again = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        assert wait_until(lambda: healthy(url) or again.poll() is not None, GONE_WITHIN_S) and again.poll() is None, (
            log_of(log)
        )
    finally:
        if again is not None:
            again.terminate()
            again.wait(timeout=60)
        kill_all([parent.pid, *living(tag)])
        parent.wait()
        log.close()


def test_train_ranks_end_with_a_killed_parent(tmp_path):
    from conftest import DATA_PATH

    env, tag = tagged_env()
    out = tmp_path / "run"
    command = [STOCKSENT, "train", "--data", str(DATA_PATH), "--max-examples", "20000", "--epochs", "30"]
    command += ["--nproc", "2", "--out", str(out), "--embed-size", "16", "--lstm-sizes", "8"]
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = wait_until(lambda: (out / "checkpoint.json").exists() and len(living(tag)) >= 3, GONE_WITHIN_S * 2)
        assert started and parent.poll() is None, living(tag)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
        assert_none_left(tag)
        assert not (out / "config.json").exists()  # no rank went on to finish the run behind the user's back
    finally:
        kill_all([parent.pid, *living(tag)])
        parent.wait()


def children_of(pid: int) -> dict[int, str]:
    """{pid: command line} of the living children of `pid`."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return found


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def log_of(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-3000:]


WATCHER = """
import os, select, sys, time
if sys.argv[2] == "poll":  # as on a platform with neither pidfd nor kqueue
    del os.pidfd_open
    if hasattr(select, "kqueue"):
        del select.kqueue
from stocksent.lifetime import exit_with
exit_with(int(sys.argv[1]))
print("watching", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("way", ["event", "poll"])
def test_exit_with_ends_the_process_when_the_watched_one_ends(way):
    from stocksent.lifetime import ORPHANED

    watched = subprocess.Popen(["sleep", "600"])
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, str(watched.pid), way], stdout=subprocess.PIPE, text=True
    )
    try:
        assert watcher.stdout.readline() == "watching\n"
        watched.kill()
        watched.wait()
        assert watcher.wait(timeout=GONE_WITHIN_S) == ORPHANED
    finally:
        kill_all([watched.pid, watcher.pid])
        watcher.wait()


@pytest.mark.parametrize("way", ["event", "poll"])
def test_exit_with_a_process_already_gone_ends_at_once(way):
    from stocksent.lifetime import ORPHANED

    gone = subprocess.Popen(["true"])
    gone.wait()
    done = subprocess.run(
        [sys.executable, "-c", WATCHER, str(gone.pid), way], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == ORPHANED and "watching" not in done.stdout
