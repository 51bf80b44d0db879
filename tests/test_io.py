"""flowsched._io: atomic writes keep what a plain open() would keep (mode, symlinks), replace only regular files,
leave nothing behind on failure, and never touch the process-wide umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pytest

from flowsched._io import TEMP_PREFIX, atomic_write_bytes, atomic_write_text


@pytest.fixture
def no_umask(monkeypatch):
    """os.umask is process-wide: reading it means setting it, which races with other threads. Forbid it."""

    def forbidden(*_):
        raise AssertionError("atomic_write_bytes changed the process umask")

    monkeypatch.setattr(os, "umask", forbidden)


def leftovers(folder):
    return [p for p in os.listdir(folder) if p.startswith(TEMP_PREFIX)]


def test_new_file_gets_the_mode_open_would_give():
    # Run in a child with a known umask: the kernel applies it to 0o666, as for open(path, "w").
    code = (
        "import os, stat, sys, tempfile\n"
        "from flowsched._io import atomic_write_bytes\n"
        "os.umask(0o027)\n"
        "d = tempfile.mkdtemp()\n"
        "atomic_write_bytes(os.path.join(d, 'new.bin'), b'x')\n"
        "with open(os.path.join(d, 'plain.bin'), 'wb'): pass\n"
        "print(oct(stat.S_IMODE(os.stat(os.path.join(d, 'new.bin')).st_mode)),"
        " oct(stat.S_IMODE(os.stat(os.path.join(d, 'plain.bin')).st_mode)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0o640", "0o640"]


def test_existing_file_keeps_its_mode(tmp_path, no_umask):
    path = tmp_path / "keep.json"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    atomic_write_text(path, "newer")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_creates_missing_folders(tmp_path, no_umask):
    atomic_write_bytes(tmp_path / "a" / "b" / "c.bin", b"abc")
    assert (tmp_path / "a" / "b" / "c.bin").read_bytes() == b"abc"


def test_symlink_is_followed_not_replaced(tmp_path, no_umask):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "created.txt")
    atomic_write_text(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "created.txt").read_text() == "made"


def test_refuses_what_is_not_a_regular_file(tmp_path, no_umask):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    for target, kind in ((fifo, "a FIFO"), (folder, "a folder")):
        with pytest.raises(ValueError, match=f"is {kind}, not a regular file"):
            atomic_write_bytes(target, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and folder.is_dir() and not leftovers(tmp_path)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ValueError, match="cannot write .*No space left on device"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and not leftovers(tmp_path)


def test_an_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "f.bin", b"new")
    assert not (tmp_path / "f.bin").exists() and not leftovers(tmp_path)


def test_threads_writing_one_file_leave_one_whole_version(tmp_path, no_umask):
    path = tmp_path / "shared.bin"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write_bytes, args=(path, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in payloads and not leftovers(tmp_path)
