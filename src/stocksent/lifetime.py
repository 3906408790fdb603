"""Child processes that never outlive the command that started them, however it ends.

A worker blocked on a pipe from its parent does not notice the parent's death: the parent's
`kill -9` leaves `score`'s workers (and, through them, multiprocessing's fork server and resource
tracker, which wait for every worker to close their pipes) and `serve --workers N`'s workers (still
answering on the port) alive for minutes. So each child calls `exit_with(parent_pid)` first thing:
a daemon thread waits for that process to end and then ends this one at once. The wait is an event
from the kernel, not a poll: a pidfd on Linux (5.3+), kqueue's NOTE_EXIT on macOS and the BSDs;
elsewhere the thread checks every half second.

The parent is named by PID rather than taken from `os.getppid()`, because a fork server's workers
have the fork server as their parent, and a PID checked at start also covers a parent that died
before the child got this far.

>>> exit_with(os.getppid())  # doctest: +SKIP  (first thing in a worker's initializer)
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ORPHANED", "exit_with", "start_worker", "stop_fork_server"]

ORPHANED = 70  # a child's exit status when its parent ended first (EX_SOFTWARE: nobody reads it)
_POLL_S = 0.5  # where the platform has no process-exit event


def exit_with(pid: int) -> None:
    """End this process (os._exit, at once, from any thread) as soon as process `pid` ends.

    Returns at once; a process that is already gone ends this one before returning.
    """
    wait = _exit_waiter(pid)
    if wait is None:
        os._exit(ORPHANED)
    threading.Thread(target=_exit_after, args=(wait,), name=f"stocksent-exit-with-{pid}", daemon=True).start()


def start_worker(parent_pid: int, initializer: Callable[..., Any], initargs: tuple = ()) -> None:
    """A pool worker's initializer: `exit_with(parent_pid)`, then `initializer(*initargs)`.

    >>> ProcessPoolExecutor(2, initializer=start_worker, initargs=(os.getpid(), load, (path,)))  # doctest: +SKIP
    """
    exit_with(parent_pid)
    initializer(*initargs)


def stop_fork_server() -> None:
    """Stop multiprocessing's fork server now, if this process started one, rather than when this
    process exits: a command that is done leaves no process behind. The next pool starts a new one.

    Call it only when no worker started by the fork server is still running (it waits for them).
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)  # CPython's own way to stop it (used by its tests)
    if stop is not None and getattr(server, "_forkserver_pid", None) is not None:
        stop()


def _exit_after(wait: Callable[[], None]) -> None:
    try:
        wait()
    finally:
        os._exit(ORPHANED)


def _exit_waiter(pid: int) -> Callable[[], None] | None:
    """A function that returns once `pid` has ended, or None if it has ended already."""
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except OSError:  # a kernel before 5.3, or a sandbox without the call
            pass
        else:
            return lambda: select.select([fd], [], [])  # readable once the process has exited
    if hasattr(select, "kqueue"):
        queue = select.kqueue()
        event = select.kevent(
            pid, filter=select.KQ_FILTER_PROC, flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT, fflags=select.KQ_NOTE_EXIT
        )
        try:
            queue.control([event], 0, 0)
        except ProcessLookupError:
            return None
        return lambda: queue.control(None, 1, None)
    if not _running(pid):
        return None

    def poll() -> None:
        while _running(pid):
            time.sleep(_POLL_S)

    return poll


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: the PID was reused, so ours has ended
        return False
    return True
