"""A Gaussian-mixture data model whose flow velocity is known in closed form, with reference solutions and metrics.

Data ``x0 ~ sum_k pi_k N(mu_k, s_k^2 I)`` in ``d`` dimensions, noise ``eps ~ N(0, I)``, ``x_t = (1 - t) x0 + t eps``
(``t = 1`` noise, ``t = 0`` data). The flow velocity ``v(x, t) = E[eps - x0 | x_t = x]`` is (derivation:
docs/quality-models.md, "Gaussian mixture")

    v(x, t) = sum_k w_k(x, t) * ((t - (1 - t) s_k^2) x - t mu_k) / S_k(t),   S_k(t) = (1 - t)^2 s_k^2 + t^2,

``w_k`` the posterior responsibilities (a max-shift softmax). It has no ``1 / t`` singularity, so it is exact at
both ends. Metrics of a schedule, all "lower is better":

- ``"rmse"``: pathwise error, ``sqrt(mean_i ||x_hat_i - x_ref_i||^2)`` against a high-accuracy ODE solution from the
  same noise (:meth:`GaussianMixture.reference_solution`): the schedule's discretisation error alone.
- ``"sliced_w2"``: sliced 2-Wasserstein distance to fresh true samples of the same size; it has a noise floor
  (:meth:`GaussianMixture.noise_floor`).
- ``"modes"``: the fraction of samples landing in a different mode than the reference solution's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._limits import check_bytes
from .._validate import choice, is_torch_tensor, nonnegative_int, positive_int, positive_real, real
from ..sampling import STOCHASTIC, add_noise, get_sampler
from ..schedule import Schedule, check_t

METRICS = ("rmse", "sliced_w2", "modes")
#: Random directions of :func:`sliced_w2` (its default, and what ``"sliced_w2"`` uses).
PROJECTIONS = 256
#: Where :meth:`GaussianMixture.run` starts: pure noise, or data noised to the schedule's first value.
STARTS = ("noise", "data")

__all__ = ["METRICS", "GaussianMixture", "sliced_w2"]


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent streams from one user seed: 0 noise, 1 true samples, 2 projections, 3 a second true set,
    5 the data an image-to-image start noises."""
    return np.random.default_rng([nonnegative_int("seed", seed), stream])


def _sampler_options(sampler: str, eta: float, s_noise: float) -> dict:
    """``eta``/``s_noise`` for ``euler_ancestral``; refused (not ignored) when set for another sampler."""
    if sampler == "euler_ancestral":
        return {"eta": eta, "s_noise": s_noise}
    if eta != 1.0 or s_noise != 1.0:
        raise ValueError(f"eta and s_noise are options of sampler='euler_ancestral', not of {sampler!r}")
    return {}


