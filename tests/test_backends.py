"""The backend interface: which backend is chosen, what happens without numba or triton, and that every CPU backend
gives the same bits for every shape, region, sample index, stream and dtype (the Triton kernel has its own file)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsched import backends, philox
from flowsched.backends import numba_cpu, triton_cuda
from flowsched.noise import noise, portable_noise

HAVE_NUMBA = numba_cpu.numba is not None
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed (extra 'fast')")
CPU = torch.device("cpu")
CUDA = torch.device("cuda")


def test_import_flowsched_imports_neither_numba_nor_triton():
    code = (
        "import sys, flowsched, flowsched.noise, flowsched.philox, flowsched.distributed, flowsched.backends\n"
        "bad = [m for m in ('numba', 'triton') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_numba
def test_auto_is_numba_on_cpu_when_numba_imports():
    assert backends.select("auto", CPU).name == "numba"


def test_auto_falls_back_to_numpy_without_numba(monkeypatch):
    monkeypatch.setattr(numba_cpu, "numba", None)
    monkeypatch.setattr(numba_cpu, "_IMPORT_ERROR", "ModuleNotFoundError: No module named 'numba'")
    assert backends.select("auto", CPU).name == "numpy"
    shape = (2, 3, 4, 5)
    assert torch.equal(portable_noise(shape, 9), portable_noise(shape, 9, backend="numpy"))
    with pytest.raises(ValueError, match=r"backend='numba' cannot run here: it needs numba.*flowsched\[fast\]"):
        portable_noise(shape, 9, backend="numba")
    status = philox.available_backends()["numba"]
    assert not status.available and "No module named 'numba'" in status.detail


def test_auto_on_cuda_is_triton_when_it_can_run_else_torch(monkeypatch):
    # On this machine CUDA may be absent: without the kernel's self-check (tested below with a stand-in kernel)
    # select() never allocates, so the choice itself is testable.
    monkeypatch.setattr(triton_cuda.TritonBackend, "refuses", lambda self, device: None)
    monkeypatch.setattr(triton_cuda.TritonBackend, "self_checked", False)
    if triton_cuda.triton is not None:
        assert backends.select("auto", CUDA).name == "triton"
    monkeypatch.setattr(triton_cuda, "triton", None)
    monkeypatch.setattr(triton_cuda, "_IMPORT_ERROR", "ModuleNotFoundError: No module named 'triton'")
    assert backends.select("auto", CUDA).name == "torch"
    with pytest.raises(ValueError, match=r"backend='triton' cannot run here: it needs triton.*pip install triton"):
        backends.select("triton", CUDA)
    assert backends.select("auto", torch.device("mps")).name == "torch"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_triton_without_cuda_device_says_so():
    if triton_cuda.triton is None:
        pytest.skip("triton is not installed")
    with pytest.raises(ValueError, match=r"needs a CUDA device, and torch.cuda.is_available\(\) is False"):
        backends.select("triton", CUDA)
    assert backends.select("auto", CUDA).name == "torch"
    status = philox.available_backends()["triton"]
    assert not status.available and "CUDA" in status.detail


def test_triton_on_cpu_device_is_refused_with_what_to_use_instead():
    with pytest.raises(ValueError, match=r"backend='triton' cannot run here: .*CUDA devices only.*'numba' or 'numpy'"):
        portable_noise((2, 3), 1, backend="triton")


@pytest.mark.parametrize("name", ["cupy", "Numba", "", None, 3])
def test_unknown_backend_names_the_choices(name):
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'numpy', 'numba', 'torch', 'triton'"):
        portable_noise((2, 3), 1, backend=name)


def test_backend_is_for_the_portable_generator_only():
    with pytest.raises(ValueError, match="generator='portable' only"):
        noise((2, 3), 1, backend="numpy")
    assert torch.equal(noise((2, 3), 1, generator="portable", backend="torch"), portable_noise((2, 3), 1))


def test_available_backends_lists_every_backend():
    statuses = philox.available_backends()
    assert list(statuses) == ["numpy", "numba", "torch", "triton"]
    assert statuses["numpy"].available and statuses["torch"].available
    assert statuses["numba"].available == HAVE_NUMBA
    for status in statuses.values():
        assert status.name in str(status) and status.detail


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_host_backends_serve_other_devices_by_copying(name, monkeypatch):
    # "meta" stands in for a device the host backends do not write to: they must get a CPU buffer, then copy
    if name == "numba" and not HAVE_NUMBA:
        pytest.skip("numba is not installed")
    backend = backends.get(name)
    seen = []
    original = type(backend).generate
    monkeypatch.setattr(type(backend), "generate", lambda self, job, out: seen.append(out.device) or original(
        self, job, out))
    x = portable_noise((2, 3), 1, device="meta", backend=name)
    assert x.device.type == "meta" and x.shape == (2, 3) and seen == [CPU]


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        portable_noise((2, 3), 1, threads=0)


def test_sample_larger_than_int64_counters_is_refused():
    with pytest.raises(ValueError, match=r"at most 2\*\*63 elements"):
        portable_noise((1, 2**32, 2**32), 1, region=(slice(None), slice(0, 1), slice(0, 1)))


# -- every CPU backend, bit for bit --------------------------------------------------------------------------

CPU_BACKENDS = ["numpy", "torch"] + (["numba"] if HAVE_NUMBA else [])
shapes = st.lists(st.integers(1, 9), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.data())
def test_cpu_backends_bit_identical_on_regions(shape, seed, stream, data):
    region = tuple(
        slice(data.draw(st.integers(0, n - 1)), None, data.draw(st.integers(1, 3))) for n in shape
    )
    first = data.draw(st.integers(0, 2**32 - shape[0]))
    results = [
        portable_noise(shape, seed, stream=stream, sample_index=first, region=region, backend=b) for b in CPU_BACKENDS
    ]
    assert all(torch.equal(results[0], r) for r in results[1:])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_latent_sha256_of_the_spec(backend):
    # docs/portable-noise.md section 2: sha256 of the 768px, 129-frame latent for seed 1024
    import hashlib

    x = portable_noise((1, 16, 33, 96, 96), 1024, backend=backend)
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == (
        "ad9c2e038abeeb9549eba3781438e3e8533456b1a9ac0c7275b4a0854939c306"
    )


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_dtypes_are_float32_values_cast(backend, dtype):
    shape = (2, 3, 5, 4, 6)
    assert torch.equal(portable_noise(shape, 5, dtype=dtype, backend=backend), portable_noise(shape, 5).to(dtype))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("word, bits", [(0x20F8A25E, 0xBF90E904), (0xDF075DA1, 0x3F90E904)])
def test_fma_sensitive_words_through_the_whole_path(backend, word, bits):
    # the counter that yields the word, from the inverse of Philox: each backend's Philox, layout and transform
    seed, sample, stream, index = philox.locate_word(word, rng_seed=1)
    x = portable_noise((1, 2**63), seed, sample_index=sample, stream=stream, backend=backend,
                       region=(slice(None), slice(index - 5, index + 6)))
    assert x.numpy().view(np.uint32)[0, 5] == bits
    expected = [philox.normal_scalar(seed, sample, stream, i) for i in range(index - 5, index + 6)]
    assert x[0].tolist() == expected


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_runs_crossing_block_and_high_word_boundaries(backend):
    # runs that start and end inside blocks, and blocks whose counter crosses 2**32
    start = 2**34 - 7
    x = portable_noise((2, 2**35), 5, region=(slice(None), slice(start, start + 23)), backend=backend)
    for b in range(2):
        assert x[b].tolist() == [philox.normal_scalar(5, b, 0, i) for i in range(start, start + 23)]


def test_chunking_and_threads_never_change_values():
    shape = (3, 4, 5, 12, 20)
    whole = portable_noise(shape, 3, backend="numpy")
    layout = philox.Layout(shape, [range(n) for n in shape])
    out = torch.empty(whole.numel())
    for backend, kwargs in [("numpy", {"chunk": 101, "threads": 3}), ("torch", {"chunk": 333}),
                            ("numba", {"threads": 3}), ("numba", {"threads": 1})][: 4 if HAVE_NUMBA else 2]:
        out.zero_()
        philox.generate(layout, 3, np.arange(3), 0, out, backend=backend, **kwargs)
        assert torch.equal(out.view(shape), whole), (backend, kwargs)


@needs_numba
def test_numba_pieces_and_run_groups(monkeypatch):
    # small pieces and tiny run tables exercise every boundary of the numba driver, for float32 and a cast dtype
    monkeypatch.setattr(numba_cpu, "PIECE", 37)
    monkeypatch.setattr(numba_cpu, "MAX_RUNS", 3)
    shape = (2, 3, 4, 5, 7)
    region = {3: slice(1, 4)}
    expected = portable_noise(shape, 11, region=region, backend="numpy")
    assert torch.equal(portable_noise(shape, 11, region=region, backend="numba"), expected)
    half = portable_noise(shape, 11, region=region, backend="numba", dtype=torch.float16)
    assert torch.equal(half, expected.to(torch.float16))


def test_progress_counts_every_element():
    seen = []
    layout = philox.Layout((2, 3, 40, 50), [range(2), range(3), range(40), range(50)])
    for backend in CPU_BACKENDS:
        seen.clear()
        philox.generate(layout, 1, [0, 1], 0, torch.empty(layout.numel), backend=backend, chunk=1000,
                        progress=seen.append)
        assert sum(seen) == layout.numel, backend


# -- backend="auto" on the CPU: numba only where its start-up pays off ------------------------------------------------


@needs_numba
def test_auto_takes_numpy_for_small_regions_until_numba_is_warm(monkeypatch):
    small, large = 10_000, backends.AUTO_NUMBA_MIN_VALUES
    monkeypatch.setattr(backends.get("numba"), "warm", False)
    assert backends.select("auto", CPU, small).name == "numpy"
    assert backends.select("auto", CPU, small - 1 + large - small).name == "numpy"
    assert backends.select("auto", CPU, large).name == "numba"
    assert backends.select("auto", CPU).name == "numba"  # size unknown: the fast kernel
    monkeypatch.setattr(backends.get("numba"), "warm", True)  # its kernel has run in this process: always numba
    assert backends.select("auto", CPU, small).name == "numba"
    assert backends.select("numba", CPU, small).name == "numba"  # an explicit backend is never replaced


@needs_numba
def test_numba_is_warm_after_it_generated():
    portable_noise((1, 64), 1, backend="numba")
    assert backends.get("numba").warm
    assert backends.select("auto", CPU, 8).name == "numba"


@pytest.mark.slow
def test_a_cold_process_draws_small_noise_without_importing_numba():
    code = (
        "import sys\nfrom flowsched.noise import portable_noise\n"
        "x = portable_noise((1, 16, 5, 32, 32), 3)\n"
        "assert 'numba' not in sys.modules, 'numba imported'\nprint(float(x[0, 0, 0, 0, 0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert float(out) == philox.normal_scalar(3, 0, 0, 0)


# -- the self-check of device kernels ----------------------------------------------------------------------------------


def test_the_self_check_cases_hold_the_two_fma_sensitive_words_where_the_reference_puts_them():
    from flowsched.backends.selfcheck import CASES

    fma = [c for c in CASES if c.expected is not None]
    assert [c.label for c in fma] == ["FMA-sensitive word 0x20f8a25e", "FMA-sensitive word 0xdf075da1"]
    for case, word in zip(fma, (0x20F8A25E, 0xDF075DA1), strict=True):
        seed, sample, stream, index = philox.locate_word(word)
        offset, bits = case.expected
        assert (case.seed, case.sample_word, case.stream, case.start + offset) == (seed, sample, stream, index)
        assert case.start % 4 == 0 and case.length >= triton_cuda.BLOCK  # a long run, whole blocks: the QUADS kernel
        assert np.float32(philox.normal_scalar(seed, sample, stream, index)).view(np.uint32) == bits
    assert any(c.start is None for c in CASES) and any(c.start is not None and c.start % 4 for c in CASES)


def test_the_self_check_passes_a_correct_backend_and_names_what_a_wrong_one_got():
    from flowsched.backends.selfcheck import check

    assert check(backends.get("torch"), CPU) is None  # an independent implementation, on the CPU
    wrong = _WrongBits()
    offset = 1024 + philox.locate_word(0x20F8A25E)[3] % 4  # the word's place in its region (1024 values before it)
    assert check(wrong, CPU) == (
        f"FMA-sensitive word 0x20f8a25e: 1 of 2048 values differ, the first at offset {offset} (bits 0xbf90e905, "
        "expected 0xbf90e904)"
    )
    assert check(_Failing(), CPU).startswith("FMA-sensitive word 0x20f8a25e: the kernel failed (RuntimeError: boom)")


class _WrongBits(backends.Backend):
    """A stand-in device kernel that is right but for one ulp at the first FMA-sensitive word."""

    name = "triton"
    host = False
    self_checked = True

    def generate(self, job, out):
        backends.get("torch").generate(job, out)
        flat = out.view(torch.int32)
        hit = (flat == np.int32(np.uint32(0xBF90E904).view(np.int32)).item()).nonzero()
        if hit.numel():
            flat[hit[0]] += 1


class _Failing(_WrongBits):
    def generate(self, job, out):
        raise RuntimeError("boom\nsecond line")


@pytest.fixture
def wrong_triton(monkeypatch):
    """The stand-in as the 'triton' backend of the CPU, checked afresh in this test."""
    monkeypatch.setitem(backends._LOADED, "triton", _WrongBits())
    monkeypatch.setitem(backends.AUTO_ORDER, "cpu", ("triton", "torch"))
    monkeypatch.setattr(backends, "_VERDICTS", {})
    monkeypatch.setattr(backends, "_WARNED", set())


def test_auto_falls_back_to_torch_and_warns_once_when_the_kernel_fails_its_self_check(wrong_triton):
    import warnings

    with pytest.warns(RuntimeWarning, match=r"the triton kernel failed its self-check on cpu \(FMA-sensitive word "
                                              r"0x20f8a25e: 1 of 2048 values differ.*uses the next backend"):
        assert backends.select("auto", CPU).name == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per device and process
        assert backends.select("auto", CPU).name == "torch"
        x = portable_noise((2, 3, 4, 5), 21)
    assert torch.equal(x, portable_noise((2, 3, 4, 5), 21, backend="numpy"))


def test_an_explicit_triton_backend_that_fails_its_self_check_raises(wrong_triton):
    with pytest.raises(RuntimeError, match=r"backend='triton' failed its self-check on cpu: FMA-sensitive word "
                                           r"0x20f8a25e.*Use backend='torch'"):
        portable_noise((2, 3, 4, 5), 21, backend="triton")


# -- benchmarks/gpu_check.py on a machine without a GPU -------------------------------------------------------

GPU_CHECK = __import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the script's behaviour without a CUDA device")
def test_gpu_check_without_cuda_says_so_and_exits_cleanly(tmp_path):
    result = subprocess.run([sys.executable, str(GPU_CHECK)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no CUDA device" in result.stdout and not result.stderr


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_step_on_the_cpu():
    # the checks, timings and (in Triton's interpreter) the kernel sweep on small CPU shapes: the script itself
    # works before a GPU's time is spent on it
    env = dict(__import__("os").environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, str(GPU_CHECK), "--dry-run"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All equal: **True**" in result.stdout and "| portable_noise, auto" in result.stdout
    # one script does every GPU check: the stochastic samplers' and euler_frames' trajectories too
    assert "| euler_ancestral eta=1: cpu vs cpu | " in result.stdout
    assert "| euler_frames stochastic, blockwise (Self-Forcing): cpu vs cpu | 9 | bit-identical |" in result.stdout
    assert result.stdout.count("All bit-identical: **True**") == 4  # printed when done, and in the report
    assert "Every check bit-identical: **True**" in result.stdout
    if triton_cuda.triton is not None:
        assert "| case | torch | triton |" in result.stdout and "| 1024 | 8 | no |" in result.stdout
