"""Portable noise against ``torch.randn`` on the CPU: every backend's throughput, first-call time and peak memory.

Shapes: the Open-Sora 2.0 768px, 129-frame latent ``[1, 16, 33, 96, 96]`` and a batch of 8 of it. All generators run
in the same process, interleaved, so the ratios hold even on a loaded machine; the table also records the load
average. First calls and peak memory are measured in fresh processes (Linux ``VmHWM`` minus ``VmRSS`` just before
the call). Writes ``benchmarks/results/noise.md``. GPU figures: ``benchmarks/gpu_check.py``.

    python benchmarks/noise.py            # 7 repeats
    python benchmarks/noise.py --quick    # 3 repeats, fewer rows
    python benchmarks/noise.py --stages   # only: where one numpy-backend thread's time goes, stage by stage
    python benchmarks/noise.py --scaling  # only: numpy backend, 1 thread vs 2 threads vs 2 processes
    python benchmarks/noise.py --first-call  # only: first call in fresh processes, median of 9
    python benchmarks/noise.py --auto-threshold  # only: numpy vs a cold numba by size, where "auto" switches
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


def _backends() -> dict:
    from flowsched.philox import available_backends

    return available_backends()


def cpu_rows(repeats: int, quick: bool) -> list[tuple]:
    import torch

    from flowsched.backends import select
    from flowsched.noise import portable_noise

    auto = select("auto", torch.device("cpu")).name
    have_numba = _backends()["numba"].available
    rows = []
    for label, shape in (("768px 129f latent", LATENT), ("batch of 8", BATCH8)):
        fns = {
            "torch.randn (CPU generator)": lambda s=shape: _randn(s),
            f"portable, auto ({auto})": lambda s=shape: portable_noise(s, SEED),
        }
        if have_numba:
            fns["portable, numba, 1 thread"] = lambda s=shape: portable_noise(s, SEED, backend="numba", threads=1)
        fns["portable, numpy"] = lambda s=shape: portable_noise(s, SEED, backend="numpy")
        if not quick and shape == LATENT:
            fns["portable, numpy, 1 thread"] = lambda s=shape: portable_noise(s, SEED, backend="numpy", threads=1)
            fns["portable, torch (CPU)"] = lambda s=shape: portable_noise(s, SEED, backend="torch")
        times = _timings(fns, repeats if shape == LATENT else max(2, repeats // 2))
        base_wall = statistics.median(times["torch.randn (CPU generator)"][0])
        n = 1
        for s in shape:
            n *= s
        for name, (wall, cpu) in times.items():
            med, med_cpu = statistics.median(wall), statistics.median(cpu)
            ratios = (base_wall / med, min(times["torch.randn (CPU generator)"][0]) / min(wall), med_cpu / n * 1e9)
            rows.append((label, name, med * 1e3, min(wall) * 1e3, *ratios))
    return rows


FIRST_CALL_SCRIPT = """
import json, sys, time
if sys.argv[2] == 'hide-scipy':
    sys.modules['scipy'] = None  # as if scipy were not installed: numba then skips importing scipy.linalg
