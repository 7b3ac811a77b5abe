"""§ 2 Autograd: analytic gradients of differentiable ops.

Three independent views of every op's backward formula:

1. ``torch.autograd.gradcheck`` / ``gradgradcheck`` in float64 (torch's own finite differences of its
   forward against its analytic backward / double backward);
2. the analytic ``.grad`` against central finite differences of a **NumPy** float64 implementation of the
   same function (torch computes neither side), at float32 and float64;
3. documented gradients at special points (kinks, ties, zeros) against their stated values.

Inputs are tiny (<= 4x4) and kept away from kinks and ties except in the special-point tests.
Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_true

# --------------------------------------------------------------------------------------------------
# Op table: torch function, NumPy float64 reference of the same function, input domains
# --------------------------------------------------------------------------------------------------


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


_IDX = np.array([2, 0, 1])                      # index_select
_GATHER = np.array([[0, 2, 1], [3, 3, 0], [1, 0, 2]])   # gather along dim 1 of a (3, 4)
_SCATTER = np.array([[1, 0, 2, 0], [2, 1, 0, 1]])      # scatter along dim 0 of a (3, 4); unique per column
_MASK = np.array([[True, False, False, True], [False, True, False, False], [False, False, True, False]])


def _np_gather(x):
    return np.take_along_axis(x, _GATHER, axis=1)


def _np_scatter(x, src):
    out = x.copy()
    for i in range(_SCATTER.shape[0]):
        for j in range(_SCATTER.shape[1]):
            out[_SCATTER[i, j], j] = src[i, j]
    return out


def _spd_np(a):
    return a @ a.T + 3 * np.eye(a.shape[0])


def _spd_t(a):
    return a @ a.mT + 3 * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)


@dataclass
class Case:
    name: str
    fn: Callable                     # torch: (*tensors) -> tensor
    ref: Callable                    # numpy: (*arrays) -> array, the same function
    shapes: tuple                    # one shape per input
    domain: tuple = ("any",)         # per input: any | pos | unit | wellcond
    op: str = "gradient"             # tolerance class for the float32 closed-form check
    kwargs: dict = field(default_factory=dict)


def _c(*a, **k):
    return Case(*a, **k)


CASES = [
    # elementwise
    _c("exp", torch.exp, np.exp, ((3, 4),)),
    _c("log", torch.log, np.log, ((3, 4),), ("pos",)),
    _c("sin", torch.sin, np.sin, ((3, 4),)),
    _c("cos", torch.cos, np.cos, ((3, 4),)),
    _c("tanh", torch.tanh, np.tanh, ((3, 4),)),
    _c("sigmoid", torch.sigmoid, lambda x: 1 / (1 + np.exp(-x)), ((3, 4),)),
    _c("pow_scalar", lambda x: x ** 2.5, lambda x: x ** 2.5, ((3, 4),), ("pos",)),
    _c("pow_tensor", torch.pow, np.power, ((3, 4), (3, 4)), ("pos", "any")),
    _c("div", torch.div, np.divide, ((3, 4), (3, 4)), ("any", "pos")),
    _c("mul_broadcast", torch.mul, np.multiply, ((3, 1), (1, 4))),
    _c("sqrt", torch.sqrt, np.sqrt, ((3, 4),), ("pos",)),
    _c("rsqrt", torch.rsqrt, lambda x: 1 / np.sqrt(x), ((3, 4),), ("pos",)),
    _c("abs", torch.abs, np.abs, ((3, 4),), ("away0",)),
    _c("clamp", lambda x: torch.clamp(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), ((3, 4),), ("awayclamp",)),
    _c("atan2", torch.atan2, np.arctan2, ((3, 4), (3, 4)), ("any", "pos")),
    _c("erf", torch.erf, None, ((3, 4),)),
    _c("where", lambda x, y: torch.where(torch.as_tensor(_MASK, device=x.device), x, y),
       lambda x, y: np.where(_MASK, x, y), ((3, 4), (3, 4))),
    # reductions
    _c("sum_dim", lambda x: x.sum(dim=1), lambda x: x.sum(axis=1), ((3, 4),), op="reduction"),
    _c("mean", lambda x: x.mean(dim=0, keepdim=True), lambda x: x.mean(axis=0, keepdims=True), ((3, 4),)),
    _c("prod", lambda x: x.prod(dim=1), lambda x: x.prod(axis=1), ((3, 4),), ("away0",)),
    _c("max_dim", lambda x: x.max(dim=1).values, lambda x: x.max(axis=1), ((3, 4),)),
    _c("amax", lambda x: x.amax(dim=0), lambda x: x.max(axis=0), ((3, 4),)),
    _c("min_full", lambda x: x.min(), lambda x: x.min(), ((3, 4),)),
    _c("norm", lambda x: torch.linalg.vector_norm(x, dim=1), lambda x: np.sqrt((x * x).sum(axis=1)), ((3, 4),)),
    _c("norm_p3", lambda x: torch.linalg.vector_norm(x, ord=3), lambda x: (np.abs(x) ** 3).sum() ** (1 / 3),
       ((3, 4),), ("away0",)),
    _c("logsumexp", lambda x: torch.logsumexp(x, dim=1), lambda x: _np_logsumexp(x, 1), ((3, 4),)),
    _c("softmax", lambda x: torch.softmax(x, dim=1), lambda x: _np_softmax(x, 1), ((3, 4),)),
    _c("log_softmax", lambda x: torch.log_softmax(x, dim=0), lambda x: np.log(_np_softmax(x, 0)), ((3, 4),)),
    _c("std", lambda x: x.std(dim=1), lambda x: x.std(axis=1, ddof=1), ((3, 4),)),
    _c("var_correction0", lambda x: x.var(dim=0, correction=0), lambda x: x.var(axis=0), ((3, 4),)),
    _c("cumsum", lambda x: x.cumsum(dim=1), lambda x: x.cumsum(axis=1), ((3, 4),)),
    # matmul family
    _c("matmul", torch.matmul, np.matmul, ((3, 4), (4, 2)), op="matmul"),
    _c("matmul_vec", torch.matmul, np.matmul, ((3, 4), (4,)), op="matmul"),
    _c("bmm", torch.bmm, np.matmul, ((2, 3, 4), (2, 4, 2)), op="matmul"),
    _c("einsum", lambda a, b: torch.einsum("ij,jk->ik", a, b), lambda a, b: np.einsum("ij,jk->ik", a, b),
       ((3, 4), (4, 2)), op="matmul"),
    _c("einsum_trace", lambda a, b: torch.einsum("bij,bji->b", a, b), lambda a, b: np.einsum("bij,bji->b", a, b),
       ((2, 3, 3), (2, 3, 3)), op="matmul"),
    # shape ops
    _c("reshape", lambda x: x.reshape(2, 6) * torch.arange(6., dtype=x.dtype, device=x.device),
       lambda x: x.reshape(2, 6) * np.arange(6.), ((3, 4),)),
    _c("transpose", lambda x: x.transpose(0, 1) @ torch.ones(3, 2, dtype=x.dtype, device=x.device) * x[0, :, None],
       lambda x: x.T @ np.ones((3, 2)) * x[0, :, None], ((3, 4),)),
    _c("permute", lambda x: x.permute(2, 0, 1).cumsum(0), lambda x: np.transpose(x, (2, 0, 1)).cumsum(0),
       ((2, 3, 4),)),
    _c("cat", lambda a, b: torch.cat([a, b * 2], dim=1), lambda a, b: np.concatenate([a, b * 2], axis=1),
       ((3, 2), (3, 4))),
    _c("stack", lambda a, b: torch.stack([a, a * b], dim=1), lambda a, b: np.stack([a, a * b], axis=1),
       ((3, 4), (3, 4))),
    _c("index_select", lambda x: torch.index_select(x, 0, torch.as_tensor(_IDX, device=x.device)) ** 2,
       lambda x: x[_IDX] ** 2, ((3, 4),)),
    _c("gather", lambda x: torch.gather(x, 1, torch.as_tensor(_GATHER, device=x.device)) ** 2,
       lambda x: _np_gather(x) ** 2, ((3, 4),)),
    _c("scatter", lambda x, s: torch.scatter(x, 0, torch.as_tensor(_SCATTER, device=x.device), s) ** 2,
       lambda x, s: _np_scatter(x, s) ** 2, ((3, 4), (2, 4))),
    _c("masked_fill", lambda x: x.masked_fill(torch.as_tensor(_MASK, device=x.device), 2.0) * x,
       lambda x: np.where(_MASK, 2.0, x) * x, ((3, 4),)),
    _c("expand", lambda x: x.expand(3, 4) * torch.arange(12., dtype=x.dtype, device=x.device).reshape(3, 4),
       lambda x: np.broadcast_to(x, (3, 4)) * np.arange(12.).reshape(3, 4), ((1, 4),)),
    _c("getitem_strided", lambda x: x[::2, 1:] ** 3, lambda x: x[::2, 1:] ** 3, ((3, 4),)),
    # linalg
    _c("inverse", torch.linalg.inv, np.linalg.inv, ((3, 3),), ("wellcond",), op="linalg"),
    _c("det", torch.linalg.det, np.linalg.det, ((3, 3),), ("wellcond",), op="linalg"),
    _c("solve", torch.linalg.solve, np.linalg.solve, ((3, 3), (3, 2)), ("wellcond", "any"), op="linalg"),
    _c("cholesky", lambda a: torch.linalg.cholesky(_spd_t(a)), lambda a: np.linalg.cholesky(_spd_np(a)),
       ((3, 3),), op="linalg"),
    _c("slogdet", lambda a: torch.linalg.slogdet(a).logabsdet, lambda a: np.linalg.slogdet(a)[1], ((3, 3),),
       ("wellcond",), op="linalg"),
]
IDS = [c.name for c in CASES]


def _inputs(case: Case, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    doms = case.domain + ("any",) * (len(case.shapes) - len(case.domain))
    for shape, dom in zip(case.shapes, doms):
        a = rng.standard_normal(shape)
        if dom == "pos":
            a = np.abs(a) + 0.5
        elif dom == "away0":
            a = np.sign(a) * (np.abs(a) + 0.3)
        elif dom == "awayclamp":    # no element within 0.1 of the clamp bounds +-0.5
            a = np.where(np.abs(np.abs(a) - 0.5) < 0.1, a + 0.25 * np.sign(a), a)
        elif dom == "wellcond":
            a = a * 0.3 + 2.0 * np.eye(shape[0])
        out.append(a)
    return out


def _tensors(arrays, device, dtype):
    return [torch.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]


def _case_params(cases):
    return [pytest.param(c, id=c.name) for c in cases]


@pytest.mark.parametrize("case", _case_params(CASES))
def test_gradcheck(device, case, np_rng):
    """gradcheck in float64: the analytic backward of each op matches torch's finite differences of its
    forward (catches a wrong or missing derivative formula, a wrong broadcasting reduction of the grad)."""
    ts = _tensors(_inputs(case, np_rng), device, torch.float64)
    ok = torch.autograd.gradcheck(case.fn, ts, eps=1e-6, atol=1e-6, rtol=1e-5, raise_exception=False)
    assert_true("torch.autograd.gradcheck", ok, f"analytic gradient of {case.name} disagrees with finite differences",
                args=case.name)


@pytest.mark.parametrize("case", _case_params(CASES))
def test_gradgradcheck(device, case, np_rng):
    """gradgradcheck in float64: the double-backward (derivative of the backward formula) of each op is
    correct; catches a backward that is not itself differentiable or differentiates wrongly."""
    ts = _tensors(_inputs(case, np_rng), device, torch.float64)
    ok = torch.autograd.gradgradcheck(case.fn, ts, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=False)
    assert_true("torch.autograd.gradgradcheck", ok, f"second derivative of {case.name} disagrees", args=case.name)


def _np_fd_grad(ref, arrays, weights, h=1e-5):
    """Central finite differences of L = sum(weights * ref(*arrays)) w.r.t. every input, in NumPy float64."""
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[k][idx] += h
            minus[k][idx] -= h
            g[idx] = ((weights * ref(*plus)).sum() - (weights * ref(*minus)).sum()) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize("case", _case_params([c for c in CASES if c.ref is not None]))
@pytest.mark.dtypes(torch.float32, torch.float64)
def test_grad_vs_numpy_finite_differences(device, dtype, case, np_rng):
    """The analytic .grad of L = sum(w * f(x)) equals central finite differences of a NumPy float64
    implementation of f: an oracle torch computes neither side of, so a backward formula that is
    wrong in the same way as a broken forward (which gradcheck would miss) is still caught."""
    arrays = _inputs(case, np_rng)
    ts = _tensors(arrays, device, dtype)
    out = case.fn(*ts)
    ref_out = np.asarray(case.ref(*arrays))
    weights = np_rng.standard_normal(ref_out.shape)
    (out * torch.tensor(weights, dtype=dtype, device=device)).sum().backward()
    expected = _np_fd_grad(case.ref, arrays, weights)
    for i, (t, g) in enumerate(zip(ts, expected)):
        assert_true(f"{case.name}.backward", t.grad is not None, f"input {i} got no gradient", args=case.name)
        if dtype == torch.float64:
            # central differences (h=1e-5) carry ~1e-9 truncation/rounding error on these inputs;
            # 1e-6 leaves headroom and still rejects any wrong formula (errors of order 1e-1)
            assert_close(f"{case.name}.backward", t.grad, g, op=case.op, rtol=1e-6, atol=1e-6,
                         args=f"input {i}, {case.name}", check_dtype=dtype, check_device=device)
        else:
            assert_close(f"{case.name}.backward", t.grad, g, op=case.op, args=f"input {i}, {case.name}",
                         check_dtype=dtype, check_device=device)


# --------------------------------------------------------------------------------------------------
# Closed forms for the main ops (exact formulas, not finite differences)
# --------------------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_closed_form_square_sum(device, dtype, np_rng):
    """d/dx sum(x**2) = 2x exactly (up to one rounding) in float32 and float64."""
    xn = np_rng.standard_normal((4, 4))
    x = torch.tensor(xn, dtype=dtype, device=device, requires_grad=True)
    (x ** 2).sum().backward()
    assert_close("torch.pow.backward", x.grad, 2 * torch.tensor(xn, dtype=dtype).double().numpy(), op="gradient")


def test_closed_form_softmax_jacobian(device, np_rng):
    """The softmax Jacobian is diag(s) - s s^T (rows sum to 0); log_softmax's is I - 1 s^T."""
    xn = np_rng.standard_normal(4)
    s = _np_softmax(xn, 0)
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    J = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), x)
    assert_close("torch.softmax.backward", J, np.diag(s) - np.outer(s, s), op="gradient")
    J2 = torch.autograd.functional.jacobian(lambda t: torch.log_softmax(t, 0), x)
    assert_close("torch.log_softmax.backward", J2, np.eye(4) - np.outer(np.ones(4), s), op="gradient")


