"""Compare-and-record assertions used by the suites.

Every check names the API under test first, compares with an independent reference in
float64 (NumPy), records its measured error against the tolerance it used, and fails with
``got X, expected Y [api(args)]``. The recording goes to the :class:`~harness.checklog.CheckLog` of the test that
is running (the pytest plugin opens one per test); outside a test nothing is recorded.

This module imports torch and numpy lazily and never imports pytest.
"""
from __future__ import annotations

import math
import re

import numpy as np

from harness import tolerances
from harness.checklog import CheckLog, collecting, current  # noqa: F401 (re-exported)
from harness.checklog import unobserved
from harness.checklog import record as _record
from harness.tolerances import Tolerance

def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "dtype")


@unobserved
def to_numpy(x) -> np.ndarray:
    """A float64 (or complex128) NumPy copy of a tensor, array or number; ints and bools keep their kind.
    Always a copy: a later in-place change to the tensor does not change a reference taken from it."""
    if _is_tensor(x):
        import torch

        t = x.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        t = t.cpu().resolve_conj().resolve_neg()
        if t.is_complex():
            return t.to(torch.complex128).numpy().copy()
        if t.is_floating_point():
            return t.to(torch.float64).numpy().copy()
        return t.numpy().copy()
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        return arr.astype(np.complex128)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    return arr


