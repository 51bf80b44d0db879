"""Run the Triton kernel in Triton's interpreter on CPU tensors and compare it with the numpy backend.

Run as a script (``tests/test_triton_backend.py`` does, in a subprocess): ``TRITON_INTERPRET=1`` must be set before
Triton is imported. Prints one JSON object ``{case: true/false}``.
"""

import functools
import json
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from flowsched import philox  # noqa: E402
from flowsched.backends import numpy_ops, triton_cuda  # noqa: E402
from flowsched.noise import portable_noise  # noqa: E402


def same(shape, seed, **kwargs) -> bool:
    a = portable_noise(shape, seed, backend="triton", **kwargs)
    b = portable_noise(shape, seed, backend="numpy", **kwargs)
    return a.dtype == b.dtype and torch.equal(a, b)


def main() -> int:
    results = {}
    cases = {
        "short runs, 5-D": ((2, 3, 5, 4, 6), 0, {}),
        "long runs across programs": ((1, 2, 3, 16, 32), 2**64 - 1, {}),
        "long runs, not whole blocks": ((2, 3, 5, 7, 11), 3, {"stream": 5}),
        "3-D, sample indices, stream": ((3, 2, 700), 2**32 + 5, {"sample_index": [5, 0, 2**32 - 1], "stream": 7}),
        "height region": ((2, 4, 3, 8, 16), 11, {"region": {3: slice(2, 7)}}),
        "strided width region": ((2, 3, 4, 5, 9), 12, {"region": {-1: slice(1, 9, 3)}, "stream": 2**32 - 1}),
        "batch region": ((4, 2, 3, 5, 5), 13, {"region": slice(1, 3)}),
        "frames region": ((1, 4, 9, 6, 6), 14, {"region": {2: slice(3, 8)}}),
        "batch only": ((37,), 15, {}),
        "image [B, C, H, W]": ((2, 3, 17, 19), 16, {"sample_index": 9}),
        "block high word": ((1, 2**35), 5, {"region": (slice(None), slice(2**34 - 10, 2**34 + 10))}),
        "bfloat16": ((2, 3, 5, 4, 6), 7, {"dtype": torch.bfloat16}),
        "float16": ((2, 3, 5, 4, 6), 7, {"dtype": torch.float16}),
        "float64": ((2, 3, 5, 4, 6), 7, {"dtype": torch.float64}),
        "bfloat16, not whole blocks": ((2, 3, 17, 19), 8, {"dtype": torch.bfloat16}),
    }
    for name, (shape, seed, kwargs) in cases.items():
        results[name] = same(shape, seed, **kwargs)
    # the first backend="triton" call ran the kernel's self-check (flowsched.backends.selfcheck) and it passed
    from flowsched import backends

    results["self-check passed"] = backends._VERDICTS == {("triton", "cpu"): None}
    for word, bits in ((0x20F8A25E, 0xBF90E904), (0xDF075DA1, 0x3F90E904)):
        seed, sample, stream, index = philox.locate_word(word, rng_seed=2)
        x = portable_noise((1, 2**63), seed, sample_index=sample, stream=stream, backend="triton",
                           region=(slice(None), slice(index - 3, index + 5)))
        results[f"word {word:#010x}"] = int(x.numpy().view(np.uint32)[0, 3]) == bits and x[0].tolist() == [
            philox.normal_scalar(seed, sample, stream, i) for i in range(index - 3, index + 5)]
    # run tables stay on the device for shapes seen before (by content, bounded): a shape seen before copies none,
    # another seed of it gives its own values, and a full cache drops its oldest table and stays right
    cached = triton_cuda._RUN_TABLES
    first = same((2, 3, 6, 4, 5), 21)
    before = dict(cached)
    again = same((2, 3, 6, 4, 5), 22)
    results["run tables reused"] = first and again and len(before) >= 2 and all(
        cached.get(k) is t for k, t in before.items())
    kept, triton_cuda.RUN_TABLE_CACHE_ENTRIES = triton_cuda.RUN_TABLE_CACHE_ENTRIES, 2
    results["run table cache bounded"] = all(same((1, 2, n, 4, 6), n) for n in (3, 5, 7, 3)) and len(cached) <= 2
    triton_cuda.RUN_TABLE_CACHE_ENTRIES = kept
    kept, triton_cuda.RUN_TABLE_CACHE_BYTES = triton_cuda.RUN_TABLE_CACHE_BYTES, 0  # every table too large to keep
    before = list(cached)
    results["run tables too large to keep"] = same((2, 3, 7, 4, 5), 23) and list(cached) == before
    triton_cuda.RUN_TABLE_CACHE_BYTES = kept
    # several launches: run tables of 3 runs, launches of 500 elements
    triton_cuda.MAX_RUNS, triton_cuda.MAX_ELEMENTS = 3, 500
    results["several launches"] = same((2, 3, 4, 7, 9), 17) and same((2, 3, 4, 7, 9), 17, region={3: slice(1, 6)})
    # every case that runs whole blocks (QUADS) again with one block per element
    plain = functools.partial(triton_cuda.launch, quads=False)
    original, triton_cuda.launch = triton_cuda.launch, plain
    results["without quads"] = all(same(shape, seed, **kwargs) for shape, seed, kwargs in list(cases.values())[:8])
    triton_cuda.launch = original
    words = np.concatenate([np.array([0, 1, 2**31, 2**32 - 1, 322122546, 322122547, 3972844748, 3972844749],
                                     np.int64), np.random.default_rng(4).integers(0, 2**32, 5000)])
    z = triton_cuda.normal_from_words(torch.from_numpy(words))
    results["transform of words"] = bool(np.array_equal(z.numpy(), numpy_ops.normal_from_words(words)))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