def test_closed_form_matmul(device, dtype, np_rng):
    """For L = sum(G * (A @ B)): dA = G B^T and dB = A^T G."""
    An, Bn, Gn = np_rng.standard_normal((3, 4)), np_rng.standard_normal((4, 2)), np_rng.standard_normal((3, 2))
    A = torch.tensor(An, dtype=dtype, device=device, requires_grad=True)
    B = torch.tensor(Bn, dtype=dtype, device=device, requires_grad=True)
    ((A @ B) * torch.tensor(Gn, dtype=dtype, device=device)).sum().backward()
    assert_close("torch.matmul.backward", A.grad, Gn @ Bn.T, op="matmul", args="dA")
    assert_close("torch.matmul.backward", B.grad, An.T @ Gn, op="matmul", args="dB")


def test_closed_form_inverse_det(device, np_rng):
    """d det(A)/dA = det(A) A^{-T}; for L = sum(G * inv(A)): dA = -A^{-T} G A^{-T}."""
    An = np_rng.standard_normal((3, 3)) * 0.3 + 2 * np.eye(3)
    Gn = np_rng.standard_normal((3, 3))
    A = torch.tensor(An, dtype=torch.float64, device=device, requires_grad=True)
    torch.linalg.det(A).backward()
    Ai = np.linalg.inv(An)
    assert_close("torch.linalg.det.backward", A.grad, np.linalg.det(An) * Ai.T, op="linalg")
    A.grad = None
    (torch.linalg.inv(A) * torch.tensor(Gn, device=device)).sum().backward()
    assert_close("torch.linalg.inv.backward", A.grad, -Ai.T @ Gn @ Ai.T, op="linalg")