def _fmt(v) -> str:
    if isinstance(v, (complex, np.complexfloating)):
        return repr(complex(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return repr(v.item() if hasattr(v, "item") else v)


def _where(api: str, args: str) -> str:
    return f"[{api}({args})]"


@unobserved
def assert_close(api: str, actual, expected, *, op: str = "elementwise", dtype=None,
                 rtol: float | None = None, atol: float | None = None, ulp: float | None = None,
                 k: int | None = None, scale=None, equal_nan: bool = True,
                 args: str = "", check_dtype=None, check_device=None) -> dict:
    """Assert ``actual`` is within the tolerance of ``op``/``dtype`` of the reference ``expected``.

    ``actual`` is what torch computed; ``expected`` is an independent oracle (NumPy or math in
    float64, a closed form, or the CPU result for an accelerator). A Python scalar ``expected``
    broadcasts; otherwise shapes must match exactly. NaNs must sit at the same places
    (``equal_nan``) and infinities must match exactly. ``check_dtype``/``check_device`` compare
    ``actual``'s dtype/device exactly. Returns the recorded entry.

    The allowance (see :mod:`harness.tolerances`) is the table's row for ``op`` at ``dtype`` (the
    dtype of ``actual`` unless given), or:

    * ``ulp=N`` (or an op class with a ULP budget, ``transcendental``): every element within N units in
      the last place of the float64 oracle rounded to ``dtype``; relative everywhere, no absolute floor.
      Complex results are compared relatively (``rtol = N * eps``) instead.
    * ``k=K`` with ``scale=S``: the K-aware allowance of a K-term sum or dot product
      (:func:`harness.tolerances.for_terms`), ``srtol * S`` on top of the result's own rounding, where
      ``S`` is the float64 sum of ``|terms|`` of each element (``|A| @ |B|``, ``sum |x|``; broadcasts).
      Without ``scale`` the terms are taken to share one sign (``S = |expected|``).

    ``rtol=``/``atol=`` override the chosen allowance (say why in a comment). Every entry records the
    error/allowance ratio; the element-by-element classes (elementwise, transcendental, any ``ulp=``)
    also record ``max_ulp``, the worst distance in ULP of ``dtype``.
    """
    __tracebackhide__ = True
    where = _where(api, args)
    if check_dtype is not None and _is_tensor(actual) and actual.dtype != check_dtype:
        _record({"api": api, "op": "exact", "what": "dtype", "ratio": math.inf})
        raise AssertionError(f"got dtype {actual.dtype}, expected {check_dtype} {where}")
    if check_device is not None and _is_tensor(actual) and actual.device.type != _device_type(check_device):
        _record({"api": api, "op": "exact", "what": "device", "ratio": math.inf})
        raise AssertionError(f"got device {actual.device}, expected {check_device} {where}")
    if dtype is None:
        dtype = actual.dtype if _is_tensor(actual) else np.asarray(actual).dtype
    tol = _tolerance(op, dtype, rtol=rtol, atol=atol, ulp=ulp, k=k)
    a = to_numpy(actual)
    e = to_numpy(expected)
    if e.ndim == 0 and a.ndim > 0 and not _is_tensor(expected) and not isinstance(expected, np.ndarray):
        e = np.broadcast_to(e, a.shape)
    name = tolerances.dtype_name(dtype)
    entry = {"api": api, "op": op, "dtype": name, **tol.as_dict(), "numel": int(a.size), "max_abs_err": 0.0, "ratio": 0.0}
    if k is not None:
        entry["k"] = int(k)
    if a.shape != e.shape:
        entry["ratio"] = math.inf
        _record(entry)
        raise AssertionError(f"got shape {tuple(a.shape)}, expected {tuple(e.shape)} {where}")
    if a.size == 0:
        _record(entry)
        return entry
    complex_ = a.dtype.kind == "c" or e.dtype.kind == "c"
    a_c = a.astype(np.complex128) if complex_ else a.astype(np.float64)
    e_c = e.astype(a_c.dtype)
    ulp_fmt = name if (not complex_ and name in tolerances.FORMATS) else None
    ulp_mode = tol.ulp is not None and ulp_fmt is not None
    if ulp_mode:  # the oracle as the result dtype can hold it: overflow to inf, underflow, ties to even
        e_c = tolerances.round_to(e_c, ulp_fmt)
    a_nan, e_nan = np.isnan(a_c), np.isnan(e_c)
    bad = a_nan != e_nan if equal_nan else (a_nan | e_nan)
    a_inf, e_inf = np.isinf(a_c), np.isinf(e_c)
    finite = ~(a_nan | e_nan | a_inf | e_inf)
    diff = np.zeros(a_c.shape, dtype=np.float64)
    diff[finite] = np.abs(a_c[finite] - e_c[finite])
    dist = None
    if ulp_fmt is not None and (ulp_mode or op in tolerances.ULP_RECORDED):
        dist = tolerances.ulp_distance(a_c, e_c, ulp_fmt)  # NaN where either side is NaN
        both_nan = a_nan & e_nan
        dist = np.where(both_nan, 0.0, dist)
        counted = ~(a_nan | e_nan)
        entry["max_ulp"] = float(dist[counted].max()) if counted.any() else 0.0
    if ulp_mode:  # infinities are ordinary values here: inf is one ulp past the largest finite value
        ratio = np.where(bad, np.inf, _ratio(np.where(np.isnan(dist), 0.0, dist), float(tol.ulp)))
    else:
        bad |= (a_inf | e_inf) & ~(a_nan | e_nan) & (a_c != e_c)
        allowed = tol.atol + tol.rtol * np.abs(np.where(finite, e_c, 0))  # inf/nan handled exactly above
        if tol.srtol:
            s = np.abs(e_c) if scale is None else np.broadcast_to(np.abs(to_numpy(scale)).astype(np.float64), a_c.shape)
            allowed = allowed + tol.srtol * np.where(finite, s, 0)
        ratio = np.where(finite, _ratio(diff, allowed), 0.0)
        ratio = np.where(bad, np.inf, ratio)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    entry["max_abs_err"] = float(diff.max())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(np.abs(e_c) > 0, diff / np.abs(np.where(np.abs(e_c) > 0, e_c, 1)), 0.0)
    entry["max_rel_err"] = float(rel[finite].max()) if finite.any() else 0.0
    entry["ratio"] = float(ratio[worst])
    _record(entry)
    if entry["ratio"] > 1:
        n_bad = int((ratio > 1).sum())
        idx = tuple(int(i) for i in worst) if a_c.ndim else ()
        if ulp_mode:
            detail = f"{float(dist[worst]):.6g} ulp > {tol.ulp:g} ulp of {name}"
        else:
            detail = (f"|diff|={float(diff[worst]):.3g} > allowed {float(np.broadcast_to(allowed, a_c.shape)[worst]):.3g} "
                      f"(rtol={tol.rtol:g}, atol={tol.atol:g}" + (f", srtol={tol.srtol:g}*scale" if tol.srtol else "") + ")")
        raise AssertionError(
            f"got {_fmt(a_c[worst])}, expected {_fmt(e_c[worst])} at index {idx}: "
            f"{detail}; {n_bad}/{a_c.size} elements off {where}")
    return entry


def _tolerance(op: str, dtype, *, rtol=None, atol=None, ulp=None, k=None) -> Tolerance:
    """The allowance assert_close uses: the table's row, the K-aware one (``k``), a ULP budget
    (``ulp``), then explicit ``rtol``/``atol`` overrides. Plain Python floats throughout."""
    if k is not None and ulp is not None:
        raise TypeError("assert_close: k= (a K-aware allowance) and ulp= (a ULP budget) exclude each other")
    if ulp is not None and (rtol is not None or atol is not None):
        raise TypeError("assert_close: ulp= replaces rtol=/atol=; pass one or the other")
    tol = tolerances.for_terms(op, dtype, k) if k is not None else tolerances.lookup(op, dtype)
    name = tolerances.dtype_name(dtype)
    real = {"complex32": "float16", "complex64": "float32", "complex128": "float64"}.get(name, name)
    if ulp is not None and real in tolerances.FORMATS:  # integers and bools stay exact
        tol = Tolerance(float(ulp) * tolerances.eps(real), 0.0, ulp=float(ulp))
    if tol.ulp is not None and (name not in tolerances.FORMATS or rtol is not None or atol is not None):
        # complex (relative to |expected| instead), or an explicit rtol=/atol= on a ULP class: rtol/atol mode
        tol = Tolerance(tol.rtol, 0.0)
    return Tolerance(float(tol.rtol if rtol is None else rtol), float(tol.atol if atol is None else atol),
                     ulp=None if tol.ulp is None else float(tol.ulp), srtol=float(tol.srtol))


def _ratio(err, allowed):
    """err / allowed element by element; an error with no allowance is infinite, none at all is 0."""
    err = np.asarray(err, dtype=np.float64)
    allowed = np.broadcast_to(np.asarray(allowed, dtype=np.float64), err.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(allowed > 0, err / np.where(allowed > 0, allowed, 1), np.where(err > 0, np.inf, 0.0))


def _device_type(d) -> str:
    return getattr(d, "type", None) or str(d).split(":")[0]


@unobserved
def assert_equal(api: str, actual, expected, *, args: str = "") -> None:
    """Exact comparison: tensors and arrays element by element (NaN equals NaN) with equal shapes;
    anything else (dtypes, shapes, ints, tuples, bools) with ``==``."""
    __tracebackhide__ = True
    where = _where(api, args)
    if _is_tensor(actual) or isinstance(actual, np.ndarray) or _is_tensor(expected) or isinstance(expected, np.ndarray):
        a, e = to_numpy(actual), to_numpy(expected)
        if a.shape != e.shape:
            _record({"api": api, "op": "exact", "ratio": math.inf})
            raise AssertionError(f"got shape {tuple(a.shape)}, expected {tuple(e.shape)} {where}")
        if a.dtype.kind in "fc" or e.dtype.kind in "fc":
            neq = (a != e) & ~(_isnan(a) & _isnan(e))
        else:
            neq = a != e
        neq = np.asarray(neq)
        if neq.any():
            idx = tuple(int(i) for i in np.argwhere(neq)[0]) if neq.ndim else ()
            _record({"api": api, "op": "exact", "numel": int(a.size), "ratio": math.inf})
            raise AssertionError(f"got {_fmt(a[idx])}, expected {_fmt(e[idx])} at index {idx} "
                                 f"({int(neq.sum())}/{a.size} elements differ) {where}")
        _record({"api": api, "op": "exact", "numel": int(a.size), "ratio": 0.0})
        return
    if not (actual == expected):
        _record({"api": api, "op": "exact", "ratio": math.inf})
        raise AssertionError(f"got {actual!r}, expected {expected!r} {where}")
    _record({"api": api, "op": "exact", "ratio": 0.0})


def _isnan(x: np.ndarray) -> np.ndarray:
    return np.isnan(x) if x.dtype.kind in "fc" else np.zeros(x.shape, dtype=bool)


def assert_true(api: str, condition, message: str, *, args: str = "") -> None:
    """Assert a documented property that is not a value comparison (aliasing, flags, identity)."""
    __tracebackhide__ = True
    ok = bool(condition)
    _record({"api": api, "op": "exact", "ratio": 0.0 if ok else math.inf})
    if not ok:
        raise AssertionError(f"{message} {_where(api, args)}")


def assert_raises(api: str, exc, fn, *fn_args, match: str | None = None, args: str = "", **fn_kwargs):
    """Assert that ``fn(*fn_args, **fn_kwargs)`` raises ``exc`` (a type or tuple), optionally with
    a message matching the regex ``match``. Returns the exception."""
    __tracebackhide__ = True
    where = _where(api, args)
    try:
        fn(*fn_args, **fn_kwargs)
    except exc as err:  # noqa: PERF203 - the documented error path
        if match is not None and not re.search(match, str(err)):
            _record({"api": api, "op": "exact", "what": "raises", "ratio": math.inf})
            raise AssertionError(f"got {type(err).__name__}({str(err)[:200]!r}), expected a message matching {match!r} {where}") from err
        _record({"api": api, "op": "exact", "what": "raises", "ratio": 0.0})
        return err
    except Exception as err:  # a different error is a wrong contract, reported as such
        _record({"api": api, "op": "exact", "what": "raises", "ratio": math.inf})
        names = exc.__name__ if isinstance(exc, type) else " or ".join(e.__name__ for e in exc)
        raise AssertionError(f"got {type(err).__name__}({str(err)[:200]!r}), expected {names} {where}") from err
    _record({"api": api, "op": "exact", "what": "raises", "ratio": math.inf})
    names = exc.__name__ if isinstance(exc, type) else " or ".join(e.__name__ for e in exc)
    raise AssertionError(f"got no error, expected {names} {where}")
