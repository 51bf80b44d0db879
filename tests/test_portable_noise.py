"""portable_noise: the layout of the specification, backends bit for bit, invariances, regions, bad input, CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsched import philox
from flowsched.cli import main
from flowsched.noise import noise, portable_noise, region_ranges


def _reference(shape, seed, sample_index=None, stream=0):
    """Element by element from the scalar reference, with the spec's index formula written out again here."""
    b_, rest = shape[0], shape[1:]
    out = np.empty(shape, dtype=np.float32)
    for pos in np.ndindex(*shape):
        b, sample_pos = pos[0], pos[1:]
        if len(rest) == 4:
            c, t, h, w = sample_pos
            C, _, H, W = rest
            i = ((t * C + c) * H + h) * W + w
        else:
            i = int(np.ravel_multi_index(sample_pos, rest)) if rest else 0
        s = b if sample_index is None else sample_index + b
        out[pos] = philox.normal_scalar(seed, s, stream, i)
    assert out.shape[0] == b_
    return out


@pytest.mark.parametrize(
    "shape, seed",
    [((2, 3, 4, 5, 6), 0), ((1, 2, 3, 2, 7), 2**64 - 1), ((3, 5, 7), 2**32 + 5), ((2, 9), 12345), ((3,), 1)],
)
def test_matches_scalar_reference(shape, seed):
    expected = _reference(shape, seed)
    assert np.array_equal(portable_noise(shape, seed).numpy(), expected)
    assert np.array_equal(portable_noise(shape, seed, backend="torch").numpy(), expected)


def test_stream_and_sample_index_enter_the_counter():
    shape = (2, 2, 3, 2, 3)
    assert np.array_equal(portable_noise(shape, 9, stream=4).numpy(), _reference(shape, 9, stream=4))
    assert np.array_equal(portable_noise(shape, 9, sample_index=7).numpy(), _reference(shape, 9, sample_index=7))


shapes = st.lists(st.integers(1, 9), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**64 - 1), st.integers(0, 3), st.data())
def test_numpy_and_torch_backends_bit_identical(shape, seed, stream, data):
    region = tuple(
        slice(data.draw(st.integers(0, n - 1)), None, data.draw(st.integers(1, 3))) for n in shape
    )
    a = portable_noise(shape, seed, stream=stream, region=region, backend="numpy")
    b = portable_noise(shape, seed, stream=stream, region=region, backend="torch")
    assert a.dtype == torch.float32 and torch.equal(a, b)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=5, max_size=5), st.data())
def test_region_equals_slice_of_whole(shape, data):
    whole = portable_noise(shape, 77)
    region = []
    for n in shape:
        start = data.draw(st.integers(-n, n - 1))
        stop = data.draw(st.integers(start % n + 1, n))
        region.append(slice(start, stop, data.draw(st.integers(1, 3))))
    part = portable_noise(shape, 77, region=tuple(region))
    assert torch.equal(part, whole[tuple(region)])


def test_region_forms_and_long_runs():
    shape = (2, 4, 5, 12, 20)
    whole = portable_noise(shape, 3)
    assert torch.equal(portable_noise(shape, 3, region={3: slice(5, 9)}), whole[:, :, :, 5:9])
    assert torch.equal(portable_noise(shape, 3, region={-1: slice(1, 19, 3)}), whole[..., 1:19:3])
    assert torch.equal(portable_noise(shape, 3, region=slice(1, 2)), whole[1:2])
    # chunking never changes values: tiny chunks, pieces of runs, many threads
    out = torch.empty(whole.numel())
    layout = philox.Layout(shape, region_ranges(shape, None))
    philox.generate(layout, 3, np.arange(2), 0, out, chunk=101, threads=3)
    assert torch.equal(out.view(shape), whole)
    philox.generate(layout, 3, np.arange(2), 0, out, backend="torch", chunk=333)
    assert torch.equal(out.view(shape), whole)