def test_closed_form_std_var(device, np_rng):
    """d var(x; correction=c)/dx = 2 (x - mean) / (n - c); d std = d var / (2 std)."""
    xn = np_rng.standard_normal(5)
    n = xn.size
    for c in (0, 1):
        x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
        x.var(correction=c).backward()
        assert_close("torch.var.backward", x.grad, 2 * (xn - xn.mean()) / (n - c), op="gradient", args=f"correction={c}")
        x.grad = None
        x.std(correction=c).backward()
        sd = np.sqrt(((xn - xn.mean()) ** 2).sum() / (n - c))
        assert_close("torch.std.backward", x.grad, (xn - xn.mean()) / ((n - c) * sd), op="gradient",
                     args=f"correction={c}")


# --------------------------------------------------------------------------------------------------
# Special points
# --------------------------------------------------------------------------------------------------

def _grad(fn, values, device):
    x = torch.tensor(values, dtype=torch.float64, device=device, requires_grad=True)
    fn(x).sum().backward()
    return x.grad


def test_grad_abs_relu_at_zero(device):
    """abs and relu have gradient 0 at 0 (the documented subgradient), sign elsewhere; catches a build that
    returns 1, NaN or 0.5 at the kink."""
    assert_close("torch.abs.backward", _grad(torch.abs, [0.0, -2.0, 3.0], device), np.array([0.0, -1.0, 1.0]), op="exact")
    assert_close("torch.relu.backward", _grad(torch.relu, [0.0, -2.0, 3.0], device), np.array([0.0, 0.0, 1.0]), op="exact")


