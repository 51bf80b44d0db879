"""The GPU check: everything flowsched promises about CUDA, in one script that stays under 3 minutes on an H100.

0. The Triton kernel's self-check (``flowsched.backends.selfcheck``: five regions, the two FMA-sensitive words among
   them, against the numpy reference), which ``backend="auto"`` runs before it first uses the kernel on a device, and
   which backend ``auto`` then picks.
1. Portable noise: prints the GPU model, checks every backend that runs on the GPU (triton, torch) against the CPU
   result bit for bit (the 768px 129-frame latent, a batch of 8 of it, the DC-AE 128-channel latent, regions,
   sample indices, streams, dtypes and the two FMA-sensitive words), times ``portable_noise`` (auto), the torch
   backend, ``torch.randn`` on the GPU and CPU ``torch.randn`` + copy (medians of CUDA-event timings) for the latent
   and the batch of 8, and tries a few kernel block sizes.
2. Stochastic samplers (:func:`stochastic_trajectory_check`): ``euler_ancestral`` and ``stochastic_euler`` with
   ``seed=`` on the CPU and on CUDA, every step's state bit for bit; the batch against each sample alone; numpy
   against torch.
3. Per-frame sampling (:func:`frames_trajectory_check`): ``euler_frames``' stochastic (Self-Forcing) and
   prefix-noising (SkyReels-V2 ``addnoise_condition``) trajectories, the same three comparisons.

It prints every number and writes all of it as markdown to ``benchmarks/results/gpu.md``. On a machine without a
CUDA device it says so and exits with status 0, writing nothing. Exit status 1 when any check differs.

    python benchmarks/gpu_check.py              # about a minute on an H100 (estimate below)
    python benchmarks/gpu_check.py --repeats 50
    python benchmarks/gpu_check.py --dry-run    # every step on the CPU, small shapes, wall-clock times; no file

Runtime estimate for an H100 machine (16 CPU cores), from what each part does: the CPU reference noise of the
identity cases is about 1.1e8 values (7 CPU ns per value with numba, 34 with the numpy backend, on more than one
core: 1-4 s); the timings are 30 CUDA-event runs of sub-millisecond kernels per row plus 4 CPU ``torch.randn`` of
the batch of 8 (0.25 s each); the kernel sweep compiles eight Triton configurations (a few seconds each); the two
trajectory checks take 21 s on 2 shared CPU cores with BOTH sides on the CPU (``stochastic_trajectory_check("cpu")``
15.5 s, ``frames_trajectory_check("cpu")`` 6 s), less with the device side on the GPU. About a minute in all, under
3 minutes with a wide margin. The script prints the seconds each part took, and the report records them.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time

from _report import write_report

LATENT = (1, 16, 33, 96, 96)
BATCH8 = (8, 16, 33, 96, 96)
DCAE = (1, 128, 33, 24, 24)  # DC-AE f32t4c128, 768px, 129 frames
SEED = 1024
DEVICE = "cuda"
FMA_WORDS = {0x20F8A25E: 0xBF90E904, 0xDF075DA1: 0x3F90E904}


def identity_cases(torch) -> list[tuple[str, tuple, int, dict]]:
    """(name, shape, seed, portable_noise keyword arguments) of each bit-identity check."""
    from flowsched.distributed import shard_bounds

    b, c, t, h, w = BATCH8
    frames = shard_bounds(t, 3, 1)
    return [
        (f"latent {list(LATENT)}", LATENT, SEED, {}),
        (f"batch of 8 {list(BATCH8)}", BATCH8, SEED, {}),
        (f"DC-AE 128-channel latent {list(DCAE)}", DCAE, SEED, {}),
        ("seed 2**64 - 1, stream 2**32 - 1", LATENT, 2**64 - 1, {"stream": 2**32 - 1}),
        ("sample_index [7, 2**32 - 1]", (2, *LATENT[1:]), 5, {"sample_index": [7, 2**32 - 1]}),
        (f"region: height rows {h // 2}..{h - 1} (shard 2 of 2)", BATCH8, SEED, {"region": {3: slice(h // 2, h)}}),
        (f"region: frames {frames[0]}..{frames[1] - 1} (shard 2 of 3)", LATENT, SEED,
         {"region": {2: slice(*frames)}}),
        ("region: every 3rd column from 1", LATENT, SEED, {"region": {4: slice(1, None, 3)}}),
        (f"region: batch 3..5 of 8, channels {c // 4}..{3 * c // 4 - 1}", BATCH8, SEED,
         {"region": (slice(3, 6), slice(c // 4, 3 * c // 4))}),
        (f"image {[4, c, 8 * h // 6, 8 * w // 6]}", (4, c, 8 * h // 6, 8 * w // 6), 42, {}),
        ("bfloat16", LATENT, SEED, {"dtype": torch.bfloat16}),
        ("float16", LATENT, SEED, {"dtype": torch.float16}),
        ("block counter crosses 2**32", (2, 2**35), 3, {"region": (slice(None), slice(2**34 - 4096, 2**34 + 4096))}),
    ]


def check_identity(torch, gpu_backends: list[str]) -> tuple[list[str], bool]:
    from flowsched import philox
    from flowsched.noise import portable_noise

    header = "| case | " + " | ".join(gpu_backends) + " |"
    lines = [header, "| --- |" + " :---: |" * len(gpu_backends)]
    ok = True
    for name, shape, seed, kwargs in identity_cases(torch):
        cpu = portable_noise(shape, seed, **kwargs)
        cells = []
        for backend in gpu_backends:
            try:
                same = torch.equal(portable_noise(shape, seed, device=DEVICE, backend=backend, **kwargs).cpu(), cpu)
                cells.append("equal" if same else "**DIFFERENT**")
            except Exception as exc:  # noqa: BLE001 - report every case, then fail
                same = False
                cells.append(f"**error: {type(exc).__name__}: {str(exc)[:200]}**")
            ok &= same
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for word, bits in FMA_WORDS.items():
        seed, sample, stream, index = philox.locate_word(word)
        region = (slice(None), slice(index - 2, index + 3))
        cells = []
        for backend in gpu_backends:
            try:
                x = portable_noise((1, 2**63), seed, sample_index=sample, stream=stream, region=region,
                                   device=DEVICE, backend=backend).cpu()
                got = int(x.numpy().view("uint32")[0, 2])
                same = got == bits
                cells.append("equal" if same else f"**{got:#010x}**")
            except Exception as exc:  # noqa: BLE001
                same = False
                cells.append(f"**error: {type(exc).__name__}: {str(exc)[:200]}**")
            ok &= same
        lines.append(f"| FMA-sensitive word {word:#010x} -> {bits:#010x} | " + " | ".join(cells) + " |")
    return lines, ok


def self_check_lines(torch) -> tuple[list[str], bool]:
    """The Triton kernel's self-check on the device, timed (its kernel variants' first compile included), and the
    backend ``auto`` then picks there."""
    from flowsched import backends
    from flowsched.backends.selfcheck import CASES, check

    dev = torch.device(DEVICE)
    start = time.perf_counter()
    failure = check(backends.get("triton"), dev)
    seconds = time.perf_counter() - start
    chosen = backends.select("auto", dev).name
    values = sum(case.job().layout.numel for case in CASES)
    verdict = "passed" if failure is None else f"FAILED: {failure}"
    lines = [
        "## The Triton kernel's self-check",
        "",
        f"{len(CASES)} regions, {values:,} values ({', '.join(c.label for c in CASES)}) against the numpy reference "
        f"on the CPU, bit for bit: **{verdict}** in {seconds:.2f} s (the first compile of its kernel variants "
        f"included). `backend=\"auto\"` on {dev} then uses **{chosen}**.",
        "",
    ]
    return lines, failure is None and (chosen == "triton" or DEVICE == "cpu")  # the dry run: auto is a CPU backend


def cuda_ms(torch, fn, repeats: int) -> float:
    """Median of CUDA-event timings of ``fn`` (after a warm-up); wall-clock on the CPU (dry run)."""
    fn()
    if DEVICE == "cpu":
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def queued_ms(torch, fn, calls: int) -> float:
    """Time per call of ``calls`` calls of ``fn`` queued back to back between two CUDA events: what a call costs
    when the GPU is kept busy (a pipeline's case), where the host's work for the next call overlaps the GPU's for
    this one; wall-clock per call on the CPU (dry run)."""
    fn()
    if DEVICE == "cpu":
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) * 1e3 / calls
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / calls


def host_ms(torch, fn, calls: int) -> float:
    """Host (Python) time per call of ``fn``: ``calls`` calls issued without waiting for the GPU, then a sync that is
    not counted (each output is dropped as soon as it is returned, so the caching allocator reuses its memory)."""
    fn()
    if DEVICE != "cpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    host = time.perf_counter() - start
    if DEVICE != "cpu":
        torch.cuda.synchronize()
    return host * 1e3 / calls


def timing_rows(torch, repeats: int, gpu_backends: list[str]) -> list[tuple[str, float, float]]:
    from flowsched.backends import select
    from flowsched.noise import portable_noise

    dev = torch.device(DEVICE)
    cases = {
        f"portable_noise, auto ({select('auto', dev).name})": lambda s: portable_noise(s, SEED, device=dev),
        "torch.randn on the GPU (not portable)": lambda s: torch.randn(s, device=dev),
        "CPU torch.randn, then copy to the GPU": lambda s: torch.randn(
            s, generator=torch.Generator().manual_seed(SEED)).to(dev),
    }
    if "torch" in gpu_backends:
        cases["portable_noise, torch backend (eager ops)"] = lambda s: portable_noise(s, SEED, device=dev,
                                                                                     backend="torch")
    rows = []
    for name, fn in cases.items():
        few = max(3, repeats // 10) if "CPU" in name or "torch backend" in name else repeats
        rows.append((name, cuda_ms(torch, lambda f=fn: f(LATENT), few), cuda_ms(torch, lambda f=fn: f(BATCH8), few)))
    auto = next(iter(cases.values()))
    rows.append((f"portable_noise, auto: {repeats} calls queued back to back, per call",
                 queued_ms(torch, lambda: auto(LATENT), repeats), queued_ms(torch, lambda: auto(BATCH8), repeats)))
    rows.append(("portable_noise, auto: host (Python) time per call",
                 host_ms(torch, lambda: auto(LATENT), repeats), host_ms(torch, lambda: auto(BATCH8), repeats)))
    return rows


def kernel_sweep(torch, repeats: int) -> list[tuple[int, int, bool, float, float, float, float]]:
    """The Triton kernel's launch (its run table already on the device, the output preallocated) for a few program
    sizes and warp counts, with one Philox block per four outputs (quads) and one per output: one launch on an idle
    GPU and launches queued back to back (per launch), for the latent and the batch of 8."""
    import numpy as np

    from flowsched import philox
    from flowsched.backends import Job, triton_cuda

    rows = []
    configs = [(b, w, True) for b, w in ((256, 2), (256, 4), (512, 4), (512, 8), (1024, 4), (1024, 8), (2048, 8))]
    configs += [(512, 4, False), (1024, 8, False)]
    if DEVICE == "cpu":  # dry run in Triton's interpreter: one configuration of each kind is enough
        configs = [(1024, 8, True), (1024, 8, False)]
    for block, warps, quads in configs:
        times = []
        for shape in (LATENT, BATCH8):
            layout = philox.Layout(shape, [range(n) for n in shape])
            job = Job(layout, philox.key_from_seed(SEED), np.arange(shape[0]), 0)
            out = torch.empty(layout.numel, device=DEVICE)
            run = functools.partial(triton_cuda.launch, job, out, block, warps, quads=quads)
            times += [cuda_ms(torch, run, repeats), queued_ms(torch, run, repeats)]
        rows.append((block, warps, quads, *times))
    return rows


# -- stochastic sampling trajectories: CPU against the GPU ------------------------------------------------------


def _velocity(x, t):
    """Elementwise, only ``+``, ``-`` and ``*`` (IEEE-exact on every device, unlike ``sin`` or a matmul), so a
    difference between devices could only come from the samplers or their noise."""
    return 0.7 * x - 0.2 * x * x + (t - 0.5)


def _host(s):
    import numpy as np
    import torch

    return s.detach().to("cpu").numpy().copy() if isinstance(s, torch.Tensor) else np.array(s)


def _compare(name, a, b) -> dict:
    import numpy as np

    diffs = [float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) for x, y in zip(a, b, strict=True)]
    equal = len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    return {"name": name, "steps": len(a), "equal": equal, "max_abs_diff": max(diffs) if diffs else 0.0}


def stochastic_trajectory_check(
    device: str = "cuda",
    *,
    seed: int = 2024,
    shape: tuple[int, ...] = (3, 16, 5, 24, 40),
    num_steps: int = 12,
) -> dict:
    """Run the stochastic samplers on the CPU and on ``device`` from the same seed and compare every step, float32
    (``flowsched.sampling`` with ``seed=``: step ``i`` draws portable noise on stream ``1 + i``,
    docs/portable-noise.md): ``euler_ancestral`` (eta 1 and 0.5, s_noise 0.9) and ``stochastic_euler`` on the CPU
    (numpy backend of the noise) and on the device; on the device, the batch against each sample run alone with
    its ``sample_index``; numpy arrays against torch tensors on the CPU.

    Returns ``{"device", "skipped"}`` when ``device`` is CUDA and none is available, else
    ``{"device", "shape", "num_steps", "checks": [{"name", "steps", "equal", "max_abs_diff"}], "ok"}``.
    """
    import numpy as np
    import torch

    from flowsched import schedules
    from flowsched.noise import portable_noise
    from flowsched.sampling import euler_ancestral, stochastic_euler

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return {"device": device, "skipped": "no CUDA device"}
    sched = schedules.shifted(num_steps, 3.0)
    runs = {
        "euler_ancestral eta=1": (euler_ancestral, {"eta": 1.0}),
        "euler_ancestral eta=0.5 s_noise=0.9": (euler_ancestral, {"eta": 0.5, "s_noise": 0.9}),
        "stochastic_euler": (stochastic_euler, {}),
    }

    def trajectory(run, kwargs, x, **extra):
        states = []
        run(_velocity, x, sched, seed=seed, callback=lambda i, t, tn, s: states.append(_host(s)), **kwargs, **extra)
        return states

    x_cpu = portable_noise(shape, seed)  # the initial noise: stream 0 of the same seed
    x_dev = portable_noise(shape, seed, device=dev)
    checks = [_compare("initial noise, cpu vs " + str(dev), [x_cpu.numpy()], [_host(x_dev)])]
    for label, (run, kwargs) in runs.items():
        cpu = trajectory(run, kwargs, x_cpu.clone())
        on_dev = trajectory(run, kwargs, x_dev.clone())
        checks.append(_compare(f"{label}: cpu vs {dev}", cpu, on_dev))
        alone = [trajectory(run, kwargs, x_dev[b : b + 1].clone(), sample_index=b) for b in range(shape[0])]
        stacked = [np.concatenate([alone[b][i] for b in range(shape[0])]) for i in range(num_steps)]
        checks.append(_compare(f"{label}: batch {shape[0]} vs one sample at a time on {dev}", on_dev, stacked))
        as_numpy = trajectory(run, kwargs, x_cpu.numpy().copy())
        checks.append(_compare(f"{label}: numpy vs torch on cpu", as_numpy, cpu))
    return {
        "device": str(dev),
        "shape": list(shape),
        "num_steps": num_steps,
        "checks": checks,
        "ok": all(c["equal"] for c in checks),
    }


def _frame_velocity(x, t):
    """:func:`_velocity` with one ``t`` per frame (axis 2), in ``x``'s dtype: still only ``+``, ``-``, ``*``."""
    import numpy as np

    shape = (1, 1, -1) + (1,) * (x.ndim - 3)
    t = t.astype(x.dtype).reshape(shape) if isinstance(t, np.ndarray) else t.to(x.dtype).reshape(shape)
    return 0.7 * x - 0.2 * x * x + (t - 0.5)


def frames_trajectory_check(
    device: str = "cuda",
    *,
    seed: int = 2025,
    shape: tuple[int, ...] = (3, 16, 6, 24, 40),
) -> dict:
    """Run ``flowsched.sampling.euler_frames`` on the CPU and on ``device`` from the same seed and compare every
    step's state bit for bit, float32: Self-Forcing's stochastic sampler on a blockwise schedule (3 blocks of 2
    frames, 3 steps each: fresh noise each step) and Euler on a SkyReels-V2 diffusion-forcing schedule whose 2
    prefix frames are fed noised (``addnoise_condition`` 50: fresh noise each step); on the device, the batch
    against each sample alone with its ``sample_index``; numpy against torch on the CPU. ``shape[2]`` must be 6.

    Returns what :func:`stochastic_trajectory_check` returns.
    """
    import numpy as np
    import torch

    from flowsched import frames, schedules
    from flowsched.noise import portable_noise
    from flowsched.sampling import euler_frames

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return {"device": device, "skipped": "no CUDA device"}
    runs = {
        "euler_frames stochastic, blockwise (Self-Forcing)": (
            frames.blockwise([1000, 750, 500], 3, block_frames=2, alpha=5.0), True),
        "euler_frames Euler, diffusion forcing, noised prefix": (
            frames.diffusion_forcing(schedules.shifted(6, 3.0), 6, causal_block_size=2, ar_step=2,
                                     prefix_frames=2, addnoise_condition=50), False),
    }

    def trajectory(fs, stochastic, x, **extra):
        states = []
        euler_frames(_frame_velocity, x, fs, stochastic=stochastic, seed=seed,
                     callback=lambda r, t, tn, s: states.append(_host(s)), **extra)
        return states

    x_cpu = portable_noise(shape, seed)
    x_dev = portable_noise(shape, seed, device=dev)
    checks = [_compare("initial noise, cpu vs " + str(dev), [x_cpu.numpy()], [_host(x_dev)])]
    steps = 0
    for label, (fs, stochastic) in runs.items():
        cpu = trajectory(fs, stochastic, x_cpu.clone())
        on_dev = trajectory(fs, stochastic, x_dev.clone())
        checks.append(_compare(f"{label}: cpu vs {dev}", cpu, on_dev))
        alone = [trajectory(fs, stochastic, x_dev[b : b + 1].clone(), sample_index=b) for b in range(shape[0])]
        stacked = [np.concatenate([alone[b][r] for b in range(shape[0])]) for r in range(fs.num_steps)]
        checks.append(_compare(f"{label}: batch {shape[0]} vs one sample at a time on {dev}", on_dev, stacked))
        as_numpy = trajectory(fs, stochastic, x_cpu.numpy().copy())
        checks.append(_compare(f"{label}: numpy vs torch on cpu", as_numpy, cpu))
        steps = max(steps, fs.num_steps)
    return {
        "device": str(dev),
        "shape": list(shape),
        "num_steps": steps,
        "checks": checks,
        "ok": all(c["equal"] for c in checks),
    }


def trajectory_lines(title: str, result: dict) -> list[str]:
    """A trajectory check's result as markdown (also printed)."""
    if "skipped" in result:
        return [f"## {title}", "", f"Skipped: {result['skipped']}.", ""]
    lines = [
        f"## {title}",
        "",
        f"float32, shape {result['shape']}, up to {result['num_steps']} steps; every step's state compared.",
        "",
        "| check | steps | result |",
        "| --- | ---: | --- |",
    ]
    for c in result["checks"]:
        verdict = "bit-identical" if c["equal"] else f"**DIFFERENT** (max abs diff {c['max_abs_diff']:.3g})"
        lines.append(f"| {c['name']} | {c['steps']} | {verdict} |")
    lines += ["", f"All bit-identical: **{result['ok']}**", ""]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30, help="CUDA-event timings per median (default 30)")
    ap.add_argument("--quick", action="store_true", help="10 repeats")
    ap.add_argument("--dry-run", action="store_true",
                    help="check the script itself: every step on the CPU with small shapes, torch backend, no file")
    args = ap.parse_args()
    repeats = 10 if args.quick else args.repeats
    began = time.perf_counter()
    import torch

    global DEVICE, LATENT, BATCH8, DCAE
    if args.dry_run:
        DEVICE, LATENT, BATCH8, DCAE, repeats = "cpu", (1, 4, 3, 16, 16), (8, 2, 3, 8, 8), (1, 32, 3, 6, 6), 1
    elif not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False): nothing "
              "to check; run this on a machine with an NVIDIA GPU and a CUDA build of torch.")
        return 0
    from flowsched.backends import triton_cuda
    from flowsched.philox import available_backends

    statuses = available_backends()
    gpu_backends = [name for name in ("triton", "torch") if statuses[name].available]
    if args.dry_run:  # the torch backend, and the Triton kernel when its interpreter runs (TRITON_INTERPRET=1)
        gpu_backends = ["torch"] + (["triton"] if triton_cuda.triton is not None and triton_cuda.interpreting() else [])
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else f"none (dry run on the CPU: {platform.machine()})"
    print(f"GPU: {name}", flush=True)
    seconds = {}

    def timed(part, fn, *a, **k):
        start = time.perf_counter()
        out = fn(*a, **k)
        seconds[part] = time.perf_counter() - start
        print(f"[{part}: {seconds[part]:.1f} s]", flush=True)
        return out

    checked, ok = timed("self-check", self_check_lines, torch) if "triton" in gpu_backends else ([], True)
    print("\n".join(checked), flush=True)
    identity, same = timed("noise identity", check_identity, torch, gpu_backends)
    print("\n".join(identity), flush=True)
    ok = ok and same
    rows = timed("noise timings", timing_rows, torch, repeats, gpu_backends)
    sweep = timed("kernel sweep", kernel_sweep, torch, repeats) if "triton" in gpu_backends else []
    small = {"shape": (2, 2, 3, 4, 6), "num_steps": 4} if args.dry_run else {}
    sampling = timed("stochastic samplers", stochastic_trajectory_check, DEVICE, **small)
    framed = timed("euler_frames", frames_trajectory_check, DEVICE,
                   **({"shape": (2, 2, 6, 4, 6)} if args.dry_run else {}))
    trajectories = [
        *trajectory_lines(f"Stochastic samplers: CPU vs {DEVICE}, batch vs single samples, numpy vs torch", sampling),
        *trajectory_lines(f"Per-frame sampling (euler_frames): CPU vs {DEVICE}, batch vs single samples, numpy vs "
                          "torch", framed),
    ]
    print("\n".join(trajectories), flush=True)
    ok = ok and sampling.get("ok", False) and framed.get("ok", False)
    versions = ", ".join(f"{s.detail}" for s in statuses.values() if s.available)
    lines = [
        "# Portable noise on a GPU",
        "",
        f"GPU: **{name}**; torch {torch.__version__}, CUDA {torch.version.cuda}; backends: {versions}; Python "
        f"{platform.python_version()}. `python benchmarks/gpu_check.py` took {time.perf_counter() - began:.0f} s ("
        + ", ".join(f"{part} {sec:.1f} s" for part, sec in seconds.items()) + ").",
        "",
        f"Every check bit-identical: **{ok}**",
        "",
        *checked,
        "## Bit identity with the CPU",
        "",
        "Each cell: the GPU backend's tensor equals, bit for bit, `portable_noise` on the CPU (auto backend).",
        "",
        *identity,
        "",
        f"All equal: **{same}**",
        "",
        f"## Time (median of CUDA-event timings; {repeats} runs, fewer for the slow rows)",
        "",
        f"| generator | latent {list(LATENT)} ms | batch of 8 ms |",
        "| --- | ---: | ---: |",
        *[f"| {row} | {a:.3f} | {b:.3f} |" for row, a, b in rows],
        "",
        "Goals: the latent in at most 0.15 ms and the batch of 8 in at most 0.6 ms (stretch: 0.07 ms).",
        "",
    ]
    if sweep:
        lines += [
            "## The Triton kernel's launch alone (output preallocated), by program size",
            "",
            "One launch on an idle GPU (median), and launches queued back to back (per launch: the kernel's own time "
            "once the host keeps ahead).",
            "",
            "| BLOCK | warps | one block per 4 outputs | latent ms | latent queued ms | batch of 8 ms | batch of 8 "
            "queued ms |",
            "| ---: | ---: | :---: | ---: | ---: | ---: | ---: |",
            *[f"| {b} | {w} | {'yes' if q else 'no'} | {x:.3f} | {xq:.3f} | {y:.3f} | {yq:.3f} |"
              for b, w, q, x, xq, y, yq in sweep],
            "",
            f"`flowsched.backends.triton_cuda.BLOCK` ({triton_cuda.BLOCK}) and `NUM_WARPS` "
            f"({triton_cuda.NUM_WARPS}) set what `portable_noise` uses, with one block per 4 outputs wherever the "
            "runs allow.",
            "",
        ]
    lines += trajectories
    if args.dry_run:
        print("\n".join(lines))
    else:
        write_report("gpu.md", "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
