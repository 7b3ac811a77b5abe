"""Tolerance tables: data, per op class and dtype, and the error models they come from.

Three ways a result may be compared with its float64 oracle (:func:`harness.checks.assert_close`):

* **rtol/atol** (the table's default): every element needs ``|actual - expected| <= atol + rtol*|expected|``
  (the rule of ``torch.testing.assert_close`` and ``numpy.isclose``).
* **ULP** (``Tolerance.ulp`` set, op class ``transcendental`` or ``assert_close(..., ulp=N)``): the float64
  oracle is rounded to the result dtype and every element must lie within ``ulp`` units in the last place
  of it. Relative everywhere, also for tiny outputs (a sigmoid flushed to 0 at x = -20 is ~10^9 ulp off,
  while an absolute floor would accept it), and exact about overflow (inf is one ulp above the largest
  finite value).
* **K-aware** (``Tolerance.srtol`` set, from :func:`for_reduction` / :func:`for_matmul`, or
  ``assert_close(..., k=K, scale=S)``): ``|actual - expected| <= atol + rtol*|expected| + srtol*scale``
  with ``scale`` the float64 sum of the absolute values of each element's terms (``|A| @ |B|`` for a
  product, ``sum |x|`` for a sum), so the allowance grows with sqrt(K) and with the terms, not with a
  fixed absolute floor.

The *ratio* of the worst element's error to its allowance is recorded for every check (and, for the
element-by-element classes, the worst distance in ULP, ``max_ulp``), so a run whose precision got worse
while still passing is visible in a comparison before anything fails.

Op classes say how much error an operation may accumulate relative to a float64 oracle:

``exact``          integers, bools, shapes, dtypes, indices, aliasing: no error at all.
``elementwise``    one to a few roundings per element (arithmetic, composite formulas).
``transcendental`` elementwise math functions (exp, log, trig, sigmoid, ...) in ULP of the result dtype.
``reduction``      sums, means, norms, softmax, scans over up to ~10^2 unit-scale terms (more: ``k=``).
``matmul``         dot products, matmul, conv with an inner dimension up to ~64 (more: ``k=``).
``linalg``         decompositions and solves on well-conditioned inputs.
``gradient``       analytic gradients against closed forms or finite differences.
``nn``             a layer's forward against a float64 reference in plain tensor math.
``training``       parameters after several optimiser steps against a reference update rule.
``amp``            a low-precision (autocast) result against the float32 result.
``export``         an exported model (TorchScript, torch.export, ONNX Runtime) against eager.
``device``         an accelerator's result against the CPU result for the same inputs.

Notation used in the comments below: ``u`` is the unit roundoff of a dtype (half its eps: 2^-24 for
float32, 2^-53 for float64, 2^-8 for bfloat16, 2^-11 for float16); "unit-scale" data are values of
magnitude ~1 (the suites draw from N(0, 1) or U(-5, 5)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.floats import (  # noqa: F401 (re-exported: the tolerance vocabulary)
    FORMATS, _real_name, dtype_name, eps, round_to, tiny, ulp_distance, unit_roundoff)


@dataclass(frozen=True)
class Tolerance:
    """An allowance. ``rtol``/``atol``: relative to ``|expected|`` / absolute. ``ulp``: when set, the
    comparison is in units in the last place of the result dtype instead (``rtol`` then only says how
    much relative error that budget amounts to at most, ``ulp * eps``, for reports). ``srtol``: relative
    to the caller's ``scale`` (the sum of ``|terms|`` of each element), for K-aware allowances."""

    rtol: float
    atol: float
    ulp: float | None = None
    srtol: float = 0.0

    def as_dict(self) -> dict:
        d = {"rtol": float(self.rtol), "atol": float(self.atol)}
        if self.ulp is not None:
            d["ulp"] = float(self.ulp)
        if self.srtol:
            d["srtol"] = float(self.srtol)
        return d


_T = Tolerance

def _ulp_row(ulp: float, name: str) -> Tolerance:
    return _T(ulp * eps(name), 0.0, ulp=ulp)


