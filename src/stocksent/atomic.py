"""Writes that never leave half a file: atomic for regular files, straight through for streams.

A regular file (or a new path) is written to a temporary file beside it and renamed over it only if
the whole write succeeds, so a reader never sees half a file and a failed run leaves the old one.
Renaming is right for regular files only: a character device (`/dev/null`, a terminal), a FIFO or
a `/dev/stdout`-style path is written straight through, and a symlink is followed, so its target is
replaced and the link kept. `write_target` says which of these a path is, for messages.

Temporary files are named `.NAME.stocksent-tmp-PID-XXXXXXXX`. One left by a killed process (its PID
no longer runs) is removed by the next write to the same path; `remove_temp_files` removes this
process's own, for a signal handler (the CLI turns SIGTERM into an exception, which does the same).

>>> with atomic_open("out.csv") as handle:  # doctest: +SKIP
...     handle.write("message,label\\n")
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stocksent.errors import StocksentError

log = logging.getLogger(__name__)

# Read once at import (reading it means setting it, which is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

TEMP_TAG = ".stocksent-tmp-"
_TEMP_NAME = re.compile(re.escape(TEMP_TAG) + r"(\d+)-[^/]+$")
_NAME_ROOM = 100  # characters of the target's name kept in a temp file's name (names stop at 255 bytes)
# Paths that name an already open file of this process: written through whatever the file is.
_OPEN_FILE_PATHS = re.compile(r"^/dev/(?:stdout|stderr|stdin|fd/\d+)$|^/proc/[^/]+/fd/\d+$")
_MAX_LINKS = 40  # as the kernel's own limit on a chain of symlinks

_live: set[str] = set()  # temp files this process is writing now
_live_lock = threading.RLock()  # re-entrant: the CLI's SIGTERM handler takes it, maybe while its thread holds it


@dataclass(frozen=True)
class Target:
    """Where a write to `path` goes: `kind` "replace" (a regular or new file, `path` its final,
    symlink-free location) or "stream" (written through: a device, a FIFO, an open file's path)."""

    kind: str
    path: Path
    via_symlink: bool = False


def write_target(path: str | os.PathLike) -> Target:
    """How `atomic_open(path)` will write: raises OSError for a directory or a block device.

    >>> write_target("/dev/null").kind
    'stream'
    """
    path = Path(path)
    chain = _link_chain(path)
    if any(_OPEN_FILE_PATHS.match(hop) for hop in chain):
        return Target("stream", path)
    try:
        mode = os.stat(path).st_mode  # follows symlinks; ELOOP for a loop
    except FileNotFoundError:
        if not os.path.lexists(path):
            return Target("replace", Path(os.path.abspath(path)))
        return Target("replace", Path(os.path.realpath(path)), via_symlink=True)  # a dangling link: create its target
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file path", str(path))
    if stat.S_ISBLK(mode):
        raise OSError(errno.EPERM, "is a block device (a disk); refusing to write over it", str(path))
    if stat.S_ISREG(mode):
        return Target("replace", Path(os.path.realpath(path)), via_symlink=len(chain) > 1)
    return Target("stream", path)  # character device, FIFO (a socket fails to open with its own error)


def check_output_file(path: str | os.PathLike, hint: str = "") -> Target:
    """`path` checked as a command's output file before the work that fills it: not a directory or a
    block device, in a folder that exists (never created: a mistyped folder is refused) and where this
    process can create a file (tried with a temp file: a read-only folder or filesystem, /proc, ...).
    StocksentError, one line naming the path, the reason and `hint`, otherwise.

    >>> check_output_file("/nonexist/dir/x.onnx")  # doctest: +SKIP
    StocksentError: cannot write /nonexist/dir/x.onnx: the folder /nonexist/dir does not exist; create it first
    """
    try:
        target = write_target(path)
    except OSError as err:
        raise cannot_write(path, err, hint) from None
    if target.kind == "stream":
        return target
    folder = target.path.parent
    if not folder.is_dir():
        raise StocksentError(f"cannot write {path}: the folder {folder} does not exist; create it first")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{target.path.name[:_NAME_ROOM]}{TEMP_TAG}{os.getpid()}-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise cannot_write(path, err, hint) from None
    return target


def cannot_write(path: str | os.PathLike, err: OSError, hint: str = "") -> StocksentError:
    """The one line for an output that could not be written: which, why, and what to do."""
    return StocksentError(f"cannot write {path}: {err.strerror or err}" + (f"; {hint}" if hint else ""))


def _link_chain(path: Path) -> list[str]:
    """`path` made absolute, then each symlink's target in turn (the last part of each only)."""
    hops = [os.path.abspath(path)]
    while len(hops) <= _MAX_LINKS and os.path.islink(hops[-1]):
        target = os.readlink(hops[-1])
        hops.append(os.path.normpath(os.path.join(os.path.dirname(hops[-1]), target)))
    return hops


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, else what open() gives a new file (mkstemp's are 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or a number no process can have: leave it alone)
    return True


def remove_stale_temp_files(target: Path) -> list[Path]:
    """Remove temp files of `target` left by processes that no longer run; returns what was removed."""
    prefix = f".{target.name[:_NAME_ROOM]}{TEMP_TAG}"
    removed = []
    try:
        entries = [e for e in os.scandir(target.parent) if e.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.search(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _pid_running(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
            log.debug("removed %s, left by a process that no longer runs", entry.path)
    return removed


def remove_temp_files() -> None:
    """Remove every temp file this process is writing now (for a signal handler about to exit)."""
    with _live_lock:
        paths = list(_live)
    for tmp in paths:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """A handle for writing `path`: the new content appears whole when the block ends without error.

    A regular file is replaced by rename (through a symlink: its target, keeping the link); a stream
    (device, FIFO, /dev/stdout) is opened and written as it goes. Raises OSError for a directory,
    a block device, or a file that exists but may not be written.
    """
    target = write_target(path)
    if target.kind == "stream":
        with open(path, mode, **kwargs) as handle:
            yield handle
        return
    final = target.path
    if final.exists() and not os.access(final, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(final)
    prefix = f".{final.name[:_NAME_ROOM]}{TEMP_TAG}{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=prefix, suffix="")
    with _live_lock:
        _live.add(tmp)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            os.chmod(tmp, _mode_for(final))
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        with _live_lock:
            _live.discard(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)
