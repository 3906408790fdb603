"""Processes for tests: finding every process a command started, however deep (workers, fork
servers, resource trackers), even after it has died and they were handed to init (each carries the
environment of the command, so a tag put there finds them all in /proc); and running a command
without root's power over file permissions.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

TAG_ENV = "STOCKSENT_TEST_PROCESS_TAG"


def tagged_env() -> tuple[dict[str, str], str]:
    """An environment for a command whose processes `living(tag)` then finds."""
    tag = uuid.uuid4().hex
    return {**os.environ, TAG_ENV: tag}, tag


def living(tag: str) -> dict[int, str]:
    """{pid: command line} of every process carrying `tag` that has not exited (zombies excluded)."""
    marker = f"{TAG_ENV}={tag}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # exited meanwhile, or not ours
            continue
        if state not in ("Z", "X"):
            found[int(entry.name)] = command
    return found


def wait_until(condition, timeout: float, step: float = 0.1):
    """Poll `condition()` until it gives something truthy (returned) or `timeout` s pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(step)


def kill_all(pids) -> None:
    """SIGKILL what a test left behind (by PID, never by name)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def run_without_file_privileges(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run `command` as this user, but as root without the powers that skip file permissions
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so that a read-only folder is read-only to it
    as it is to any user. Dropped from the capability bounding set just before the command starts."""

    def drop() -> None:
        if os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            for capability in (1, 2, 3):  # DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
                if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                    os._exit(99)

    done = subprocess.run(command, preexec_fn=drop, capture_output=True, text=True, **kwargs)
    assert done.returncode != 99, "could not drop root's file capabilities (no CAP_SETPCAP?)"
    return done


def run_in_read_only(folder: Path, *commands: list[str], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """Each of `commands` run (without root's file powers) while `folder` is read-only to everyone."""
    folder.chmod(0o555)
    try:
        return [run_without_file_privileges(command, timeout=timeout) for command in commands]
    finally:
        folder.chmod(0o755)
