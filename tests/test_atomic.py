"""stocksent.atomic: regular files replaced whole, streams written through, links kept, temp files cleaned."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stocksent import atomic
from stocksent.atomic import TEMP_TAG, atomic_open, remove_stale_temp_files, write_bytes, write_json, write_target


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if TEMP_TAG in p.name)


def dead_pid() -> int:
    """The PID of a process that has just exited (reused within the test only by a freak chance)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_regular_file_replaced_whole_with_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    path.chmod(0o640)
    inode = path.stat().st_ino
    with atomic_open(path) as handle:
        handle.write("new\n")
        assert path.read_text() == "old\n"  # nothing visible before the block ends
        (tmp,) = temp_files(tmp_path)
        assert tmp.startswith(f".out.csv{TEMP_TAG}{os.getpid()}-")
    assert path.read_text() == "new\n"
    assert path.stat().st_ino != inode and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert temp_files(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("precious\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("half")
            raise RuntimeError("disk on fire")
    assert path.read_text() == "precious\n" and temp_files(tmp_path) == []


def test_new_file_in_new_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.json"
    write_json(path, {"x": 1})
    assert path.read_text() == '{\n  "x": 1\n}\n'
    assert write_target(path).kind == "replace"


@pytest.mark.parametrize("relative", [True, False])
def test_symlink_is_followed_and_kept(tmp_path: Path, relative: bool) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "data.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(Path("real/data.csv") if relative else target)
    info = write_target(link)
    assert info == atomic.Target("replace", target.resolve(), via_symlink=True)
    write_bytes(link, b"new\n")
    assert link.is_symlink() and target.read_bytes() == b"new\n"
    assert temp_files(tmp_path) == [] and temp_files(tmp_path / "real") == []


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "sub" / "made.csv")
    write_bytes(link, b"x")
    assert link.is_symlink() and (tmp_path / "sub" / "made.csv").read_bytes() == b"x"


def test_symlink_loop_is_an_os_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OSError) as info:
        write_bytes(tmp_path / "a", b"x")
    assert info.value.errno == errno.ELOOP
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


def test_directory_is_refused_before_any_temp_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        write_bytes(tmp_path, b"x")
    assert temp_files(tmp_path.parent) == [] and list(tmp_path.iterdir()) == []


def test_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_bytes(fifo, b"through the pipe\n")
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode) and temp_files(tmp_path) == []


def test_dev_null_and_dev_full_stay_devices(tmp_path: Path) -> None:
    assert write_target("/dev/null").kind == "stream"
    write_bytes("/dev/null", b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(OSError) as info:
        write_bytes("/dev/full", b"x" * 100_000)
    assert info.value.errno == errno.ENOSPC
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_character_device_node_is_never_replaced(tmp_path: Path) -> None:
    """As root, the old code renamed a regular file over a device node; here a private /dev/null node."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    write_bytes(node, b"x")
    assert stat.S_ISCHR(node.stat().st_mode) and temp_files(tmp_path) == []


def test_a_block_device_is_refused(tmp_path: Path) -> None:
    node = tmp_path / "disk"
    try:
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    with pytest.raises(OSError, match="block device"):
        write_bytes(node, b"x")
    assert stat.S_ISBLK(node.stat().st_mode)


def test_dev_stdout_redirected_to_a_file_is_written_through(tmp_path: Path) -> None:
    """The shell's file must keep its inode: renaming over it would leave the shell writing elsewhere."""
    out = tmp_path / "captured.txt"
    code = "from stocksent.atomic import write_bytes, write_target; import sys; "
    code += "assert write_target('/dev/stdout').kind == 'stream'; write_bytes('/dev/stdout', b'hello\\n')"
    with out.open("wb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        subprocess.run([sys.executable, "-c", code], stdout=handle, check=True, timeout=60)
    assert out.read_bytes() == b"hello\n" and out.stat().st_ino == inode
    assert temp_files(tmp_path) == []


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    stale = tmp_path / f".out.csv{TEMP_TAG}{dead_pid()}-abcd1234"
    alive = tmp_path / f".out.csv{TEMP_TAG}{os.getppid()}-abcd1234"  # a running process: maybe still writing
    other = tmp_path / f".other.csv{TEMP_TAG}{dead_pid()}-abcd1234"  # not this target's
    unrelated = tmp_path / ".out.csv.abcd.tmp"
    for path in (stale, alive, other, unrelated):
        path.write_text("partial")
    write_bytes(target, b"done")
    assert not stale.exists() and alive.exists() and other.exists() and unrelated.exists()
    assert remove_stale_temp_files(tmp_path / "other.csv") == [other]


def test_remove_temp_files_for_a_signal_handler(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path) as handle:
            handle.write("half")
            atomic.remove_temp_files()  # what a handler does before the interrupt unwinds the block
            assert temp_files(tmp_path) == []
            raise KeyboardInterrupt
    assert path.read_text() == "old" and temp_files(tmp_path) == [] and not atomic._live


def test_a_long_file_name_still_fits(tmp_path: Path) -> None:
    path = tmp_path / ("x" * 250)
    write_bytes(path, b"ok")
    assert path.read_bytes() == b"ok"


def test_read_only_file_is_refused_not_replaced(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may write any file")
    path = tmp_path / "ro.csv"
    path.write_text("keep")
    path.chmod(0o444)
    with pytest.raises(PermissionError):
        write_bytes(path, b"x")
    assert path.read_text() == "keep"