def test_grad_sqrt_log_at_zero(device):
    """sqrt'(0) = +inf and log'(0) = +inf (1/(2 sqrt 0), 1/0), not NaN or a clipped value."""
    assert_close("torch.sqrt.backward", _grad(torch.sqrt, [0.0, 4.0], device), np.array([np.inf, 0.25]), op="exact")
    assert_close("torch.log.backward", _grad(torch.log, [0.0, 2.0], device), np.array([np.inf, 0.5]), op="exact")


def test_grad_max_ties(device):
    """Documented tie handling: amax/amin and the full reductions max()/min() split the gradient evenly
    among tied extrema; max(dim) sends it only to the element at the returned index."""
    t = [1.0, 3.0, 3.0, 2.0]
    assert_close("torch.amax.backward", _grad(lambda x: x.amax(), t, device), np.array([0, 0.5, 0.5, 0]), op="exact")
    assert_close("torch.max.backward", _grad(lambda x: x.max(), t, device), np.array([0, 0.5, 0.5, 0]), op="exact",
                 args="full reduction")
    assert_close("torch.amin.backward", _grad(lambda x: x.amin(), [1.0, 1.0, 1.0, 2.0], device),
                 np.array([1 / 3, 1 / 3, 1 / 3, 0]), op="elementwise")
    x = torch.tensor(t, dtype=torch.float64, device=device, requires_grad=True)
    vals, idx = x.max(dim=0)
    vals.backward()
    expected = np.zeros(4)
    expected[int(idx)] = 1.0
    assert_true("torch.max", int(idx) in (1, 2), "max(dim) index is not one of the tied maxima")
    assert_close("torch.max.backward", x.grad, expected, op="exact", args="dim=0 with ties")
    assert_close("torch.maximum.backward", _grad(lambda x: torch.maximum(x, torch.ones_like(x)), [1.0, 2.0], device),
                 np.array([0.5, 1.0]), op="exact", args="tie with other")


