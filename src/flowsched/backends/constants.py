"""The numbers of the portable-noise specification (``docs/portable-noise.md``, sections 1.1, 1.4 and 1.5).

Shared by the scalar reference in :mod:`flowsched.philox` and by every backend, so that each number is written
once. Needs only the standard library and numpy.
"""

from __future__ import annotations

import numpy as np

# -- Philox4x32-10 (Random123, philox.h) ------------------------------------------------------------------------

PHILOX_M0 = 0xD2511F53  #: round multiplier applied to counter word 0
PHILOX_M1 = 0xCD9E8D57  #: round multiplier applied to counter word 2
PHILOX_W0 = 0x9E3779B9  #: key schedule increment of key word 0 (golden ratio)
PHILOX_W1 = 0xBB67AE85  #: key schedule increment of key word 1 (sqrt(3) - 1)
ROUNDS = 10
MASK32 = 0xFFFFFFFF
WORD_LIMIT = 2**32  #: sample indices and streams are 32-bit counter words
SEED_LIMIT = 2**64  #: seeds are 64-bit keys

# -- AS241 PPND16 coefficients (Wichura 1988), highest degree first for Horner's rule ----------------------------

#: |q| <= 0.425, r = 0.180625 - q*q: z = q * A(r) / B(r)
AS241_A = (
    2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4, 4.5921953931549871457e4,
    1.3731693765509461125e4, 1.9715909503065514427e3, 1.3314166789178437745e2, 3.3871328727963666080e0,
)
AS241_B = (
    5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4, 2.1213794301586595867e4,
    5.3941960214247511077e3, 6.8718700749205790830e2, 4.2313330701600911252e1, 1.0,
)
#: r = sqrt(-log(min(p, 1 - p))) <= 5, x = r - 1.6: |z| = C(x) / D(x)
AS241_C = (
    7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1, 1.27045825245236838258e0,
    3.64784832476320460504e0, 5.76949722146069140550e0, 4.63033784615654529590e0, 1.42343711074968357734e0,
)
AS241_D = (
    1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2, 1.48103976427480074590e-1,
    6.89767334985100004550e-1, 1.67638483018380384940e0, 2.05319162663775882187e0, 1.0,
)
#: r > 5, x = r - 5: |z| = E(x) / F(x). Unreachable for portable noise (p >= 2**-33 gives r < 4.78); kept so that
#: :func:`flowsched.philox.ppnd16` is the whole algorithm.
AS241_E = (
    2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3, 2.65321895265761230930e-2,
    2.96560571828504891230e-1, 1.78482653991729133580e0, 5.46378491116411436990e0, 6.65790464350110377720e0,
)
AS241_F = (
    2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5, 7.86869131145613259100e-4,
    1.48753612908506148525e-2, 1.36929880922735805310e-1, 5.99832206555887937690e-1, 1.0,
)
SPLIT1 = 0.425
SPLIT2 = 5.0
CONST1 = 0.180625
CONST2 = 1.6

# -- the exact-operation logarithm ------------------------------------------------------------------------------

#: ln(m) = s * (L0 + s2 * (L1 + ...)) with s = (m - 1) / (m + 1), s2 = s * s, L_k = float64(2 / (2k + 1)), k = 0..11,
#: highest first. m lies in [sqrt(1/2), sqrt(2)), so |s| <= 0.1716 and the truncation error is below 1e-19 relative.
LOG_SERIES = tuple(2.0 / (2 * k + 1) for k in range(11, -1, -1))
LN2 = float.fromhex("0x1.62e42fefa39efp-1")  #: float64 nearest to ln 2
SQRT_HALF = float.fromhex("0x1.6a09e667f3bcdp-1")  #: float64 nearest to sqrt(1/2): mantissas below it are doubled
#: float64 bit pattern of SQRT_HALF: ``(bits(x) - SQRT_HALF_BITS) >> 52`` is the exponent ``e`` of the log split
#: (spec section 1.6).
SQRT_HALF_BITS = int(np.float64(SQRT_HALF).view(np.int64))

# -- the two branches, by word ----------------------------------------------------------------------------------

#: Words ``CENTRAL_FIRST .. CENTRAL_LAST`` take the central branch (``|q| <= 0.425`` for ``q = (u + 0.5) * 2**-32 -
#: 0.5``); every other word takes the tail branch. ``tests/test_philox.py`` checks these bounds against the float64
#: comparison itself.
CENTRAL_FIRST = 322122547
CENTRAL_LAST = 3972844748


def _central_r(u: int) -> float:
    q = (u + 0.5) * 2.0**-32 - 0.5
    return CONST1 - q * q


#: ``r = 0.180625 - q*q`` falls strictly with ``|q|`` between neighbouring words, so ``|q| > 0.425`` is exactly
#: ``r < R_CENTRAL_MIN``: a backend can reuse ``r`` for the branch test instead of a pass computing ``|q|``.
R_CENTRAL_MIN = _central_r(CENTRAL_FIRST)

# -- one float64 table for compiled kernels ---------------------------------------------------------------------

#: Every non-trivial float64 constant of the transform in one array, for kernels that must read coefficients from
#: memory (Triton turns Python float literals into float32 constants). Offsets: :data:`TABLE_A` and so on.
TABLE = np.array(
    AS241_A + AS241_B + AS241_C + AS241_D + LOG_SERIES + (LN2, CONST1, CONST2, SPLIT1), dtype=np.float64
)
TABLE_A, TABLE_B, TABLE_C, TABLE_D, TABLE_LOG = 0, 8, 16, 24, 32
TABLE_LN2, TABLE_CONST1, TABLE_CONST2, TABLE_SPLIT1 = 44, 45, 46, 47

#: Every number above (the names in capitals).
__all__ = sorted(name for name in dict(globals()) if name.isupper())
