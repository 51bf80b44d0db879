"""Portable noise on a CUDA GPU: bit identity with the CPU for every GPU backend, and timings (at most 3 minutes).

Prints the GPU model, checks every backend that runs on the GPU (triton, torch) against the CPU result bit for bit
(the 768px 129-frame latent, a batch of 8 of it, the DC-AE 128-channel latent, regions, sample indices, streams,
dtypes and the two FMA-sensitive words), times ``portable_noise`` (auto), the torch backend, ``torch.randn`` on the
GPU and CPU ``torch.randn`` + copy (medians of CUDA-event timings) for the latent and the batch of 8, tries a few
kernel block sizes, and writes all of it as markdown to ``benchmarks/results/gpu.md``. On a machine without a CUDA
device it says so and exits with status 0, writing nothing.

    python benchmarks/gpu_check.py              # about a minute on an H100
    python benchmarks/gpu_check.py --repeats 50
    python benchmarks/gpu_check.py --dry-run    # every step on the CPU, small shapes, wall-clock times; no file
"""

from __future__ import annotations

import argparse
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
    return rows


def kernel_sweep(torch, repeats: int) -> list[tuple[int, int, bool, float, float]]:
    """The Triton kernel's launch (with its small run-table copy, without allocating the output) for a few
    program sizes and warp counts, with one Philox block per four outputs (quads) and one per output."""
    import numpy as np

    from flowsched import philox
    from flowsched.backends import Job, triton_cuda

    rows = []
    configs = [(b, w, True) for b, w in ((256, 4), (512, 4), (512, 8), (1024, 4), (1024, 8), (2048, 8))]
    configs += [(512, 4, False), (1024, 8, False)]
    if DEVICE == "cpu":  # dry run in Triton's interpreter: one configuration of each kind is enough
        configs = [(1024, 8, True), (1024, 8, False)]
    for block, warps, quads in configs:
        times = []
        for shape in (LATENT, BATCH8):
            layout = philox.Layout(shape, [range(n) for n in shape])
            job = Job(layout, philox.key_from_seed(SEED), np.arange(shape[0]), 0)
            out = torch.empty(layout.numel, device=DEVICE)
            times.append(cuda_ms(torch, lambda j=job, o=out, b=block, w=warps, q=quads: triton_cuda.launch(
                j, o, b, w, quads=q), repeats))
        rows.append((block, warps, quads, *times))
    return rows


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
    identity, ok = check_identity(torch, gpu_backends)
    print("\n".join(identity), flush=True)
    rows = timing_rows(torch, repeats, gpu_backends)
    sweep = kernel_sweep(torch, repeats) if "triton" in gpu_backends else []
    versions = ", ".join(f"{s.detail}" for s in statuses.values() if s.available)
    lines = [
        "# Portable noise on a GPU",
        "",
        f"GPU: **{name}**; torch {torch.__version__}, CUDA {torch.version.cuda}; backends: {versions}; Python "
        f"{platform.python_version()}. `python benchmarks/gpu_check.py` took {time.perf_counter() - began:.0f} s.",
        "",
        "## Bit identity with the CPU",
        "",
        "Each cell: the GPU backend's tensor equals, bit for bit, `portable_noise` on the CPU (auto backend).",
        "",
        *identity,
        "",
        f"All equal: **{ok}**",
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
            "| BLOCK | warps | one block per 4 outputs | latent ms | batch of 8 ms |",
            "| ---: | ---: | :---: | ---: | ---: |",
            *[f"| {b} | {w} | {'yes' if q else 'no'} | {x:.3f} | {y:.3f} |" for b, w, q, x, y in sweep],
            "",
            f"`flowsched.backends.triton_cuda.BLOCK` ({triton_cuda.BLOCK}) and `NUM_WARPS` "
            f"({triton_cuda.NUM_WARPS}) set what `portable_noise` uses, with one block per 4 outputs wherever the "
            "runs allow.",
            "",
        ]
    if args.dry_run:
        print("\n".join(lines))
    else:
        write_report("gpu.md", "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
