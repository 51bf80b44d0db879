"""Latency of `flowsched schedule --preset opensora-2.0-768px` against `python -c "import torch"`.

Both are measured in the same run, interleaved, as the median wall time of fresh processes; the ratio is
what counts (goal: at most 0.25). Writes benchmarks/results/cli_latency.md.

    python benchmarks/cli_latency.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

from _report import write_report

HERE = os.path.dirname(os.path.abspath(__file__))
COMMANDS = {
    "flowsched schedule --preset opensora-2.0-768px": [
        sys.executable,
        "-m",
        "flowsched",
        "schedule",
        "--preset",
        "opensora-2.0-768px",
    ],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    'python -c "pass" (interpreter start)': [sys.executable, "-c", "pass"],
}


def time_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="5 repeats")
    args = ap.parse_args()
    repeats = 5 if args.quick else args.repeats
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for cmd in COMMANDS.values():  # warm the page cache once
        time_once(cmd)
    for _ in range(repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(time_once(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["flowsched schedule --preset opensora-2.0-768px"] / med['python -c "import torch"']
    lines = [
        "# CLI latency",
        "",
        f"Median wall time of {repeats} fresh processes each, interleaved; {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPU(s).",
        "",
        "| command | median (ms) |",
        "| --- | ---: |",
        *[f"| `{k}` | {v * 1000:.1f} |" for k, v in med.items()],
        "",
        f"**Ratio** schedule / import torch: **{ratio:.3f}** (goal: at most 0.25)",
        "",
    ]
    write_report("cli_latency.md", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
