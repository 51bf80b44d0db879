"""Atomic file writes (a temporary file in the target folder, then ``os.replace``: never half-written), and the one
place a safetensors file is read.

Only regular files are replaced. An existing directory, device node, FIFO or socket at the target is refused,
because ``os.replace`` would otherwise swap it for a regular file (``/dev/full`` replaced by JSON when run as
root). A symbolic link is followed: the file it points to is replaced, as ``open(path, "w")`` would write it.

Permissions are those a plain ``open(path, "w")`` gives: an existing file keeps its mode; a new file is created
with mode ``0o666`` and the kernel applies the umask. The process-wide umask is never read or changed, so writes
from several threads cannot race on it.
"""

from __future__ import annotations

import os
import stat

__all__ = [
    "TEMP_PREFIX",
    "atomic_write_bytes",
    "atomic_write_text",
    "json_text",
    "load_json",
    "read_safetensors_tensor",
    "resolve_target",
]

#: Temporary files are named ``.flowsched-<random>.tmp`` in the target's folder (same file system: atomic rename).
TEMP_PREFIX = ".flowsched-"

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def resolve_target(path: str | os.PathLike) -> tuple[str, os.stat_result | None]:
    """``(file to replace, its stat or None when it does not exist)`` for an output ``path``.

    Symbolic links are followed (a dangling one names the file to create). Raises ``ValueError`` naming ``path``
    when something other than a regular file is there.
    """
    path = os.fspath(path)
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target, None
    except OSError as exc:
        raise ValueError(f"cannot write {path!r}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        hint = "; give a file name" if stat.S_ISDIR(st.st_mode) else "; refusing to replace it"
        raise ValueError(f"output path {path!r} is {_kind(st.st_mode)}, not a regular file{hint}")
    return target, st


def _create_temp(folder: str) -> tuple[int, str]:
    """A new, empty temporary file in ``folder``, created ``0o666`` minus the umask by the kernel."""
    for _ in range(100):
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{os.urandom(6).hex()}.tmp")  # O_EXCL below: no reuse
        try:
            return os.open(tmp, _OPEN_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder!r}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent folders.

    Raises ``ValueError`` naming the path when it cannot be written or names something other than a regular file
    (no partial file is left behind, and nothing at ``path`` is changed).
    """
    path = os.fspath(path)
    target, existing = resolve_target(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the folder {folder!r} for {path!r}: {exc.strerror}") from None
    try:
        fd, tmp = _create_temp(folder)
    except OSError as exc:
        raise ValueError(f"cannot write {path!r}: {exc.strerror} (is the folder writable?)") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if existing is not None:  # keep the mode of the file being replaced, as open(path, "w") would
                os.chmod(tmp, stat.S_IMODE(existing.st_mode))
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ValueError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_safetensors_tensor(path: str | os.PathLike, key: str | None = None, *, key_name: str = "key") -> tuple:
    """One tensor of a ``.safetensors`` file (only safetensors is read, never pickle), as a CPU torch tensor.

    ``key`` picks the tensor; ``None`` takes the only one and is an error when the file holds several. Errors are
    ``ValueError``s naming the path, the tensors it holds and ``key_name`` (the argument that picks one, e.g.
    ``"--init-key"``), so a command can print them as they are. Returns ``(key, tensor)``.
    """
    path = os.fspath(path)
    if not path.lower().endswith(".safetensors"):
        raise ValueError(f"{path!r} must be a .safetensors file (pickle is never read)")
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} is not a file")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as fh:
            keys = list(fh.keys())
            if key is None:
                if len(keys) != 1:
                    raise ValueError(f"{path!r} holds tensors {keys}; choose one with {key_name}")
                key = keys[0]
            elif key not in keys:
                raise ValueError(f"{key_name} {key!r} is not in {path!r}; it holds {keys}")
            return key, fh.get_tensor(key)
    except (OSError, RuntimeError, SafetensorError) as exc:  # missing, unreadable or corrupt files
        raise ValueError(f"{path!r} cannot be read as safetensors: {' '.join(str(exc).split())}") from None


def json_text(document: object, path: str | os.PathLike | None = None, *, indent: int | None = None) -> str:
    """``document`` as JSON text (Python's float repr, so floats round-trip exactly); with ``path``, also written
    there atomically (with a final newline). Returns the text."""
    import json

    text = json.dumps(document, indent=indent)
    if path is not None:
        atomic_write_text(path, text + "\n")
    return text


def load_json(text_or_path: str | os.PathLike, what: str, starts: tuple[str, ...] = ("{",)) -> object:
    """The JSON value in ``text_or_path``: the text itself when it starts with one of ``starts`` (after spaces),
    else the content of that file. ``ValueError`` naming ``what`` (``"schedule"``) for an unreadable file or
    invalid JSON."""
    import json

    text = str(text_or_path)
    if not text.lstrip().startswith(starts):
        try:
            with open(text_or_path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"cannot read {what} file {str(text_or_path)!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} JSON is invalid: {exc}") from None
