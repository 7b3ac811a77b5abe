"""Binary floating formats: unit roundoff, epsilon, rounding a float64 to a narrower format, and the
distance between two values in units in the last place (ULP) of a format.

Pure NumPy in float64 (exact: every scaling is by a power of two), so the ULP mode of
:func:`harness.checks.assert_close` does not depend on the torch under test to round its oracle.
"""
from __future__ import annotations

import numpy as np

_COMPLEX_PART = {"complex32": "float16", "complex64": "float32", "complex128": "float64"}


def dtype_name(dtype) -> str:
    """'float32' for torch.float32, numpy's float32, or the string itself."""
    name = str(dtype)
    return name.rsplit(".", 1)[-1]


def _real_name(dtype) -> str:
    name = dtype_name(dtype)
    return _COMPLEX_PART.get(name, name)


# Binary floating formats: (precision p in bits incl. the implicit one, emin, emax).
FORMATS: dict[str, tuple[int, int, int]] = {
    "float16": (11, -14, 15),
    "bfloat16": (8, -126, 127),
    "float32": (24, -126, 127),
    "float64": (53, -1022, 1023),
}


def unit_roundoff(dtype) -> float:
    """u = 2^-p: the largest relative error of one round-to-nearest in ``dtype`` (half its eps)."""
    p, _, _ = FORMATS[_real_name(dtype)]
    return 2.0 ** -p


def eps(dtype) -> float:
    """Machine epsilon 2^(1-p): the spacing of ``dtype`` just above 1 (= 1 ulp at 1)."""
    return 2.0 * unit_roundoff(dtype)


def tiny(dtype) -> float:
    """The smallest normal number: below it relative accuracy is not promised (gradual underflow)."""
    _, emin, _ = FORMATS[_real_name(dtype)]
    return 2.0 ** emin


# ---- ULP arithmetic (NumPy, float64 in and out) -------------------------------------------------------

def round_to(x, dtype) -> np.ndarray:
    """``x`` (float64) rounded to nearest-even in ``dtype``'s format, returned as float64 (exact):
    overflow gives +-inf, underflow the format's subnormals. float64 is returned unchanged."""
    x = np.asarray(x, dtype=np.float64)
    name = _real_name(dtype)
    p, emin, emax = FORMATS[name]
    if name == "float64":
        return x
    ax = np.abs(x)
    with np.errstate(invalid="ignore", over="ignore"):
        _, e2 = np.frexp(ax)  # ax = m * 2^e2, m in [0.5, 1): exponent e2 - 1
        q_exp = np.maximum(e2 - 1, emin) - (p - 1)  # the quantum (spacing) at ax, subnormals included
        r = np.ldexp(np.round(np.ldexp(ax, -q_exp)), q_exp)  # np.round: half to even; scaling is exact
        largest = (2.0 - 2.0 ** (1 - p)) * 2.0 ** emax
        r = np.where(np.isfinite(ax) & (r > largest), np.inf, np.where(np.isfinite(ax), r, ax))
    return np.copysign(r, x)


def _ordinal(v: np.ndarray, name: str) -> np.ndarray:
    """The position of each (representable, non-NaN) value in ``name``'s ordered set of values: 0 for
    +-0, +-1 for the smallest subnormal, ..., +-(largest finite + 1) for +-inf. Float64 with integral
    values below 2^32 for the 16/32-bit formats; int64 for float64."""
    if name == "float64":
        b = np.ascontiguousarray(v, dtype=np.float64).view(np.int64)
        mag = b & np.int64(0x7FFF_FFFF_FFFF_FFFF)
        return np.where(b < 0, -mag, mag)
    p, emin, emax = FORMATS[name]
    av = np.abs(v)
    with np.errstate(invalid="ignore", over="ignore"):
        _, e2 = np.frexp(np.where(np.isinf(av), 1.0, av))
        e = np.where(av == 0, emin, np.maximum(e2 - 1, emin))  # frexp(0) has exponent 0
        idx = (e - emin).astype(np.float64) * 2.0 ** (p - 1) + np.ldexp(av, (p - 1) - e)
    idx = np.where(np.isinf(av), (emax - emin + 2) * 2.0 ** (p - 1), idx)
    return np.where(np.signbit(v), -idx, idx)


def ulp_distance(actual, expected, dtype) -> np.ndarray:
    """How many representable ``dtype`` values lie between ``actual`` and ``expected`` after rounding
    both to ``dtype`` (0: the correctly rounded value; inf counts as one past the largest finite value),
    as float64. NaNs give NaN."""
    name = _real_name(dtype)
    a = round_to(actual, name)
    e = round_to(expected, name)
    nan = np.isnan(a) | np.isnan(e)
    a = np.where(nan, 0.0, a)
    e = np.where(nan, 0.0, e)
    oa, oe = _ordinal(a, name), _ordinal(e, name)
    if name == "float64":
        same = (oa >= 0) == (oe >= 0)
        d = np.where(same, np.abs(np.where(same, oa - oe, 0)).astype(np.float64),
                     np.abs(oa.astype(np.float64)) + np.abs(oe.astype(np.float64)))
    else:
        d = np.abs(oa - oe)
    return np.where(nan, np.nan, d)