import torch
start = time.perf_counter()
from flowsched.noise import portable_noise
portable_noise((1, 16, 33, 96, 96), 1024, backend=sys.argv[1])
print(json.dumps({'first': time.perf_counter() - start}))
"""


def first_call_rows(repeats: int = 3) -> list[tuple[str, float]]:
    """Seconds from ``import flowsched.noise`` to the end of the first latent, in fresh processes (torch already
    imported), median of ``repeats`` interleaved: numba with a warm compile cache, the same without scipy (numba
    imports scipy.linalg for its BLAS support when scipy is installed), numpy; then numba with an empty cache."""
    rows = []

    def run(backend: str, mode: str, env: dict | None = None) -> float:
        res = subprocess.run([sys.executable, "-c", FIRST_CALL_SCRIPT, backend, mode], check=True,
                             capture_output=True, text=True, env=env)
        return json.loads(res.stdout.strip().splitlines()[-1])["first"]

    cases = {"numpy": ("numpy", "")}
    if _backends()["numba"].available:
        run("numba", "")  # make sure the cache is warm
        cases = {"numba, warm compile cache": ("numba", ""),
                 "numba, warm compile cache, scipy not importable": ("numba", "hide-scipy"), **cases}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (backend, mode) in cases.items():
            times[name].append(run(backend, mode))
    rows = [(name, statistics.median(t)) for name, t in times.items()]
    if _backends()["numba"].available:
        with tempfile.TemporaryDirectory() as cache:
            rows.append(("numba, empty compile cache (compiles)",
                         run("numba", "", dict(os.environ, NUMBA_CACHE_DIR=cache))))
    return rows


AUTO_SCRIPT = """
import json, sys, time
import torch
from flowsched.noise import portable_noise
n = int(sys.argv[2])
start = time.perf_counter()
portable_noise((1, n), 1024, backend=sys.argv[1])
print(json.dumps({'first': time.perf_counter() - start}))
"""

AUTO_SIZES = (2**20, 2**22, 2**24, 2**25, 2**26, 2**27)


def auto_threshold_rows(repeats: int = 3) -> list[tuple[int, float, float, float]]:
    """``(values, numpy s, numba s, auto s)``: one region of ``values`` drawn in a fresh process (torch imported,
    flowsched's import included in the time), median of ``repeats`` interleaved runs. numba's compile cache is warm,
    so its row is what any later process pays: ``import numba`` plus loading the kernel, then the values."""
    def run(backend: str, n: int) -> float:
        res = subprocess.run([sys.executable, "-c", AUTO_SCRIPT, backend, str(n)], check=True, capture_output=True,
                             text=True)
        return json.loads(res.stdout.strip().splitlines()[-1])["first"]

    run("numba", 1024)  # a warm compile cache
    rows = []
    for n in AUTO_SIZES:
        times: dict[str, list[float]] = {"numpy": [], "numba": [], "auto": []}
        for _ in range(repeats):
            for backend in times:
                times[backend].append(run(backend, n))
        rows.append((n, *(statistics.median(times[b]) for b in ("numpy", "numba", "auto"))))
    return rows


def break_even(rows: list[tuple[int, float, float, float]]) -> float | None:
    """Where numba's time line crosses numpy's (linear interpolation between the sizes that bracket it)."""
    for (n0, a0, b0, _), (n1, a1, b1, _) in itertools.pairwise(rows):
        d0, d1 = a0 - b0, a1 - b1
        if d0 < 0 <= d1:
            return n0 + (n1 - n0) * (-d0) / (d1 - d0)
    return None


def stage_rows(repeats: int) -> list[tuple[str, float]]:
    """Where one thread's time goes: each stage of one 65,536-value work item (the default chunk), best of
    ``repeats`` interleaved runs, in ns per value of the item. The central branch is the transform minus the tail."""
    import numpy as np

    from flowsched import philox
    from flowsched.backends import constants, numpy_ops

    n = numpy_ops.CPU_CHUNK
    nb, work = n // 4, numpy_ops.Workspace()
    blk0, words, key = np.array([12345]), np.array([0]), philox.key_from_seed(SEED)
    x = numpy_ops.philox_rounds(*numpy_ops.counters(blk0, nb, words, 0, work), key, work)
    u = np.concatenate([a.reshape(-1) for a in x]).view(np.int64)
    q = (u + (0.5 - 2.0**31)) * 2.0**-32
    tail = np.flatnonzero(np.abs(q) > constants.SPLIT1)
    scratch, dest = np.empty(n), np.empty(n, np.float32)

    def transform():
        np.copyto(scratch, q)  # the transform overwrites q; this copy is subtracted below
        numpy_ops.normal_from_q(scratch, work)

    stages = {
        "counters and Philox4x32-10 rounds": lambda: numpy_ops.philox_rounds(
            *numpy_ops.counters(blk0, nb, words, 0, work), key, work),
        "words to q = p - 0.5 (float64)": lambda: np.multiply(np.add(u, 0.5 - 2.0**31, scratch), 2.0**-32, scratch),
        "AS241 transform (central + tail)": transform,
        "copy of q (subtracted)": lambda: np.copyto(scratch, q),
        "tail branch alone (15% of values)": lambda: numpy_ops.tail_values(q[tail], work),
        "float32 interleaving copy": lambda: [
            np.copyto(dest.reshape(nb, 4)[:, j], q[j * nb : (j + 1) * nb], casting="same_kind") for j in range(4)],
        "whole work item, before the float32 copy": lambda: numpy_ops.item_values(
            philox.Layout((1, n), [range(1), range(n)]), (0, 1, 0, n), words, 0, key, work),
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
portable_noise(shape, 1024, backend='numpy', threads=threads)
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(repeats):
    portable_noise(shape, 1024, backend='numpy', threads=threads)
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
if which != 'randn':
    portable_noise((1, 4, 1, 8, 8), 1, backend=which)  # load everything (and compile) before measuring
torch.randn(8)
before = status('VmRSS')
x = torch.randn(shape) if which == 'randn' else portable_noise(shape, 1024, backend=which)
print(json.dumps({'peak_extra': status('VmHWM') - before, 'output': x.numel() * x.element_size()}))
"""


def memory_rows() -> list[tuple[str, str, float, float]]:
    if not os.path.exists("/proc/self/status"):
        return []
    rows = []
    for label, shape in (("768px 129f latent", LATENT), ("batch of 8", BATCH8)):
        for which in ("randn", "numba", "numpy") if _backends()["numba"].available else ("randn", "numpy"):
            res = subprocess.run(
                [sys.executable, "-c", MEMORY_SCRIPT, json.dumps(shape), which],
                check=True, capture_output=True, text=True,
            )
            info = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((label, which, info["output"] / 2**20, info["peak_extra"] / 2**20))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats, no 1-thread numpy and no torch-backend rows")
    ap.add_argument("--stages", action="store_true", help="only print where one thread's time goes, per stage")
    ap.add_argument("--scaling", action="store_true", help="numpy backend only: 1 thread, 2 threads, 2 processes")
    ap.add_argument("--first-call", action="store_true", help="only the first call in fresh processes (9 runs)")
    ap.add_argument("--auto-threshold", action="store_true",
                    help="only: numpy against a cold numba by region size, in fresh processes (where auto switches)")
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    import torch

    from flowsched.backends import default_threads

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if args.stages:
        print("| numpy backend stage (one 65,536-value work item, best of 200) | ns per value |\n| --- | ---: |")
        print("\n".join(f"| {name} | {ns:.2f} |" for name, ns in stage_rows(200)))
        return 0
    if args.first_call:
        print("| first call in a fresh process (median of 9) | seconds |\n| --- | ---: |")
        print("\n".join(f"| {name} | {sec:.2f} |" for name, sec in first_call_rows(9)))
        return 0
    if args.auto_threshold:
        from flowsched.backends import AUTO_NUMBA_MIN_VALUES

        rows = auto_threshold_rows(repeats)
        print("| values (one region, fresh process) | numpy s | numba s (cold, warm cache) | auto s |")
        print("| ---: | ---: | ---: | ---: |")
        print("\n".join(f"| {n:,} | {a:.2f} | {b:.2f} | {c:.2f} |" for n, a, b, c in rows))
        cross = break_even(rows)
        print(f"\nnumba breaks even near {cross:,.0f} values" if cross else "\nno crossing in these sizes")
        print(f"auto switches to a cold numba at {AUTO_NUMBA_MIN_VALUES:,} values (AUTO_NUMBA_MIN_VALUES)")
        return 0
    if args.scaling:
        print("| run ([1, 16, 8, 96, 96]) | wall ns/value | CPU ns/value |\n| --- | ---: | ---: |")
        print("\n".join(f"| {name} | {wall:.1f} | {cpu:.1f} |" for name, wall, cpu in scaling_rows()))
        return 0
    rows = cpu_rows(repeats, args.quick)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    first = first_call_rows()
    mem = memory_rows()
    versions = ", ".join(st.detail.split(",")[0] for st in _backends().values() if st.available)
    lines = [
        "# Portable noise vs torch.randn (CPU)",
        "",
        f"{cpu_model()}, {os.cpu_count()} CPU(s); host-backend threads {default_threads()}, torch intra-op threads "
        f"{torch.get_num_threads()}; {versions}, Python {platform.python_version()}. Load average (1 min) "
        f"{load_before:.1f} before, {load_after:.1f} after: other processes shared the cores. Median of {repeats} "
        f"interleaved runs ({max(2, repeats // 2)} for the batch of 8).",
        "",
        "| shape | generator | median ms | best ms | throughput vs torch.randn | best vs best | CPU ns/value |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {a} | {b} | {c:.1f} | {d:.1f} | {e:.2f}x | {f:.2f}x | {g:.1f} |" for a, b, c, d, e, f, g in rows],
        "",
        "Throughput = median wall time of torch.randn / median wall time of the row (goal for auto with the fast "
        "extra: at least 1.0x on 2 cores); best vs best = the same with the fastest of the runs, which other "
        "processes disturb less. CPU ns/value = process CPU time (all threads) per value. torch.randn on the CPU "
        "is serial: its time does not change with torch's thread count.",
        "",
        "First call in a fresh process, from `import flowsched.noise` to the end of the first latent (torch already "
        "imported; median of 3 interleaved; goal for numba with a warm cache: at most 0.5 s):",
        "",
        "| backend | seconds |",
        "| --- | ---: |",
        *[f"| {name} | {sec:.2f} |" for name, sec in first],
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
            "Goal: the output plus a fixed chunk.",
            "",
        ]
    write_report("noise.md", "\n".join(lines))
    return 0


def cpu_model() -> str:
    """The CPU's model name (as lscpu prints it), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
