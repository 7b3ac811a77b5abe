"""Input builders, tolerance derivations and statistical bounds shared by the hand-written oracle
modules of the operator lane (linalg, fft, special, distributions, random state).

Inputs are drawn by NumPy and laid out the way production tensors reach kernels: contiguous, with
real gaps between elements (``buf[..., 1::2]`` of a buffer twice as wide, which also gives a
storage offset), or as a slice of a larger storage (offset, otherwise dense). A dims-reversed view
is NOT used here: it is still one dense block and reaches the same flat loop as a contiguous tensor.
The unused elements of a buffer are NaN, so a kernel that reads them poisons its result.
"""
from __future__ import annotations

import numpy as np
import torch

from harness import tolerances
from harness.checks import to_numpy

LAYOUTS = ("contiguous", "gapped", "offset")

# Unit roundoff (half the machine epsilon) per real dtype: the relative error of one rounding.
UNIT_ROUNDOFF = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8, torch.float32: 2.0 ** -24,
                 torch.float64: 2.0 ** -53}


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for complex64, float64 for complex128, the dtype itself otherwise."""
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def unit_roundoff(dtype: torch.dtype) -> float:
    return UNIT_ROUNDOFF[real_dtype(dtype)]


def place(arr, dtype: torch.dtype, device, layout: str = "contiguous") -> torch.Tensor:
    """``arr`` (NumPy, any float/complex kind) as a ``dtype`` tensor on ``device`` in ``layout``:

    - ``contiguous``: a fresh dense tensor;
    - ``gapped``: ``buf[..., 1::2]`` of a NaN-filled buffer with a last dim twice as wide (stride 2 in
      the last dim, storage offset 1): not contiguous, with real holes between elements;
    - ``offset``: a view into a NaN-filled 1-D storage starting 7 elements in (dense strides, nonzero
      storage offset).
    """
    a = np.asarray(arr)
    src = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
    if layout == "contiguous":
        return src.to(device)
    nan = float("nan") if (dtype.is_floating_point or dtype.is_complex) else 0
    if layout == "gapped":
        if a.ndim == 0:
            return src.to(device)
        buf = torch.full(a.shape[:-1] + (2 * a.shape[-1] + 1,), nan, dtype=dtype, device=device)
        view = buf[..., 1::2][..., : a.shape[-1]]
        view.copy_(src.to(device))
        return view
    if layout == "offset":
        buf = torch.full((src.numel() + 11,), nan, dtype=dtype, device=device)
        view = buf[7: 7 + src.numel()].view(src.shape)
        view.copy_(src.to(device))
        return view
    raise ValueError(f"unknown layout {layout!r}")


def describe(t: torch.Tensor) -> str:
    return f"stride={tuple(t.stride())}, offset={t.storage_offset()}"




def random_array(np_rng, shape, dtype: torch.dtype, low=-1.0, high=1.0) -> np.ndarray:
    """Uniform values (both parts for complex dtypes) in float64/complex128."""
    x = np_rng.uniform(low, high, size=shape)
    if dtype.is_complex:
        x = x + 1j * np_rng.uniform(low, high, size=shape)
    return x


def random_unitary(np_rng, n: int, batch=(), complex_: bool = False) -> np.ndarray:
    """Haar-ish random orthogonal/unitary matrices (QR of a Gaussian matrix with the sign fix)."""
    g = np_rng.standard_normal(batch + (n, n))
    if complex_:
        g = g + 1j * np_rng.standard_normal(batch + (n, n))
    q, r = np.linalg.qr(g)
    d = np.diagonal(r, axis1=-2, axis2=-1)
    ph = d / np.where(np.abs(d) == 0, 1, np.abs(d))
    return q * ph[..., None, :]


def matrix_with_singular_values(np_rng, m: int, n: int, s, batch=(), complex_: bool = False) -> np.ndarray:
    """U diag(s) V^H with random unitary U (m x m) and V (n x n); ``s`` has min(m, n) entries (or a
    batch of them): a matrix whose singular values and condition number are known exactly."""
    u = random_unitary(np_rng, m, batch, complex_)[..., :, : min(m, n)]
    v = random_unitary(np_rng, n, batch, complex_)[..., :, : min(m, n)]
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), batch + (min(m, n),))
    return (u * s[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))


def well_conditioned(np_rng, n: int, batch=(), complex_: bool = False, kappa: float = 10.0) -> np.ndarray:
    """A random n x n matrix with singular values spread log-uniformly in [1, kappa] (2-norm condition
    number exactly ``kappa`` for n >= 2)."""
    s = np.geomspace(kappa, 1.0, n) if n > 1 else np.ones(1)
    return matrix_with_singular_values(np_rng, n, n, s, batch, complex_)


def hermitian_pd(np_rng, n: int, batch=(), complex_: bool = False, kappa: float = 10.0) -> np.ndarray:
    """A Hermitian positive-definite matrix with eigenvalues log-spaced in [1, kappa]."""
    q = random_unitary(np_rng, n, batch, complex_)
    lam = np.geomspace(kappa, 1.0, n) if n > 1 else np.ones(1)
    return (q * lam) @ np.conj(np.swapaxes(q, -1, -2))


def linalg_rtol(dtype: torch.dtype) -> float:
    """The table's relative budget for a decomposition of a well-conditioned input (class ``linalg``)."""
    return tolerances.lookup("linalg", dtype).rtol