# (rtol, atol) per dtype name. Complex dtypes use their component float's entry.
TABLE: dict[str, dict[str, Tolerance]] = {
    "exact": {},
    "elementwise": {
        # 16-bit rows: torch.testing's defaults (rtol ~ 1 eps for float16, 2 eps for bfloat16).
        "float16": _T(1e-3, 1e-5),
        "bfloat16": _T(1.6e-2, 1e-5),
        # rtol 1.3e-6 ~ 11 eps: torch.testing's float32 default, room for composite formulas (lerp, addcmul,
        # pow = exp(y*log x)) that round several times. atol was 1e-5 (torch.testing's), which hid every
        # output below 1e-5 (a sigmoid returning 0 for x < -11.6 passed). 1e-6 ~ 4 roundings (4u each) of
        # intermediates of magnitude <= 4, which a formula may cancel (GELU's 1 + erf(x/sqrt 2) at x = -3);
        # measured worst over the suites on CPU torch 2.13: 2.4e-7. Tiny outputs of math functions are
        # the transcendental class's job (ULP, no floor at all).
        "float32": _T(1.3e-6, 1e-6),
        "float64": _T(1e-7, 1e-7),
    },
    # ULP budgets, against the float64 oracle rounded to the result dtype.
    "transcendental": {
        # Computed in float32 and rounded once: at most 1 ulp from the correctly rounded value (0 measured
        # except sigmoid in float16, 1).
        "float16": _ulp_row(1, "float16"),
        "bfloat16": _ulp_row(1, "bfloat16"),
        # SLEEF's u35 class (<= 3.5 ulp from the exact value; CUDA's expf/sinf/tanhf: 2 ulp, sigmoid's
        # 1/(1+exp(-x)) a little more) plus 0.5 for rounding the oracle: 4. Measured on CPU torch 2.13 over
        # 2^20 random inputs per function: <= 1 ulp (u10 kernels), sigmoid 2.
        "float32": _ulp_row(4, "float32"),
        # torch (SLEEF u10 / libm, <= 1 ulp) against NumPy's own float64 functions (its SIMD versions
        # allow up to 4 ulp), with each side's composition (sigmoid, rsqrt as 1/sqrt): 8.
        "float64": _ulp_row(8, "float64"),
    },
    "reduction": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        # A sum of K unit-scale terms in ANY order (a scan is sequential by nature): the RMS rounding error
        # of a sequential float32 sum is ~u*K/sqrt(6), 1.6e-6 at K = 64, times the terms' magnitude (<= ~3
        # in the suites); 1e-5 is ~2-6 sigma of that, and rtol 1e-5 = 168u covers the probabilistic
        # relative bound 8u*sqrt(K) of same-sign terms up to K ~ 440. Longer or mixed-sign sums: for_reduction(dtype, k).
        # Measured worst over the suites (CPU, cascade summation): 1e-6 at K <= 10^2.
        "float32": _T(1e-5, 1e-5),
        "float64": _T(1e-10, 1e-10),
    },
    "matmul": {
        "float16": _T(1e-2, 1e-2),
        "bfloat16": _T(5e-2, 5e-2),
        # Was (1e-4, 1e-4): 100-1000x the error of the small-K products the class is used for. A K-term
        # float32 dot product of unit-scale values accumulated sequentially (the least favourable legal
        # order) has RMS error ~u*K/sqrt(6) = 1.6e-6 at K = 64: atol 1e-5 is ~6 sigma. A single product
        # needs rtol 8u*sqrt(K)*cond = 1e-5 for cond = sum|a*b|/|a.b| <= 2.6 at K = 64 (measured over
        # suites/tensors and suites/nn on CPU, K <= 36: 6.8e-8 beyond rtol 1e-5), but the class also
        # covers products chained with other ops (suites/ops: attention backward = two products and a
        # softmax, measured need 1.1e-5), so 3e-5. Single products with larger K: for_matmul(dtype, k).
        "float32": _T(3e-5, 1e-5),
        "float64": _T(1e-10, 1e-10),
    },
    "linalg": {
        "float16": _T(2e-2, 2e-2),
        "bfloat16": _T(8e-2, 8e-2),
        # c(n)*kappa*u for backward-stable algorithms at n up to ~10^2 and kappa ~10 (suites/ops reads
        # this row as c(n)*u for n <= 129).
        "float32": _T(1e-4, 1e-4),
        "float64": _T(1e-9, 1e-9),
    },
    "gradient": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        # Backward of small graphs (a few products and sums, K <= ~64): the same model as matmul below
        # 1e-5. Measured worst over the suites: 1e-8 beyond rtol 1e-5.
        "float32": _T(1e-5, 1e-5),
        # float64 also serves finite-difference references (central differences, h ~ 1e-6: ~1e-8 error).
        "float64": _T(1e-7, 1e-7),
    },
    "nn": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        # Was rtol 1e-4. A layer = a K-term dot product (conv: K = C_in*kernel volume <= ~64) plus a few
        # elementwise roundings, the matmul row's model, needs 1e-5 (measured over suites/nn on CPU: 1.5e-7
        # beyond rtol 1e-5). But the class is also the catch-all for deeper composites (suites/ops compares
        # every nn.functional OpInfo with it, norm-wise): measured needs there are 1.7e-5 (ctc_loss backward,
        # a 50-step log-space recursion), 1.35e-5 (batch norm of a zero-variance, expanded batch: the
        # 1/sqrt(eps) amplification) and 1.1e-5 (multi-head attention backward). 4e-5 keeps 2.4x over the
        # worst of them. Single layers with larger K: for_matmul(dtype, k).
        "float32": _T(4e-5, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
    "training": {
        "float16": _T(2e-2, 2e-3),
        "bfloat16": _T(8e-2, 2e-2),
        # n <= ~10 optimiser steps of ~4 roundings each on parameters of magnitude <= ~1: 40u = 2.4e-6
        # relative, 1e-5 with headroom; atol 1e-6 for parameters passing near zero (same model at 1/4 of
        # the magnitude). Was (1e-4, 1e-5); measured worst over the suites: 0 beyond rtol 1e-5, 1.1e-7
        # beyond rtol 1e-6.
        "float32": _T(1e-5, 1e-6),
        "float64": _T(1e-7, 1e-9),
    },
    "amp": {
        "float16": _T(1e-2, 1e-2),
        "bfloat16": _T(4e-2, 4e-2),
        "float32": _T(1e-5, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
    "export": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        # Measured on CPU (torch 2.13, every lane incl. ONNX Runtime vs the float64 eager reference):
        # worst 2.3e-7 absolute, so this leaves ~10x headroom and still catches a 1e-5 drift.
        "float32": _T(2e-5, 2e-6),
        "float64": _T(1e-7, 1e-7),
    },
    "device": {
        "float16": _T(1e-3, 1e-3),
        "bfloat16": _T(1.6e-2, 1e-2),
        "float32": _T(1e-5, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
}

OP_CLASSES = tuple(TABLE)

# Classes whose error model is per element, so the distance in ULP is meaningful and recorded.
ULP_RECORDED = frozenset({"elementwise", "transcendental"})

EXACT = _T(0.0, 0.0)

# Probabilistic rounding-error constant of the K-aware allowances (see for_reduction).
LAMBDA = 8.0


def lookup(op: str, dtype) -> Tolerance:
    """The tolerance for ``op`` at ``dtype``; integer and bool dtypes are always exact."""
    if op not in TABLE:
        raise KeyError(f"unknown op class {op!r}; known: {', '.join(OP_CLASSES)}")
    name = _real_name(dtype)
    if op == "exact":
        return EXACT
    row = TABLE[op]
    if name in row:
        return row[name]
    if name.startswith(("int", "uint", "bool")):
        return EXACT
    raise KeyError(f"no tolerance for op class {op!r} at dtype {name!r}")


def accumulation_dtype(dtype) -> str:
    """The dtype torch accumulates sums and dot products of ``dtype`` in (its "opmath" type on CPU and
    CUDA): float32 for the 16-bit floats and float32, float64 for float64."""
    return "float64" if _real_name(dtype) == "float64" else "float32"


def for_reduction(dtype, k: int) -> Tolerance:
    """The allowance for a sum-like reduction of ``k`` terms (sum, mean, cumsum, nansum, a norm's sum of
    squares) against the float64 oracle, relative to ``scale`` = the float64 sum of ``|terms|``:

    ``|err| <= srtol * scale + rtol * |expected| + atol`` with

    * ``srtol = min(LAMBDA * sqrt(k), k) * u_acc`` (x2 for float64 results, whose oracle has the same
      rounding error): the accumulation in the opmath dtype. ``k * u`` is the worst case of any summation
      order (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. 4.4: gamma_(k-1));
      ``LAMBDA * sqrt(k) * u`` is Higham & Mary's probabilistic bound (SIAM J. Sci. Comput. 41(5), 2019,
      Thm. 3.1), which fails with probability <= 2k*exp(-LAMBDA^2/2): LAMBDA = 8 keeps that below 1e-6
      for k up to 10^7. Measured on CPU torch 2.13 (sum, mean, cumsum up to 2^20 terms, float32/16-bit/
      float64): <= 0.3 * sqrt(k) * u_acc * scale.
    * ``rtol = eps(dtype)``: the final rounding (and scaling, for a mean) of the result to its dtype,
      u, doubled; this is what bounds a 16-bit result, which is rounded once after float32 accumulation.
    * ``atol = tiny(dtype)``: gradual underflow.

    A result off by half misses this by orders of magnitude at every element whose ``|expected|`` is
    not itself within the allowance (float32, k = 513: srtol = 1.1e-5).
    """
    k = max(int(k), 1)
    name = _real_name(dtype)
    acc = accumulation_dtype(name)
    c = min(LAMBDA * math.sqrt(k), float(k))
    srtol = c * unit_roundoff(acc) * (2.0 if name == "float64" else 1.0)
    return _T(eps(name), tiny(name), srtol=srtol)


def for_matmul(dtype, k: int) -> Tolerance:
    """The allowance for a ``k``-term dot product (matmul, bmm, linear, conv with k = C_in/groups x
    kernel volume) against the float64 product of the same dtype-rounded inputs, relative to ``scale``
    = ``|A| @ |B|`` (the float64 sum of ``|a_il * b_lj|`` per element). The same model as
    :func:`for_reduction` with one more rounding per term (the product; none with FMA): gamma_k, or
    LAMBDA*sqrt(k)*u_acc probabilistically. Measured on CPU torch 2.13 (square products, n = 127..2048,
    uniform [-1, 1) data): float32 error <= 0.25*sqrt(k)*u*scale; bfloat16/float16 within eps(dtype)*|c|
    plus 0.02*sqrt(k)*u_fp32*scale (float32 accumulation, one rounding at the end)."""
    k = max(int(k), 1)
    name = _real_name(dtype)
    acc = accumulation_dtype(name)
    c = min(LAMBDA * math.sqrt(k), float(k + 1))
    srtol = c * unit_roundoff(acc) * (2.0 if name == "float64" else 1.0)
    return _T(eps(name), tiny(name), srtol=srtol)


K_AWARE = {"reduction": for_reduction, "matmul": for_matmul, "nn": for_matmul, "gradient": for_matmul}


def for_terms(op: str, dtype, k: int) -> Tolerance:
    """The K-aware tolerance of op class ``op`` (reduction: :func:`for_reduction`; matmul, nn, gradient:
    :func:`for_matmul`); integer and bool dtypes are exact."""
    if op not in K_AWARE:
        raise KeyError(f"op class {op!r} has no K-aware tolerance; known: {', '.join(K_AWARE)}")
    name = _real_name(dtype)
    if name not in FORMATS:
        if name.startswith(("int", "uint", "bool")):
            return EXACT
        raise KeyError(f"no K-aware tolerance at dtype {name!r}")
    return K_AWARE[op](name, k)