def test_grad_clamp_at_boundary(device):
    """clamp passes the gradient for min <= x <= max (boundaries included) and blocks it strictly outside."""
    g = _grad(lambda x: x.clamp(-1.0, 1.0), [-1.0, 1.0, 0.5, 2.0, -2.0], device)
    assert_close("torch.clamp.backward", g, np.array([1.0, 1.0, 1.0, 0.0, 0.0]), op="exact")
    g = _grad(lambda x: x.clamp(min=0.0), [0.0, -1.0, 1.0], device)
    assert_close("torch.clamp.backward", g, np.array([1.0, 0.0, 1.0]), op="exact", args="min only")


def test_grad_prod_with_zero(device):
    """prod's gradient at a zero element is the product of the others (no 0/0 NaN); two zeros -> all 0."""
    assert_close("torch.prod.backward", _grad(torch.prod, [2.0, 0.0, 3.0], device), np.array([0.0, 6.0, 0.0]), op="exact")
    assert_close("torch.prod.backward", _grad(torch.prod, [0.0, 0.0, 3.0], device), np.zeros(3), op="exact",
                 args="two zeros")


def test_grad_norm_at_zero(device):
    """The 2-norm's gradient at the zero vector is 0 (subgradient), not NaN."""
    assert_close("torch.linalg.vector_norm.backward", _grad(torch.linalg.vector_norm, [0.0, 0.0, 0.0], device),
                 np.zeros(3), op="exact")