def normwise_atol(dtype: torch.dtype, ref: np.ndarray, factor: float = 1.0, axes=(-2, -1)) -> float:
    """An elementwise absolute allowance from a NORMWISE error bound: for a backward-stable algorithm
    ``||x - x*|| <= c(n) * u * factor * ||x*||`` where ``factor`` is the condition number that the
    contract depends on (kappa for a solve, 1 for an orthogonality residual), and every element's
    error is bounded by the norm of the error. The table's ``linalg`` rtol stands for ``c(n) * u``
    at moderate n; the largest norm over the batch is used."""
    r = np.asarray(ref)
    if r.size == 0:
        return 0.0
    if r.ndim == 1:
        nrm = float(np.linalg.norm(r))
    else:
        nrm = float(np.max(np.sqrt(np.sum(np.abs(r) ** 2, axis=axes))))
    return linalg_rtol(dtype) * factor * max(nrm, np.finfo(np.float64).tiny)


def ulp_rtol(dtype: torch.dtype, ulps: float) -> float:
    """A relative tolerance of ``ulps`` units in the last place of ``dtype`` (spacing at 1.0)."""
    return ulps * 2.0 * unit_roundoff(dtype)








# ----------------------------------------------------------------------------------------- conditioned ULPs

_FD_STEP = 2.0 ** -20


def conditioned_scale(ref_fn, args, cont, dtype) -> np.ndarray:
    """The error scale of an elementwise function evaluated in ``dtype``: ``u * (|f| + sum_i |x_i df/dx_i|)``
    plus the smallest normal number of ``dtype``. This is what a correctly rounded result of f at an input
    perturbed by one rounding (relative u) may differ by, so a tolerance of c of these units is "c units
    of roundoff, mixed forward-backward": it is relative where f is well conditioned, and absolute
    (scaled by |x f'|) near zeros of f, where no implementation can be relatively accurate. The
    derivatives are central differences of the float64 oracle itself (step 2^-20 * min(|x|, 1))."""
    u = unit_roundoff(dtype)
    tiny = float(torch.finfo(real_dtype(dtype)).tiny)
    args = [np.asarray(a, dtype=np.float64) for a in args]
    with np.errstate(all="ignore"):
        f = np.asarray(ref_fn(*args), dtype=np.float64)
        scale = np.abs(f)
        for i in cont:
            step = _FD_STEP * np.minimum(np.abs(args[i]), 1.0)
            hi = list(args)
            lo = list(args)
            hi[i] = args[i] + step
            lo[i] = args[i] - step
            d = np.abs(args[i] * (ref_fn(*hi) - ref_fn(*lo)) / np.where(step > 0, 2 * step, 1.0))
            scale = scale + np.where(np.isfinite(d), d, 1e3 * np.abs(f))
    return u * np.broadcast_to(scale, f.shape) + tiny


def assert_conditioned(api: str, actual, expected, scale, budget: float, *, inputs=(), args: str = "") -> None:
    """``|actual - expected| <= budget * scale`` elementwise (``scale`` from :func:`conditioned_scale`), and
    NaN/inf exactly where the oracle has them. The check is recorded through harness.checks on the
    error in units of ``scale``; a failure names the worst input, the value and the oracle's value."""
    __tracebackhide__ = True
    from harness.checks import assert_close

    a = to_numpy(actual)
    e = np.broadcast_to(np.asarray(expected, dtype=np.float64), a.shape)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), a.shape)
    nonfinite = ~np.isfinite(e) | ~np.isfinite(a)
    if nonfinite.any():
        assert_close(api, a[nonfinite], e[nonfinite], rtol=0.0, atol=0.0, args=args + ", non-finite values")
    fin = ~nonfinite
    err = np.abs(a[fin] - e[fin]) / scale[fin]
    try:
        assert_close(api, err, np.zeros_like(err), rtol=0.0, atol=budget,
                     args=args + f", error in units of u*(|f|+|x f'|), budget {budget:g}")
    except AssertionError as exc:
        i = int(np.argmax(err))
        where = ", ".join(f"{np.asarray(x, dtype=np.float64)[fin][i]!r}" if np.ndim(x) else repr(float(x)) for x in
                          (np.broadcast_to(np.asarray(v, dtype=np.float64), a.shape) for v in inputs))
        raise AssertionError(f"{exc}; worst at input ({where}): got {a[fin][i]!r}, expected {e[fin][i]!r}") from None
