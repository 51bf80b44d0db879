"""Portable-noise backends: one interface, chosen in one place (:func:`select`).

A backend fills a flat output buffer with the portable normals of a :class:`Job`: the runs of consecutive counter
indices that a :class:`~flowsched.backends.layout.Layout` cuts a region into, the Philox key, the stream and the
sample word of each batch position. Every backend gives the same bits (``docs/portable-noise.md``); nothing else in
the library changes when one is added. One module per backend, imported only when it is used:

=========  =====================  =====================================================================
name       runs on                needs
=========  =====================  =====================================================================
numpy      CPU (host)             nothing: numpy ufuncs on cache-sized chunks, on a thread pool
numba      CPU (host)             numba (``pip install 'flowsched[fast]'``): one compiled kernel, thread pool
torch      any torch device       nothing: torch operations in chunks
triton     CUDA                   triton (CUDA builds of torch bring it) and a CUDA device: one fused kernel
=========  =====================  =====================================================================

A *host* backend generates on the CPU; for another device the result is copied there. ``"auto"`` picks, in this order:

* on a CUDA device, triton when it imports and its kernel passes a self-check on that device (a few thousand values
  against the numpy reference, once per device and process: :mod:`flowsched.backends.selfcheck`), else torch, with a
  warning that names the check that failed;
* on the CPU, numba when it imports, unless the region holds fewer than :data:`AUTO_NUMBA_MIN_VALUES` values and
  numba's kernel has not run yet in this process (its first call costs more than numpy spends on such a region),
  else numpy;
* on any other device, torch.

This package needs only numpy; torch, numba and triton are imported by the backends that use them.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layout import Layout

__all__ = [
    "AUTO_NUMBA_MIN_VALUES",
    "AUTO_ORDER",
    "AUTO_OTHER",
    "CHOICES",
    "NAMES",
    "Backend",
    "BackendStatus",
    "Job",
    "available",
    "default_threads",
    "get",
    "select",
]

#: Backend names, in the order :func:`available` lists them.
NAMES = ("numpy", "numba", "torch", "triton")
#: What ``portable_noise(..., backend=...)`` accepts.
CHOICES = ("auto", *NAMES)
_MODULES = {"numpy": "numpy_ops", "numba": "numba_cpu", "torch": "torch_ops", "triton": "triton_cuda"}
#: ``"auto"``: the first backend of the device type's list that can run.
AUTO_ORDER = {"cpu": ("numba", "numpy"), "cuda": ("triton", "torch")}
AUTO_OTHER = ("torch",)
#: ``"auto"`` takes numba for a region of at least this many values, or once numba's kernel has run in the process.
#: numba's first call in a process costs about 0.6 s (``import numba`` and loading the compiled kernel from its
#: cache), the numpy backend 15-25 ns per value, numba 3.5-5 ns (2-core AMD EPYC, ``benchmarks/noise.py
#: --auto-threshold``): cold numba breaks even near 5e7 values, and the 768px 129-frame latent (4.9e6 values) takes
#: 0.08 s with numpy against 0.6 s with a cold numba.
AUTO_NUMBA_MIN_VALUES = 48 * 2**20


def default_threads() -> int:
    """CPU threads for the host backends: ``FLOWSCHED_THREADS`` if set, else the usable cores (at most 8)."""
    raw = os.environ.get("FLOWSCHED_THREADS")
    if raw is not None:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"the environment variable FLOWSCHED_THREADS must be a positive integer, got {raw!r}")
        return value
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


@dataclass(frozen=True)
class Job:
    """What to generate: the runs of ``layout`` for the Philox ``key`` and ``stream``.

    ``sample_words[b]`` is counter word 2 (the sample index) of batch position ``b``. ``threads`` and ``chunk`` tune
    the CPU backends (``None``: their defaults) and never change a value; ``progress`` is called with the number of
    elements finished, as they finish.
    """

    layout: Layout
    key: tuple[int, int]
    sample_words: np.ndarray
    stream: int
    threads: int | None = None
    chunk: int | None = None
    progress: Callable[[int], None] | None = None

    def run_table(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``int64`` counter index of the first element of runs ``first .. first + count - 1``, and their sample
        words: what a kernel needs to place any output element (element ``j`` of the group is ``j % run_length``
        past the start of run ``j // run_length``)."""
        batch, starts = self.layout.runs(first, count)
        return starts, np.ascontiguousarray(np.asarray(self.sample_words, dtype=np.int64)[batch])

    def done(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)


class Backend:
    """What a backend provides. Subclasses set the class attributes and implement :meth:`generate`."""

    name = ""
    #: True: runs on the CPU, and serves other devices by copying its result there.
    host = True
    #: True: a compiled device kernel that must pass :func:`flowsched.backends.selfcheck.check` on a device before
    #: it is used there.
    self_checked = False
    #: Set once the backend has generated in this process (its start-up cost is paid).
    warm = False
    #: device types it writes to directly (None: any torch device).
    device_types: tuple[str, ...] | None = ("cpu",)

    def missing(self) -> str | None:
        """Why this backend cannot run on this machine at all (a package that does not import), or None."""
        return None

    def refuses(self, device: Any) -> str | None:
        """Why this backend cannot serve the torch ``device`` (beyond :meth:`missing`), or None."""
        return None

    def version(self) -> str:
        """What it runs on, for :func:`available` (e.g. ``"numba 0.68.1"``)."""
        return ""

    def generate(self, job: Job, out: Any) -> None:
        """Fill ``out``, a flat C-contiguous torch tensor of ``job.layout.numel`` values in any floating dtype on a
        device this backend serves (the CPU for a host backend), with the job's normals: float32 values, cast."""
        raise NotImplementedError


