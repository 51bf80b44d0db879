"""What a per-frame schedule costs: the exact output distribution of :func:`flowsched.sampling.euler_frames`
on a Gaussian field whose frames are coupled by its temporal spectrum.

Data model: :class:`~flowsched.quality.field.GaussianField` on ``[T', H', W']`` (periodic in every axis). After a
unitary 2-D Fourier transform over ``(H', W')`` the spatial modes are independent, and spatial mode ``k`` is a
``T'``-dimensional Gaussian vector over the frames with covariance ``Sigma_k[f, g] = c_k((g - f) mod T')``,
``c_k = ifft_t(lambda[:, k])`` (the field's temporal spectrum at that spatial frequency). Spatial modes with the
same temporal spectrum share ``Sigma``, so the field is stored as its distinct temporal covariances and their
multiplicities. Convention: ``x_t = (1 - t) x0 + t eps``, ``v = eps - x0``, per-frame ``t``.

Why it is exact: with a per-frame ``t`` (diagonal ``D_t``, ``D_a = I - D_t``) the observation ``x = D_a x0 + D_t
eps`` of one spatial mode is jointly Gaussian with ``x0``, so the exact velocity (what a model trained with
independent per-frame noise levels learns, diffusion forcing's objective) is linear:

    v = (D_t - Sigma D_a) (D_a Sigma D_a + D_t^2)^-1 x,

restricted to the frames the model sees (the step's window; ``Sigma`` its sub-block). Every step of
``euler_frames`` is then ``x' = G x + K xi`` with fresh standard noise ``xi`` (Euler: ``x'_m = x_m + h_m (V u)_m``
for the moving frames ``m``; Self-Forcing's stochastic step ``x'_m = (1 - t'_m)(u_m - t_m (V u)_m) + t'_m xi_m``;
``u = Q x + L xi`` is the model input, prefix frames fed noised to level ``l`` having ``Q = 1 - l``, ``L = l``).
Frames start as white noise (variance 1), prefix frames as data, so the output covariance follows exactly from
``P <- G P G^T + K K^T``, one ``T' x T'`` matrix per distinct spatial spectrum.

Metrics (as :class:`GaussianField`, now between ``N(0, P_k)`` and ``N(0, Sigma_k)`` per spatial mode, summed over
modes; the covariances do not commute, so W2 uses the matrix square root):

- ``"w2"``: ``sum_k W2^2 / sum_k tr(Sigma_k)`` with ``W2^2 = tr P + tr Sigma - 2 tr (Sigma^1/2 P Sigma^1/2)^1/2``,
  computed as ``|| Sigma^-1/2 (R - Sigma) ||_F^2`` with ``R = (Sigma^1/2 P Sigma^1/2)^1/2`` (the same number; a
  sum of squares, so small errors keep their relative precision);
- ``"kl"``: ``sum_k KL(N(0, P_k) || N(0, Sigma_k)) / (number of modes)``, from the eigenvalues ``mu`` of
  ``Sigma^-1/2 P Sigma^-1/2``: ``sum (mu - 1 - ln mu) / 2``.

For a schedule that moves every frame together these equal ``GaussianField.error`` of the base schedule (the
covariances then commute); ``frames=`` measures the joint distribution of a subset of frames (e.g. the generated
ones after a prefix). The field is periodic in time, so the last frame is a neighbour of the first; say so when
you report numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import boolean, choice
from ..frames import FrameSchedule
from .field import GaussianField

METRICS = ("w2", "kl")

__all__ = ["FrameField"]


class FrameField:
    """Exact per-frame evaluation on a :class:`GaussianField` (see the module docstring).

    Args:
        field: a :class:`GaussianField`; or the arguments of one (``grid`` and ``gamma``, ``k0``, ``w_t``,
            ``variances``), passed through.

    Attributes:
        field: the GaussianField.
        num_frames: ``T'``; ``spatial_shape``: ``(H', W')``.
        covariances: float64 ``[G, T', T']``, the distinct temporal covariances; ``counts``: spatial modes per each.
    """

    def __init__(self, field: GaussianField | Any = None, **kwargs: Any) -> None:
        if not isinstance(field, GaussianField):
            field = GaussianField(field, **kwargs)
        elif kwargs:
            raise TypeError(f"FrameField: pass a GaussianField or its arguments, not both (got {sorted(kwargs)})")
        self.field = field
        lam = field.variances
        t, h, w = lam.shape
        self.num_frames = int(t)
        self.spatial_shape = (int(h), int(w))
        profiles = lam.reshape(t, h * w).T
        groups, inverse, counts = np.unique(profiles, axis=0, return_inverse=True, return_counts=True)
        lags = np.fft.ifft(groups, axis=1).real  # autocovariance of each spatial mode over the frame lag
        idx = (np.arange(t)[None, :] - np.arange(t)[:, None]) % t
        cov = lags[:, idx]
        self.covariances = 0.5 * (cov + np.swapaxes(cov, 1, 2))  # symmetric to the last bit
        self.counts = counts.astype(np.float64)
        self._inverse = inverse.reshape(-1)
        self.num_modes = int(lam.size)
        self.covariances.setflags(write=False)

    def __repr__(self) -> str:
        return (
            f"FrameField({self.field!r}, {self.covariances.shape[0]} distinct temporal covariances of "
            f"{self.num_frames} frames)"
        )

    # -- the exact per-frame velocity ------------------------------------------------------------------------
    def velocity_matrices(self, t: Any, start: int = 0) -> np.ndarray:
        """``[G, n, n]``: the exact velocity ``v = V x`` of each distinct spatial spectrum for frames
        ``start .. start + n - 1`` at per-frame times ``t`` (``n = len(t)``)."""
        t = np.asarray(t, dtype=np.float64)
        n = t.size
        if t.ndim != 1 or n == 0 or start < 0 or start + n > self.num_frames:
            raise ValueError(f"t must hold one value per frame of a window inside {self.num_frames} frames, got "
                             f"shape {t.shape} at start {start}")
        if not np.all((t >= 0) & (t <= 1)):
            raise ValueError(f"t values must lie in [0, 1], got {t.tolist()}")
        sig = self.covariances[:, start : start + n, start : start + n]
        a = 1.0 - t
        c = a[None, :, None] * sig * a[None, None, :] + np.diag(t * t)[None]
        b = np.diag(t)[None] - a[None, :, None] * sig  # D_t - D_a Sigma = (D_t - Sigma D_a)^T
        return np.swapaxes(np.linalg.solve(c, b), 1, 2)

    def velocity(self, x: Any, t: Any) -> Any:
        """The exact velocity for ``x`` of shape ``[..., n, H', W']`` (frames on axis -3, any ``n`` consecutive
        frames: the field is stationary in time) at per-frame ``t`` (``[n]``). numpy or torch (computed in
        float64, returned in ``x``'s type and dtype). This is a ``model`` for :func:`~flowsched.sampling.euler_frames`
        with ``frame_dim=-3``."""
        is_torch = type(x).__module__.startswith("torch")
        arr = x.detach().cpu().double().numpy() if is_torch else np.asarray(x, dtype=np.float64)
        tt = t.detach().cpu().double().numpy() if type(t).__module__.startswith("torch") else np.asarray(t)
        if arr.ndim < 3 or arr.shape[-2:] != self.spatial_shape:
            raise ValueError(f"x must have shape [..., n, {self.spatial_shape[0]}, {self.spatial_shape[1]}], got "
                             f"{arr.shape}")
        n = arr.shape[-3]
        if tt.shape != (n,):
            raise ValueError(f"t must hold one value per frame ({n}), got shape {tt.shape}")
        v = self.velocity_matrices(tt)[self._inverse]  # [H'W', n, n]
        xf = np.fft.fft2(arr, axes=(-2, -1)).reshape(*arr.shape[:-2], -1)  # [..., n, H'W']
        out = np.einsum("kij,...jk->...ik", v, xf).reshape(arr.shape)
        res = np.fft.ifft2(out, axes=(-2, -1)).real
        if is_torch:
            import torch

            return torch.as_tensor(res, dtype=x.dtype, device=x.device)
        return res.astype(arr.dtype if not isinstance(x, np.ndarray) else x.dtype, copy=False)

    def sample(self, num_samples: int, seed: int = 0) -> np.ndarray:
        """``num_samples`` draws of the data, float64 ``[num_samples, T', H', W']`` (:meth:`GaussianField.sample`)."""
        return self.field.sample(num_samples, seed)

    # -- the output distribution -----------------------------------------------------------------------------
    def _check(self, fs: Any) -> FrameSchedule:
        if not isinstance(fs, FrameSchedule):
            raise TypeError(f"frame_schedule must be a FrameSchedule, got {type(fs).__name__}")
        if fs.num_frames != self.num_frames:
            raise ValueError(
                f"the frame schedule has {fs.num_frames} frames but the field has T'={self.num_frames}; build the "
                f"field on a grid with {fs.num_frames} latent frames"
            )
        return fs

    def output_covariances(self, frame_schedule: FrameSchedule, *, stochastic: bool = False) -> np.ndarray:
        """``[G, F, F]``: the exact covariance of :func:`~flowsched.sampling.euler_frames`' output per distinct spatial
        spectrum (generated frames start as white noise, prefix frames as data)."""
        fs = self._check(frame_schedule)
        stochastic = boolean("stochastic", stochastic)
        g, f = self.covariances.shape[0], fs.num_frames
        p = fs.prefix_frames
        cov = np.zeros((g, f, f))
        cov[:, np.arange(f), np.arange(f)] = 1.0
        if p:
            cov[:, :p, :p] = self.covariances[:, :p, :p]
        renoise = p > 0 and fs.prefix_noise and fs.prefix_level > 0
        lvl = fs.prefix_level
        for r in range(fs.num_steps):
            moving = np.flatnonzero(fs.update[r])
            if moving.size == 0:
                continue
            s, e = (int(v) for v in fs.window[r])
            v = self.velocity_matrices(fs.t[r, s:e], s)[:, moving - s, :]  # [G, k, n]: rows of the moving frames
            q = np.ones(e - s)
            ell = np.zeros(e - s)
            if renoise and s < p:
                q[: min(p, e) - s] = 1.0 - lvl
                ell[: min(p, e) - s] = lvl
            vq, vl = v * q, v * ell  # V Q and V L (columns of the window)
            k = moving.size
            rows = np.zeros((g, k, f))
            noise = np.zeros((g, k, f))
            t_now, t_next = fs.t[r, moving], fs.t[r + 1, moving]
            if stochastic:
                # x'_m = (1 - t'_m)(x_m - t_m (V u)_m) + t'_m xi_m; u_m = x_m for a moving (non-prefix) frame
                a = (1.0 - t_next)[None, :, None]
                rows[:, :, s:e] = -a * t_now[None, :, None] * vq
                rows[:, np.arange(k), moving] += (1.0 - t_next)[None, :]
                noise[:, :, s:e] = -a * t_now[None, :, None] * vl
                noise[:, np.arange(k), moving] += t_next[None, :]
            else:
                h = (t_next - t_now)[None, :, None]
                rows[:, :, s:e] = h * vq
                rows[:, np.arange(k), moving] += 1.0
                noise[:, :, s:e] = h * vl
            gp = rows @ cov  # [G, k, F]: the new moving rows against the old state
            block = gp @ np.swapaxes(rows, 1, 2) + noise @ np.swapaxes(noise, 1, 2)
            # frames that do not move keep their values, so only the moving rows and columns change; their
            # covariance with the other frames is G_m P (the fresh noise only touches the moving frames and the
            # prefix inputs, and prefix values are never replaced)
            new = cov.copy()
            new[:, moving, :] = gp
            new[:, :, moving] = np.swapaxes(gp, 1, 2)
            new[:, moving[:, None], moving[None, :]] = 0.5 * (block + np.swapaxes(block, 1, 2))
            cov = new
        return cov

    # -- metrics -----------------------------------------------------------------------------------------------
    def error(
        self,
        frame_schedule: FrameSchedule,
        metric: str = "w2",
        *,
        stochastic: bool = False,
        frames: Sequence[int] | slice | None = None,
    ) -> float:
        """The metric (``"w2"`` or ``"kl"``, module docstring) between ``euler_frames``' output and the data, over
        ``frames`` (default all; a list of frame indices or a slice: their joint distribution)."""
        metric = choice("metric", metric, METRICS)
        return self.errors(frame_schedule, stochastic=stochastic, frames=frames)[metric]

    def errors(
        self,
        frame_schedule: FrameSchedule,
        *,
        stochastic: bool = False,
        frames: Sequence[int] | slice | None = None,
    ) -> dict[str, float]:
        """Both metrics at once (one propagation): ``{"w2": ..., "kl": ...}``; arguments as :meth:`error`."""
        return self.score(self.output_covariances(frame_schedule, stochastic=stochastic), frames=frames)

    def score(self, output_covariances: np.ndarray, *, frames: Sequence[int] | slice | None = None) -> dict[str, float]:
        """``{"w2": ..., "kl": ...}`` of output covariances from :meth:`output_covariances` (so several frame
        subsets can be scored from one propagation)."""
        out = np.asarray(output_covariances, dtype=np.float64)
        if out.shape != self.covariances.shape:
            raise ValueError(f"output_covariances must have shape {self.covariances.shape}, got {out.shape}")
        sel = self._frames(frames)
        p = out[:, sel][:, :, sel]
        sig = self.covariances[:, sel][:, :, sel]
        modes = sel.size * self.spatial_shape[0] * self.spatial_shape[1]
        return {m: _metric(m, p, sig, self.counts, modes) for m in METRICS}

    def frame_errors(
        self, frame_schedule: FrameSchedule, metric: str = "w2", *, stochastic: bool = False
    ) -> np.ndarray:
        """float64 ``[F]``: the metric of each frame on its own (its marginal distribution)."""
        metric = choice("metric", metric, METRICS)
        out = self.output_covariances(frame_schedule, stochastic=stochastic)
        hw = self.spatial_shape[0] * self.spatial_shape[1]
        res = np.empty(self.num_frames)
        for f in range(self.num_frames):
            res[f] = _metric(metric, out[:, f : f + 1, f : f + 1], self.covariances[:, f : f + 1, f : f + 1],
                             self.counts, hw)
        return res

    def _frames(self, frames: Any) -> np.ndarray:
        all_frames = np.arange(self.num_frames)
        if frames is None:
            return all_frames
        if isinstance(frames, slice):
            sel = all_frames[frames]
        else:
            try:
                sel = np.asarray(frames)
            except (TypeError, ValueError):
                sel = np.array([])
            if sel.dtype == bool or not np.issubdtype(sel.dtype, np.integer) or sel.ndim != 1:
                raise TypeError(f"frames must be a slice or a list of frame indices, got {frames!r}")
            if sel.size and (sel.min() < 0 or sel.max() >= self.num_frames):
                raise ValueError(f"frames must lie in [0, {self.num_frames}), got {sel.tolist()}")
            if np.unique(sel).size != sel.size:
                raise ValueError(f"frames must not repeat, got {sel.tolist()}")
        if sel.size == 0:
            raise ValueError(f"frames selects no frame of {self.num_frames}: {frames!r}")
        return sel


def _metric(metric: str, p: np.ndarray, sig: np.ndarray, counts: np.ndarray, modes: int) -> float:
    """Sum over spatial spectra (weighted by ``counts``) of W2^2 or KL between N(0, p) and N(0, sig)."""
    evals, evecs = np.linalg.eigh(sig)
    if np.any(evals <= 0):
        raise ValueError("the field's temporal covariance is singular; every variance must be > 0")
    root = np.sqrt(evals)
    s_half = (evecs * root[:, None, :]) @ np.swapaxes(evecs, 1, 2)
    s_inv_half = (evecs / root[:, None, :]) @ np.swapaxes(evecs, 1, 2)
    if metric == "w2":
        m = s_half @ p @ s_half
        m = 0.5 * (m + np.swapaxes(m, 1, 2))
        mu, w = np.linalg.eigh(m)
        r = (w * np.sqrt(np.clip(mu, 0.0, None))[:, None, :]) @ np.swapaxes(w, 1, 2)
        e = s_inv_half @ (r - sig)
        per = np.einsum("gij,gij->g", e, e)
        total = np.einsum("gii->g", sig)
        return float(np.dot(counts, per) / np.dot(counts, total))
    a = s_inv_half @ p @ s_inv_half
    mu = np.linalg.eigvalsh(0.5 * (a + np.swapaxes(a, 1, 2)))
    if np.any(mu <= 0):
        return float("inf")
    d = mu - 1.0
    per = 0.5 * np.sum(d - np.log1p(d), axis=1)
    return float(np.dot(counts, per) / modes)
