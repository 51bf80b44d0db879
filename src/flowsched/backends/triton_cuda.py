"""The Triton backend of portable noise: one fused kernel on CUDA devices.

One launch fills any region of any batch: a flat grid of programs of :data:`BLOCK` consecutive output elements.
Each element finds its run (one division per program for runs of at least ``BLOCK`` elements, one 32-bit division
per element for shorter runs), its counter index and sample word (two loads from a table of run starts), its
Philox4x32-10 block (32-bit unsigned multiplies: ``umulhi`` and the low product) and its word, and runs both
branches of the transform in float64 in the operation order of ``docs/portable-noise.md``, keeping one. When every
run starts and ends on a block boundary (whole samples, frame and row shards of the usual shapes), each thread
computes a block once and transforms its four words (``QUADS``: about 20% fewer instructions in the sm_90 build).
The float32 value, cast to the output's dtype, is stored straight into the output: no intermediate array.

Bit-exactness rests on three rules (``tests/test_triton_backend.py`` checks each):

* the kernel is compiled with ``enable_fp_fusion=False`` (:data:`COMPILE_OPTIONS`), so every float64 ``*`` and
  ``+`` stays a separately rounded ``mul.rn.f64``/``add.rn.f64`` and no ``fma.rn.f64`` appears in the PTX;
* every float64 constant that is not a power of two or a small integer is read from the float64 table
  :data:`flowsched.backends.constants.TABLE` in device memory: Triton turns Python float literals into float32;
* ``/`` and ``tl.sqrt`` on float64 are ``div.rn.f64`` and ``sqrt.rn.f64`` (correctly rounded).

Triton comes with CUDA builds of torch. Under ``TRITON_INTERPRET=1`` (set before Triton is imported) the same kernel
runs on CPU tensors in Triton's interpreter: slow, but it lets the tests run the kernel without a GPU.

No ``from __future__ import annotations`` here: Triton reads the kernel's annotations (``tl.constexpr``).
"""

import os
from collections import OrderedDict
from typing import Any

import numpy as np

from . import Backend, Job
from .constants import (
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_W0,
    PHILOX_W1,
    SQRT_HALF_BITS,
    TABLE,
    TABLE_A,
    TABLE_B,
    TABLE_C,
    TABLE_CONST1,
    TABLE_CONST2,
    TABLE_D,
    TABLE_LN2,
    TABLE_LOG,
    TABLE_SPLIT1,
)

try:
    import triton
    import triton.language as tl
except Exception as exc:  # noqa: BLE001 - not installed, or broken: say which
    triton = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    _IMPORT_ERROR = ""

__all__ = [
    "BACKEND",
    "BLOCK",
    "COMPILE_OPTIONS",
    "MAX_ELEMENTS",
    "MAX_RUNS",
    "NUM_WARPS",
    "RUN_TABLE_CACHE_BYTES",
    "RUN_TABLE_CACHE_ENTRIES",
    "interpreting",
    "launch",
    "normal_from_words",
    "ptx_signature",
]

#: Output elements per program, and warps per program. Measured on an NVIDIA H200 (benchmarks/results/gpu.md, the
#: kernel sweep, launches queued back to back): 1024 elements on 4 warps take 0.076 ms for the 768px latent and
#: 0.437 ms for a batch of 8 of it, against 0.109 and 0.837 ms on 8 warps. Neither changes a value: each element is
#: computed on its own.
BLOCK = 1024
NUM_WARPS = 4
#: Options every launch and every ahead-of-time compile of the kernel use.
COMPILE_OPTIONS = {"enable_fp_fusion": False}
#: Runs per launch (bounds the run table copied to the device) and elements per launch (keeps the grid and the
#: 32-bit per-element arithmetic of short runs in range).
MAX_RUNS = 2**20
MAX_ELEMENTS = 2**30