_LOADED: dict[str, Backend] = {}


def get(name: str) -> Backend:
    """The backend called ``name`` (one of :data:`NAMES`), importing its module on first use."""
    if name not in _MODULES:
        raise ValueError(f"backend must be one of {', '.join(map(repr, CHOICES))}; got {name!r}")
    if name not in _LOADED:
        _LOADED[name] = importlib.import_module(f"{__name__}.{_MODULES[name]}").BACKEND
    return _LOADED[name]


def _problem(backend: Backend, device: Any) -> str | None:
    why = backend.missing()
    if why is None and not backend.host:
        why = backend.refuses(device)
    return why


def select(name: Any, device: Any, numel: int | None = None) -> Backend:
    """The backend that ``portable_noise(..., backend=name, device=device)`` uses for a region of ``numel`` values:
    the one place where a backend is chosen (the rules of ``"auto"``: the module docstring). ``name`` is one of
    :data:`CHOICES`; ``device`` a ``torch.device``. An explicit backend that cannot serve ``device`` on this machine
    is a ``ValueError`` saying what to install or use instead; an explicit device kernel that fails its self-check
    on ``device`` a ``RuntimeError``."""
    if not isinstance(name, str) or name not in CHOICES:
        raise ValueError(f"backend must be one of {', '.join(map(repr, CHOICES))}; got {name!r}")
    if name == "auto":
        return _auto(device, numel)
    backend = get(name)
    why = _problem(backend, device)
    if why is not None:
        raise ValueError(f"backend={name!r} cannot run here: {why}")
    failure = _self_check(backend, device)
    if failure is not None:
        raise RuntimeError(
            f"backend={name!r} failed its self-check on {device}: {failure}. Use backend='torch' (the same values, "
            "slower) or 'auto', and please report this with your GPU, driver and Triton versions"
        )
    return backend


def _auto(device: Any, numel: int | None) -> Backend:
    for candidate in AUTO_ORDER.get(device.type, AUTO_OTHER):
        if candidate == "numba" and numel is not None and numel < AUTO_NUMBA_MIN_VALUES and not _is_warm(candidate):
            continue  # importing numba and loading its kernel would cost more than numpy spends on this region
        backend = get(candidate)
        if _problem(backend, device) is not None:
            continue
        failure = _self_check(backend, device)
        if failure is None:
            return backend
        key = (candidate, _device_key(device))
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(
                f"portable noise: the {candidate} kernel failed its self-check on {device} ({failure}); "
                f"backend='auto' uses the next backend on this device instead (the same values, slower). Please "
                "report this with your GPU, driver and Triton versions",
                RuntimeWarning,
                stacklevel=4,
            )
    raise RuntimeError(f"no portable-noise backend serves device {device}")  # pragma: no cover - torch always does


def _is_warm(name: str) -> bool:
    return name in _LOADED and _LOADED[name].warm


#: Self-check results per (backend, device): None for a pass, else what failed. Checked once per process.
_VERDICTS: dict[tuple[str, str], str | None] = {}
_WARNED: set[tuple[str, str]] = set()


def _device_key(device: Any) -> str:
    if device.type == "cuda" and device.index is None:
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def _self_check(backend: Backend, device: Any) -> str | None:
    """None when ``backend`` may be used on ``device`` (no self-check needed, or it passed), else what failed."""
    if not backend.self_checked:
        return None
    key = (backend.name, _device_key(device))
    if key not in _VERDICTS:
        from .selfcheck import check

        _VERDICTS[key] = check(backend, device)
    return _VERDICTS[key]


@dataclass(frozen=True)
class BackendStatus:
    """One line of :func:`available`: whether ``name`` runs on this machine, where, and what with or why not."""

    name: str
    available: bool
    devices: str
    detail: str

    def __str__(self) -> str:
        state = "available" if self.available else "unavailable"
        return f"{self.name:7s} {state:11s} {self.devices:18s} {self.detail}"


def available() -> dict[str, BackendStatus]:
    """Every backend's status on this machine (imports numba and triton to find out whether they work)."""
    import torch

    cuda = torch.device("cuda")
    statuses = {}
    for name in NAMES:
        backend = get(name)
        why = backend.missing()
        if why is None and not backend.host:
            why = backend.refuses(cuda)
        devices = "any torch device" if backend.device_types is None else ", ".join(backend.device_types)
        if backend.host:
            devices += " (host)"
        statuses[name] = BackendStatus(name, why is None, devices, backend.version() if why is None else why)
    return statuses
