"""Run every benchmark in this folder (`make bench`; `--quick` passes each its quick mode). Each writes its table to
benchmarks/results/. Not run here: gpu_check.py (a CUDA GPU: `make gpu-check`) and train_velocity.py (it retrains
the committed networks); the other files are modules the benchmarks import."""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

#: The benchmarks, fastest first (minutes on 2 cores, full / --quick): cli_latency 1 / 0.5, noise 3 / 1,
#: frames 1 / 0.5, quality 3 / 1, tune 4.5 / 1, trained 50 / 5.
BENCHMARKS = ("cli_latency.py", "noise.py", "frames.py", "quality.py", "tune.py", "trained.py")


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        res = subprocess.run([sys.executable, os.path.join(HERE, name)] + (["--quick"] if quick else []))
        if res.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
