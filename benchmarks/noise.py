"""Portable noise against ``torch.randn``: throughput, peak memory and (with a GPU) device timings and bit identity.

Shapes: the Open-Sora 2.0 768px, 129-frame latent ``[1, 16, 33, 96, 96]`` and a batch of 8 of it. Both
generators run in the same process, interleaved, so the ratio holds even on a loaded machine; the table also
records the load average. Peak memory is measured in a fresh process per case (Linux ``VmHWM`` minus ``VmRSS``
just before the call), as a multiple of the output's size. Writes ``benchmarks/results/noise.md``.

    python benchmarks/noise.py            # 7 repeats
    python benchmarks/noise.py --quick    # 3 repeats, no torch-backend CPU row
    python benchmarks/noise.py --stages   # only: where one thread's time goes, stage by stage
    python benchmarks/noise.py --scaling  # only: 1 thread vs 2 threads vs 2 processes (is the GIL the limit?)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from _report import write_report

HERE = os.path.dirname(os.path.abspath(__file__))
LATENT = (1, 16, 33, 96, 96)
BATCH8 = (8, 16, 33, 96, 96)
SEED = 1024


def _timings(fns: dict, repeats: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall and process CPU seconds of each function, interleaved."""
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in fns}
    for fn in fns.values():  # warm-up (thread pools, allocator, lazy imports)
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            cpu, start = time.process_time(), time.perf_counter()
            fn()
            times[name][0].append(time.perf_counter() - start)
            times[name][1].append(time.process_time() - cpu)
    return times


def _randn(shape):
    import torch

    return torch.randn(shape, generator=torch.Generator().manual_seed(SEED))


