"""A learned model: train a tiny flow-matching MLP on a 2-D Gaussian mixture, then show that the schedule optimiser
lowers its 8-step Euler error - measured against a fine-step reference solution of the same learned model from the
same noise - below both the linear schedule and the best pure shift, also on noise it did not see."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowsched import schedules
from flowsched.quality.optimize import best_shift, optimize_schedule, pathwise_objective, teacher_search
from flowsched.sampling import euler, heun

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow


def ring_mixture(n, generator, k=6, radius=2.0, std=0.15):
    """``n`` draws from ``k`` equal-weight isotropic Gaussians on a circle (float64 ``[n, 2]``)."""
    angle = 2 * math.pi * torch.randint(0, k, (n,), generator=generator, dtype=torch.float64) / k
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return centres + std * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def train_velocity():
    """Rectified-flow training (x_t = (1 - t) x0 + t eps, target eps - x0, t ~ U(0, 1)) of a 3 -> 64 -> 64 -> 2 MLP
    for 800 Adam steps; returns the learned velocity v(x, t) for float64 torch x ``[n, 2]``."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(), torch.nn.Linear(64, 2)
    ).double()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(800):
        x0 = ring_mixture(256, gen)
        eps = torch.randn(256, 2, generator=gen, dtype=torch.float64)
        t = torch.rand(256, 1, generator=gen, dtype=torch.float64)
        loss = ((net(torch.cat([(1 - t) * x0 + t * eps, t], 1)) - (eps - x0)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()

    @torch.no_grad()
    def velocity(x, t):
        return net(torch.cat([x, torch.full((x.shape[0], 1), t, dtype=x.dtype)], 1))

    return velocity


@pytest.fixture(scope="module")
def learned_velocity():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only contend
    yield train_velocity()
    torch.set_num_threads(threads)


def fresh_noise(seed):
    return torch.randn(512, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def objective_for(velocity, seed):
    """8-step error against a 200-step Heun solve of the same learned ODE from the same 512 noises."""
    noise = fresh_noise(seed)
    reference = heun(velocity, noise, schedules.linear(200))
    return noise, pathwise_objective(velocity, noise, reference)


def per_sample_errors(velocity, seed, ts):
    """``[len(ts), 512]``: each schedule's squared error per noise against the 200-step Heun reference (their mean
    is what :func:`pathwise_objective` returns)."""
    noise = fresh_noise(seed)
    reference = heun(velocity, noise, schedules.linear(200))
    return np.stack([((euler(velocity, noise, t) - reference) ** 2).sum(1).numpy() for t in ts])


def paired_z(worse, better):
    """How many standard errors the mean per-noise improvement ``worse - better`` is above zero.

    The errors are measured on the same noises, so the difference is paired; its standard error is the sample
    standard deviation of the differences over sqrt(512). A learned model differs slightly between machines
    (BLAS, threads), so the tests ask for a clear improvement in these units (z > 3, about a 1-in-700 chance for
    no real improvement under a normal approximation), not for a ratio fitted to one machine's training run.
    """
    d = np.asarray(worse) - np.asarray(better)
    return float(d.mean() / (d.std(ddof=1) / math.sqrt(d.size)))


def test_reference_solution_is_converged(learned_velocity):
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    a = heun(learned_velocity, noise, schedules.linear(200))
    b = heun(learned_velocity, noise, schedules.linear(400))
    assert float(((a - b) ** 2).sum(1).mean()) < 1e-6  # far below the 8-step errors (~1e-2) compared below


def test_optimiser_beats_linear_and_the_best_shift_on_a_learned_model(learned_velocity):
    _, fit = objective_for(learned_velocity, seed=1)
    linear_error = fit(schedules.linear(8).t[None])[0]
    alpha, shift_error = best_shift(8, fit)
    assert shift_error <= linear_error
    result = optimize_schedule(8, fit)
    assert result.params["value"] == pytest.approx(fit(result.t[None])[0], rel=1e-12)
    assert result.params["value"] < min(linear_error, shift_error)

    # Not a hair below the starts, and a schedule for the model rather than for those 512 noises: the per-noise
    # improvement over linear and over the best shift is clear on the fitted noises and on fresh ones.
    candidates = [schedules.linear(8).t, schedules.shifted(8, alpha).t, result.t]
    for seed in (1, 2):
        linear, shift, optimized = per_sample_errors(learned_velocity, seed, candidates)
        assert paired_z(linear, optimized) > 3 and paired_z(shift, optimized) > 3, seed


def test_teacher_search_beats_linear_on_a_learned_model(learned_velocity):
    noise, fit = objective_for(learned_velocity, seed=1)
    oss = teacher_search(learned_velocity, noise, 8, teacher=100)
    assert oss.params["nfe"] <= 9 * 100
    errors = fit(np.stack([schedules.linear(8).t, oss.t]))
    assert errors[1] < errors[0]
