"""Schedules over frames: each sampler step is a row of per-frame ``t`` (diffusion forcing, autoregressive video).

Convention (as for :class:`~flowsched.schedule.Schedule`): ``t = 1`` is noise, ``t = 0`` is data,
``x_t = (1 - t) x0 + t eps``, the model predicts ``v = eps - x0``. A :class:`FrameSchedule` holds

- ``t``: float64 ``[R + 1, F]``; row ``r`` is every latent frame's ``t`` before step ``r``, and step ``r`` moves frame
  ``f`` from ``t[r, f]`` to ``t[r + 1, f]``. A frame that does not move keeps its value.
- ``update``: bool ``[R, F]``, the frames step ``r`` moves (``t[r + 1, f] < t[r, f]``).
- ``index``: int ``[R + 1, F]`` into the ``base`` schedule: ``t = base.t[index]``, except for prefix frames.
- ``prefix_frames``: the first ``P`` frames are given data (the image or video being continued), held at the level
  ``t[:, :P] = prefix_level`` for the whole run (index ``N``: they are data); ``prefix_noise`` says whether a sampler
  feeds them to the model noised to that level with fresh noise each step (SkyReels-V2's ``addnoise_condition``) or
  clean with that timestep (MAGI-1's ``clean_t``).
- ``window``: int ``[R, 2]``, the frames ``[start, end)`` the model sees at step ``r`` (SkyReels-V2's valid interval,
  the causal window of block-autoregressive models; ``(0, F)`` when the model sees everything).

Every family below is one base schedule plus an integer index matrix; each is exact to the code of its source
(the commit is named in each docstring, the tests compare against values recorded from that code). This module
holds the value and the families only: :func:`flowsched.sampling.euler_frames` samples a frame schedule,
:func:`flowsched.spec.frame_schedule_from_spec` reads one from a line of text (presets included: their data is
:data:`flowsched.presets.FRAME_PRESETS`), :mod:`flowsched.plot` draws one. numpy only; it imports nothing of
flowsched above :mod:`flowsched.diffusers_rules` (Wan's solver grid, which SkyReels-V2 shares). The facts these
functions rely on are written down in ``docs/frames.md``.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validate import boolean, is_int, nonnegative_int, positive_int, positive_real, real
from .diffusers_rules import flow_sigmas
from .schedule import Schedule, check_name_params, format_params
from .schedules import shifted
from .shift import time_shift, time_shift_peer

FORMAT = "flowsched.frame_schedule"
FORMAT_VERSION = 1

#: Refuse to build matrices with more cells than this (rows times frames); a typo such as 10**6 frames should not
#: fill the memory. Raise it with the ``max_cells`` argument of the families.
MAX_CELLS = 50_000_000

__all__ = [
    "MAX_CELLS",
    "SPEC_KEYS",
    "FrameSchedule",
    "autoregressive",
    "blockwise",
    "blockwise_base",
    "diffusion_forcing",
    "full_sequence",
    "magi_base",
    "pyramid",
    "skyreels_base",
    "staircase",
    "to_skyreels",
]


def _int_matrix(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.array(value, copy=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 2-D array of integers: {exc}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


# -- the value type ------------------------------------------------------------------------------------------------


def _need_base(base: Any) -> Schedule:
    """``base`` if it is a :class:`Schedule` decreasing from noise to data (every frame walks it)."""
    if not isinstance(base, Schedule):
        raise TypeError(f"base must be a flowsched Schedule (e.g. schedules.shifted(30, 5)), got {type(base).__name__}")
    if not base.t[0] > base.t[-1]:
        raise ValueError(
            f"base must decrease from noise to data (t = 1 -> 0), got t_0={base.t[0]!r} and t_N={base.t[-1]!r}; "
            "invert() an inverted schedule first"
        )
    return base


def _check_index(value: Any, n: int) -> np.ndarray:
    """int ``[R + 1, F]``, each column non-decreasing in ``[0, n]``."""
    index = _int_matrix("index", value)
    if index.ndim != 2 or index.shape[0] < 2 or index.shape[1] < 1:
        raise ValueError(f"index must have shape [R + 1, F] with R >= 1 and F >= 1, got {index.shape}")
    out = np.argwhere((index < 0) | (index > n))
    if out.size:
        r, f = (int(v) for v in out[0])
        raise ValueError(
            f"index must lie in [0, {n}] (the base schedule has {n} steps), got {int(index[r, f])} at row {r}, "
            f"frame {f}"
        )
    back = np.argwhere(np.diff(index, axis=0) < 0)
    if back.size:
        r, f = (int(v) for v in back[0])
        raise ValueError(
            f"index must not decrease down a column (a frame never goes back to more noise): frame {f} goes "
            f"from index {int(index[r, f])} at row {r} to {int(index[r + 1, f])} at row {r + 1}"
        )
    return index


def _check_prefix(index: np.ndarray, prefix_frames: Any, prefix_level: Any, n: int) -> tuple[int, float]:
    """``(P, level)``: fewer prefix frames than frames, each at index ``n`` (data) in every row; level in [0, 1)."""
    p = nonnegative_int("prefix_frames", prefix_frames)
    frames = index.shape[1]
    if p >= frames:
        raise ValueError(
            f"prefix_frames must be smaller than the number of frames ({frames}) so that something is generated, "
            f"got {p}"
        )
    if p and np.any(index[:, :p] != n):
        f = int(np.flatnonzero(np.any(index[:, :p] != n, axis=0))[0])
        raise ValueError(f"prefix frame {f} must have index {n} (data) in every row, got {index[:, f].tolist()}")
    level = real("prefix_level", prefix_level)
    if not 0.0 <= level < 1.0:
        raise ValueError(f"prefix_level must lie in [0, 1) (t of the given frames), got {level}")
    return p, level


def _check_window(value: Any, update: np.ndarray) -> np.ndarray:
    """int ``[R, 2]`` rows ``[start, end)`` holding every frame its step moves; ``None`` is ``(0, F)``."""
    rows, frames = update.shape
    if value is None:
        return np.tile(np.array([0, frames], dtype=np.int64), (rows, 1))
    window = _int_matrix("window", value)
    if window.shape != (rows, 2):
        raise ValueError(f"window must have shape [R, 2] = [{rows}, 2], got {window.shape}")
    bad = np.flatnonzero((window[:, 0] < 0) | (window[:, 1] > frames) | (window[:, 0] >= window[:, 1]))
    if bad.size:
        r = int(bad[0])
        raise ValueError(
            f"window rows must be [start, end) with 0 <= start < end <= {frames}, got {window[r].tolist()} "
            f"at step {r}"
        )
    cols = np.arange(frames)
    outside = update & ((cols[None, :] < window[:, :1]) | (cols[None, :] >= window[:, 1:]))
    if outside.any():
        r, f = (int(v) for v in np.argwhere(outside)[0])
        raise ValueError(
            f"step {r} moves frame {f}, which lies outside its window {window[r].tolist()}: the model "
            "does not see that frame"
        )
    return window


@dataclass(frozen=True, eq=False)
class FrameSchedule:
    """An immutable per-frame schedule: a base :class:`Schedule`, an index matrix into it and prefix frames.

    Args:
        base: the 1-D schedule (``N + 1`` values, decreasing) every frame walks.
        index: int ``[R + 1, F]``, each column non-decreasing in ``[0, N]`` (a frame never goes back to more noise);
            prefix columns must be ``N`` (they are data).
        prefix_frames: ``P``, the first ``P`` frames are given data held at ``prefix_level``.
        prefix_level: their ``t`` in ``[0, 1)`` (``0``: clean).
        prefix_noise: ``True``: a sampler feeds prefix frames to the model as ``(1 - l) x + l eps`` with fresh
            ``eps`` each step; ``False``: it feeds them clean, with timestep ``l``. Irrelevant when ``l = 0``.
        window: int ``[R, 2]``: the frames ``[start, end)`` the model sees at each step; ``None`` is ``(0, F)``.
            Every frame a step moves must lie in its window.
        name, params: the family and the parameters that made it (JSON-ready values).

    Derived attributes: ``t`` (float64 ``[R + 1, F]``), ``update`` (bool ``[R, F]``), ``num_steps`` (``R``, the model
    calls), ``num_frames`` (``F``). All arrays are read-only.
    """

    base: Schedule
    index: np.ndarray
    prefix_frames: int = 0
    prefix_level: float = 0.0
    prefix_noise: bool = True
    window: np.ndarray | None = None
    name: str = "custom"
    params: Mapping[str, Any] = field(default_factory=dict)
    t: np.ndarray = field(init=False, repr=False)
    update: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        base = _need_base(self.base)
        index = _check_index(self.index, base.num_steps)
        p, level = _check_prefix(index, self.prefix_frames, self.prefix_level, base.num_steps)
        prefix_noise = boolean("prefix_noise", self.prefix_noise)
        t = base.t[index]
        t[:, :p] = level
        update = t[1:] < t[:-1]
        window = _check_window(self.window, update)
        params = check_name_params(self.name, self.params)
        for arr in (index, t, update, window):
            arr.setflags(write=False)
        fields = {"index": index, "prefix_frames": p, "prefix_level": level, "prefix_noise": prefix_noise,
                  "window": window, "params": params, "t": t, "update": update}
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    # -- views ---------------------------------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """``R``: sampler steps, i.e. model calls (one per row)."""
        return int(self.t.shape[0] - 1)

    @property
    def num_frames(self) -> int:
        """``F``: latent frames."""
        return int(self.t.shape[1])

    def model_timesteps(self, scale: float = 1000.0) -> np.ndarray:
        """float64 ``[R, F]``: the per-frame timesteps fed to the model at each step.

        Each frame is fed what the base's rule feeds at the frame's index (:meth:`Schedule.model_timesteps`:
        ``t * scale`` unless the rule records other timesteps, e.g. the integer steps CausVid and Self-Forcing
        feed without ``warp_denoising_step``); a frame at the end of the base (clean) gets ``base.t[N] * scale``
        and a given frame ``prefix_level * scale``. For a base without recorded timesteps this is
        ``t[:-1] * scale``.
        """
        scale = positive_real("scale", scale)
        fed = np.append(self.base.model_timesteps(scale), self.base.t[-1] * scale)
        out = fed[self.index[:-1]]
        out[:, : self.prefix_frames] = self.prefix_level * scale
        return out

    def steps_per_frame(self) -> np.ndarray:
        """int ``[F]``: how many steps move each frame (0 for prefix frames)."""
        return self.update.sum(axis=0).astype(np.int64)

    def frame(self, f: int) -> Schedule:
        """The 1-D schedule frame ``f`` visits (its start and every value a step moves it to)."""
        if not is_int(f):
            raise TypeError(f"f must be a frame index (an integer), got {f!r}")
        if not -self.num_frames <= f < self.num_frames:
            raise ValueError(f"f must be a frame index in [0, {self.num_frames}), got {f}")
        f = int(f) % self.num_frames
        col = self.t[:, f]
        moves = self.update[:, f]
        if not moves.any():
            what = "a prefix frame" if f < self.prefix_frames else "never moved"
            raise ValueError(f"frame {f} is {what}: it stays at t={col[0]!r} and visits no schedule")
        values = np.concatenate([col[:1], col[1:][moves]])
        return Schedule(values, name=self.name, params={"frame": f})

    def spec(self) -> str | None:
        """The one-line spec that :func:`flowsched.spec.frame_schedule_from_spec` turns back into this schedule,
        ``FAMILY:key=value,...`` with the spec's keys (``steps``, ``alpha``, ``frames``, ``chunks``, ``blocks`` ...;
        lists ``;``-separated, floats exact); ``None`` when no spec builds it (a hand-made index, or a family run on
        a base other than the one its spec builds: save those with :meth:`to_json`)."""
        return _spec_of(self)

    def describe(self) -> str:
        """One line: the spec (:meth:`spec`, else the family and its parameters), model calls ``R``, frames ``F``."""
        spec = self.spec()
        head = spec if spec is not None else f"{self.name}({format_params(self.params)}) on base {self.base.name}"
        return f"{head} R={self.num_steps} F={self.num_frames}"

    def __str__(self) -> str:
        """The spec (:meth:`spec`) when there is one, else :meth:`describe`."""
        spec = self.spec()
        return spec if spec is not None else self.describe()

    def __repr__(self) -> str:
        return f"FrameSchedule({self.describe()})"

    # -- JSON ----------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "params": dict(self.params),
            "num_steps": self.num_steps,
            "num_frames": self.num_frames,
            "base": self.base.to_dict(),
            "index": self.index.tolist(),
            "prefix_frames": self.prefix_frames,
            "prefix_level": self.prefix_level,
            "prefix_noise": self.prefix_noise,
            "window": self.window.tolist(),
            "t": self.t.tolist(),
            "update": self.update.tolist(),
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = None) -> str:
        """Serialise (floats round-trip exactly; ``t`` and ``update`` are written for readers and checked on
        load). With ``path``, also write the file atomically."""
        from ._io import json_text

        return json_text(self.to_dict(), path, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrameSchedule:
        if not isinstance(data, Mapping):
            raise TypeError(f"a frame schedule document must be a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(f"not a flowsched frame schedule: format is {data.get('format')!r}, expected {FORMAT!r}")
        missing = [k for k in ("base", "index") if k not in data]
        if missing:
            raise ValueError(f"a frame schedule document needs the key {missing[0]!r}")
        fs = cls(
            base=Schedule.from_dict(data["base"]),
            index=data["index"],
            prefix_frames=data.get("prefix_frames", 0),
            prefix_level=data.get("prefix_level", 0.0),
            prefix_noise=data.get("prefix_noise", True),
            window=data.get("window"),
            name=data.get("name", "custom"),
            params=data.get("params", {}),
        )
        for key, mine in (("t", fs.t), ("update", fs.update)):
            if key in data and not np.array_equal(np.asarray(data[key]), mine):
                raise ValueError(f"frame schedule document: its {key!r} does not match base, index and prefix")
        return fs

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> FrameSchedule:
        """Load from a JSON string or a file path written by :meth:`to_json`."""
        from ._io import load_json

        return cls.from_dict(load_json(text_or_path, "frame schedule"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameSchedule):
            return NotImplemented
        return (
            self.base == other.base
            and np.array_equal(self.index, other.index)
            and self.prefix_frames == other.prefix_frames
            and self.prefix_level == other.prefix_level
            and self.prefix_noise == other.prefix_noise
            and np.array_equal(self.window, other.window)
            and self.name == other.name
            and dict(self.params) == dict(other.params)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.index.tobytes(), self.base.t.tobytes()))


# -- shared checks ---------------------------------------------------------------------------------------------------


#: bytes a frame schedule holds per cell: ``t`` (float64), ``index`` (int64) and ``update`` (bool)
_CELL_BYTES = 17


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.1f} MiB"


def _check_cells(rows: int, frames: int, max_cells: int | None) -> None:
    limit = MAX_CELLS if max_cells is None else positive_int("max_cells", max_cells)
    cells = rows * frames
    if cells > limit:
        raise ValueError(
            f"this frame schedule would have {rows} rows x {frames} frames = {cells} cells, above the limit "
            f"max_cells={limit} (about {_gib(cells * _CELL_BYTES)}); max_cells={cells} allows it"
        )


def _blocks_of(num_frames: int, block: int, block_name: str, family: str) -> int:
    """Whole blocks in ``num_frames``; too few frames is an error, a tail that does not fill a block a warning."""
    if num_frames < block:
        raise ValueError(
            f"num_frames={num_frames} is smaller than {block_name}={block}: {family} needs at least one whole block"
        )
    blocks = num_frames // block
    tail = num_frames - blocks * block
    if tail:
        warnings.warn(
            f"num_frames={num_frames} is not a multiple of {block_name}={block}: {family} keeps "
            f"{blocks * block} frames (whole blocks) and the last {tail} are never denoised; use num_frames="
            f"{blocks * block} or {(blocks + 1) * block}",
            stacklevel=3,
        )
    return blocks


def _prefix_blocks(prefix_frames: Any, block: int, blocks: int, block_name: str) -> int:
    p = nonnegative_int("prefix_frames", prefix_frames)
    if p % block:
        raise ValueError(
            f"prefix_frames={p} is not a multiple of {block_name}={block}: only whole blocks can be given data "
            f"(SkyReels-V2 truncates the prefix to {p // block * block} frames); pass prefix_frames="
            f"{p // block * block} or {(p // block + 1) * block}"
        )
    if p // block >= blocks:
        raise ValueError(
            f"prefix_frames={p} leaves nothing to generate: there are only {blocks * block} frames "
            f"({blocks} block(s) of {block}); prefix_frames must be smaller"
        )
    return p // block


def _expand(block_matrix: np.ndarray, block: int) -> np.ndarray:
    """Repeat every block column ``block`` times (block ``b`` covers frames ``[b * block, (b + 1) * block)``)."""
    return np.repeat(block_matrix, block, axis=1)


# -- SkyReels-V2 diffusion forcing -----------------------------------------------------------------------------------


def skyreels_base(num_steps: int, alpha: float = 8.0) -> Schedule:
    """SkyReels-V2's (and Wan 2.1's) ``FlowUniPCMultistepScheduler.set_timesteps(num_steps, shift=alpha)`` sigmas.

    ``s = linspace(sigma_max, 0, N + 1)[:-1]`` with ``sigma_max = float32(0.999)`` (0.9990000128746033, what
    the scheduler's ``__init__`` leaves), shifted by ``alpha * s / (1 + (alpha - 1) * s)`` in float64, then a
    terminal 0: Wan's grid, :func:`flowsched.diffusers_rules.flow_sigmas` with ``solver="wan"``. The scheduler
    stores these as float32 for its solver and feeds the model ``int64(s * 1000)`` (truncated): the schedule's
    recorded timesteps, so ``model_timesteps()`` of the base and of every frame schedule built on it return them.
    Source: SkyworkAI/SkyReels-V2 @abed76f, ``skyreels_v2_infer/scheduler/fm_solvers_unipc.py``;
    ``generate_video_df.py`` defaults: 30 steps, shift 8.
    """
    num_steps = positive_int("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    wan = flow_sigmas(num_steps, alpha, solver="wan")
    params = {"num_steps": num_steps, "alpha": alpha}
    return Schedule(wan.t, name="skyreels_v2_unipc", params=params, timesteps=wan.timesteps)


def _skyreels_rows(blocks: int, n: int, ar_step: int, prefix_blocks: int, max_rows: int) -> np.ndarray:
    """SkyReels-V2's row recursion at block level; returns ``[pre_0, new_0, new_1, ...]`` (``R + 1`` rows, values
    in ``[0, N + 1]``; ``N + 1`` marks prefix blocks and blocks already clean before the step)."""
    pre = np.zeros(blocks, dtype=np.int64)
    pre[:prefix_blocks] = n + 1
    rows = [pre]
    pos = np.arange(blocks)
    while not np.all(pre >= n):
        # new[i] = pre[i] + 1 where i == 0 or block i - 1 was clean before the step ("anchors"); otherwise
        # new[i] = new[i - 1] - ar_step on the unclamped chain, i.e. the last anchor's value minus ar_step per block.
        anchor = np.ones(blocks, dtype=bool)
        anchor[1:] = pre[:-1] >= n
        last = np.maximum.accumulate(np.where(anchor, pos, 0))
        new = pre[last] + 1 - ar_step * (pos - last)
        new = np.clip(new, 0, n + 1)
        rows.append(new)
        pre = new
        if len(rows) > max_rows + 1:  # pragma: no cover - the recursion always ends; this guards the loop
            raise ValueError(f"diffusion_forcing: more than {max_rows} rows; a larger max_cells allows more")
    return np.stack(rows)


def _df_window_blocks(window: int | None, cb: int, blocks: int, ar_step: int, n: int) -> int:
    """The blocks the model sees at once (``window`` frames; ``None``: all), with SkyReels-V2's condition that a
    block cannot leave a sliding window before it is clean."""
    if window is None:
        return blocks
    if window < cb:
        raise ValueError(f"window={window} is smaller than causal_block_size={cb}: the model would see no block")
    window_blocks = min(window // cb, blocks)
    if window_blocks < blocks and ar_step * window_blocks < n:
        raise ValueError(
            f"ar_step={ar_step} is too small for a sliding window of {window_blocks} block(s) over {n} steps: a "
            f"block would leave the window before it is clean; SkyReels-V2 requires ar_step >= "
            f"{math.ceil(n / window_blocks)}"
        )
    return window_blocks


def _df_intervals(mask: np.ndarray, window_blocks: int) -> np.ndarray:
    """SkyReels-V2's valid interval per step, in blocks: it starts at the window's block count and reaches one block
    further each step that moves the next block."""
    blocks = mask.shape[1]
    intervals = []
    end = window_blocks
    for row in mask:
        if end < blocks and row[end]:
            end += 1
        intervals.append((max(end - window_blocks, 0), end))
    return np.asarray(intervals, dtype=np.int64).reshape(-1, 2)


def _df_check_intervals(mask: np.ndarray, intervals: np.ndarray, window: int | None, pb: int, cb: int) -> None:
    """Every block a step moves lies in that step's interval. SkyReels-V2 returns such a matrix when the window is
    smaller than the prefix (its interval starts at block 0 whatever the prefix), and its pipeline would then never
    update that block; its pipeline never asks for it (window = all frames)."""
    cols = np.arange(mask.shape[1])
    outside = mask & ((cols[None, :] < intervals[:, :1]) | (cols[None, :] >= intervals[:, 1:]))
    if outside.any():
        r, b = (int(v) for v in np.argwhere(outside)[0])
        lo, hi = (int(v) * cb for v in intervals[r])
        raise ValueError(
            f"window={window} is too small for prefix_frames={pb * cb}: at step {r} frame {b * cb} moves while the "
            f"model's window is frames [{lo}, {hi}); SkyReels-V2 would never update it. Use window >= "
            f"{(pb + 1) * cb}"
        )


def diffusion_forcing(
    base: Schedule,
    num_frames: int,
    *,
    causal_block_size: int = 1,
    ar_step: int = 0,
    prefix_frames: int = 0,
    addnoise_condition: int = 0,
    window: int | None = None,
    max_cells: int | None = None,
) -> FrameSchedule:
    """SkyReels-V2's diffusion-forcing schedule (``DiffusionForcingPipeline.generate_timestep_matrix``).

    Frames are grouped in blocks of ``causal_block_size``; block ``b`` starts ``ar_step`` rows after block
    ``b - 1`` (``ar_step = 0``: synchronous, every frame on the same ``t``) or as soon as block ``b - 1`` is clean,
    whichever comes first. Without a prefix and with ``ar_step <= N`` that is ``index[r, b] = clip(r - b * ar_step,
    0, N)`` over ``N + (B - 1) * ar_step`` steps. Each step moves every started, unfinished block one base step.

    Args:
        base: the base schedule (SkyReels-V2: :func:`skyreels_base`).
        num_frames: latent frames ``F`` (SkyReels' video frames ``f`` give ``(f - 1) // 4 + 1``). If it is not a
            multiple of ``causal_block_size``, SkyReels-V2 keeps ``F // causal_block_size`` whole blocks and leaves the
            tail frames noise; so does this function, with a warning naming the frame count to use.
        causal_block_size: frames per block (SkyReels recommends 5 with ``ar_step = 5``).
        ar_step: rows between the starts of consecutive blocks (0: synchronous).
        prefix_frames: frames given as data (image-to-video, video extension), a whole number of blocks.
        addnoise_condition: SkyReels' ``k``: the prefix is fed to the model as ``x (1 - k / 1000) + (k / 1000) eps``
            with fresh noise each step, at timestep ``k`` (README: 20 recommended, at most 50); ``0``: clean.
        window: the model's frame budget (SkyReels' ``base_num_frames`` in latent frames; ``None``: all frames).
            When smaller than ``num_frames`` the model sees a sliding window (``FrameSchedule.window``) and
            ``ar_step`` must be at least ``N / (window // causal_block_size)``, as SkyReels asserts.
        max_cells: refuse schedules with more rows x frames than this (default :data:`MAX_CELLS`).

    Source: SkyworkAI/SkyReels-V2 @abed76f, ``skyreels_v2_infer/pipelines/diffusion_forcing_pipeline.py``
    (``generate_timestep_matrix``; ``__call__`` for ``addnoise_condition``). :func:`to_skyreels` returns the four
    matrices that function returns.
    """
    base = _need_base(base)
    num_frames = positive_int("num_frames", num_frames)
    cb = positive_int("causal_block_size", causal_block_size)
    ar_step = nonnegative_int("ar_step", ar_step)
    k = nonnegative_int("addnoise_condition", addnoise_condition)
    if k >= 1000:
        raise ValueError(f"addnoise_condition must be a timestep in [0, 1000) (SkyReels: 20, at most 50), got {k}")
    n = base.num_steps
    blocks = _blocks_of(num_frames, cb, "causal_block_size", "SkyReels-V2 diffusion forcing")
    pb = _prefix_blocks(prefix_frames, cb, blocks, "causal_block_size")
    if k and not pb:
        raise ValueError(f"addnoise_condition={k} noises the prefix frames, but prefix_frames is 0")
    window = None if window is None else positive_int("window", window)
    window_blocks = _df_window_blocks(window, cb, blocks, ar_step, n)
    # Rows: at most N per block plus the offsets (bounded by N each); check the size before building.
    limit = MAX_CELLS if max_cells is None else positive_int("max_cells", max_cells)
    _check_cells(n + (blocks - 1) * min(max(ar_step, 1), n) + 1, blocks * cb, limit)
    sky = _skyreels_rows(blocks, n, ar_step, pb, max_rows=limit)
    mask = (sky[1:] != sky[:-1]) & (sky[1:] != n + 1)
    intervals = _df_intervals(mask, window_blocks)
    _df_check_intervals(mask, intervals, window, pb, cb)
    params = {"num_steps": n, "num_frames": num_frames, "causal_block_size": cb, "ar_step": ar_step,
              "prefix_frames": pb * cb, "addnoise_condition": k, "window": window}
    return FrameSchedule(
        base=base, index=_expand(np.minimum(sky, n), cb), prefix_frames=pb * cb, prefix_level=k / 1000.0,
        prefix_noise=True, window=intervals * cb, name="diffusion_forcing", params=params,
    )


def to_skyreels(fs: FrameSchedule) -> dict[str, Any]:
    """The four values SkyReels-V2's ``generate_timestep_matrix`` returns for this schedule, in its conventions.

    Returns a dict with ``step_matrix`` (int64 ``[R, F]``: the timesteps fed to the model, from the padded template
    ``[999, int64(base.t[:-1] * 1000) ..., 0]``), ``step_index`` (int64 ``[R, F]``: the index into that template
    after each step, ``N + 1`` for frames clean before the step and for prefix frames), ``update_mask`` (bool
    ``[R, F]``, = ``fs.update``) and ``valid_interval`` (a list of ``(start, end)`` per step, = ``fs.window``).
    SkyReels' pipeline overrides the prefix frames' timestep with ``addnoise_condition`` afterwards; ``step_matrix``
    does not. With ``base = skyreels_base(N, alpha)`` the template is exactly SkyReels' (tested for the recorded
    templates).
    """
    if not isinstance(fs, FrameSchedule):
        raise TypeError(f"fs must be a FrameSchedule, got {type(fs).__name__}")
    n = fs.base.num_steps
    template = np.concatenate([[999], np.trunc(fs.base.t[:-1] * 1000.0).astype(np.int64), [0]]).astype(np.int64)
    step_index = np.where(fs.index[:-1] >= n, n + 1, fs.index[1:]).astype(np.int64)
    return {
        "step_matrix": template[step_index],
        "step_index": step_index,
        "update_mask": fs.update.copy(),
        "valid_interval": [(int(s), int(e)) for s, e in fs.window],
    }


# -- Diffusion Forcing (Chen et al.) ---------------------------------------------------------------------------------


def pyramid(
    base: Schedule, num_frames: int, *, u: float, prefix_frames: int = 0, max_cells: int | None = None
) -> FrameSchedule:
    """Diffusion Forcing's pyramid schedule: noise levels ``M[m, f] = clip(K + floor(f u) - m, 0, K)``.

    ``K = base.num_steps``; level ``k`` is ``base.t[K - k]`` (level ``K`` noise, 0 clean), so
    ``index = K - M``. Rows ``m = 0 .. K + floor((F' - 1) u)`` (``F'`` generated frames), i.e. ``K + floor((F' - 1)
    u)`` steps. ``u = 0`` is :func:`full_sequence`, ``u = K`` is :func:`autoregressive`. Prefix frames (the
    paper's context frames) are data at level 0 and come first; ``f`` counts the generated frames after them.

    Source: buoyancy99/diffusion-forcing @475e0bc, ``algorithms/diffusion_forcing/df_base.py``
    (``_generate_pyramid_scheduling_matrix``: ``int(f * uncertainty_scale)``, the same floor for ``u >= 0``).
    """
    base = _need_base(base)
    num_frames = positive_int("num_frames", num_frames)
    u = real("u", u)
    if u < 0:
        raise ValueError(f"u (Diffusion Forcing's uncertainty_scale) must be >= 0, got {u}")
    p = nonnegative_int("prefix_frames", prefix_frames)
    if p >= num_frames:
        raise ValueError(f"prefix_frames={p} leaves nothing to generate out of num_frames={num_frames}")
    k = base.num_steps
    gen = num_frames - p
    offsets = np.array([int(f * u) for f in range(gen)], dtype=np.int64)  # int(): the source's truncation
    rows = k + int(offsets[-1]) + 1
    _check_cells(rows, num_frames, max_cells)
    m = np.arange(rows, dtype=np.int64)[:, None]
    levels = np.clip(k + offsets[None, :] - m, 0, k)
    index = np.full((rows, num_frames), k, dtype=np.int64)
    index[:, p:] = k - levels
    params = {"num_steps": k, "num_frames": num_frames, "u": u, "prefix_frames": p}
    return FrameSchedule(base=base, index=index, prefix_frames=p, name="pyramid", params=params)


def full_sequence(
    base: Schedule, num_frames: int, *, prefix_frames: int = 0, max_cells: int | None = None
) -> FrameSchedule:
    """Every generated frame on the same level: Diffusion Forcing's ``full_sequence`` (= :func:`pyramid` with
    ``u = 0``; ``np.arange(K, -1, -1)`` repeated over the frames). Source: as :func:`pyramid`."""
    fs = pyramid(base, num_frames, u=0.0, prefix_frames=prefix_frames, max_cells=max_cells)
    return FrameSchedule(
        base=fs.base, index=fs.index, prefix_frames=fs.prefix_frames, name="full_sequence",
        params={"num_steps": fs.base.num_steps, "num_frames": fs.num_frames, "prefix_frames": fs.prefix_frames},
    )


def autoregressive(
    base: Schedule, num_frames: int, *, prefix_frames: int = 0, max_cells: int | None = None
) -> FrameSchedule:
    """One frame after the other: Diffusion Forcing's ``autoregressive`` (= :func:`pyramid` with ``u = K``, each
    frame starts when the previous one is clean). Source: as :func:`pyramid`."""
    base = _need_base(base)
    fs = pyramid(base, num_frames, u=float(base.num_steps), prefix_frames=prefix_frames, max_cells=max_cells)
    return FrameSchedule(
        base=fs.base, index=fs.index, prefix_frames=fs.prefix_frames, name="autoregressive",
        params={"num_steps": fs.base.num_steps, "num_frames": fs.num_frames, "prefix_frames": fs.prefix_frames},
    )


# -- MAGI-1 ----------------------------------------------------------------------------------------------------------


def magi_base(num_steps: int = 64, alpha: float = 3.0) -> Schedule:
    """MAGI-1's time grid in flowsched's convention: ``t_k = time_shift(1 - (k / S)^2, alpha)``, ``k = 0 .. S``.

    MAGI-1's ``t`` runs 0 = noise to 1 = clean: ``init_t`` takes ``linspace(0, 1, S + 1)``, squares it and applies
    SD3's shift with ``1 / shift`` (``tSchedulerFunc = "sd3"``, shift 3 by default); one minus that is the shift by
    ``alpha = shift`` of ``1 - x^2``. (MAGI-1's special 12-step distilled grid is not covered.) Source:
    SandAI-org/MAGI-1 @6ff822e, ``inference/pipeline/video_generate.py`` (``init_t``);
    ``example/4.5B/4.5B_base_config.json``: 64 steps.
    """
    num_steps = positive_int("num_steps", num_steps)
    alpha = positive_real("alpha", alpha)
    if alpha < 1.0:
        raise ValueError(f"alpha must be >= 1 (MAGI-1 asserts shift >= 1), got {alpha}")
    if num_steps == 12:
        warnings.warn("MAGI-1 uses a special grid for 12 steps (its distilled shortcut); this is the plain grid",
                      stacklevel=2)
    t = time_shift(1.0 - np.linspace(0.0, 1.0, num_steps + 1) ** 2, alpha)
    return Schedule(t, name="magi1", params={"num_steps": num_steps, "alpha": alpha})


def _steps_per_stage(s: int, w: int) -> int:
    """MAGI-1 advances each chunk ``S / window`` base steps per stage: ``S`` must be a multiple of ``window``."""
    if s < w:
        raise ValueError(
            f"the base schedule is too short: {s} step(s) for a window of {w} chunks; MAGI-1 advances each chunk "
            f"num_steps / window steps per stage, so it needs at least {w} steps"
        )
    if s % w:
        raise ValueError(
            f"the base schedule has {s} steps, not a multiple of window={w}: MAGI-1 advances each chunk "
            f"num_steps // window steps per stage and would never finish one; use {s // w * w} or {(s // w + 1) * w}"
        )
    return s // w


def staircase(
    base: Schedule,
    num_chunks: int,
    *,
    chunk_frames: int = 6,
    window: int = 4,
    prefix_chunks: int = 0,
    clean_t: float = 0.9999,
    max_cells: int | None = None,
) -> FrameSchedule:
    """MAGI-1's chunk-wise staircase: each chunk of ``chunk_frames`` latent frames moves ``S / window`` base steps
    per stage and the next chunk starts one stage later, so at most ``window`` chunks are in flight.

    ``S = base.num_steps`` must be a multiple of ``window``. Chunk ``j`` (after ``prefix_chunks`` given ones) has
    ``index[s, j] = clip(s - (j - P) S / window, 0, S)`` over ``(S / window) (C + window - 1 - P)`` steps (MAGI-1's
    ``total_forward_step``). The model sees chunks ``[0, clip_end)`` (earlier ones through its KV cache). Prefix
    chunks are fed clean at MAGI's ``clean_t`` (flowsched ``t = 1 - clean_t``), without added noise.

    Source: SandAI-org/MAGI-1 @6ff822e, ``inference/pipeline/video_generate.py`` (``generate_sequences``,
    ``get_timestep``, ``integrate``, ``total_forward_step``); 4.5B/24B configs: ``chunk_width`` 6, ``window_size`` 4,
    ``num_steps`` 64, ``clean_t`` 0.9999. Not modelled: the KV range limits (``noise2clean_kvrange``) and the
    ``clean_t`` at which a finished chunk is re-fed as context.
    """
    base = _need_base(base)
    c = positive_int("num_chunks", num_chunks)
    cw = positive_int("chunk_frames", chunk_frames)
    w = positive_int("window", window)
    p = nonnegative_int("prefix_chunks", prefix_chunks)
    clean_t = real("clean_t", clean_t)
    if not 0.0 < clean_t <= 1.0:
        raise ValueError(f"clean_t (MAGI-1's t of given chunks, 1 = clean) must lie in (0, 1], got {clean_t}")
    if p >= c:
        raise ValueError(f"prefix_chunks={p} leaves nothing to generate out of num_chunks={c}")
    s = base.num_steps
    per_stage = _steps_per_stage(s, w)
    rows = per_stage * (c + w - 1 - p)
    _check_cells(rows + 1, c * cw, max_cells)
    steps = np.arange(rows + 1, dtype=np.int64)[:, None]
    chunks = np.arange(c, dtype=np.int64)[None, :]
    blocks = np.clip(steps - (chunks - p) * per_stage, 0, s)
    blocks[:, :p] = s
    stage = np.arange(rows, dtype=np.int64) // per_stage
    clip_end = np.minimum(c, stage + p + 1)
    win = np.stack([np.zeros(rows, dtype=np.int64), clip_end * cw], axis=1)
    params = {
        "num_steps": s,
        "num_chunks": c,
        "chunk_frames": cw,
        "window": w,
        "prefix_chunks": p,
        "clean_t": clean_t,
    }
    return FrameSchedule(
        base=base,
        index=_expand(blocks, cw),
        prefix_frames=p * cw,
        prefix_level=1.0 - clean_t,
        prefix_noise=False,
        window=win,
        name="staircase",
        params=params,
    )


# -- Self-Forcing / CausVid ------------------------------------------------------------------------------------------


def _step_list(steps: Any, big_t: int) -> list[int]:
    """A strictly decreasing list of integer timesteps in ``(0, big_t]``; a trailing 0 (CausVid's configs) is
    dropped."""
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
        raise TypeError(f"steps must be a list of integer timesteps such as [1000, 750, 500, 250], got {steps!r}")
    values = [positive_int(f"steps[{i}]", s) if s != 0 else 0 for i, s in enumerate(steps)]
    if values and values[-1] == 0:
        values = values[:-1]
    if not values:
        raise ValueError("steps must hold at least one non-zero timestep, e.g. [1000, 750, 500, 250]")
    for i, s in enumerate(values):
        if not 0 < s <= big_t:
            raise ValueError(f"steps[{i}] must lie in (0, {big_t}] (num_train_timesteps), got {s}")
    if any(b >= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"steps must be strictly decreasing (noise first), got {values}")
    return values


def blockwise_base(
    steps: Sequence[int] = (1000, 750, 500, 250),
    *,
    alpha: float = 5.0,
    warp: bool = True,
    num_train_timesteps: int = 1000,
) -> Schedule:
    """The few-step list of Self-Forcing and CausVid as a schedule (its values, then 0).

    Both build ``FlowMatchScheduler(shift, sigma_min=0, extra_one_step=True).set_timesteps(T)``: a table
    ``sigma_j = time_shift(1 - j / T, alpha)``, ``j = 0 .. T - 1`` (their ``shift`` is ``alpha``). With
    ``warp=True`` (``warp_denoising_step``) step ``s`` is table entry ``T - s``, i.e. ``t = time_shift(s / T,
    alpha)`` (computed here in float64, in their order of operations; the peers' table is float32). With
    ``warp=False`` the model is fed ``s`` itself while its ``x0`` conversion and ``add_noise`` use the table entry
    whose ``sigma * T`` is nearest to ``s``; that entry is the ``t`` used here, and ``s`` is recorded as the
    schedule's :attr:`~flowsched.schedule.Schedule.timesteps` (``model_timesteps()`` returns the integers: CausVid's
    ``[1000, 757, 522]``, not ``[1000, 756.76, 521.74]``). With the warp the model is fed ``1000 t`` (the peers'
    float32 table entries). A trailing 0 in ``steps`` (CausVid's configs) is dropped.

    Sources: guandeh17/Self-Forcing @33593df (``configs/self_forcing_dmd.yaml``: ``[1000, 750, 500, 250]``, warp,
    shift 5; ``utils/scheduler.py``; ``pipeline/causal_inference.py``), tianweiy/CausVid @ca21150
    (``configs/wan_causal_dmd.yaml``: ``[1000, 757, 522, 0]``, no warp, shift 8).
    """
    alpha = positive_real("alpha", alpha)
    warp = boolean("warp", warp)
    big_t = positive_int("num_train_timesteps", num_train_timesteps)
    values = _step_list(steps, big_t)

    def table(j) -> np.ndarray:
        return time_shift_peer(1.0 - np.asarray(j, dtype=np.float64) / big_t, alpha)

    if warp:
        t = table([big_t - s for s in values])
        fed = None  # 1000 t: the warped table entries are what the model gets
    else:
        sigmas = table(np.arange(big_t))
        t = np.array([sigmas[int(np.argmin(np.abs(sigmas * big_t - s)))] for s in values])
        fed = [s * 1000.0 / big_t for s in values]  # the listed integers, recorded at scale 1000
    params = {"steps": values, "alpha": alpha, "warp": warp, "num_train_timesteps": big_t}
    return Schedule(np.concatenate([t, [0.0]]), name="blockwise", params=params, timesteps=fed)


def blockwise(
    steps: Sequence[int] = (1000, 750, 500, 250),
    num_blocks: int = 7,
    *,
    block_frames: int = 3,
    alpha: float = 5.0,
    warp: bool = True,
    prefix_frames: int = 0,
    num_train_timesteps: int = 1000,
    max_cells: int | None = None,
) -> FrameSchedule:
    """Self-Forcing / CausVid: blocks of ``block_frames`` latent frames denoised one after the other, each with the
    few-step list ``steps`` (:func:`blockwise_base`), the model seeing the current block and (through its KV
    cache) the clean blocks before it.

    ``num_blocks`` counts every block including ``prefix_frames / block_frames`` given ones (Self-Forcing's
    ``initial_latent``, fed clean). ``R = (generated blocks) x len(steps)``. Sample with
    ``flowsched.sampling.euler_frames(..., stochastic=True, seed=...)`` for the peers' sampler (``x0`` prediction,
    then re-noising to the next ``t`` with fresh noise). The model is fed :meth:`FrameSchedule.model_timesteps`:
    ``1000 t`` with the warp, the listed integers without it (the clean frames before the block: 0, as the peers
    fill their KV cache). Each block also costs the peers one more model call at ``t = 0`` to fill the KV cache;
    it is not a step and not counted here. Sources: as :func:`blockwise_base`.
    """
    base = blockwise_base(steps, alpha=alpha, warp=warp, num_train_timesteps=num_train_timesteps)
    blocks = positive_int("num_blocks", num_blocks)
    bf = positive_int("block_frames", block_frames)
    pb = _prefix_blocks(prefix_frames, bf, blocks, "block_frames")
    s = base.num_steps
    rows = (blocks - pb) * s
    _check_cells(rows + 1, blocks * bf, max_cells)
    r = np.arange(rows + 1, dtype=np.int64)[:, None]
    b = np.arange(blocks, dtype=np.int64)[None, :]
    idx = np.clip(r - (b - pb) * s, 0, s)
    idx[:, :pb] = s
    current = pb + np.arange(rows, dtype=np.int64) // s
    win = np.stack([np.zeros(rows, dtype=np.int64), (current + 1) * bf], axis=1)
    params = dict(base.params)
    params.update({"num_blocks": blocks, "block_frames": bf, "prefix_frames": pb * bf})
    return FrameSchedule(
        base=base, index=_expand(idx, bf), prefix_frames=pb * bf, window=win, name="blockwise", params=params
    )


# -- the spec form ---------------------------------------------------------------------------------------------------
#
# A frame-schedule spec (flowsched.spec) names the family, the base's steps and alpha and the family's parameters in
# one line; its keys are the builders' parameter names, with SPEC_KEYS' short forms.

#: The builders' parameter names that a frame-schedule spec spells differently (``frames=25`` is ``num_frames``).
SPEC_KEYS = {"num_steps": "steps", "num_frames": "frames", "num_chunks": "chunks", "num_blocks": "blocks"}

#: the base each family's spec builds, from the base's own params
_SPEC_BASES = {
    "diffusion_forcing": skyreels_base,
    "pyramid": shifted,
    "full_sequence": shifted,
    "autoregressive": shifted,
    "staircase": magi_base,
    "blockwise": blockwise_base,
}


def _spec_text(value: Any) -> str:
    """A parameter as the spec parser reads it back (``repr`` keeps floats exact)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ";".join(_spec_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _spec_of(fs: FrameSchedule) -> str | None:
    rebuild = _SPEC_BASES.get(fs.name)
    if rebuild is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MAGI-1's 12-step note was given when the base was made
            base = rebuild(**fs.base.params)
    except (TypeError, ValueError):
        return None
    if base != fs.base:
        return None
    params = {SPEC_KEYS.get(k, k): v for k, v in {**fs.base.params, **fs.params}.items()}
    return f"{fs.name}:{','.join(f'{k}={_spec_text(v)}' for k, v in params.items())}"