def cpu_rows(repeats: int, quick: bool) -> list[tuple]:
    from flowsched.noise import portable_noise

    rows = []
    for label, shape in (("768px 129f latent", LATENT), ("batch of 8", BATCH8)):
        fns = {
            "torch.randn (CPU generator)": lambda s=shape: _randn(s),
            "portable, numpy backend (default)": lambda s=shape: portable_noise(s, SEED),
            "portable, numpy backend, 1 thread": lambda s=shape: portable_noise(s, SEED, threads=1),
        }
        if not quick and shape == LATENT:
            fns["portable, torch backend (CPU)"] = lambda s=shape: portable_noise(s, SEED, backend="torch")
        times = _timings(fns, repeats if shape == LATENT else max(2, repeats // 2))
        base_wall = statistics.median(times["torch.randn (CPU generator)"][0])
        base_cpu = statistics.median(times["torch.randn (CPU generator)"][1])
        n = 1
        for s in shape:
            n *= s
        for name, (wall, cpu) in times.items():
            med, med_cpu = statistics.median(wall), statistics.median(cpu)
            ratios = (base_wall / med, med_cpu / n * 1e9, base_cpu / med_cpu)
            rows.append((label, name, med * 1e3, min(wall) * 1e3, *ratios))
    return rows


def stage_rows(repeats: int) -> list[tuple[str, float]]:
    """Where one thread's time goes: each stage of one 65,536-value work item (the default chunk), best of
    ``repeats`` interleaved runs, in ns per value of the item. The central branch is the transform minus the tail."""
    import numpy as np

    from flowsched import philox

    n = philox.CPU_CHUNK
    nb, work = n // 4, philox._Workspace()
    blk0, words, key = np.array([12345]), np.array([0]), philox.key_from_seed(SEED)
    x = philox._philox_rounds_numpy(*philox._NUMPY._counters(blk0, nb, words, 0, work), key, work)
    u = np.concatenate([a.reshape(-1) for a in x]).view(np.int64)
    q = (u + (0.5 - 2.0**31)) * 2.0**-32
    tail = np.flatnonzero(np.abs(q) > philox.SPLIT1)
    scratch, dest = np.empty(n), np.empty(n, np.float32)

    def transform():
        np.copyto(scratch, q)  # the transform overwrites q; this copy is subtracted below
        philox._normal_from_q_numpy(scratch, work)

    stages = {
        "counters and Philox4x32-10 rounds": lambda: philox._philox_rounds_numpy(
            *philox._NUMPY._counters(blk0, nb, words, 0, work), key, work),
        "words to q = p - 0.5 (float64)": lambda: np.multiply(np.add(u, 0.5 - 2.0**31, scratch), 2.0**-32, scratch),
        "AS241 transform (central + tail)": transform,
        "copy of q (subtracted)": lambda: np.copyto(scratch, q),
        "tail branch alone (15% of values)": lambda: philox._tail_numpy(q[tail], work),
        "float32 interleaving copy": lambda: [
            np.copyto(dest.reshape(nb, 4)[:, j], q[j * nb : (j + 1) * nb], casting="same_kind") for j in range(4)],
        "whole work item, before the float32 copy": lambda: philox._generate_item(
            philox._NUMPY, philox.Layout((1, n), [range(1), range(n)]), (0, 1, 0, n), words, 0, key, work),
    }
    best = dict.fromkeys(stages, float("inf"))
    with np.errstate(all="ignore"):
        for _ in range(repeats):
            for name, fn in stages.items():
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
    best["AS241 transform (central + tail)"] -= best.pop("copy of q (subtracted)")
    return [(name, t / n * 1e9) for name, t in best.items()]


SCALING_SCRIPT = """
import sys, time, numpy as np
from flowsched.noise import portable_noise
shape, threads, repeats = (1, 16, 8, 96, 96), int(sys.argv[1]), int(sys.argv[2])
portable_noise(shape, 1024, threads=threads)
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(repeats):
    portable_noise(shape, 1024, threads=threads)
n = repeats * int(np.prod(shape))
print((time.perf_counter() - wall) / n * 1e9, (time.process_time() - cpu) / n * 1e9)
"""


def scaling_rows(repeats: int = 10) -> list[tuple[str, float, float]]:
    """Do two cores help? One thread; two threads in one process; two one-thread processes at once (no shared
    GIL). Wall and CPU ns per value of ``[1, 16, 8, 96, 96]``, per process."""

    def launch(threads: int) -> subprocess.Popen:
        cmd = [sys.executable, "-c", SCALING_SCRIPT, str(threads), str(repeats * threads)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    def result(proc: subprocess.Popen) -> tuple[float, float]:
        wall, cpu = map(float, proc.communicate()[0].split())
        return wall, cpu

    rows = [("1 thread", *result(launch(1))), ("2 threads, one process", *result(launch(2)))]
    pair = [launch(1), launch(1)]
    rows += [(f"one of 2 one-thread processes at once ({i + 1})", *result(p)) for i, p in enumerate(pair)]
    return rows


MEMORY_SCRIPT = """
import json, sys, torch
from flowsched.noise import portable_noise
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
shape = tuple(json.loads(sys.argv[1])); which = sys.argv[2]
portable_noise((1, 4, 1, 8, 8), 1)  # load everything before measuring
torch.randn(8)
before = status('VmRSS')
x = torch.randn(shape) if which == 'randn' else portable_noise(shape, 1024)
print(json.dumps({'peak_extra': status('VmHWM') - before, 'output': x.numel() * x.element_size()}))
"""


def memory_rows() -> list[tuple[str, str, float, float]]:
    if not os.path.exists("/proc/self/status"):
        return []
    rows = []
    for label, shape in (("768px 129f latent", LATENT), ("batch of 8", BATCH8)):
        for which in ("randn", "portable"):
            res = subprocess.run(
                [sys.executable, "-c", MEMORY_SCRIPT, json.dumps(shape), which],
                check=True, capture_output=True, text=True,
            )
            info = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((label, which, info["output"] / 2**20, info["peak_extra"] / 2**20))
    return rows


def gpu_rows(repeats: int) -> list[str]:
    """GPU: portable (torch backend) vs torch.randn on the GPU vs CPU randn + copy; bit identity vs the CPU."""
    import torch

    from flowsched.noise import portable_noise

    if not torch.cuda.is_available():
        return []
    dev = torch.device("cuda")

    def cuda_ms(fn) -> float:
        fn()
        torch.cuda.synchronize()
        ts = []
        for _ in range(max(repeats, 20)):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        return statistics.median(ts)

    cases = {
        "portable (torch backend on the GPU)": lambda: portable_noise(LATENT, SEED, device=dev),
        "torch.randn on the GPU (not portable)": lambda: torch.randn(LATENT, device=dev),
        "CPU torch.randn, then copy to the GPU": lambda: torch.randn(
            LATENT, generator=torch.Generator().manual_seed(SEED)
        ).to(dev),
    }
    same = torch.equal(portable_noise(LATENT, SEED, device=dev).cpu(), portable_noise(LATENT, SEED))
    lines = [
        f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
        f"768px 129f latent; median of CUDA-event timings.",
        "",
        "| generator | ms |",
        "| --- | ---: |",
        *[f"| {name} | {cuda_ms(fn):.3f} |" for name, fn in cases.items()],
        "",
        f"Portable noise on the GPU is bit-identical to the CPU result: **{same}**",
        "",
    ]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats and no torch-backend CPU row")
    ap.add_argument("--stages", action="store_true", help="only print where one thread's time goes, per stage")
    ap.add_argument("--scaling", action="store_true", help="only compare 1 thread, 2 threads and 2 processes")
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    import numpy as np
    import torch

    from flowsched.philox import default_threads

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if args.stages:
        print("| stage (one 65,536-value work item, best of 200) | ns per value |\n| --- | ---: |")
        print("\n".join(f"| {name} | {ns:.2f} |" for name, ns in stage_rows(200)))
        return 0
    if args.scaling:
        print("| run ([1, 16, 8, 96, 96]) | wall ns/value | CPU ns/value |\n| --- | ---: | ---: |")
        print("\n".join(f"| {name} | {wall:.1f} | {cpu:.1f} |" for name, wall, cpu in scaling_rows()))
        return 0
    rows = cpu_rows(repeats, args.quick)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    mem = memory_rows()
    lines = [
        "# Portable noise vs torch.randn",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), numpy backend threads "
        f"{default_threads()}, torch intra-op threads {torch.get_num_threads()}; torch {torch.__version__}, numpy "
        f"{np.__version__}, Python {platform.python_version()}. Load average (1 min) {load_before:.1f} before, "
        f"{load_after:.1f} after: other processes shared the cores. Median of {repeats} interleaved runs "
        "(3 for the batch of 8).",
        "",
        "| shape | generator | median ms | best ms | throughput vs torch.randn | CPU ns/value | CPU cost ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {a} | {b} | {c:.1f} | {d:.1f} | {e:.3f}x | {f:.1f} | {g:.3f} |" for a, b, c, d, e, f, g in rows],
        "",
        "Throughput = median wall time of torch.randn / median wall time of the row (goal: at least 0.25x on 2 "
        "cores). CPU ns/value = process CPU time (all threads) per value; CPU cost ratio = torch.randn's CPU time / "
        "the row's, which other processes on the machine disturb much less than wall time.",
        "",
    ]
    if mem:
        lines += [
            "Peak memory above the process's resident size just before the call (fresh process per row):",
            "",
            "| shape | generator | output MiB | peak extra MiB | peak / output |",
            "| --- | --- | ---: | ---: | ---: |",
            *[f"| {a} | {b} | {c:.1f} | {d:.1f} | {d / c:.2f} |" for a, b, c, d in mem],
            "",
            "Goal: at most twice the output plus a fixed chunk.",
            "",
        ]
    gpu = gpu_rows(repeats)
    lines += gpu or ["No CUDA device in this run: GPU timings and the GPU bit-identity check were skipped.", ""]
    write_report("noise.md", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