def interpreting() -> bool:
    """True when Triton runs kernels in its interpreter (``TRITON_INTERPRET=1``), on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


if triton is not None:
    # Kernels read module globals only as constexpr (integers: exact in any width).
    _M0, _M1, _W0, _W1 = (tl.constexpr(c) for c in (PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1))
    _SQRT_HALF_BITS = tl.constexpr(SQRT_HALF_BITS)
    _A, _B, _C, _D, _LOG = (tl.constexpr(c) for c in (TABLE_A, TABLE_B, TABLE_C, TABLE_D, TABLE_LOG))
    _LN2, _CONST1, _CONST2, _SPLIT1 = (tl.constexpr(c) for c in (TABLE_LN2, TABLE_CONST1, TABLE_CONST2, TABLE_SPLIT1))

    @triton.jit
    def _philox(c0, c1, c2, c3, k0, k1):
        """Philox4x32-10 (Random123) on uint32 tensors: ``umulhi`` and the wrapping product are the 64-bit
        product's high and low words."""
        for _ in tl.static_range(10):
            hi0 = tl.umulhi(c0, _M0)
            lo0 = c0 * _M0
            hi1 = tl.umulhi(c2, _M1)
            lo1 = c2 * _M1
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
            k0 = k0 + _W0
            k1 = k1 + _W1
        return c0, c1, c2, c3

    @triton.jit
    def _horner(table_ptr, BASE: tl.constexpr, DEGREE: tl.constexpr, x):
        """``table[BASE] * x**DEGREE + ...`` by Horner's rule, highest coefficient first, each step rounded."""
        acc = tl.load(table_ptr + BASE) * x + tl.load(table_ptr + BASE + 1)
        for k in tl.static_range(2, DEGREE + 1):
            acc = acc * x + tl.load(table_ptr + BASE + k)
        return acc

    @triton.jit
    def _normal(u, table_ptr):
        """float32 normal of uint32 words ``u`` (spec sections 1.4 and 1.5 with the rewrites of 1.6)."""
        q = ((u.to(tl.float64) + 0.5) - 2147483648.0) * 2.3283064365386963e-10  # (u + 0.5 - 2**31) * 2**-32, exact
        # central branch: z = (q * A(r)) / B(r), r = 0.180625 - q*q
        r = tl.load(table_ptr + _CONST1) - q * q
        central = (q * _horner(table_ptr, _A, 7, r)) / _horner(table_ptr, _B, 7, r)
        # tail branch: s = min(p, 1 - p) = 0.5 - |q|; -L(s) = (-e) * LN2 - x * P(x*x), x = (m - 1) / (m + 1)
        s = 0.5 - tl.abs(q)
        bits = s.to(tl.int64, bitcast=True)
        e = (bits - _SQRT_HALF_BITS) >> 52
        m = (bits - (e << 52)).to(tl.float64, bitcast=True)
        x = (m - 1.0) / (m + 1.0)
        neg_log = (-e).to(tl.float64) * tl.load(table_ptr + _LN2) - x * _horner(table_ptr, _LOG, 11, x * x)
        y = tl.sqrt(neg_log) - tl.load(table_ptr + _CONST2)
        tail = _horner(table_ptr, _C, 7, y) / _horner(table_ptr, _D, 7, y)
        tail = tl.where(q < 0, -tail, tail)
        z = tl.where(tl.abs(q) <= tl.load(table_ptr + _SPLIT1), central, tail)
        return z.to(tl.float32)

    @triton.jit
    def _run_of(j, j_first, length, SHORT_RUNS: tl.constexpr):
        """Run index of output elements ``j`` (``j_first``: the program's first). Short runs divide in 32 bits per
        element; a program of runs at least ``BLOCK`` long spans at most two runs, found with one division."""
        if SHORT_RUNS:
            r = (j.to(tl.int32) // length.to(tl.int32)).to(tl.int64)
        else:
            r0 = j_first // length
            r = r0 + (j >= (r0 + 1) * length).to(tl.int64)
        return r

    @triton.jit
    def _store(out_ptr, offs, z, mask):
        """Store float32 ``z`` cast to the output's dtype."""
        if out_ptr.dtype.element_ty == tl.bfloat16:
            # float32 -> bfloat16 rounded to nearest, ties to even, in integer operations (as torch does for finite
            # values): the same bits in the interpreter, whose own conversion differs, and on the GPU.
            b = z.to(tl.uint32, bitcast=True)
            b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
            tl.store(out_ptr + offs, b.to(tl.uint16).to(tl.bfloat16, bitcast=True), mask=mask)
        else:
            tl.store(out_ptr + offs, z.to(out_ptr.dtype.element_ty), mask=mask)

    # Scalars typed int64 and not specialised on their values: one compiled kernel for every seed, stream and size.
    @triton.jit(do_not_specialize=["n", "j0", "length", "k0", "k1", "stream"])
    def portable_noise_kernel(
        out_ptr, n: tl.int64, j0: tl.int64, starts_ptr, words_ptr, length: tl.int64, k0: tl.int64, k1: tl.int64,
        stream: tl.int64, table_ptr, BLOCK: tl.constexpr, SHORT_RUNS: tl.constexpr, QUADS: tl.constexpr,
    ):
        """Output elements ``j0 .. j0 + n - 1`` of a run table into ``out_ptr[0 .. n - 1]``: element ``j`` is
        ``j % length`` past counter index ``starts[j // length]`` in the sample ``words[j // length]``.

        ``SHORT_RUNS``: ``length < BLOCK``. ``QUADS``: every run starts and ends on a block boundary (``length``,
        the starts, ``j0`` and ``n`` are multiples of 4), so each Philox block is computed once for its four
        consecutive outputs; otherwise each element computes its own block and picks its word.
        """
        first = tl.program_id(0).to(tl.int64) * BLOCK
        length = length.to(tl.int64)
        j0 = j0.to(tl.int64)
        key0, key1 = k0.to(tl.uint32), k1.to(tl.uint32)
        if QUADS:
            q = first + 4 * tl.arange(0, BLOCK // 4)  # the first output of each block
            mask = q < n
            j = j0 + q
            r = _run_of(j, j0 + first, length, SHORT_RUNS)
            start = tl.load(starts_ptr + r, mask=mask, other=0)
            sample = tl.load(words_ptr + r, mask=mask, other=0)
            block = (start + (j - r * length)) >> 2
            c3 = tl.zeros_like(q).to(tl.uint32) + stream.to(tl.uint32)
            x0, x1, x2, x3 = _philox(block.to(tl.uint32), (block >> 32).to(tl.uint32), sample.to(tl.uint32), c3,
                                     key0, key1)
            # all four transforms before any store: the coefficient loads are then shared (a store could alias)
            z0, z1 = _normal(x0, table_ptr), _normal(x1, table_ptr)
            z2, z3 = _normal(x2, table_ptr), _normal(x3, table_ptr)
            _store(out_ptr, q, z0, mask)
            _store(out_ptr, q + 1, z1, mask)
            _store(out_ptr, q + 2, z2, mask)
            _store(out_ptr, q + 3, z3, mask)
        else:
            offs = first + tl.arange(0, BLOCK)
            mask = offs < n
            j = j0 + offs
            r = _run_of(j, j0 + first, length, SHORT_RUNS)
            start = tl.load(starts_ptr + r, mask=mask, other=0)
            sample = tl.load(words_ptr + r, mask=mask, other=0)
            i = start + (j - r * length)  # counter index in its sample
            block = i >> 2
            c3 = tl.zeros_like(offs).to(tl.uint32) + stream.to(tl.uint32)
            x0, x1, x2, x3 = _philox(block.to(tl.uint32), (block >> 32).to(tl.uint32), sample.to(tl.uint32), c3,
                                     key0, key1)
            w = i & 3
            u = tl.where(w == 0, x0, tl.where(w == 1, x1, tl.where(w == 2, x2, x3)))
            _store(out_ptr, offs, _normal(u, table_ptr), mask)

    @triton.jit
    def words_kernel(out_ptr, words_ptr, n, table_ptr, BLOCK: tl.constexpr):
        """float32 normals of ``n`` 32-bit words (held in int64): the transform alone, for tests."""
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        u = tl.load(words_ptr + offs, mask=mask, other=0).to(tl.uint32)
        tl.store(out_ptr + offs, _normal(u, table_ptr), mask=mask)


_TABLES: dict[str, Any] = {}
#: Run tables already on a device (most recently used last), by what they are computed from: a call for a region
#: seen before neither recomputes its table nor copies it, so nothing waits for the GPU (a copy from pageable memory
#: synchronises the stream) and the host's share of a call stays small.
_RUN_TABLES: "OrderedDict[tuple, tuple[Any, Any, bool]]" = OrderedDict()
#: Run tables kept on devices: at most this many groups of runs, each of at most :data:`RUN_TABLE_CACHE_BYTES`
#: (16 bytes per run: 16,384 runs; the 768px latent has 528, a batch of 8 of it 4,224), so at most 16 MiB per device.
RUN_TABLE_CACHE_ENTRIES = 64
RUN_TABLE_CACHE_BYTES = 2**18


def _table(device: Any):
    import torch

    key = str(device)
    if key not in _TABLES:
        _TABLES[key] = torch.from_numpy(TABLE).to(device)
    return _TABLES[key]


def _run_table(job: Job, first: int, count: int, device: Any) -> tuple[Any, Any, bool]:
    """Runs ``first .. first + count - 1`` of the job as device tensors (starts, sample words) and whether they all
    start and end on a block boundary; small tables are kept and reused (never written)."""
    import torch

    key = None
    if 16 * count <= RUN_TABLE_CACHE_BYTES:
        # The stream is part of the key: a table is only read on the stream it was copied on, so the caching
        # allocator may reuse its memory once it is dropped without waiting for another stream's kernels.
        stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
        layout = job.layout
        sample_bytes = np.asarray(job.sample_words, dtype=np.int64).tobytes()
        key = (str(device), stream, layout.shape, layout.ranges, sample_bytes, first, count)
        hit = _RUN_TABLES.get(key)
        if hit is not None:
            _RUN_TABLES.move_to_end(key)
            return hit
    starts, words = job.run_table(first, count)
    # (MAX_ELEMENTS % 4 == 0 keeps a launch's first element aligned)
    whole_blocks = job.layout.run_length % 4 == 0 and not np.any(starts & 3)
    entry = (torch.from_numpy(starts).to(device), torch.from_numpy(words).to(device), bool(whole_blocks))
    if key is not None:
        _RUN_TABLES[key] = entry
        while len(_RUN_TABLES) > RUN_TABLE_CACHE_ENTRIES:
            _RUN_TABLES.popitem(last=False)
    return entry


def launch(job: Job, out: Any, block: int = BLOCK, num_warps: int = NUM_WARPS, quads: bool | None = None) -> int:
    """Fill the flat tensor ``out`` (CUDA, or CPU under the interpreter) with the job's normals; returns the number
    of kernel launches (one unless the region has more than :data:`MAX_RUNS` runs or :data:`MAX_ELEMENTS` values).

    ``quads``: one Philox block per four outputs where the runs allow it (``None``, the default), or never
    (``False``; for comparisons). The values never depend on it.
    """
    layout = job.layout
    length = layout.run_length
    table = _table(out.device)
    k0, k1 = job.key
    launches = 0
    for first, count in layout.run_groups(MAX_RUNS):
        starts_t, words_t, whole_blocks = _run_table(job, first, count, out.device)
        lo, total = first * length, count * length
        for j0 in range(0, total, MAX_ELEMENTS):
            n = min(MAX_ELEMENTS, total - j0)
            grid = (triton.cdiv(n, block),)
            portable_noise_kernel[grid](
                out[lo + j0 : lo + j0 + n], n, j0, starts_t, words_t, length, k0, k1, job.stream, table,
                BLOCK=block, SHORT_RUNS=length < block, QUADS=whole_blocks and quads is not False,
                num_warps=num_warps, **COMPILE_OPTIONS,
            )
            launches += 1
            job.done(n)
    return launches


def normal_from_words(words: Any) -> Any:
    """float32 normals of a tensor of 32-bit words (held in int64) on its device, by the kernel's transform."""
    import torch

    words = words.reshape(-1).to(torch.int64).contiguous()
    out = torch.empty(words.shape[0], dtype=torch.float32, device=words.device)
    grid = (triton.cdiv(words.shape[0], BLOCK),)
    words_kernel[grid](out, words, words.shape[0], _table(words.device), BLOCK=BLOCK, num_warps=NUM_WARPS,
                       **COMPILE_OPTIONS)
    return out


def ptx_signature() -> tuple[dict[str, str], dict[str, Any]]:
    """``(signature, constexprs)`` of :func:`portable_noise_kernel` for ``triton.compile`` (float32 output)."""
    signature = {
        "out_ptr": "*fp32", "n": "i64", "j0": "i64", "starts_ptr": "*i64", "words_ptr": "*i64", "length": "i64",
        "k0": "i64", "k1": "i64", "stream": "i64", "table_ptr": "*fp64",
        "BLOCK": "constexpr", "SHORT_RUNS": "constexpr", "QUADS": "constexpr",
    }
    return signature, {"BLOCK": BLOCK, "SHORT_RUNS": False, "QUADS": True}


class TritonBackend(Backend):
    name = "triton"
    host = False
    device_types = ("cuda",)
    self_checked = True

    def missing(self) -> str | None:
        if triton is not None:
            return None
        return (
            f"it needs triton, which does not import here ({_IMPORT_ERROR}): CUDA builds of torch bring it, or pip "
            "install triton; or use backend='torch' (any device) or 'auto'"
        )

    def refuses(self, device: Any) -> str | None:
        import torch

        if device.type == "cpu" and interpreting():
            return None
        if device.type != "cuda":
            return (
                f"it runs on CUDA devices only, got device {str(device)!r}: use backend='auto', 'numba' or 'numpy' on "
                "the CPU, 'torch' elsewhere"
            )
        if not torch.cuda.is_available():
            return (
                "it needs a CUDA device, and torch.cuda.is_available() is False here; backend='auto' works anywhere"
            )
        return None

    def version(self) -> str:
        return f"triton {triton.__version__}" + (" (interpreter: TRITON_INTERPRET=1)" if interpreting() else "")

    def generate(self, job: Job, out: Any) -> None:
        import torch

        if out.device.type == "cuda":
            with torch.cuda.device(out.device):
                launch(job, out)
        else:
            launch(job, out)


BACKEND = TritonBackend()