def test_batch_size_independent_and_frame_prefix_stable():
    big = portable_noise((4, 3, 6, 4, 5), 1024)
    assert torch.equal(portable_noise((2, 3, 6, 4, 5), 1024), big[:2])
    assert torch.equal(portable_noise((1, 3, 6, 4, 5), 1024, sample_index=3), big[3:])
    assert torch.equal(portable_noise((2, 3, 6, 4, 5), 1024, sample_index=[3, 1]), big[[3, 1]])
    # frame-major numbering: the first 4 frames of a 6-frame video are the 4-frame video
    assert torch.equal(portable_noise((4, 3, 4, 4, 5), 1024), big[:, :, :4])
    # an image [B, C, H, W] is the one-frame video
    assert torch.equal(portable_noise((4, 3, 4, 5), 1024), portable_noise((4, 3, 1, 4, 5), 1024)[:, :, 0])


def test_dtypes_are_the_float32_values_cast():
    x = portable_noise((2, 2, 3, 4, 4), 5)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        assert torch.equal(portable_noise((2, 2, 3, 4, 4), 5, dtype=dtype), x.to(dtype))
        assert torch.equal(portable_noise((2, 2, 3, 4, 4), 5, dtype=dtype, backend="torch"), x.to(dtype))


def test_seeds_and_streams_differ():
    a = portable_noise((1, 64), 0)
    assert not torch.equal(a, portable_noise((1, 64), 1))
    assert not torch.equal(a, portable_noise((1, 64), 2**32))  # the high key word counts
    assert not torch.equal(a, portable_noise((1, 64), 0, stream=1))


def test_noise_generator_portable():
    shape = (3, 2, 3, 4, 4)
    assert torch.equal(noise(shape, 8, generator="portable"), portable_noise(shape, 8))
    per = noise(shape, 8, generator="portable", per_sample_seeds=True)
    for i in range(3):
        assert torch.equal(per[i], portable_noise((1, *shape[1:]), 8 + i)[0])
    listed = noise(shape, 8, generator="portable", per_sample_seeds=[5, 6, 2**64 - 1], dtype=torch.bfloat16)
    assert torch.equal(listed[2], portable_noise((1, *shape[1:]), 2**64 - 1, dtype=torch.bfloat16)[0])


# -- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"seed": -1}, ValueError, r"seed must be an integer in \[0, 2\*\*64\)"),
        ({"seed": 2**64}, ValueError, r"seed must be an integer in \[0, 2\*\*64\).*got 18446744073709551616"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"seed": True}, TypeError, "seed must be an integer"),
        ({"sample_index": -1}, ValueError, "sample_index must be a non-negative integer, got -1"),
        ({"sample_index": 2**32 - 1}, ValueError, r"sample_index for batch position 1 must be .* \[0, 2\*\*32\)"),
        ({"sample_index": [0]}, ValueError, "one index per batch position"),
        ({"sample_index": [0, -2]}, ValueError, "batch position 1 must be a non-negative integer, got -2"),
        ({"sample_index": "0"}, TypeError, "sample_index must be None"),
        ({"stream": -1}, ValueError, "stream must be a non-negative integer, got -1"),
        ({"stream": 2**32}, ValueError, r"stream must be an integer in \[0, 2\*\*32\)"),
        ({"shape": (2, 0, 3)}, ValueError, r"shape\[1\] must be a positive integer, got 0"),
        ({"shape": (2, -3)}, ValueError, r"shape\[1\] must be a positive integer, got -3"),
        ({"shape": ()}, ValueError, "at least one dimension"),
        ({"shape": "2x3"}, TypeError, "shape must be a sequence"),
        ({"region": (slice(0, 3),)}, ValueError, r"region\[0\] = slice\(0, 3, None\): stop 3 is out of range"),
        ({"region": (slice(-3, None),)}, ValueError, "start -3 is out of range"),
        ({"region": (slice(1, 1),)}, ValueError, "selects no element"),
        ({"region": (slice(None, None, -1),)}, ValueError, "step must be a positive integer"),
        ({"region": (slice(None, None, 0),)}, ValueError, "step must be a positive integer"),
        ({"region": (slice(None),) * 3}, ValueError, "3 slices but shape"),
        ({"region": (0,)}, TypeError, r"region\[0\] must be a slice"),
        ({"region": {5: slice(0, 1)}}, ValueError, "region axis must be an integer"),
        ({"region": "0:1"}, TypeError, "region must be None"),
        ({"backend": "cupy"}, ValueError, "backend must be one of"),
        ({"max_bytes": 16}, ValueError, "needs 24 bytes"),
        ({"device": "bogus"}, ValueError, r"device must name a torch device such as 'cpu'.*got 'bogus'"),
        ({"device": 0}, TypeError, r"device must be a torch device or its name.*got 0"),
        pytest.param({"device": "cuda"}, ValueError, r"device='cuda' asks for CUDA, but this torch .* sees no CUDA",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"shape": (2, 3), "seed": 1, **kwargs}
    with pytest.raises(exc, match=match):
        portable_noise(args.pop("shape"), args.pop("seed"), **args)


