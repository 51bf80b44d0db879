"""Run every benchmark in this folder (`make bench`). Each writes its table to benchmarks/results/."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    names = sorted(glob.glob(os.path.join(HERE, "*.py")))
    scripts = [p for p in names if not os.path.basename(p).startswith("_") and os.path.basename(p) != "run_all.py"]
    failed = []
    for path in scripts:
        name = os.path.basename(path)
        print(f"== {name}", flush=True)
        res = subprocess.run([sys.executable, path] + (["--quick"] if quick else []))
        if res.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
