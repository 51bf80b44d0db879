"""Shared by the benchmarks: print a markdown report and write it to benchmarks/results/NAME atomically."""

from __future__ import annotations

import os

from flowsched._io import atomic_write_text

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_report(name: str, text: str) -> str:
    """Print ``text`` and write it to ``benchmarks/results/<name>``; returns the path."""
    print(text)
    path = os.path.join(RESULTS, name)
    atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    return path