def test_per_sample_seeds_must_be_portable_seeds():
    with pytest.raises(ValueError, match=r"per_sample_seeds\[1\] must be an integer in \[0, 2\*\*64\)"):
        noise((2, 3), 0, generator="portable", per_sample_seeds=[1, -1])
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\)"):
        noise((2, 3), -5, generator="portable")


# -- CLI ------------------------------------------------------------------------------------------------------


def _sha(x: torch.Tensor) -> str:
    return hashlib.sha256(x.to(torch.float32).contiguous().numpy().tobytes()).hexdigest()


def _run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


SMALL = ["--preset", "opensora-2.0-256px", "--height", "64", "--width", "96", "--frames", "9"]


def test_cli_noise_portable(capsys, tmp_path):
    info = _run_json(capsys, ["noise", *SMALL, "--batch", "2", "--seed", "7", "--generator", "portable", "--json"])
    x = portable_noise(tuple(info["noise_shape"]), 7)
    assert info["generator"] == "portable" and info["noise_sha256"] == _sha(x)
    out = tmp_path / "n.safetensors"
    main(["noise", *SMALL, "--seed", "7", "--generator", "portable", "--dtype", "bfloat16", "--out", str(out)])
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(out))["noise"], x[:1].to(torch.bfloat16))


def test_cli_plan_portable(capsys):
    info = _run_json(capsys, ["plan", *SMALL, "--seed", "11", "--generator", "portable", "--json"])
    assert info["noise_sha256"] == _sha(portable_noise(tuple(info["noise_shape"]), 11))
    # batch independence shows through the CLI: sample 0 of a batch of 3 is the batch-1 noise
    info3 = _run_json(
        capsys, ["plan", *SMALL, "--seed", "11", "--batch", "3", "--generator", "portable", "--json"]
    )
    assert info3["noise_sha256"] == _sha(portable_noise(tuple(info3["noise_shape"]), 11))


@pytest.mark.parametrize("command", ["noise", "plan"])
def test_cli_portable_bad_seed_is_one_line(command, capsys):
    assert main([command, *SMALL, "--seed", "-1", "--generator", "portable"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed must be an integer in [0, 2**64)" in err[0]


def test_cli_noise_portable_per_sample_seeds(capsys):
    info = _run_json(
        capsys,
        ["noise", *SMALL, "--batch", "2", "--seed", "7", "--generator", "portable", "--per-sample-seeds", "--json"],
    )
    single = tuple([1, *info["noise_shape"][1:]])
    expected = torch.cat([portable_noise(single, 7), portable_noise(single, 8)])
    assert info["per_sample_seeds"] is True and info["noise_sha256"] == _sha(expected)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_block_counter_high_word(backend):
    # a region far into a huge sample: blocks cross 2**32, so the counter's second word changes inside the run
    start = 2**34 - 10
    x = portable_noise((1, 2**35), 5, region=(slice(None), slice(start, start + 20)), backend=backend)
    expected = [philox.normal_scalar(5, 0, 0, i) for i in range(start, start + 20)]
    assert x.shape == (1, 20) and x[0].tolist() == expected
