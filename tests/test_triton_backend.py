"""The Triton kernel without a GPU: bit for bit against the numpy backend in Triton's interpreter, and its PTX for an
H100 (sm_90), compiled here, free of fused multiply-adds (which the interpreter cannot show)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flowsched.backends import triton_cuda

triton = pytest.importorskip("triton")

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_kernel_in_the_interpreter_matches_numpy():
    # TRITON_INTERPRET must be set before Triton is imported: a fresh interpreter runs the cases.
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, str(HERE / "_triton_interpreted.py")], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    cases = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(cases) == 24 and all(cases.values()), {k: v for k, v in cases.items() if not v}


def _ptx(short_runs: bool, fusion: bool, out: str = "*fp32", quads: bool = True) -> str:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature, constexprs = triton_cuda.ptx_signature()
    signature = {**signature, "out_ptr": out}
    constexprs = {**constexprs, "SHORT_RUNS": short_runs, "QUADS": quads}
    source = ASTSource(triton_cuda.portable_noise_kernel, signature, constexprs)
    options = {**triton_cuda.COMPILE_OPTIONS, "enable_fp_fusion": fusion, "num_warps": triton_cuda.NUM_WARPS}
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


F64_OPS = re.compile(r"\b(fma|mul|add|sub|div|sqrt)(\.[a-z]+)*\.f64\b")


@pytest.mark.parametrize("short_runs, quads, out", [(False, True, "*fp32"), (True, False, "*fp32"),
                                                    (False, False, "*bf16")])
def test_sm90_ptx_has_no_fused_multiply_add(short_runs, quads, out):
    # With fusion off every float64 * and + is a separately rounded mul.rn/add.rn (ptxas may contract a plain
    # mul.f64 + add.f64, never the .rn forms), and / and sqrt are the correctly rounded div.rn and sqrt.rn.
    # bfloat16 outputs take their own store path (rounded in integer operations).
    assert triton_cuda.COMPILE_OPTIONS["enable_fp_fusion"] is False
    ptx = _ptx(short_runs, fusion=False, out=out, quads=quads)
    ops = [m.group(0) for m in F64_OPS.finditer(ptx)]
    assert ops, "no float64 arithmetic found: not the kernel's PTX"
    assert "fma.rn.f64" not in ops
    assert all(".rn." in op for op in ops), sorted(set(ops))
    assert {"div.rn.f64", "sqrt.rn.f64", "mul.rn.f64", "add.rn.f64"} <= set(ops)


def test_sm90_ptx_with_fusion_on_would_fuse():
    # the check above can fail: the same kernel compiled with fusion on is full of fma.rn.f64
    assert "fma.rn.f64" in _ptx(False, fusion=True)


def test_launch_limits_keep_32_bit_run_arithmetic_in_range():
    # short runs divide in 32 bits: a launch's element offsets must stay below 2**31
    assert triton_cuda.MAX_RUNS * triton_cuda.BLOCK <= 2**31 and triton_cuda.MAX_ELEMENTS < 2**31
