"""Atomic file writes: a temporary file in the target folder, then ``os.replace``. Never half-written."""

from __future__ import annotations

import os
import tempfile


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent folders.

    Raises ``ValueError`` naming the path when it cannot be written (no partial file is left behind).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the folder {folder!r} for {path!r}: {exc.strerror}") from None
    if os.path.isdir(path):
        raise ValueError(f"output path {path!r} is a folder; give a file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".flowsched-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ValueError(f"cannot write {path!r}: {exc.strerror} (is the folder writable?)") from None
    try:
        # mkstemp creates the file 0600; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ValueError(f"cannot write {path!r}: {exc.strerror}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