def sliced_w2(a: np.ndarray, b: np.ndarray, *, projections: int = PROJECTIONS, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between two equal-size point sets ``[n, d]``.

    ``sqrt(mean_theta W2^2(a . theta, b . theta))`` over ``projections`` random unit directions ``theta``; each 1-D
    ``W2^2`` is the mean squared difference of the sorted projections (exact for equal sizes).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"sliced_w2 needs two point sets of equal shape [n, d], got {a.shape} and {b.shape}")
    projections = positive_int("projections", projections)
    n, d = a.shape
    # the directions, both sets' sorted projections and their difference
    check_bytes(f"sliced_w2 of {n} points along {projections} projections", 8 * projections * (d + 4 * n), about=True)
    theta = _rng(seed, 2).standard_normal((a.shape[1], projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    pa = np.sort(a @ theta, axis=0)
    pb = np.sort(b @ theta, axis=0)
    return float(math.sqrt(np.mean((pa - pb) ** 2)))


class GaussianMixture:
    """A mixture of isotropic Gaussians with its exact flow (see the module docstring).

    Args:
        means: ``[K, d]`` component means.
        stds: component standard deviations ``s_k > 0``: one number for all, or ``[K]``.
        weights: mixture weights ``pi_k >= 0`` (``[K]``, normalised to sum 1); default equal.
    """

    def __init__(self, means: Any, stds: Any, weights: Any = None) -> None:
        mu = np.array(means, dtype=np.float64)
        if mu.ndim != 2 or mu.shape[0] < 1 or mu.shape[1] < 1:
            raise ValueError(f"means must have shape [K, d] with K, d >= 1, got {mu.shape}")
        if not np.isfinite(mu).all():
            raise ValueError("means must be finite")
        k, d = mu.shape
        s = np.array(stds, dtype=np.float64)
        if s.ndim == 0:
            s = np.full(k, float(s))
        if s.shape != (k,):
            raise ValueError(f"stds must be one number or {k} numbers (one per component), got shape {s.shape}")
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise ValueError(f"stds must be finite and > 0, got {s.tolist()}")
        if weights is None:
            pi = np.full(k, 1.0 / k)
        else:
            pi = np.array(weights, dtype=np.float64)
            if pi.shape != (k,):
                raise ValueError(f"weights must have {k} values (one per component), got shape {pi.shape}")
            if not (np.isfinite(pi).all() and (pi >= 0).all() and pi.sum() > 0):
                raise ValueError(f"weights must be finite, >= 0 and not all 0, got {pi.tolist()}")
            pi = pi / pi.sum()
        for arr in (mu, s, pi):
            arr.setflags(write=False)
        self.means, self.stds, self.weights = mu, s, pi
        self.num_components, self.dim = k, d
        self._log_pi = np.log(np.where(pi > 0, pi, 1.0)) + np.where(pi > 0, 0.0, -np.inf)
        self._cache: dict[tuple, np.ndarray] = {}
        self._torch: dict[tuple, tuple] = {}

    # -- standard test problems --------------------------------------------------------------------------------
    @classmethod
    def standard(cls, seed: int = 0) -> GaussianMixture:
        """The standard test mixture (docs/quality-models.md): ``d = 16``, ``K = 8`` equal-weight modes at random
        directions on a sphere of radius 3 (directions drawn with ``seed``), ``s = 0.15``."""
        g = _rng(seed, 4).standard_normal((8, 16))
        return cls(3.0 * g / np.linalg.norm(g, axis=1, keepdims=True), 0.15)

    @classmethod
    def ring2d(cls, num_modes: int = 8, radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
        """``num_modes`` equal-weight 2-D modes evenly spaced on a circle (the "8 gaussians" toy), for plots."""
        num_modes = positive_int("num_modes", num_modes)
        radius = real("radius", radius)
        std = positive_real("std", std)
        ang = 2 * np.pi * np.arange(num_modes) / num_modes
        return cls(radius * np.stack([np.cos(ang), np.sin(ang)], axis=1), std)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.num_components}, d={self.dim}, stds={np.unique(self.stds).tolist()})"

    # -- the flow ------------------------------------------------------------------------------------------------
    def _coefficient_rows(self, t: np.ndarray) -> tuple:
        """Per-t matrices for times ``t`` of shape ``[S]``: logits = x @ B + c - sq * r, v = x * (w @ coef) + w @ M,
        as ``B [S, d, K]``, ``c [S, K]``, ``r [S, K]`` and ``[coef | M]`` ``[S, K, 1 + d]``."""
        t = np.asarray(t, dtype=np.float64)[:, None]
        u = 1.0 - t
        s2 = self.stds**2
        S = u * u * s2 + t * t  # [S, K]
        B = (u / S)[:, None, :] * self.means.T[None]
        c = self._log_pi - 0.5 * self.dim * np.log(S) - 0.5 * u * u * (self.means**2).sum(-1) / S
        r = 0.5 / S
        coef = ((t - u * s2) / S)[..., None]
        M = -t[..., None] * self.means[None] / S[..., None]
        return B, c, r, np.concatenate([coef, M], axis=-1)

    def _coefficients(self, t: float, like: Any) -> tuple:
        """:meth:`_coefficient_rows` at one ``t``, in x's array type (``like``; ``None`` for numpy)."""
        mats = tuple(a[0] for a in self._coefficient_rows(np.array([t])))
        if like is None:
            return mats
        import torch

        key = (t, like.dtype, like.device)
        if key not in self._torch:
            self._torch = {key: tuple(torch.as_tensor(a, dtype=like.dtype, device=like.device) for a in mats)}
        return self._torch[key]

    def _weights(self, x: Any, t: float, xp: str) -> tuple:
        B, c, r, out = self._coefficients(t, x if xp == "torch" else None)
        sq = (x * x).sum(-1)[..., None]
        return _softmax(x @ B + c - sq * r, xp), out

    def responsibilities(self, x: Any, t: float) -> Any:
        """Posterior component probabilities ``w_k(x, t)``, shape ``[..., K]``."""
        return self._weights(x, self._check_t(t), self._check_x(x))[0]

    def velocity(self, x: Any, t: float) -> Any:
        """The exact velocity ``E[eps - x0 | x_t = x]`` for ``x`` of shape ``[..., d]`` (numpy or torch, any float
        dtype and device; numpy is computed in float64). ``t`` in [0, 1], a Python float."""
        w, out = self._weights(x, self._check_t(t), self._check_x(x))
        y = w @ out  # [..., 1 + d]
        return x * y[..., :1] + y[..., 1:]

    def euler_rows(self, noise: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Euler from ``noise [n, d]`` along each of the schedules ``ts [S, N + 1]`` at once: float64 ``[S, n, d]``.

        The same steps as :func:`flowsched.sampling.euler` with :meth:`velocity`, batched over schedules (one
        set of array operations per step for all ``S``), for optimisers that score many schedules. ``ts`` is
        checked like any schedule (strictly decreasing in [0, 1]).
        """
        ts = check_t(ts, "ts", rows=True)
        x = np.repeat(np.asarray(noise, dtype=np.float64)[None], ts.shape[0], axis=0)
        for i in range(ts.shape[1] - 1):
            B, c, r, out = self._coefficient_rows(ts[:, i])
            sq = (x * x).sum(-1)[..., None]
            y = _softmax(x @ B + c[:, None, :] - sq * r[:, None, :], "numpy") @ out
            x = x + (ts[:, i + 1] - ts[:, i])[:, None, None] * (x * y[..., :1] + y[..., 1:])
        return x

    def posterior_mean(self, x: Any, t: float) -> Any:
        """``E[x0 | x_t = x] = x - t * v(x, t)`` (the MMSE denoiser; what an Euler step to ``t = 0`` returns)."""
        return x - float(t) * self.velocity(x, t)

    def _check_t(self, t: Any) -> float:
        t = real("t", t)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"t must lie in [0, 1], got {t}")
        return t

    def _check_x(self, x: Any) -> str:
        xp = "torch" if is_torch_tensor(x) else "numpy"
        if xp == "numpy" and not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array or a torch tensor [..., d], got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape [..., {self.dim}] for this {self.dim}-D mixture, got {tuple(x.shape)}")
        return xp

    # -- samples and references -----------------------------------------------------------------------------------
    def _num_samples(self, num_samples: Any, *, sliced: bool = False) -> int:
        """``num_samples``, checked, and refused when the work it asks for exceeds the memory budget
        (:mod:`flowsched._limits`): the peak of a sampler run and its RK4 reference is about ``8 (16 d + 4 K)``
        bytes per sample, plus ``8 * 4 * PROJECTIONS`` for ``"sliced_w2"`` (measured with tracemalloc: 1.75 KB per
        sample for the standard mixture, 6.4 KB with sliced_w2; counted generously here)."""
        n = positive_int("num_samples", num_samples)
        per_sample = 8 * (16 * self.dim + 4 * self.num_components + (4 * PROJECTIONS if sliced else 0))
        check_bytes(f"num_samples={n} on {self!r}", n * per_sample, about=True)
        return n

    def sample(self, num_samples: int, seed: int = 0, *, return_labels: bool = False):
        """``num_samples`` draws of ``x0`` as float64 ``[num_samples, d]`` (and their component labels if asked)."""
        x, labels = self._draw(self._num_samples(num_samples), _rng(seed, 1))
        return (x, labels) if return_labels else x

    def _draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.choice(self.num_components, size=n, p=self.weights)
        return self.means[labels] + self.stds[labels, None] * rng.standard_normal((n, self.dim)), labels

    def noise(self, num_samples: int, seed: int = 0) -> np.ndarray:
        """The standard-normal start states ``[num_samples, d]`` that :meth:`error` uses for ``(num_samples, seed)``."""
        return _rng(seed, 0).standard_normal((self._num_samples(num_samples), self.dim))

    def reference_solution(
        self, noise: Any, t_end: float = 0.0, *, rtol: float = 1e-7, return_error: bool = False
    ):
        """High-accuracy solution of the flow ODE from ``t = 1`` (``x = noise``, ``[n, d]``) to ``t_end``.

        Classical RK4 on uniform grids of 64, 128, 256, ... steps, per sample: a sample is accepted once two
        successive solutions differ by at most ``rtol`` times the RMS size of the solution in every coordinate;
        the finer one is kept, so its error is about that difference / 15 (RK4 is fourth order). Samples near a
        boundary between modes need the finest grids; the rest stop early. With ``return_error=True`` also
        returns the largest such error estimate. Raises ``ValueError`` if 2^16 steps do not reach ``rtol``.
        """
        x0 = np.array(noise, dtype=np.float64)
        self._check_x(x0)
        if x0.ndim != 2:
            raise ValueError(f"noise must have shape [n, {self.dim}], got {x0.shape}")
        t_end = self._check_t(t_end)
        if t_end >= 1.0:
            raise ValueError(f"t_end must be < 1 (the solution starts from noise at t = 1), got {t_end}")
        rtol = positive_real("rtol", rtol)
        prev = self._rk4(x0, t_end, 64)
        tol = rtol * max(float(np.sqrt(np.mean(prev**2))), 1e-300)
        result = np.empty_like(x0)
        active = np.arange(x0.shape[0])
        worst, steps = 0.0, 128
        while active.size:
            cur = self._rk4(x0[active], t_end, steps)
            diff = np.abs(cur - prev).max(axis=-1)
            done = diff <= tol
            result[active[done]] = cur[done]
            if done.any():
                worst = max(worst, float(diff[done].max()) / 15.0)
            active, prev = active[~done], cur[~done]
            if active.size and steps >= 2**16:
                raise ValueError(
                    f"reference solution did not reach rtol={rtol} for {active.size} samples with {steps} RK4 steps"
                )
            steps *= 2
        return (result, worst) if return_error else result

    def _rk4(self, x: np.ndarray, t_end: float, steps: int) -> np.ndarray:
        ts = np.linspace(1.0, t_end, steps + 1)
        v = self.velocity
        for i in range(steps):
            t, t_next = float(ts[i]), float(ts[i + 1])
            h = t_next - t
            mid = 0.5 * (t + t_next)
            k1 = v(x, t)
            k2 = v(x + 0.5 * h * k1, mid)
            k3 = v(x + 0.5 * h * k2, mid)
            k4 = v(x + h * k3, t_next)
            x = x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
        return x

    def reference(self, num_samples: int = 1024, seed: int = 0) -> np.ndarray:
        """:meth:`reference_solution` of :meth:`noise` ``(num_samples, seed)`` (default ``rtol``), cached: the
        targets of ``"rmse"`` and ``"modes"``. Read-only float64 ``[num_samples, d]``."""
        key = ("ref", self._num_samples(num_samples), nonnegative_int("seed", seed))
        if key not in self._cache:
            ref = self.reference_solution(self.noise(num_samples, seed))
            ref.setflags(write=False)
            self._cache[key] = ref
        return self._cache[key]

    def _truth(self, n: int, seed: int) -> np.ndarray:
        key = ("truth", n, seed)
        if key not in self._cache:
            self._cache[key] = self.sample(n, seed)
        return self._cache[key]

    # -- metrics ------------------------------------------------------------------------------------------------------
    def run(
        self,
        schedule: Schedule | Sequence[float] | np.ndarray,
        *,
        num_samples: int = 1024,
        seed: int = 0,
        sampler: str = "euler",
        eta: float = 1.0,
        s_noise: float = 1.0,
        start: str = "noise",
    ) -> np.ndarray:
        """The sampler's outputs ``[num_samples, d]`` on ``schedule``.

        ``start="noise"``: from :meth:`noise` ``(num_samples, seed)`` (used as ``x_{t_0}`` whatever ``t_0``);
        ``"data"``: from fresh data samples (stream 5 of ``seed``, independent of the true samples ``sliced_w2``
        compares with) noised to ``t_0`` with that noise, ``(1 - t_0) x0 + t_0 eps`` (image-to-image). The
        stochastic samplers (``"euler_ancestral"`` with ``eta``, ``s_noise``; ``"stochastic_euler"``) draw their
        per-step noise as portable noise of ``seed`` (:func:`flowsched.noise.step_noise`, stream ``1 + i``)."""
        run = get_sampler(sampler)
        choice("start", start, STARTS)
        t = schedule.t if isinstance(schedule, Schedule) else schedule
        row = check_t(t, "schedule", end=0.0)
        kwargs = _sampler_options(sampler, eta, s_noise)
        if sampler in STOCHASTIC:
            kwargs["seed"] = nonnegative_int("seed", seed)
        x = self.noise(num_samples, seed)
        if start == "data":
            x = add_noise(self._draw(x.shape[0], _rng(seed, 5))[0], x, float(row[0]))
        return run(self.velocity, x, row, allow_partial=True, **kwargs)

    def error(
        self,
        schedule: Schedule | Sequence[float] | np.ndarray,
        *,
        metric: str = "rmse",
        num_samples: int = 1024,
        seed: int = 0,
        sampler: str = "euler",
        eta: float = 1.0,
        s_noise: float = 1.0,
        start: str = "noise",
    ) -> float:
        """The metric (``"rmse"``, ``"sliced_w2"`` or ``"modes"``, see the module docstring) of ``sampler`` on
        ``schedule`` over ``num_samples`` noises drawn with ``seed``. The schedule must be strictly decreasing and
        end at ``t_N = 0``. References and true samples are cached per ``(num_samples, seed)``, so repeated calls
        cost only the sampler: ``num_samples * N`` velocity evaluations for Euler.

        Stochastic samplers (``"euler_ancestral"`` with ``eta`` and ``s_noise``, ``"stochastic_euler"``) and
        ``start="data"`` (see :meth:`run`) leave the ODE path on purpose, so only ``"sliced_w2"`` measures them:
        Monte Carlo, with the noise floor :meth:`noise_floor` ``(num_samples, seed)``.
        """
        metric = choice("metric", metric, METRICS)
        num_samples = self._num_samples(num_samples, sliced=metric == "sliced_w2")
        if metric != "sliced_w2" and (sampler in STOCHASTIC or start != "noise"):
            what = f"sampler={sampler!r}" if sampler in STOCHASTIC else f"start={start!r}"
            raise ValueError(
                f"metric={metric!r} compares with the ODE solution from the same noise; {what} leaves that path by "
                "design: use metric='sliced_w2' (distance to the data distribution, with noise_floor())"
            )
        out = self.run(schedule, num_samples=num_samples, seed=seed, sampler=sampler, eta=eta, s_noise=s_noise,
                       start=start)
        if metric == "rmse":
            return float(np.sqrt(np.mean(np.sum((out - self.reference(num_samples, seed)) ** 2, axis=-1))))
        if metric == "sliced_w2":
            return sliced_w2(out, self._truth(num_samples, seed), seed=seed)
        agree = self.mode_of(out) == self.mode_of(self.reference(num_samples, seed))
        return float(1.0 - agree.mean())

    def mode_of(self, x0: np.ndarray) -> np.ndarray:
        """The most probable component of each data point (posterior at ``t = 0``), ``[n]`` integers."""
        return np.asarray(self.responsibilities(np.asarray(x0, dtype=np.float64), 0.0)).argmax(-1)

    def noise_floor(self, num_samples: int = 1024, seed: int = 0) -> float:
        """Sliced W2 between two independent true sample sets of size ``num_samples``: the value ``"sliced_w2"``
        cannot go below with that many samples (a perfect sampler scores about this)."""
        num_samples = self._num_samples(num_samples, sliced=True)
        return sliced_w2(self._draw(num_samples, _rng(seed, 3))[0], self._truth(num_samples, seed), seed=seed)


def _softmax(logits: Any, xp: str) -> Any:
    if xp == "torch":
        import torch

        return torch.softmax(logits, dim=-1)
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)