def test_grad_pow_special(device):
    """x**0 has gradient 0 everywhere (also at 0); d/dy 0**y is 0 for y >= 0 (not NaN from 0 * log 0)."""
    assert_close("torch.pow.backward", _grad(lambda x: x ** 0, [0.0, 2.0], device), np.zeros(2), op="exact")
    y = torch.tensor([2.0, 0.5], dtype=torch.float64, device=device, requires_grad=True)
    torch.pow(torch.zeros(2, dtype=torch.float64, device=device), y).sum().backward()
    assert_close("torch.pow.backward", y.grad, np.zeros(2), op="exact", args="base 0, grad wrt exponent")


def test_grad_integer_index_not_differentiable(device):
    """Ops with integer outputs (argmax, sort indices) don't carry grad, but sort's values do:
    d sum(w * sort(x).values)/dx routes w back through the permutation."""
    xn = np.array([0.3, -1.2, 2.0, 0.7])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    x = torch.tensor(xn, dtype=torch.float64, device=device, requires_grad=True)
    vals, idx = torch.sort(x)
    assert_true("torch.sort", not idx.requires_grad, "sort indices must not require grad")
    (vals * torch.tensor(w, device=device)).sum().backward()
    expected = np.zeros(4)
    expected[np.argsort(xn)] = w
    assert_close("torch.sort.backward", x.grad, expected, op="exact")
    assert_equal("torch.sort", idx.cpu().numpy(), np.argsort(xn))
