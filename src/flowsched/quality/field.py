"""A Gaussian "image/video" on the latent grid: Euler's error in closed form, at zero sampling noise.

Data model (derivation and metrics: docs/quality-models.md, "Gaussian field"): ``x0`` is a stationary Gaussian
field on the latent grid ``[T', H', W']``, independent Fourier modes (``numpy.fft.fftn`` over the three axes) with
variance ``lambda_k``, normalised so that ``lambda_k`` is the per-element variance each mode contributes; noise is
white, variance 1. With ``x_t = (1 - t) x0 + t eps`` and ``v = eps - x0`` the exact velocity is ``v_k = a_k(t) x_k``,

    a_k(t) = (t - (1 - t) lambda_k) / ((1 - t)^2 lambda_k + t^2),

so Euler on a schedule multiplies mode ``k`` by ``g_k = prod_i (1 + h_i a_k(t_i))`` (``h_i = t_{i+1} - t_i``)
against the true ``sqrt(lambda_k)``. Metrics: ``"w2"`` (default), ``sum_k (g_k - sqrt(lambda_k))^2 / sum_k lambda_k``
(variance-weighted: structure), and ``"kl"``, the mean per-mode ``KL(N(0, g_k^2) || N(0, lambda_k))`` (texture).

Each factor is evaluated as ``(lambda (1 - t)(1 - t') + t t') / (lambda (1 - t)^2 + t^2)`` (no cancellation) and the
metrics from ``ln(g_k / sqrt(lambda_k))`` with ``expm1``, so small errors keep their relative precision. The default
spectrum ``lambda(k) = (w_t k_t^2 + k_y^2 + k_x^2 + k0^2)^(-gamma / 2)`` takes few distinct values, so the field is
stored as its distinct variances and their multiplicities (the 33 x 72 x 128 Open-Sora 768px field, 304,128 modes,
is 5,774 numbers).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._limits import check_bytes
from .._validate import boolean, choice, is_torch_tensor, nonnegative_real, positive_int, real
from ..geometry import LatentGeometry
from ..sampling import check_finite, check_s_noise
from ..schedule import Schedule, check_t

METRICS = ("w2", "kl")
AVERAGES = ("radial", "grid", "none")
#: Samplers the field scores in closed form, and where the sampler starts (pure noise, or a noised data latent).
SAMPLERS = ("euler", "euler_ancestral", "stochastic_euler")
STARTS = ("noise", "data")
_BLOCK = 32  # schedules per block in log_gain_ratio

__all__ = ["METRICS", "SAMPLERS", "STARTS", "GaussianField", "fit_spectrum", "power_law_spectrum"]


def _grid(grid: Any) -> tuple[int, int, int]:
    if isinstance(grid, LatentGeometry):
        return (grid.latent_frames, grid.latent_height, grid.latent_width)
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence):
        raise TypeError(f"grid must be (T', H', W') or a LatentGeometry, got {grid!r}")
    if len(grid) != 3:
        raise ValueError(f"grid must have 3 sizes (T', H', W'); for an image use (1, H', W'); got {tuple(grid)!r}")
    return tuple(positive_int(f"grid[{i}]", n) for i, n in enumerate(grid))  # type: ignore[return-value]


def _freq2(n: int) -> np.ndarray:
    """Squared integer frequencies of an axis of length n, in numpy.fft order."""
    return (np.fft.fftfreq(n) * n) ** 2


def _check_grid_size(shape: tuple[int, int, int]) -> None:
    """Refuse a grid whose field would exceed the memory budget (:mod:`flowsched._limits`) before any array is made:
    building it peaks at about 32 bytes per cell (the spectrum, its broadcast base and ``np.unique``'s sorted copy
    and counts; 24 measured with tracemalloc)."""
    cells = math.prod(shape)
    check_bytes(f"a Gaussian field on the latent grid {shape} ({cells} cells)", 32 * cells, about=True)


def power_law_spectrum(
    grid: tuple[int, int, int] | LatentGeometry, *, gamma: float = 2.0, k0: float = 1.0, w_t: float = 1.0
) -> np.ndarray:
    """The default spectrum ``(w_t k_t^2 + k_y^2 + k_x^2 + k0^2)^(-gamma / 2)`` on ``grid``, mean 1.

    Returns a float64 array of shape ``(T', H', W')`` in ``numpy.fft.fftn`` order. ``gamma = 2`` is the 1/f^2
    power law of natural images; ``w_t`` weighs temporal against spatial frequency: a large ``w_t`` leaves little
    variance at temporal frequencies other than zero, so frames are nearly identical (``w_t = 1e4``: neighbouring
    frames correlate at 0.999), while ``w_t = 0`` makes the spectrum constant along ``k_t``, so frames are
    independent; ``k0`` rounds the spectrum off at the lowest frequencies.
    """
    shape = _grid(grid)
    _check_grid_size(shape)
    gamma = real("gamma", gamma)
    k0 = real("k0", k0)
    w_t = real("w_t", w_t)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0 (a decaying spectrum), got {gamma}")
    if w_t < 0:
        raise ValueError(f"w_t must be >= 0, got {w_t}")
    if k0 == 0 and gamma > 0:
        raise ValueError("k0 must be non-zero when gamma > 0: the zero frequency would get infinite variance")
    kt, ky, kx = (_freq2(n) for n in shape)
    base = w_t * kt[:, None, None] + ky[None, :, None] + kx[None, None, :] + k0 * k0
    lam = base ** (-0.5 * gamma)
    return lam / lam.mean()


def _check_variances(variances: Any) -> np.ndarray:
    try:
        lam = np.asarray(variances, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"variances must be an array of numbers: {exc}") from None
    if lam.ndim == 0 or lam.size == 0:
        raise ValueError(f"variances must be a non-empty array (one variance per mode), got shape {lam.shape}")
    bad = np.flatnonzero(~np.isfinite(lam.ravel()))
    if bad.size:
        raise ValueError(f"variances must be finite, got {lam.ravel()[bad[0]]} at flat index {bad[0]}")
    bad = np.flatnonzero(lam.ravel() <= 0)
    if bad.size:
        idx = np.unravel_index(bad[0], lam.shape)
        raise ValueError(
            f"variances must be > 0 (a Gaussian mode needs positive variance), got {lam[idx]!r} at index "
            f"{tuple(int(i) for i in idx)} ({bad.size} of {lam.size} modes are <= 0)"
        )
    return lam


def _rows(ts: Any, argument: str) -> np.ndarray:
    """Schedules ``[S, N + 1]`` checked for an error measurement: each strictly decreasing in [0, 1], ending at 0
    (the error is measured on the data the sampler returns)."""
    return check_t(ts, argument, rows=True, end=0.0)


class GaussianField:
    """Gaussian data on a latent grid; scores any schedule's Euler sampler exactly (see the module docstring).

    Args:
        grid: ``(T', H', W')`` latent cells, or a :class:`~flowsched.geometry.LatentGeometry` (its
            ``latent_frames, latent_height, latent_width``). Optional when ``variances`` is given.
        gamma, k0, w_t: the default power-law spectrum (:func:`power_law_spectrum`), normalised to mean 1.
        variances: per-mode variances instead of the power law: any positive array (normally ``[T', H', W']`` in
            ``numpy.fft.fftn`` order, e.g. from :func:`fit_spectrum`), used as given (not renormalised).
            Non-positive or non-finite values raise ``ValueError``.

    Attributes:
        shape: the grid (the shape of ``variances``).
        num_modes: number of modes.
        levels: the distinct variances (float64, ascending); ``counts``: how many modes have each.
        total_variance: ``sum_k lambda_k`` (the denominator of ``"w2"``).
    """

    def __init__(
        self,
        grid: tuple[int, int, int] | LatentGeometry | None = None,
        *,
        gamma: float = 2.0,
        k0: float = 1.0,
        w_t: float = 1.0,
        variances: Any = None,
    ) -> None:
        if variances is None:
            if grid is None:
                raise ValueError("GaussianField needs a grid (T', H', W') or a LatentGeometry, or variances")
            lam = power_law_spectrum(grid, gamma=gamma, k0=k0, w_t=w_t)
            self.spectrum = {"gamma": float(gamma), "k0": float(k0), "w_t": float(w_t)}
        else:
            lam = _check_variances(variances)
            if grid is not None and _grid(grid) != lam.shape:
                raise ValueError(f"variances have shape {lam.shape} but grid is {_grid(grid)}; they must agree")
            self.spectrum = {"custom": True}
        self.variances = lam
        self.variances.setflags(write=False)
        self.shape = tuple(lam.shape)
        self.num_modes = int(lam.size)
        levels, counts = np.unique(lam.ravel(), return_counts=True)
        self.levels = levels
        self.counts = counts.astype(np.float64)
        self._log_sqrt = 0.5 * np.log(levels)
        self.total_variance = float(np.dot(self.counts, levels))

    @classmethod
    def from_latents(
        cls, latents: Any, *, key: str | None = None, average: str = "radial", image: bool = False, center: bool = True
    ):
        """A field whose variances are fitted to real latents by :func:`fit_spectrum` (same arguments)."""
        return cls(variances=fit_spectrum(latents, key=key, average=average, image=image, center=center))

    def __repr__(self) -> str:
        spec = ", ".join(f"{k}={v}" for k, v in self.spectrum.items())
        return f"GaussianField(shape={self.shape}, {spec}, {self.levels.size} distinct variances)"

    # -- exact Euler ------------------------------------------------------------------------------------------
    def log_gain_ratio(self, ts: np.ndarray) -> np.ndarray:
        """``ln(g_k / sqrt(lambda_k))`` for each schedule row and each distinct variance: shape ``[S, levels]``.

        ``ts`` must already be a checked ``[S, N + 1]`` array (use :meth:`error_batch` for user input).
        """
        lam = self.levels
        out = np.empty((ts.shape[0], lam.size))
        # Per step, 1 + h a(t) = (lam (1 - t)(1 - t') + t t') / (lam (1 - t)^2 + t^2) with t' = t + h: a ratio of
        # positive terms (no cancellation). Rows go in small blocks so the temporaries stay in cache.
        for s0 in range(0, ts.shape[0], _BLOCK):
            blk = ts[s0 : s0 + _BLOCK]
            acc = np.ones((blk.shape[0], lam.size))
            num, den = np.empty_like(acc), np.empty_like(acc)
            for i in range(blk.shape[1] - 1):
                t, tn = blk[:, i : i + 1], blk[:, i + 1 : i + 2]
                np.multiply(lam, (1.0 - t) * (1.0 - tn), out=num)
                num += t * tn
                np.multiply(lam, (1.0 - t) ** 2, out=den)
                den += t * t
                num /= den
                acc *= num
            # A single step from t = 1 to t = 0 returns the mean exactly (g = 0, ln g = -inf): KL is then +inf.
            with np.errstate(divide="ignore"):
                out[s0 : s0 + _BLOCK] = np.log(acc)
        return out - self._log_sqrt[None, :]

    def log_std_ratio(
        self,
        ts: np.ndarray,
        *,
        sampler: str = "euler",
        eta: float = 1.0,
        s_noise: float = 1.0,
        start: str = "noise",
    ) -> np.ndarray:
        """``ln(sqrt(V_k / lambda_k))`` for each schedule row and distinct variance (``[S, levels]``), ``V_k`` the
        variance of mode ``k`` of the sampler's output: every sampler here maps Gaussian input to a Gaussian, mode
        by mode (docs/quality-models.md, "Stochastic samplers and partial starts").

        ``start="noise"``: the sampler starts from unit noise at ``t_0`` (``V = 1``); ``"data"``: from
        ``x_{t_0} = (1 - t_0) x0 + t_0 eps`` with ``x0`` from the field (``V = (1 - t_0)^2 lambda + t_0^2``), as
        image-to-image starts. ``ts`` must already be checked (``[S, N + 1]``, decreasing, ending at 0).
        """
        sampler = choice("sampler", sampler, SAMPLERS)
        start = choice("start", start, STARTS)
        lam = self.levels
        t0 = ts[:, :1]
        # ln(V_0) / 2 of the start: 0 for unit noise
        ln_v0 = 0.5 * np.log((1.0 - t0) ** 2 * lam + t0 * t0) if start == "data" else np.zeros((1, lam.size))
        if sampler == "euler":
            return self.log_gain_ratio(ts) + ln_v0
        eta = nonnegative_real("eta", eta)
        s_noise = check_s_noise(s_noise)
        var = np.exp(2.0 * ln_v0) * np.ones((ts.shape[0], lam.size))
        for i in range(ts.shape[1] - 1):
            t, tn = ts[:, i : i + 1], ts[:, i + 1 : i + 2]
            # x0_hat = x - t v = c0 x with c0 = (1 - t) lam / ((1 - t)^2 lam + t^2): the posterior-mean filter
            c0 = (1.0 - t) * lam / ((1.0 - t) ** 2 * lam + t * t)
            last = tn[:, 0] == 0.0
            if sampler == "stochastic_euler":
                new = ((1.0 - tn) * c0) ** 2 * var + tn * tn
            else:
                down, up, renoise2 = _ancestral_rows(t[:, 0], tn[:, 0], eta, i)
                m1 = down[:, None] + (1.0 - down[:, None]) * c0
                if eta > 0:
                    new = (up[:, None] * m1) ** 2 * var + (s_noise * s_noise) * renoise2[:, None]
                else:
                    new = m1 * m1 * var
            var = np.where(last[:, None], c0 * c0 * var, new)
        with np.errstate(divide="ignore"):  # one step [1, 0] returns the mean: V = 0, ln = -inf
            return 0.5 * np.log(var) - self._log_sqrt[None, :]

    def error_batch(
        self,
        ts: Any,
        metric: str = "w2",
        *,
        sampler: str = "euler",
        eta: float = 1.0,
        s_noise: float = 1.0,
        start: str = "noise",
    ) -> np.ndarray:
        """The metric for many schedules at once. ``ts``: ``[S, N + 1]`` t values (one schedule per row, each
        strictly decreasing and ending at 0). ``sampler`` (``"euler"``, ``"euler_ancestral"`` with ``eta`` and
        ``s_noise``, or ``"stochastic_euler"``) and ``start`` as in :meth:`error`. Returns float64 ``[S]``. Cost
        ``O(S * N * levels)``."""
        metric = choice("metric", metric, METRICS)
        arr = _rows(ts, "ts")
        ell = self.log_std_ratio(arr, sampler=sampler, eta=eta, s_noise=s_noise, start=start)
        if metric == "w2":
            # (g - sqrt(lam))^2 = lam * expm1(ell)^2, accurate for small errors
            return (np.expm1(ell) ** 2 @ (self.counts * self.levels)) / self.total_variance
        # KL = (r - 1 - ln r) / 2 with ln r = 2 ell
        return 0.5 * ((np.expm1(2.0 * ell) - 2.0 * ell) @ self.counts) / self.num_modes

    def error(
        self,
        schedule: Schedule | Sequence[float] | np.ndarray,
        metric: str = "w2",
        *,
        sampler: str = "euler",
        eta: float = 1.0,
        s_noise: float = 1.0,
        start: str = "noise",
    ) -> float:
        """The metric (``"w2"`` or ``"kl"``, see the module docstring) of a sampler on ``schedule`` for this field,
        exact (closed form, no sampling noise).

        Args:
            schedule: strictly decreasing, ending at ``t_N = 0``; it may start below 1.
            metric: ``"w2"`` or ``"kl"`` between the sampler's output distribution and the field's.
            sampler: ``"euler"``, ``"euler_ancestral"`` (ComfyUI's RF ancestral step with ``eta`` and
                ``s_noise``) or ``"stochastic_euler"`` (diffusers' ``stochastic_sampling``): the samplers of
                :mod:`flowsched.sampling`; the stochastic ones keep every mode Gaussian, so their output variance
                follows a recursion per mode (docs/quality-models.md).
            start: ``"noise"`` (default): the sampler starts from unit noise, used as ``x_{t_0}`` whatever
                ``t_0`` is; ``"data"``: from a data sample noised to ``t_0``, ``(1 - t_0) x0 + t_0 eps``
                (image-to-image with a partial schedule, :func:`flowsched.strength.partial`).
        """
        row = check_t(schedule.t if isinstance(schedule, Schedule) else schedule, "schedule", end=0.0)
        return float(
            self.error_batch(row[None, :], metric, sampler=sampler, eta=eta, s_noise=s_noise, start=start)[0]
        )

    def gains(
        self,
        schedule: Schedule | Sequence[float] | np.ndarray,
        *,
        sampler: str = "euler",
        eta: float = 1.0,
        s_noise: float = 1.0,
        start: str = "noise",
    ) -> np.ndarray:
        """The output standard deviation over the true one, ``sqrt(V_k / lambda_k)`` (``g_k / sqrt(lambda_k)`` for
        Euler from noise), on the full grid (shape :attr:`shape`): 1 is exact, below 1 too smooth. Keywords as in
        :meth:`error`."""
        row = check_t(schedule.t if isinstance(schedule, Schedule) else schedule, "schedule", end=0.0)
        ell = self.log_std_ratio(row[None, :], sampler=sampler, eta=eta, s_noise=s_noise, start=start)[0]
        idx = np.searchsorted(self.levels, self.variances.ravel())
        return np.exp(ell[idx]).reshape(self.shape)

    # -- the flow itself (for samplers and tests) ----------------------------------------------------------------
    def velocity(self, x: Any, t: float) -> Any:
        """The exact velocity ``E[eps - x0 | x_t = x]``: ``a_k(t)`` applied mode by mode with an FFT over the last
        three axes of ``x`` (numpy array or torch tensor, shape ``[..., T', H', W']``). Needs a spectrum symmetric
        under ``k -> -k`` (true of the power law and of fitted spectra) so that real fields stay real."""
        t = float(t)
        u = 1.0 - t
        lam = self.variances
        a = (t - u * lam) / (u * u * lam + t * t)
        if is_torch_tensor(x):
            import torch

            ax = torch.as_tensor(a, dtype=torch.float64, device=x.device)
            xf = torch.fft.fftn(x.to(torch.float64), dim=(-3, -2, -1))
            return torch.fft.ifftn(xf * ax, dim=(-3, -2, -1)).real.to(x.dtype)
        x = np.asarray(x)
        return np.fft.ifftn(np.fft.fftn(x, axes=(-3, -2, -1)) * a, axes=(-3, -2, -1)).real

    def sample(self, num_samples: int, seed: int = 0) -> np.ndarray:
        """``num_samples`` draws of the data field, float64 ``[num_samples, T', H', W']`` (numpy PCG64 seeded with
        ``seed``)."""
        num_samples = positive_int("num_samples", num_samples)
        eps = np.random.default_rng(seed).standard_normal((num_samples, *self.shape))
        return np.fft.ifftn(np.fft.fftn(eps, axes=(-3, -2, -1)) * np.sqrt(self.variances), axes=(-3, -2, -1)).real


def _ancestral_rows(t: np.ndarray, tn: np.ndarray, eta: float, step: int) -> tuple:
    """``(t_down / t, alpha_next / alpha_down, renoise^2)`` of ComfyUI's RF ancestral step for rows of ``(t, t')``
    (``flowsched.sampling.ancestral_coefficients``, vectorised; rows stepping to 0 get placeholders)."""
    safe = np.where(tn > 0, tn, 0.5 * t)
    t_down = safe * (1.0 + (safe / t - 1.0) * eta)
    a_next, a_down = 1.0 - safe, 1.0 - t_down
    if np.any((t_down < 0) | (a_down <= 0)):
        r = int(np.flatnonzero((t_down < 0) | (a_down <= 0))[0])
        raise ValueError(
            f"eta={eta!r} is too large for step {step} (t={float(t[r])!r} to {float(tn[r])!r}): the down-step "
            f"lands at t_down={float(t_down[r])!r}; use eta in [0, 1]"
        )
    renoise2 = safe * safe - t_down * t_down * a_next * a_next / (a_down * a_down)
    if np.any(renoise2 < -1e-12 * safe * safe):
        r = int(np.flatnonzero(renoise2 < -1e-12 * safe * safe)[0])
        raise ValueError(
            f"eta={eta!r} is too large for step {step} (t={float(t[r])!r} to {float(tn[r])!r}): the down-step "
            "overshoots and leaves no noise to add back; use eta in [0, 1]"
        )
    return t_down / t, a_next / a_down, np.maximum(renoise2, 0.0)


# -- fitting a spectrum to the user's latents ------------------------------------------------------------------


def _load_latents(latents: Any, key: str | None) -> np.ndarray:
    if isinstance(latents, (str, os.PathLike)):
        from .._io import read_safetensors_tensor

        try:
            _, tensor = read_safetensors_tensor(latents, key, key_name="key")
        except ValueError as exc:
            raise ValueError(f"latents: {exc}") from None
        return tensor.double().numpy()
    if is_torch_tensor(latents):
        return latents.detach().double().cpu().numpy()
    if isinstance(latents, np.ndarray):
        return latents.astype(np.float64, copy=False)
    raise TypeError(
        f"latents must be a .safetensors path, a numpy array or a torch tensor, got {type(latents).__name__}"
    )


def _average(power: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Replace each value by the mean over its group (groups: integer labels, same shape)."""
    labels, inverse = np.unique(groups.ravel(), return_inverse=True)
    sums = np.bincount(inverse, weights=power.ravel(), minlength=labels.size)
    counts = np.bincount(inverse, minlength=labels.size)
    return (sums / counts)[inverse].reshape(power.shape)


def fit_spectrum(
    latents: Any, *, key: str | None = None, average: str = "radial", image: bool = False, center: bool = True
) -> np.ndarray:
    """Per-mode variances ``[T', H', W']`` estimated from real latents, for ``GaussianField(variances=...)``.

    Args:
        latents: a ``.safetensors`` file (only safetensors is read, never pickle; ``key`` picks the tensor when
            it holds several), a numpy array or a torch tensor. The last three axes are ``[T', H', W']``; all
            leading axes (batch, channels) are averaged over. With ``image=True`` the last two axes are
            ``[H', W']`` (``T' = 1``), for image latents ``[B, C, H', W']``.
        average: how to smooth the periodogram of a few samples. ``"radial"`` (default): mean over modes with the
            same ``|k_t|`` and the same rounded spatial radius ``sqrt(k_y^2 + k_x^2)``; ``"grid"``: mean over the
            sign flips ``(+-k_t, +-k_y, +-k_x)``; ``"none"``: the raw periodogram.
        center: subtract the data's mean first: one mean per channel (the axes between the first and the last three;
            a 3- or 4-D array has one), over the samples and positions. The Gaussian field has mean zero, and Euler's
            error does not depend on the data's mean, but a mean left in lands in the zero-frequency variance and
            inflates the advised shift (7-9x for a mean of 1.9 standard deviations: docs/quality-models.md, "On
            trained networks"). The zero-frequency variance that remains is the spread of the samples' own means,
            which is real and needed; so fit a batch of samples, as the model sees them (after the VAE's shift and
            scale). ``False``: the raw second moment, for data whose mean is zero by construction.

    Returns:
        float64 ``[T', H', W']`` in ``numpy.fft.fftn`` order, ``E|FFT(x - mean)_k|^2 / (T' H' W')``: the
        per-element variance each mode contributes, so its mean is the variance of the latents. Raises
        ``ValueError`` when a mode has no power (constant latents, or one sample centred).
    """
    average = choice("average", average, AVERAGES)
    arr = _load_latents(latents, key)
    if image:
        if arr.ndim < 2:
            raise ValueError(f"image latents need at least 2 axes [H', W'], got shape {arr.shape}")
        arr = arr[..., None, :, :]
    if arr.ndim < 3:
        raise ValueError(f"latents need at least 3 axes [..., T', H', W'] (or image=True), got shape {arr.shape}")
    check_finite("latents", arr)
    if boolean("center", center):
        arr = arr - _channel_means(arr)
    shape = arr.shape[-3:]
    flat = arr.reshape(-1, *shape)
    power = np.zeros(shape)
    for sl in flat:  # one FFT at a time: the batch can be far larger than one complex copy
        power += np.abs(np.fft.fftn(sl)) ** 2
    power /= flat.shape[0] * float(np.prod(shape))
    if average != "none":
        at, ay, ax = (np.abs(np.fft.fftfreq(n) * n).astype(np.int64) for n in shape)
        if average == "grid":
            groups = (at[:, None, None] * (shape[1] + 1) + ay[None, :, None]) * (shape[2] + 1) + ax[None, None, :]
        else:
            radius = np.rint(np.sqrt(ay[:, None] ** 2 + ax[None, :] ** 2)).astype(np.int64)
            groups = at[:, None, None] * (radius.max() + 1) + radius[None, :, :]
        power = _average(power, groups)
    if center and not power.flat[0] > 1e-12 * power.mean():  # what rounding leaves of a zero mean
        raise ValueError(
            "center=True leaves no zero-frequency variance: the latents' own means do not spread around the "
            "data's mean (one sample, or samples with one mean); fit a batch of samples, or pass center=False for "
            "data whose mean is zero by construction"
        )
    if not (power > 0).all():
        raise ValueError(
            f"latents give {int((power <= 0).sum())} modes with zero power (constant or zero latents?); "
            "a Gaussian field needs every variance > 0"
        )
    return power


def _channel_means(arr: np.ndarray) -> np.ndarray | float:
    """The data's mean per channel: over axis 0 (samples) and the last three (positions), one value for each index
    of the axes between them (a 3- or 4-D array has none: one mean)."""
    if arr.ndim == 3:
        return float(arr.mean())
    return arr.mean(axis=(0, *range(arr.ndim - 3, arr.ndim)), keepdims=True)
