"""§ 1 Tensors: the kernels users actually run. A layout × size × variant sweep over the section's op
families (unary math, binary arithmetic, reductions, the softmax family, cumulative scans, gather/scatter/
index_add/index_put, sort/unique, where, clamp) against NumPy float64 on the same dtype-rounded inputs.

Torch picks a kernel by memory layout, size and dtype, so every family runs
- on the layouts ``contig``; ``strided`` (``x[:, ::2]``: stride-2 inner dim at a storage offset, NaN or the
  dtype's max in the gaps); ``sliced`` (a window of a larger 2-D storage: gapped rows, unaligned start);
  ``expanded`` (stride-0 operands); ``channels_last`` (4-D; the reduced, scanned or sorted dim is the one
  innermost in memory); and, in ``test_zero_size``, tensors with a zero-size dim in each position;
- at the sizes 1, 7, 8, 17, 31 (vector tails: the innermost run or reduced length), 32,767 / 32,769 /
  65,537 (either side of ATen's parallel grain of 32,768 elements) and 2^20+3 (many chunks, long float32
  accumulations), always with random data;
- in the variants out-of-place, in-place (``x.op_()``) and ``out=``, with a contiguous and a strided ``out``
  (the result must land in out's strides and leave its gaps alone), where the op documents them;
- in float32 and bfloat16, int64 and int32 for the ops that take integers, float64 for sum, var, cumsum.

The default tier (``test_<family>_layouts``) runs one case per (family × layout × size class tail/grain/
large), rotating through the ops, dtypes and sizes of the class. ``--tier full`` adds the rest of the grid
(``test_<family>_layouts_full``, marked slow: one test per op, dtype and layout, looping over the sizes;
see :func:`grid` for how the grain and large sizes are thinned). Each test names the broken torch it would
catch in its docstring.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch

from harness import tolerances
from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref  # float64/int copy of a tensor's values
from harness.dtypes import dtype_id
from suites.tensors._tensors import accumulate_tol, gap_fill, gapped_view, is_dense, reduction_tol
from suites.tensors.test_elementwise import UNARY  # name -> (function, float64 oracle, input range)

TAIL = (1, 7, 8, 17, 31)
GRAIN = (32767, 32769, 65537)
LARGE = (2 ** 20 + 3,)
CLASSES = {"tail": TAIL, "grain": GRAIN, "large": LARGE}
LAYOUTS = ("contig", "strided", "sliced", "expanded", "channels_last")

F32, BF16, F64, I64, I32 = torch.float32, torch.bfloat16, torch.float64, torch.int64, torch.int32
FLOATS = (F32, BF16)
NUMERIC = (F32, BF16, I64, I32)

# Logical shapes. Tail sizes n: 3 rows of n (2-D) or n channels (4-D, channels innermost in memory), so
# the innermost run or the reduced length is n. Grain and large sizes: numel is exactly n (65,537 is prime:
# the layouts that need >= 2 rows, and the 4-D one, use 65,538).
_ROWS_COLS = {32767: (151, 217), 32769: (99, 331), 65537: (1, 65537), 2 ** 20 + 3: (1141, 919)}
_NCHW = {32767: (1, 7, 31, 151), 32769: (1, 9, 11, 331), 65537: (2, 3, 3, 3641), 2 ** 20 + 3: (1, 7, 163, 919)}


def logical_shape(layout: str, n: int) -> tuple:
    if layout == "channels_last":
        return (2, n, 3, 2) if n in TAIL else _NCHW[n]
    if n in TAIL:
        return (3, n)
    r, c = _ROWS_COLS[n]
    if r == 1 and layout in ("sliced", "expanded"):
        return (2, (n + 1) // 2)
    return (r, c)


def place(t: torch.Tensor, layout: str, expand: str = "rows") -> torch.Tensor:
    """``t`` (contiguous, its logical shape) in ``layout``. ``expanded`` repeats t's first row (stride 0 in
    the outer dim, ``expand='rows'``) or first column (stride 0 innermost, ``expand='cols'``)."""
    if layout == "contig":
        return t
    if layout == "strided":
        v = gapped_view(t)
    elif layout == "sliced":
        r, c = t.shape
        buf = torch.full((r + 2, c + 5), gap_fill(t.dtype), dtype=t.dtype, device=t.device)
        v = buf[1:1 + r, 3:3 + c]
        v.copy_(t)
    elif layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    elif layout == "expanded":
        return t[:1].expand(t.shape) if expand == "rows" else t[:, :1].expand(t.shape)
    else:
        raise ValueError(layout)
    if t.numel() > t.shape[0]:  # more than one element per row: the layout must really have gaps
        assert not v.is_contiguous() and not is_dense(v), f"{layout} layout came out dense: {v.stride()}"
    return v


def draw(np_rng, shape, dtype, device, low, high, values=None) -> torch.Tensor:
    """Random values (uniform floats in [low, high), integers in [low, high], fair bools) as a contiguous
    tensor; ``values`` (a float64 array) instead of a uniform draw when given."""
    if values is not None:
        a = values
    elif dtype == torch.bool:
        return torch.from_numpy(np_rng.integers(0, 2, size=shape).astype(bool)).to(device)
    elif dtype.is_floating_point:
        a = np_rng.uniform(low, high, size=shape)
    else:
        a = np_rng.integers(int(low), int(high) + 1, size=shape)
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype).to(device)


# ---- checks shared by the families ----------------------------------------------------------------------
def tied(layout, shape, dim) -> int:
    """How many times in a row a reduction over ``dim`` adds one value: the stride-0 extent of an expanded
    operand (rows repeated along dim 0) when dim covers it, else 0."""
    covers = dim is None or dim == 0 or (isinstance(dim, tuple) and 0 in dim)
    return shape[0] if layout == "expanded" and covers else 0


EW = {"op": "elementwise"}  # one rounding per element: the table's elementwise class at the result dtype
MATH = {"op": "transcendental"}  # math functions: the table's ULP budget at the result dtype


def check(api, got, expected, tol, args):
    """Exact comparison when ``tol`` is None (integers, selections, indices), else assert_close."""
    __tracebackhide__ = True
    if tol is None:
        assert_equal(api, got, expected, args=args)
    else:
        assert_close(api, got, expected, args=args, **tol)


def full_storage(t: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor over every element of ``t``'s storage."""
    st = t.untyped_storage()
    return torch.empty(0, dtype=t.dtype, device=t.device).set_(st, 0, (st.nbytes() // t.element_size(),), (1,))


def gaps_intact(api, t: torch.Tensor, args):
    """Every element of ``t``'s storage outside ``t`` still holds the gap value (a write that ignored t's
    strides or offset lands there)."""
    __tracebackhide__ = True
    full = full_storage(t)
    if full.numel() == t.numel() or t.numel() == 0:
        return
    fill = gap_fill(t.dtype)
    probe = full.clone()
    probe.as_strided(t.shape, t.stride(), t.storage_offset()).fill_(fill)  # the view's own elements
    ok = torch.isnan(probe) if (t.dtype.is_floating_point or t.dtype.is_complex) else (probe == fill)
    intact = bool(ok.all())
    bad = 0 if intact else int((~ok).sum())
    assert_true(api, intact, f"{bad} of {full.numel() - t.numel()} storage elements outside the view were overwritten", args=args)


def out_buffer(shape, dtype, device, strided: bool) -> torch.Tensor:
    """A preallocated ``out`` of ``shape`` holding the gap value; strided: every other element (see
    :func:`gapped_view`) where some dim has size > 1."""
    o = torch.full(shape, gap_fill(dtype), dtype=dtype, device=device)
    return gapped_view(o) if strided and any(s > 1 for s in shape) else o


def check_out(api, call, expected, dtype, device, tol, args, out_dtype=None):
    """``call(out)`` writes the result into a contiguous and then a strided ``out`` and returns out itself:
    the values, out's strides and out's gaps are checked. ``expected`` is one array or a tuple of arrays
    (``out=`` tuples such as sort's values and indices; ``dtype``/``out_dtype``/``tol`` then per item).
    Results of 2^20 elements or more go to the strided out only (the contiguous out is checked at every
    smaller size; at that size each check costs ~0.1 s)."""
    __tracebackhide__ = True
    many = isinstance(expected, tuple)
    exps = expected if many else (expected,)
    dts = out_dtype if many else (out_dtype or dtype,)
    tols = tol if many else (tol,)
    for strided in ((True,) if np.size(exps[0]) >= 2 ** 20 else (False, True)):
        where = f"{args}, out={'strided' if strided else 'contiguous'}"
        outs = tuple(out_buffer(e.shape, d, device, strided) for e, d in zip(exps, dts))
        strides = [o.stride() for o in outs]
        r = call(outs if many else outs[0])
        rs = tuple(r) if many else (r,)
        for o, ro, st, e, tl in zip(outs, rs, strides, exps, tols):
            assert_true(api, ro.data_ptr() == o.data_ptr() and ro.stride() == st and o.stride() == st,
                        "out= did not return out with out's strides", args=where)
            check(api, o, e, tl, where)
            gaps_intact(api, o, where)


def check_inplace(api, target, call, expected, tol, args):
    """``call(target)`` runs the in-place op: it returns the target itself with its strides, the target
    holds ``expected`` and the gaps of its storage are untouched."""
    __tracebackhide__ = True
    stride = target.stride()
    r = call(target)
    where = f"{args}, in-place"
    assert_true(api, r is target and target.stride() == stride, "in-place op did not return self with its strides", args=where)
    check(api, target, expected, tol, where)
    gaps_intact(api, target, where)


@dataclass(frozen=True)
class Case:
    op: str
    dtype: torch.dtype
    layout: str
    n: int

    def args(self, shape) -> str:
        return f"{self.layout}, shape={tuple(shape)}, {dtype_id(self.dtype)}"

    @property
    def id(self) -> str:
        return f"{self.op}-{dtype_id(self.dtype)}-{self.layout}-n{self.n}"


def grid(ops, dtypes_of, large_layouts=len(LAYOUTS)):
    """The family's cases: every op × layout × dtype × tail and grain size; at the large size, where the
    time goes, each op runs on ``large_layouts`` of the layouts (rotating, so each layout sees its share
    of the ops) in one of its dtypes per layout (rotating over the layouts)."""
    cases = []
    for li, layout in enumerate(LAYOUTS):
        for oi, op in enumerate(ops):
            dts = dtypes_of(op)
            large = (li - oi) % len(LAYOUTS) < large_layouts
            for di, dt in enumerate(dts):
                cases += [Case(op, dt, layout, n) for n in TAIL + GRAIN]
                cases += [Case(op, dt, layout, n) for n in LARGE if large and di == (oi + li) % len(dts)]
    return cases


def representatives(ops, dtypes_of, offset=0, large_layouts=len(LAYOUTS)):
    """One case per (layout, size class): the default tier's share of the grid, rotating through the ops
    (the next op that has a case there), their dtypes and the class's sizes (``offset`` staggers the
    rotation between families)."""
    cases = grid(ops, dtypes_of, large_layouts)
    reps = []
    for li, layout in enumerate(LAYOUTS):
        for ci, sizes in enumerate(CLASSES.values()):
            k = li * len(CLASSES) + ci + offset
            for j in range(len(ops)):
                mine = [c for c in cases if c.op == ops[(k + j) % len(ops)] and c.layout == layout and c.n in sizes]
                if mine:
                    reps.append(mine[(k // len(ops) + k) % len(mine)])
                    break
    return reps


class Family(NamedTuple):
    """An op family of the sweep: its ops, each op's dtypes, the rotation offset of its default cases, on
    how many layouts each op runs at the large size, and ``run(case, shape, device, np_rng, layout)``."""
    ops: list
    dtypes_of: Callable
    offset: int
    large_layouts: int
    run: Callable


def default_params(fam: Family):
    """The default tier's cases; the strided tail-size one is also the family's smoke test."""
    return [pytest.param(c, id=c.id, marks=(pytest.mark.smoke,) if (c.layout, c.n in TAIL) == ("strided", True) else ())
            for c in representatives(fam.ops, fam.dtypes_of, fam.offset, fam.large_layouts)]


def full_params(fam: Family):
    """One slow test per (op, dtype, layout): the grid's sizes for it, less the default tier's cases."""
    reps = set(representatives(fam.ops, fam.dtypes_of, fam.offset, fam.large_layouts))
    groups: dict = {}
    for c in grid(fam.ops, fam.dtypes_of, fam.large_layouts):
        if c not in reps:
            groups.setdefault((c.op, c.dtype, c.layout), []).append(c)
    return [pytest.param(cases, id=f"{op}-{dtype_id(dt)}-{layout}") for (op, dt, layout), cases in groups.items()]


def run_cases(runner, cases, device, np_rng):
    for case in cases:
        runner(case, logical_shape(case.layout, case.n), device, np_rng, case.layout)


def _dims(shape, ints_only=False):
    """The dims a reduction/scan/sort case runs over: the innermost-in-memory one first (the last dim of a
    2-D tensor, the channel dim of a channels_last one), then the outer one."""
    if len(shape) == 4:
        return [1, 3] if ints_only else [1, (2, 3)]
    return [1, 0]


# ---- unary -------------------------------------------------------------------------------------------
UNARY_OPS = list(UNARY)


def _run_unary(case, shape, device, np_rng, layout):
    _, oracle, (lo, hi) = UNARY[case.op]
    base = draw(np_rng, shape, case.dtype, device, lo, hi)
    x = place(base, layout)
    with np.errstate(all="ignore"):
        exp = oracle(_ref(x))
    api, args = f"torch.{case.op}", case.args(shape)
    fn = getattr(torch, case.op)
    got = fn(x)
    assert_close(api, got, exp, args=args, check_dtype=case.dtype, **MATH)
    if layout == "channels_last":
        assert_true(api, got.is_contiguous(memory_format=torch.channels_last), "channels_last input gave a result in another memory format", args=args)
    method = f"Tensor.{case.op}_"
    if layout == "expanded":
        assert_raises(method, RuntimeError, getattr(x, case.op + "_"), args=args + ", in-place on an expanded tensor")
    else:
        check_inplace(method, place(base.clone(), layout), lambda t: getattr(t, case.op + "_")(), exp, MATH, args)
    check_out(api, lambda o: fn(x, out=o), exp, case.dtype, device, MATH, args)


# ---- binary ------------------------------------------------------------------------------------------
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "maximum": np.maximum,
          "minimum": np.minimum}
_SELECT = ("maximum", "minimum")  # pick one operand: exact


def _binary_dtypes(op):
    return FLOATS if op == "div" else NUMERIC


def _run_binary(case, shape, device, np_rng, layout):
    lo, hi = (-5, 5) if case.dtype.is_floating_point else (-50, 50)
    a0 = draw(np_rng, shape, case.dtype, device, lo, hi)
    if case.op == "div":
        mag = np_rng.uniform(0.5, 4, size=shape) * np_rng.choice([-1.0, 1.0], size=shape)
        b0 = draw(np_rng, shape, case.dtype, device, 0, 0, values=mag)
    else:
        b0 = draw(np_rng, shape, case.dtype, device, lo, hi)
    a = place(a0, layout, "rows")
    b = place(b0, layout, "cols")
    A, B = _ref(a), _ref(b)
    exp = BINARY[case.op](A, B)
    tol = None if (not case.dtype.is_floating_point or case.op in _SELECT) else EW
    api, args = f"torch.{case.op}", case.args(shape)
    fn = getattr(torch, case.op)
    got = fn(a, b)
    assert_equal(api, got.dtype, case.dtype, args=args + ", result dtype")
    check(api, got, exp, tol, args)
    if layout == "channels_last":
        assert_true(api, got.is_contiguous(memory_format=torch.channels_last), "channels_last operands gave a result in another memory format", args=args)
    method = f"Tensor.{case.op}_"
    if hasattr(torch.Tensor, case.op + "_"):  # maximum/minimum have no in-place form
        if layout == "expanded":
            assert_raises(method, RuntimeError, getattr(a, case.op + "_"), b, args=args + ", in-place on an expanded tensor")
            target = a.contiguous()  # a materialised target, the stride-0 operand on the right: x.add_(bias)
        else:
            target = place(a0.clone(), layout)
        check_inplace(method, target, lambda t: getattr(t, case.op + "_")(b), exp, tol, args)
    check_out(api, lambda o: fn(a, b, out=o), exp, case.dtype, device, tol, args)


# ---- where / clamp -----------------------------------------------------------------------------------
def _run_where(case, shape, device, np_rng, layout):
    lo, hi = (-5, 5) if case.dtype.is_floating_point else (-50, 50)
    c = place(draw(np_rng, shape, torch.bool, device, 0, 1), layout, "cols")
    x = place(draw(np_rng, shape, case.dtype, device, lo, hi), layout, "rows")
    y = draw(np_rng, shape, case.dtype, device, lo, hi)
    y = y if layout == "expanded" else place(y, layout)
    exp = np.where(_ref(c), _ref(x), _ref(y))
    args = case.args(shape)
    got = torch.where(c, x, y)
    assert_equal("torch.where", got.dtype, case.dtype, args=args + ", result dtype")
    assert_equal("torch.where", got, exp, args=args)
    check_out("torch.where", lambda o: torch.where(c, x, y, out=o), exp, case.dtype, device, None, args)


def _run_clamp(case, shape, device, np_rng, layout):
    fl = case.dtype.is_floating_point
    lo, hi = (-5, 5) if fl else (-50, 50)
    x0 = draw(np_rng, shape, case.dtype, device, lo, hi)
    x = place(x0, layout, "rows")
    X = _ref(x)
    if case.op == "clamp":
        bounds = (-2, 3) if fl else (-20, 30)
        kw = {"min": bounds[0], "max": bounds[1]}
        exp = np.clip(X, *bounds)
    else:
        lo_t = draw(np_rng, shape, case.dtype, device, lo / 2, 0)
        hi_t = lo_t + draw(np_rng, shape, case.dtype, device, 0, hi / 2)
        lo_t, hi_t = place(lo_t, layout, "cols"), place(hi_t, layout, "cols")
        kw = {"min": lo_t, "max": hi_t}
        exp = np.minimum(np.maximum(X, _ref(lo_t)), _ref(hi_t))
    args = case.args(shape) + (", tensor bounds" if case.op == "clamp_tensor" else ", scalar bounds")
    got = torch.clamp(x, **kw)
    assert_equal("torch.clamp", got.dtype, case.dtype, args=args + ", result dtype")
    assert_equal("torch.clamp", got, exp, args=args)
    if layout == "expanded":
        assert_raises("Tensor.clamp_", RuntimeError, x.clamp_, args=args + ", in-place on an expanded tensor", **kw)
        target = x.contiguous()
    else:
        target = place(x0.clone(), layout)
    check_inplace("Tensor.clamp_", target, lambda t: t.clamp_(**kw), exp, None, args)
    check_out("torch.clamp", lambda o: torch.clamp(x, out=o, **kw), exp, case.dtype, device, None, args)


# ---- reductions --------------------------------------------------------------------------------------
REDUCTIONS = ("sum", "mean", "prod", "amax", "amin", "argmax", "var", "norm")
_INT_REDUCTIONS = ("sum", "amax", "amin", "argmax")


def _reduction_dtypes(op):
    if op in ("sum", "var"):
        return (F32, BF16, F64, I64, I32) if op == "sum" else (F32, BF16, F64)
    return NUMERIC if op in _INT_REDUCTIONS else FLOATS


def _reduction_input(np_rng, op, shape, dtype):
    """float64 values for ``op``: sums get a positive mean (a dropped element or chunk moves the result);
    var an amplitude growing along the flattened order (chunks differ); prod factors exp(+-a) with a small
    enough that the whole product stays finite; max/argmax the unique maximum in the last 17 elements (the
    final vector tail and parallel chunk) and the minimum anywhere."""
    n = int(np.prod(shape))
    if op == "prod":
        return product_factors(np_rng, shape, dtype, n)
    if not dtype.is_floating_point:
        v = np_rng.integers(-50, 51, size=shape).astype(np.float64)
    elif op in ("amax", "amin", "argmax"):
        v = np_rng.uniform(-1, 1, size=shape)
    else:
        v = np_rng.uniform(-1, 3, size=shape)
    if op == "var":
        v = v * np.linspace(0.5, 1.5, n).reshape(shape)
    if op in ("amax", "amin", "argmax") and n:
        flat = v.reshape(-1)
        top = flat.max() + 1
        flat[np_rng.integers(0, n)] = flat.min() - 1
        flat[n - 1 - int(np_rng.integers(0, min(n, 17)))] = top
    return v


def product_factors(np_rng, shape, dtype, k):
    """Random factors whose k-fold products stay finite: exp(+-a) with a shrinking as 1/sqrt(k). In half
    precision those would all round to 1 (constant data) for large k, so there the factors are the two
    neighbours of 1, 1 - 2^-8 and 1 + 2^-7, with probabilities that balance their logs."""
    if dtype in (BF16, torch.float16):
        lo, hi = (1 - 2.0 ** -8, 1 + 2.0 ** -7) if dtype == BF16 else (1 - 2.0 ** -11, 1 + 2.0 ** -10)
        p_hi = -math.log(lo) / (math.log(hi) - math.log(lo))
        return np.where(np_rng.random(size=shape) < p_hi, hi, lo)
    a = min(0.5, 2.5 / math.sqrt(max(k, 1)))
    return np.exp(np_rng.uniform(-a, a, size=shape))


def _reduce(op, x, dim, out=None):
    kw = {} if out is None else {"out": out}
    if op == "norm":
        return torch.linalg.vector_norm(x, dim=dim, **kw)
    if op == "var":
        with warnings.catch_warnings():  # the documented warning for <= 0 degrees of freedom (empty input)
            warnings.simplefilter("ignore", UserWarning)
            return torch.var(x, **kw) if dim is None else torch.var(x, dim, **kw)
    fn = getattr(torch, op)
    return fn(x, **kw) if dim is None else fn(x, dim, **kw)


def _reduce_ref(op, X, dim):
    ax = dim
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if op == "sum":
            return X.sum(axis=ax)
        if op == "mean":
            return X.mean(axis=ax)
        if op == "prod":
            return X.prod(axis=ax)
        if op == "amax":
            return X.max(axis=ax)
        if op == "amin":
            return X.min(axis=ax)
        if op == "argmax":
            return np.argmax(X, axis=ax)
        if op == "var":
            return X.var(axis=ax, ddof=1)
        if op == "norm":
            return np.sqrt((X * X).sum(axis=ax))
    raise ValueError(op)


def _reduction_tol(op, dtype, X, dim, layout):
    if op in ("amax", "amin", "argmax") or not dtype.is_floating_point:
        return None
    axes = tuple(range(X.ndim)) if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    k = int(np.prod([X.shape[a] for a in axes]))
    t = tied(layout, X.shape, dim)
    if op in ("sum", "mean"):
        return reduction_tol(k, np.abs(X).sum(axis=axes) / (max(k, 1) if op == "mean" else 1), t)
    if op == "var":
        # the deviations x - mean carry the rounding of x and of the mean (u * |x|), so the error scales
        # with 2 * sum(x^2) / (k-1), not with the variance (which cancels: a float64 oracle of equal values
        # gives 1e-32, torch 0)
        return reduction_tol(k, 2 * (X * X).sum(axis=axes) / max(k - 1, 1), t)
    # a product's and a norm's error is relative to the result (a product's relative error walks with
    # sqrt(k) like a sum's: measured 0.2 of the allowance at 2^20 factors)
    result = np.abs(_reduce_ref(op, X, dim)) if X.size else 0.0
    return reduction_tol(k, None, t, float(np.max(result)) if np.size(result) else 0.0)


def _run_reduction(case, shape, device, np_rng, layout):
    vals = _reduction_input(np_rng, case.op, shape, case.dtype)
    x = place(draw(np_rng, shape, case.dtype, device, 0, 0, values=vals), layout, "rows")
    X = _ref(x)
    api = "torch.linalg.vector_norm" if case.op == "norm" else f"torch.{case.op}"
    dims = [None] + _dims(shape, ints_only=case.op in ("prod", "argmax"))
    for dim in dims:
        args = case.args(shape) + f", dim={dim}"
        try:
            exp = _reduce_ref(case.op, X, dim)
        except ValueError:  # NumPy refuses (max/argmax over an empty dim): torch must raise as well
            assert_raises(api, (RuntimeError, IndexError), _reduce, case.op, x, dim, args=args + ", empty reduced dim")
            continue
        tol = _reduction_tol(case.op, case.dtype, X, dim, layout)
        got = _reduce(case.op, x, dim)
        check(api, got, exp, tol, args)
        if dim is not None and dim == dims[1]:
            out_dt = I64 if case.op == "argmax" else (got.dtype)
            exp_arr = np.asarray(exp)
            check_out(api, lambda o: _reduce(case.op, x, dim, out=o), exp_arr, case.dtype, device, tol, args, out_dtype=out_dt)


# ---- softmax family ----------------------------------------------------------------------------------
SOFTMAX = ("softmax", "log_softmax")


def _softmax_ref(op, X, dim):
    m = X.max(axis=dim, keepdims=True)
    e = np.exp(X - m)
    s = e.sum(axis=dim, keepdims=True)
    return e / s if op == "softmax" else (X - m) - np.log(s)


def _softmax_tol(op, dtype, k, xmax, t=0):
    # Explicit, from the K-aware model: the normaliser is a k-term sum of positive terms (relative error
    # srtol of tolerances.for_reduction, plus t*u when a stride-0 dim repeats one term t times), and the
    # exponentials and the division add a few roundings (8u). A softmax output carries that relative
    # error; a log_softmax output carries it as an absolute error, plus the rounding of log-sum-exp
    # (magnitude up to max|x| + log k) to the result dtype: torch 2.13 rounds it to bfloat16 before
    # subtracting (measured: a true -0.0032 comes out 0.0 in bfloat16).
    red = tolerances.for_reduction(dtype, k)
    u = tolerances.unit_roundoff(torch.float64 if dtype == F64 else torch.float32)
    base = red.srtol + (8 + t) * u
    if op == "softmax":
        return {"op": "reduction", "rtol": red.rtol + base, "atol": 0.0}
    return {"op": "reduction", "rtol": red.rtol, "atol": base + tolerances.eps(dtype) * (xmax + math.log(max(k, 1)) + 1)}


def _run_softmax(case, shape, device, np_rng, layout):
    x = place(draw(np_rng, shape, case.dtype, device, -4, 4), layout, "rows")
    X = _ref(x)
    fn = getattr(torch, case.op)
    xmax = float(np.abs(X).max()) if X.size else 0.0
    for dim in _dims(shape, ints_only=True):
        k, t = shape[dim], tied(layout, shape, dim)
        args = case.args(shape) + f", dim={dim}"
        exp = _softmax_ref(case.op, X, dim) if X.size else X.copy()
        check(f"torch.{case.op}", fn(x, dim), exp, _softmax_tol(case.op, case.dtype, k, xmax, t), args)
        if case.dtype != F32:  # dtype=float32 computes in float32 after the cast: float32's allowance
            got = fn(x, dim, dtype=F32)
            assert_equal(f"torch.{case.op}", got.dtype, F32, args=args + ", dtype=float32")
            check(f"torch.{case.op}", got, exp, _softmax_tol(case.op, F32, k, xmax, t), args + ", dtype=float32")


# ---- cumulative --------------------------------------------------------------------------------------
CUMULATIVE = ("cumsum", "cumprod", "cummax")


def _cumulative_dtypes(op):
    return {"cumsum": (F32, BF16, F64, I64, I32), "cumprod": FLOATS, "cummax": NUMERIC}[op]


def _run_cumulative(case, shape, device, np_rng, layout):
    dims = _dims(shape, ints_only=True)
    kmax = max([shape[d] for d in dims] + [1])
    if case.op == "cumprod":
        vals = product_factors(np_rng, shape, case.dtype, kmax)
    elif case.dtype.is_floating_point:
        vals = np_rng.uniform(-1, 3, size=shape) if case.op == "cumsum" else np_rng.uniform(-1, 1, size=shape)
    else:
        vals = np_rng.integers(-50, 51, size=shape).astype(np.float64)
    base = draw(np_rng, shape, case.dtype, device, 0, 0, values=vals)
    x = place(base, layout, "rows")
    X = _ref(x)
    api = f"torch.{case.op}"
    fl = case.dtype.is_floating_point
    for dim in dims:
        k, t = shape[dim], tied(layout, shape, dim)
        args = case.args(shape) + f", dim={dim}"
        if case.op == "cummax":
            exp = np.maximum.accumulate(X, axis=dim)
            r = torch.cummax(x, dim)
            assert_equal(api, r.values, exp, args=args)
            assert_equal(api, np.take_along_axis(X, _ref(r.indices), dim), exp, args=args + ", indices point at the values")
            if dim == dims[0]:
                _cummax_out(api, x, dim, X, exp, case.dtype, device, args)
            continue
        if case.op == "cumsum":
            exp = np.cumsum(X, axis=dim)
            # each output is a prefix sum: its own scale is the prefix sum of |x|
            tol = reduction_tol(k, np.cumsum(np.abs(X), axis=dim), t) if fl else None
        else:
            exp = np.cumprod(X, axis=dim)
            tol = reduction_tol(k, None, t, float(np.abs(exp).max()) if exp.size else 0.0)
        fn = getattr(torch, case.op)
        check(api, fn(x, dim), exp, tol, args)
        if dim != dims[0]:
            continue
        method = f"Tensor.{case.op}_"
        if layout == "expanded":
            assert_raises(method, RuntimeError, getattr(x, case.op + "_"), dim, args=args + ", in-place on an expanded tensor")
        else:
            check_inplace(method, place(base.clone(), layout), lambda t: getattr(t, case.op + "_")(dim), exp, tol, args)
        check_out(api, lambda o: fn(x, dim, out=o), exp, case.dtype, device, tol, args)


def _cummax_out(api, x, dim, X, exp, dtype, device, args):
    """cummax(out=(values, indices)) into contiguous and strided outs: values exact, indices point at them."""
    for strided in (False, True):
        where = f"{args}, out={'strided' if strided else 'contiguous'}"
        v, i = out_buffer(exp.shape, dtype, device, strided), out_buffer(exp.shape, I64, device, strided)
        r = torch.cummax(x, dim, out=(v, i))
        assert_true(api, r[0].data_ptr() == v.data_ptr() and r[1].data_ptr() == i.data_ptr(), "out= did not return out", args=where)
        assert_equal(api, v, exp, args=where)
        assert_equal(api, np.take_along_axis(X, _ref(i), dim), exp, args=where + ", indices point at the values")
        gaps_intact(api, v, where)
        gaps_intact(api, i, where)


# ---- gather / scatter / index_add / index_put --------------------------------------------------------
INDEXING = ("gather", "scatter", "scatter_add", "index_add", "index_put")


def _along(I, d):
    """NumPy fancy index: position I[..] along dim d, every other dim its own index (scatter semantics)."""
    g = list(np.indices(I.shape, sparse=True))
    g[d] = I
    return tuple(g)


def _index(np_rng, high, shape, device):
    if high == 0:
        return torch.zeros(shape, dtype=torch.int64, device=device)
    return torch.from_numpy(np_rng.integers(0, high, size=shape)).to(device)


def _run_indexing(case, shape, device, np_rng, layout):
    d = 1
    fl = case.dtype.is_floating_point
    lo, hi = (-5, 5) if fl else (-50, 50)
    api = f"torch.{case.op}"
    args = case.args(shape) + f", dim={d}"
    base = draw(np_rng, shape, case.dtype, device, lo, hi)
    expanded = layout == "expanded"
    # the tensor written to (self): in the layout, contiguous when the layout is expanded (then the operand
    # that is only read is the expanded one)
    target = base if expanded else place(base, layout)
    X = _ref(target)
    if case.op == "gather":
        x = place(base, layout, "rows")
        X = _ref(x)
        idx = _index(np_rng, shape[d], shape, device)
        idx = idx if expanded else place(idx, layout)
        exp = np.take_along_axis(X, _ref(idx), d)
        check(api, torch.gather(x, d, idx), exp, None, args)
        check_out(api, lambda o: torch.gather(x, d, idx, out=o), exp, case.dtype, device, None, args)
        return
    if case.op in ("scatter", "scatter_add"):
        if case.op == "scatter":  # distinct positions within each slice: the result is defined
            m = shape[d] // 2 + (1 if shape[d] else 0)
            perm = np.argsort(np_rng.random(shape), axis=d)
            I = np.take(perm, np.arange(m), axis=d)
        else:  # duplicates: scatter_add must add every one
            I = np_rng.integers(0, max(shape[d], 1), size=shape) if shape[d] else np.zeros(shape, np.int64)
        idx = torch.from_numpy(np.ascontiguousarray(I)).to(device)
        src = place(draw(np_rng, I.shape, case.dtype, device, lo, hi), layout if I.shape == tuple(shape) or expanded else "contig", "rows")
        S = _ref(src)
        exp = X.copy()
        pos = _along(I, d)
        if case.op == "scatter":
            exp[pos] = S
            tol = None
        else:
            np.add.at(exp, pos, S)
            tol = accumulate_tol(case.dtype, X, pos, S)
        fn = getattr(torch, case.op)
        check(api, fn(target, d, idx, src), exp, tol, args)
        make = (lambda: base.clone()) if expanded else (lambda: place(base.clone(), layout))
        check_inplace(f"Tensor.{case.op}_", make(), lambda t: getattr(t, case.op + "_")(d, idx, src), exp, tol, args)
        check_out(api, lambda o: fn(target, d, idx, src, out=o), exp, case.dtype, device, tol, args)
        return
    if case.op == "index_add":
        alpha = 2 if fl else 3
        index = _index(np_rng, shape[d], (shape[d],), device)
        src = place(draw(np_rng, shape, case.dtype, device, lo, hi), layout, "rows")
        S, Ix = _ref(src), _ref(index)
        exp = X.copy()
        sel = (slice(None),) * d + (Ix,)
        np.add.at(exp, sel, alpha * S)
        tol = None
        if fl:
            full_grid = list(np.indices(S.shape, sparse=True))
            full_grid[d] = Ix.reshape((1,) * d + (-1,) + (1,) * (S.ndim - d - 1))
            tol = accumulate_tol(case.dtype, X, tuple(full_grid), alpha * S)
        check(api, torch.index_add(target, d, index, src, alpha=alpha), exp, tol, args + f", alpha={alpha}")
        make = (lambda: base.clone()) if expanded else (lambda: place(base.clone(), layout))
        check_inplace("Tensor.index_add_", make(), lambda t: t.index_add_(d, index, src, alpha=alpha), exp, tol, args)
        check_out(api, lambda o: torch.index_add(target, d, index, src, alpha=alpha, out=o), exp, case.dtype, device, tol, args)
        return
    # index_put(accumulate=True): one index tensor per dim (full coordinates) with duplicates; an expanded
    # case uses broadcast (stride-0) index tensors
    if expanded:
        r, c = shape
        ii = _index(np_rng, r, (r, 1), device).expand(r, c)
        jj = _index(np_rng, c, (1, c), device).expand(r, c)
        indices = (ii, jj)
        vshape = (r, c)
    else:
        m = int(np.prod(shape))
        indices = tuple(_index(np_rng, s, (m,), device) for s in shape)
        vshape = (m,)
    vals = draw(np_rng, vshape, case.dtype, device, lo, hi)
    pos = tuple(_ref(i) for i in indices)
    V = _ref(vals)
    exp = X.copy()
    np.add.at(exp, pos, V)
    tol = accumulate_tol(case.dtype, X, pos, V)
    api = "torch.index_put"
    check(api, torch.index_put(target, indices, vals, accumulate=True), exp, tol, args + ", accumulate=True")
    make = (lambda: base.clone()) if expanded else (lambda: place(base.clone(), layout))
    check_inplace("Tensor.index_put_", make(), lambda t: t.index_put_(indices, vals, accumulate=True), exp, tol, args + ", accumulate=True")


# ---- sort / unique -----------------------------------------------------------------------------------
SORTING = ("sort", "sort_descending", "argsort", "unique")


def _run_sorting(case, shape, device, np_rng, layout):
    if case.dtype.is_floating_point:  # quarters in [-5, 5]: many ties, exact in bfloat16
        vals = np.round(np_rng.uniform(-5, 5, size=shape) * 4) / 4
    else:
        vals = np_rng.integers(-20, 21, size=shape).astype(np.float64)
    x = place(draw(np_rng, shape, case.dtype, device, 0, 0, values=vals), layout, "rows")
    X = _ref(x)
    args0 = case.args(shape)
    if case.op == "unique":
        u, inv, cnt = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
        ev, ei, ec = np.unique(X, return_inverse=True, return_counts=True)
        assert_equal("torch.unique", u, ev, args=args0)
        assert_equal("torch.unique", inv, ei.reshape(X.shape), args=args0 + ", return_inverse")
        assert_equal("torch.unique", cnt, ec, args=args0 + ", return_counts")
        return
    desc = case.op == "sort_descending"
    dims = _dims(shape, ints_only=True)
    for dim in dims:
        args = args0 + f", dim={dim}" + (", descending" if desc else "")
        order = np.argsort(-X if desc else X, axis=dim, kind="stable")
        ev = np.take_along_axis(X, order, dim)
        if case.op == "argsort":
            assert_equal("torch.argsort", torch.argsort(x, dim=dim, stable=True), order, args=args + ", stable=True")
            continue
        r = torch.sort(x, dim=dim, descending=desc, stable=True)
        assert_equal("torch.sort", r.values, ev, args=args + ", stable=True")
        assert_equal("torch.sort", r.indices, order, args=args + ", stable=True (indices of ties in input order)")
        if dim == dims[0]:
            check_out("torch.sort", lambda o: torch.sort(x, dim=dim, descending=desc, stable=True, out=o), (ev, order),
                      None, device, (None, None), args, out_dtype=(case.dtype, I64))


# ---- the tests: one per family at the default tier (its representatives), one per family at --tier full
# (the rest of its grid, one test per op, dtype and layout looping over the sizes) ---------------------------
SWEEP = {
    "unary": Family(UNARY_OPS, lambda op: FLOATS, 0, len(LAYOUTS), _run_unary),
    "binary": Family(list(BINARY), _binary_dtypes, 1, len(LAYOUTS), _run_binary),
    "where": Family(["where"], lambda op: NUMERIC, 2, len(LAYOUTS), _run_where),
    "clamp": Family(["clamp", "clamp_tensor"], lambda op: NUMERIC, 3, len(LAYOUTS), _run_clamp),
    "reduction": Family(list(REDUCTIONS), _reduction_dtypes, 4, len(LAYOUTS), _run_reduction),
    "softmax": Family(list(SOFTMAX), lambda op: FLOATS, 5, len(LAYOUTS), _run_softmax),
    "cumulative": Family(list(CUMULATIVE), _cumulative_dtypes, 6, len(LAYOUTS), _run_cumulative),
    "indexing": Family(list(INDEXING), lambda op: NUMERIC, 7, len(LAYOUTS), _run_indexing),
    "sorting": Family(list(SORTING), lambda op: NUMERIC, 8, len(LAYOUTS), _run_sorting),
}


@pytest.mark.parametrize("case", default_params(SWEEP["unary"]))
def test_unary_layouts(device, case, np_rng):
    """Each unary math function of the section's table (exp, log, sin, sigmoid, ...) on every layout and
    size, out-of-place, in-place and with a contiguous and a strided out=, equals its float64 oracle; the
    result of a channels_last input stays channels_last. Catches a strided kernel that reads at the wrong
    stride or offset, a vector tail or parallel chunk computed wrongly, an out= that ignores out's strides,
    an in-place op that writes outside the view, and an in-place write to an expanded tensor that is not
    refused."""
    run_cases(SWEEP["unary"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["unary"]))
def test_unary_layouts_full(device, cases, np_rng):
    """The rest of test_unary_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["unary"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["binary"]))
def test_binary_layouts(device, case, np_rng):
    """add/sub/mul/div/maximum/minimum with both operands in the layout (expanded: one operand stride 0 in
    the outer dim, the other innermost, the scalar-broadcast path), out-of-place, in-place and out=, equal
    NumPy; integers exactly. Catches broadcasting kernels that read a stride-0 operand wrongly, strided
    binary loops, vector tails, parallel chunks and out=/in-place writes that ignore strides."""
    run_cases(SWEEP["binary"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["binary"]))
def test_binary_layouts_full(device, cases, np_rng):
    """The rest of test_binary_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["binary"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["where"]))
def test_where_layouts(device, case, np_rng):
    """where(cond, x, y) with all three operands in the layout (expanded: cond stride 0 innermost, x stride
    0 outer), out-of-place and out=, equals np.where exactly. Catches a strided or broadcast condition read
    at the wrong position, and out= writes that ignore strides."""
    run_cases(SWEEP["where"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["where"]))
def test_where_layouts_full(device, cases, np_rng):
    """The rest of test_where_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["where"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["clamp"]))
def test_clamp_layouts(device, case, np_rng):
    """clamp with scalar bounds and with tensor bounds in the layout (expanded: bounds stride 0 innermost),
    out-of-place, in-place and out=, equals np.clip exactly. Catches bounds read at the wrong stride, a
    tail or chunk left unclamped, and out=/in-place writes that ignore strides."""
    run_cases(SWEEP["clamp"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["clamp"]))
def test_clamp_layouts_full(device, cases, np_rng):
    """The rest of test_clamp_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["clamp"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["reduction"]))
def test_reduction_layouts(device, case, np_rng):
    """sum/mean/prod/amax/amin/argmax/var/vector_norm over all dims, the innermost-in-memory dim and an
    outer dim (dim 0 of an expanded tensor reduces over stride 0), out-of-place and with contiguous and
    strided out=, equal NumPy: integers and selections exactly, floats within an allowance derived from the
    reduced length. Catches a parallel reduction that drops or double-counts a chunk or a vector tail, a
    strided reduction that reads the wrong elements, argmax that loses the first of ties across chunks, and
    out= writes that ignore strides."""
    run_cases(SWEEP["reduction"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["reduction"]))
def test_reduction_layouts_full(device, cases, np_rng):
    """The rest of test_reduction_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["reduction"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["softmax"]))
def test_softmax_layouts(device, case, np_rng):
    """softmax/log_softmax along the innermost-in-memory and an outer dim, with dtype=float32 on bfloat16
    input, equal the float64 formula within an allowance derived from the normalised length (the ops
    document no in-place or out= form). Catches a normaliser summed over a dropped chunk or tail, the
    wrong stride for a non-last dim, a channels_last kernel that normalises across the wrong dim, and a
    dtype= that computes in bfloat16 and casts."""
    run_cases(SWEEP["softmax"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["softmax"]))
def test_softmax_layouts_full(device, cases, np_rng):
    """The rest of test_softmax_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["softmax"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["cumulative"]))
def test_cumulative_layouts(device, case, np_rng):
    """cumsum/cumprod/cummax along the innermost-in-memory and an outer dim, out-of-place, in-place
    (cumsum_/cumprod_) and out=, equal NumPy's scans (integers and cummax exactly, floats within an
    allowance derived from the scan length). Catches a scan that loses the carry between chunks or vector
    blocks, restarts at a tail, reads a strided dim wrongly, or writes out=/in-place results at the wrong
    strides."""
    run_cases(SWEEP["cumulative"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["cumulative"]))
def test_cumulative_layouts_full(device, cases, np_rng):
    """The rest of test_cumulative_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["cumulative"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["indexing"]))
def test_indexing_layouts(device, case, np_rng):
    """gather, scatter (distinct positions), scatter_add, index_add (alpha) and index_put(accumulate=True)
    with duplicate indices, self/src/index in the layout (expanded: the operand read is stride 0),
    out-of-place, in-place and out=, equal NumPy (take_along_axis, put_along_axis, add.at): integers exactly,
    floats within the accumulation allowance. Catches accumulations that lose duplicates (a race between
    chunks), strided index or source reads, and writes outside the target view or out's strides."""
    run_cases(SWEEP["indexing"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["indexing"]))
def test_indexing_layouts_full(device, cases, np_rng):
    """The rest of test_indexing_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["indexing"].run, cases, device, np_rng)



@pytest.mark.parametrize("case", default_params(SWEEP["sorting"]))
def test_sorting_layouts(device, case, np_rng):
    """Stable sort (ascending, descending; values and indices), argsort and unique (inverse, counts) along
    the innermost-in-memory and an outer dim, on data full of ties, out-of-place and sort with contiguous and
    strided out=(values, indices), equal NumPy exactly. Catches an unstable merge of parallel chunks, a
    strided sort dim read wrongly, a lost tail, and out= writes that ignore strides."""
    run_cases(SWEEP["sorting"].run, [case], device, np_rng)


@pytest.mark.slow
@pytest.mark.parametrize("cases", full_params(SWEEP["sorting"]))
def test_sorting_layouts_full(device, cases, np_rng):
    """The rest of test_sorting_layouts' grid for one op, dtype and layout (every tail and grain size; the
    large size where :func:`grid`'s rotation picks this dtype), with the same checks."""
    run_cases(SWEEP["sorting"].run, cases, device, np_rng)


# ---- zero-size ---------------------------------------------------------------------------------------
_ZERO_SHAPES = {"contig": [(0, 5), (5, 0)], "channels_last": [(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 0, 5), (2, 3, 4, 0)]}
_ZERO_FAMILIES = ("reduction", "softmax", "cumulative", "indexing", "sorting")


@pytest.mark.parametrize("family", ("elementwise",) + _ZERO_FAMILIES)
def test_zero_size(device, family, np_rng):
    """Every op of a family on tensors with a zero-size dim in each position (2-D contiguous and 4-D
    channels_last), in each variant, gives NumPy's (empty or identity) result, and raises where NumPy does
    (max/argmax over an empty dim). Catches kernels that read or write out of bounds on empty input,
    wrong result shapes, and a reduction of an empty dim that returns garbage instead of the identity."""
    for layout, shapes in _ZERO_SHAPES.items():
        for shape in shapes:
            if family == "elementwise":
                _zero_elementwise(device, layout, shape, np_rng)
                continue
            fam = SWEEP[family]
            for op in fam.ops:
                fam.run(Case(op, F32, layout, 0), shape, device, np_rng, layout)


def _zero_elementwise(device, layout, shape, np_rng):
    x = place(draw(np_rng, shape, F32, device, -1, 1), layout)
    args = f"{layout}, shape={shape}, float32"
    for op in ("exp", "sigmoid"):
        fn = getattr(torch, op)
        exp = UNARY[op][1](_ref(x))
        check(f"torch.{op}", fn(x), exp, MATH, args)
        check_inplace(f"Tensor.{op}_", x.clone(memory_format=torch.preserve_format), lambda t: getattr(t, op + "_")(), exp, MATH, args)
        check_out(f"torch.{op}", lambda o: fn(x, out=o), exp, F32, device, MATH, args)
    y = place(draw(np_rng, shape, F32, device, -1, 1), layout)
    check("torch.add", x + y, _ref(x) + _ref(y), EW, args)
    check("torch.where", torch.where(x > 0, x, y), np.where(_ref(x) > 0, _ref(x), _ref(y)), None, args)
    check("torch.clamp", torch.clamp(x, -0.5, 0.5), np.clip(_ref(x), -0.5, 0.5), None, args)
