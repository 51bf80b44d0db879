"""Output files of the commands: every path is checked before any work, then written atomically.

A command calls :func:`check_outputs` first with all its output options, so a refused invocation (a bad suffix,
an unwritable folder, a device or FIFO at the path, two options naming one file) writes nothing at all.

One rule for every command: the file name's suffix picks the format among those the option can write (``plan
--out`` and ``noise --out``: ``.safetensors``; ``schedule --out``: ``.json`` or ``.csv``; ``optimize --out``:
``.json``; figures: ``.png``, ``.svg``, ``.pdf``), and any other suffix is refused up front. A data file named
without a suffix gets the option's first format; a figure needs its suffix.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

from ._common import CliError

__all__ = [
    "SAFETENSORS",
    "STDOUT",
    "check_outputs",
    "image_suffixes",
    "Output",
    "save_safetensors",
    "write_text",
]

#: ``--out -`` / ``--plot -``: write to standard output (text outputs only).
STDOUT = "-"
#: The suffix of the tensor files ``plan`` and ``noise`` write.
SAFETENSORS = (".safetensors",)


class Output(NamedTuple):
    """One output option of a command: its value, its flag, the suffixes of the formats it writes, whether it is
    text (then ``-`` means standard output) and whether a name without a suffix is accepted (it gets the first
    format)."""

    path: str | None
    flag: str
    suffixes: tuple[str, ...]
    text: bool = False
    bare: bool = False


def image_suffixes() -> tuple[str, ...]:
    """The suffixes matplotlib figures can be written as (flowsched.plot picks the format by suffix)."""
    from ..plot import FORMATS

    return tuple("." + f for f in FORMATS)


def _probe_folder(path: str, flag: str) -> None:
    """The nearest existing folder on the way to ``path`` must accept a new file (probed for real, so read-only
    mounts and special file systems are caught too); missing folders below it are created at write time."""
    import tempfile

    probe = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise CliError(f"{flag} {path!r} cannot be written: {probe!r} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise CliError(f"{flag} {path!r} cannot be written: {probe!r} does not accept files ({exc.strerror})") from None


def check_output(out: Output) -> str | None:
    """Fail before any work when ``out`` cannot be written; return the real file it will replace (symbolic links
    followed), ``"-"`` for standard output, or None when the option is unset."""
    path, flag = out.path, out.flag
    if path is None:
        return None
    if path == STDOUT:
        if not out.text:
            raise CliError(f"{flag} - (standard output) is only for text outputs; give a file name")
        return STDOUT
    if not path.strip():
        raise CliError(f"{flag} needs a file name, got {path!r}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in out.suffixes and not (out.bare and not suffix):
        ends = out.suffixes[0] if len(out.suffixes) == 1 else f"one of {', '.join(out.suffixes)}"
        raise CliError(f"{flag} must end in {ends} (the file format), got {path!r}")
    from .._io import resolve_target

    try:
        target, _ = resolve_target(path)
    except ValueError as exc:
        raise CliError(f"{flag}: {exc}") from None
    _probe_folder(target, flag)
    return os.path.realpath(target)


def check_outputs(*outputs: Output) -> None:
    """:func:`check_output` for each, and no two options naming the same file."""
    seen: dict[str, str] = {}
    for out in outputs:
        real = check_output(out)
        if real is None:
            continue
        if real in seen:
            what = "standard output" if real == STDOUT else repr(out.path)
            raise CliError(f"{seen[real]} and {out.flag} both write to {what}; give each its own file")
        seen[real] = out.flag


def write_text(path: str, text: str) -> None:
    """``text`` to ``path`` atomically, or to standard output for ``-``."""
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .._io import atomic_write_text

    atomic_write_text(path, text)


def save_safetensors(path: str, tensors: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Write tensors + string metadata to ``path`` atomically."""
    from safetensors.torch import save

    from .._io import atomic_write_bytes

    data = save(
        {k: t.contiguous().cpu() for k, t in tensors.items()}, metadata={k: str(v) for k, v in metadata.items()}
    )
    atomic_write_bytes(path, data)
