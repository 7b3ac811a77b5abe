"""§ 2 Autograd: torch.func transforms (vmap with in_dims/out_dims incl. None, negative, pytrees and nesting,
chunk_size and randomness=; grad/grad_and_value with argnums and has_aux; jacrev/jacfwd; hessian; jvp/vjp;
functional_call with parameters and buffers swapped, strict=, tie_weights=) against closed forms and
per-sample loops in float64 NumPy.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from harness.checks import to_numpy as _ref

func = pytest.importorskip("torch.func", reason="torch.func is missing in this torch (added in 2.0)")


def _t(a, device, dtype=torch.float64):
    return torch.tensor(np.asarray(a), dtype=dtype, device=device)


def _gapped(values, device, dtype=torch.float64) -> torch.Tensor:
    """``values`` in a view whose last dim has stride 2 at storage offset 1 (a real gap, not a permutation)."""
    values = np.asarray(values)
    big = torch.zeros(*values.shape[:-1], 2 * values.shape[-1] + 1, dtype=dtype, device=device)
    view = big[..., 1::2]
    view.copy_(torch.from_numpy(np.ascontiguousarray(values)))
    return view


# ---------------------------------------------------------------- vmap

def _f(x, y):
    """f(x, y) = sum(x * y) + max(x) for vectors: a per-sample reduction vmap must not mix across samples."""
    return (x * y).sum(-1) + x.max(-1).values


def _f_np(x, y):
    return (x * y).sum(-1) + x.max(-1)


@pytest.mark.smoke
def test_vmap_in_out_dims(device, np_rng):
    """vmap maps over the in_dims dim of each argument (None broadcasts, negative counts from the end, a
    pytree of in_dims matches a dict argument) and puts the batch dim at out_dims (int or per-output tuple);
    nested vmaps build the pairwise table; chunk_size gives the same result; gapped inputs; every result
    against a per-sample NumPy loop. Catches in_dims ignored (mapping over dim 0 always), None not
    broadcast, out_dims ignored, nested levels swapped, chunking dropping the tail chunk."""
    B, n = 7, 5
    X = np_rng.standard_normal((B, n))
    Y = np_rng.standard_normal(n)
    x, y = _gapped(X, device), _t(Y, device)
    loop = np.array([_f_np(X[i], Y) for i in range(B)])
    assert_close("torch.func.vmap", func.vmap(_f, in_dims=(0, None))(x, y), loop, op="elementwise", args="in_dims=(0, None)")
    xt = _gapped(X.T, device)  # (n, B): batch on dim 1
    assert_close("torch.func.vmap", func.vmap(_f, in_dims=(1, None))(xt, y), loop, op="elementwise", args="in_dims=(1, None)")
    assert_close("torch.func.vmap", func.vmap(_f, in_dims=(-1, None))(xt, y), loop, op="elementwise", args="in_dims=(-1, None)")
    Y2 = np_rng.standard_normal((B, n))
    loop2 = np.array([_f_np(X[i], Y2[i]) for i in range(B)])
    assert_close("torch.func.vmap", func.vmap(_f, in_dims=(1, 0))(xt, _t(Y2, device)), loop2, op="elementwise",
                 args="in_dims=(1, 0)")
    W = np_rng.standard_normal((n, 3))

    def g(x):  # two outputs: (n, 3) and (3,)
        o = x[:, None] * _t(W, device)
        return o, o.sum(0)

    o0, o1 = func.vmap(g, out_dims=(1, 0))(x)
    assert_close("torch.func.vmap", o0, np.stack([X[i][:, None] * W for i in range(B)], axis=1), op="elementwise",
                 args="out_dims=(1, 0): output 0 has the batch at dim 1")
    assert_close("torch.func.vmap", o1, np.stack([(X[i][:, None] * W).sum(0) for i in range(B)]), op="elementwise",
                 args="out_dims=(1, 0): output 1")
    o2 = func.vmap(lambda x: g(x)[0], out_dims=2)(x)
    assert_close("torch.func.vmap", o2, np.stack([X[i][:, None] * W for i in range(B)], axis=2), op="elementwise",
                 args="out_dims=2")
    Z = np_rng.standard_normal((4, n))
    table = func.vmap(func.vmap(_f, in_dims=(None, 0)), in_dims=(0, None))(x, _t(Z, device))
    assert_close("torch.func.vmap", table, np.array([[_f_np(X[i], Z[j]) for j in range(4)] for i in range(B)]),
                 op="elementwise", args="nested: table[i, j] = f(x_i, z_j)")

    def h(d):
        return (d["a"] * d["b"]).sum(-1) + d["a"].max(-1).values

    got = func.vmap(h, in_dims=({"a": 0, "b": None},))({"a": x, "b": y})
    assert_close("torch.func.vmap", got, loop, op="elementwise", args="pytree in_dims {'a': 0, 'b': None}")
    if "chunk_size" in inspect.signature(func.vmap).parameters:
        assert_close("torch.func.vmap", func.vmap(_f, in_dims=(0, None), chunk_size=3)(x, y), loop, op="elementwise",
                     args="chunk_size=3 (7 = 3 + 3 + 1)")
    assert_raises("torch.func.vmap", ValueError, func.vmap(_f), x, _t(np_rng.standard_normal((B + 1, n)), device),
                  args="batch sizes 7 and 8")
    assert_raises("torch.func.vmap", ValueError, func.vmap(_f, in_dims=(2, None)), x, y, args="in_dims beyond ndim")


def test_vmap_randomness(device):
    """randomness='error' (default) rejects a random op inside vmap; 'different' draws independent values per
    batch element, 'same' one draw shared by the batch; both draw from the global generator (a reseed
    reproduces them; how much of the stream each consumes is not documented, so not checked). Catches
    randomness= ignored (identical rows under 'different', different rows under 'same'), random ops
    silently allowed in 'error' mode, draws that ignore the global seed."""
    x = torch.zeros(6, 4, device=device)
    assert_raises("torch.func.vmap", RuntimeError, func.vmap(lambda t: t + torch.rand_like(t)), x, args="randomness='error'")
    torch.manual_seed(7)
    diff = func.vmap(lambda t: t + torch.rand_like(t), randomness="different")(x)
    D = _ref(diff)
    assert_true("torch.func.vmap", len({tuple(r) for r in D}) == 6, "rows repeat under randomness='different'")
    same = func.vmap(lambda t: t + torch.rand_like(t), randomness="same")(x)
    S = _ref(same)
    assert_true("torch.func.vmap", (S == S[0]).all(), "rows differ under randomness='same'")
    assert_true("torch.func.vmap", ((D >= 0) & (D < 1)).all() and ((S >= 0) & (S < 1)).all(), "rand_like outside [0, 1)")
    torch.manual_seed(7)
    D2 = _ref(func.vmap(lambda t: t + torch.rand_like(t), randomness="different")(x))
    S2 = _ref(func.vmap(lambda t: t + torch.rand_like(t), randomness="same")(x))
    assert_equal("torch.func.vmap", D2, D, args="'different' reproduces under the same global seed")
    assert_equal("torch.func.vmap", S2, S, args="'same' reproduces under the same global seed")


def _vmap_ops(device, np_rng):
    """(name, function of one sample, per-sample input shapes, extra unbatched args): ops whose batching
    rules vmap must get right, each checked against a Python loop over the batch."""
    W = torch.tensor(np_rng.standard_normal((4, 5)), device=device)
    K = torch.tensor(np_rng.standard_normal((3, 2, 3, 3)), device=device)
    idx = torch.tensor([2, 0, 3, 3], device=device)
    return [
        ("matmul", lambda x: x @ W, [(3, 4)]),
        ("conv2d", lambda x: torch.nn.functional.conv2d(x[None], K, padding=1)[0], [(2, 6, 7)]),
        ("softmax", lambda x: torch.softmax(x, -1), [(3, 5)]),
        ("layer_norm", lambda x: torch.nn.functional.layer_norm(x, (5,)), [(3, 5)]),
        ("cumsum", lambda x: torch.cumsum(x, 0), [(6, 2)]),
        ("index_select", lambda x: torch.index_select(x, 0, idx), [(5, 3)]),
        ("gather", lambda x, i: torch.gather(x, 1, i), [(3, 4), "idx"]),
        ("sort", lambda x: torch.sort(x, -1).values, [(3, 7)]),
        ("topk", lambda x: torch.topk(x, 2, -1).values, [(3, 7)]),
        ("where", lambda x, y: torch.where(x > 0, x, y), [(4, 3), (4, 3)]),
        ("einsum", lambda x, y: torch.einsum("ij,jk->ik", x, y), [(3, 4), (4, 2)]),
        ("linalg_solve", lambda x, y: torch.linalg.solve(x + 4 * torch.eye(3, device=x.device, dtype=x.dtype), y),
         [(3, 3), (3, 2)]),
        ("max_pool2d", lambda x: torch.nn.functional.max_pool2d(x, 2), [(2, 6, 6)]),
        ("pad", lambda x: torch.nn.functional.pad(x, (1, 2), mode="reflect"), [(2, 5)]),
        ("stack_split", lambda x: torch.stack(torch.split(x, 2, 1), 0).sum(0), [(3, 6)]),
        ("masked_fill", lambda x: x.masked_fill(x < 0, 0.5), [(4, 4)]),
    ]


def _check_vmap_ops(device, np_rng, names=None):
    B = 5
    for name, fn, shapes in _vmap_ops(device, np_rng):
        if names is not None and name not in names:
            continue
        args = []
        for sh in shapes:
            if sh == "idx":
                args.append(torch.tensor(np_rng.integers(0, 4, size=(B, 3, 2)), device=device))
            else:
                args.append(_gapped(np_rng.standard_normal((B,) + sh), device))
        got = func.vmap(fn)(*args)
        loop = torch.stack([fn(*(a[i] for a in args)) for i in range(B)])
        assert_close("torch.func.vmap", got, _ref(loop), op="elementwise" if name not in ("linalg_solve",) else "linalg",
                     args=f"{name} vs a loop over the batch")


def test_vmap_ops(device, np_rng):
    """vmap over a few ops with distinct batching rules (matmul, conv2d, softmax, gather with a batched index,
    linalg.solve) equals a Python loop over the batch, on gapped inputs; catches a batching rule that moves
    the batch dim into the op's dim (e.g. softmax over the batch) or broadcasts the index wrongly."""
    _check_vmap_ops(device, np_rng, names={"matmul", "conv2d", "softmax", "gather", "linalg_solve"})


@pytest.mark.slow
def test_vmap_ops_full(device, np_rng):
    """The whole vmap op table (16 ops incl. layer_norm, cumsum, index_select, sort/topk, where, einsum,
    max_pool2d, reflect pad, split/stack, masked_fill) against a loop over the batch."""
    _check_vmap_ops(device, np_rng)


# ---------------------------------------------------------------- grad

def test_grad(device, np_rng):
    """grad / grad_and_value of f(x, y) = sum(sin(x) * y^2): argnums=0 gives cos(x) y^2, argnums=1 gives
    2 y sin(x), argnums=(0, 1) both in order; has_aux returns the auxiliary output untouched; grad of grad
    is the second derivative; vmap(grad) gives per-sample gradients; a non-scalar output raises. Catches
    argnums ignored (always the first argument), aux differentiated or dropped, value not returned, nested
    grad levels confused."""
    X, Y = np_rng.standard_normal(6), np_rng.standard_normal(6)
    x, y = _gapped(X, device), _t(Y, device)

    def f(x, y):
        return (torch.sin(x) * y ** 2).sum()

    assert_close("torch.func.grad", func.grad(f)(x, y), np.cos(X) * Y ** 2, op="gradient", args="argnums=0")
    assert_close("torch.func.grad", func.grad(f, argnums=1)(x, y), 2 * Y * np.sin(X), op="gradient", args="argnums=1")
    gx, gy = func.grad(f, argnums=(0, 1))(x, y)
    assert_close("torch.func.grad", gx, np.cos(X) * Y ** 2, op="gradient", args="argnums=(0, 1)[0]")
    assert_close("torch.func.grad", gy, 2 * Y * np.sin(X), op="gradient", args="argnums=(0, 1)[1]")
    g, v = func.grad_and_value(f, argnums=1)(x, y)
    assert_close("torch.func.grad_and_value", g, 2 * Y * np.sin(X), op="gradient", args="argnums=1: grad")
    assert_close("torch.func.grad_and_value", v, (np.sin(X) * Y ** 2).sum(), op="elementwise", args="value")

    def f_aux(x, y):  # aux: a pytree of tensors (torch 2.13 rejects non-tensor leaves, so none are used)
        s = torch.sin(x)
        return (s * y ** 2).sum(), {"s": s, "t": (y * 2,)}

    g, aux = func.grad(f_aux, has_aux=True)(x, y)
    assert_close("torch.func.grad", g, np.cos(X) * Y ** 2, op="gradient", args="has_aux: grad")
    assert_close("torch.func.grad", aux["s"], np.sin(X), op="elementwise", args="has_aux: aux tensor")
    assert_close("torch.func.grad", aux["t"][0], 2 * Y, op="elementwise", args="has_aux: nested aux tensor")
    assert_true("torch.func.grad", not aux["s"].requires_grad, "aux returned still attached to the transform's graph")
    g, (v, aux) = func.grad_and_value(f_aux, has_aux=True)(x, y)  # documented: (grad, (value, aux))
    assert_close("torch.func.grad_and_value", g, np.cos(X) * Y ** 2, op="gradient", args="has_aux: grad")
    assert_close("torch.func.grad_and_value", v, (np.sin(X) * Y ** 2).sum(), op="elementwise", args="has_aux: value")
    assert_close("torch.func.grad_and_value", aux["s"], np.sin(X), op="elementwise", args="has_aux: aux")
    d2 = func.grad(func.grad(lambda t: torch.sin(t) * t))(_t(0.7, device))
    assert_close("torch.func.grad", d2, 2 * np.cos(0.7) - 0.7 * np.sin(0.7), op="gradient", args="grad(grad(x sin x))")
    XB = np_rng.standard_normal((5, 6))
    per_sample = func.vmap(func.grad(f), in_dims=(0, None))(_t(XB, device), y)
    assert_close("torch.func.grad", per_sample, np.cos(XB) * Y ** 2, op="gradient", args="vmap(grad): per-sample")
    assert_raises("torch.func.grad", RuntimeError, func.grad(lambda t: torch.sin(t)), x, args="non-scalar output")


# ---------------------------------------------------------------- jacobians, hessian, jvp/vjp

def test_jacrev_jacfwd(device, np_rng):
    """jacrev and jacfwd of f(x) = A tanh(x) + c (x . x) equal the closed form A diag(1 - tanh^2 x) + 2 c x^T
    and each other; argnums=1 of f2(x, A) = A tanh(x) gives d/dA[i, j, k] = [i == j] tanh(x_k); has_aux;
    vmap(jacrev) per sample. Catches a transposed Jacobian (rows = inputs), forward and reverse mode
    disagreeing, argnums ignored, aux dropped."""
    m, n = 4, 6
    A, C, X = np_rng.standard_normal((m, n)), np_rng.standard_normal(m), np_rng.standard_normal(n)
    a, c, x = _t(A, device), _t(C, device), _gapped(X, device)

    def f(x):
        return a @ torch.tanh(x) + c * (x @ x)

    J = A * (1 - np.tanh(X) ** 2)[None, :] + 2 * C[:, None] * X[None, :]
    jr, jf = func.jacrev(f)(x), func.jacfwd(f)(x)
    assert_close("torch.func.jacrev", jr, J, op="gradient", args="closed form (m, n)")
    assert_close("torch.func.jacfwd", jf, J, op="gradient", args="closed form (m, n)")
    assert_close("torch.func.jacfwd", jf, _ref(jr), op="gradient", args="jacfwd == jacrev")
    f2 = lambda x, A: A @ torch.tanh(x)  # noqa: E731
    dA = np.einsum("ij,k->ijk", np.eye(m), np.tanh(X))
    for name, tf in (("torch.func.jacrev", func.jacrev), ("torch.func.jacfwd", func.jacfwd)):
        assert_close(name, tf(f2, argnums=1)(x, a), dA, op="gradient", args="argnums=1: d(A tanh x)/dA")
        jac, aux = tf(lambda x: (f(x), x.sum()), has_aux=True)(x)
        assert_close(name, jac, J, op="gradient", args="has_aux: jacobian")
        assert_close(name, aux, X.sum(), op="elementwise", args="has_aux: aux")
    XB = np_rng.standard_normal((3, n))
    JB = func.vmap(func.jacrev(f))(_t(XB, device))
    exp = np.stack([A * (1 - np.tanh(xb) ** 2)[None, :] + 2 * C[:, None] * xb[None, :] for xb in XB])
    assert_close("torch.func.jacrev", JB, exp, op="gradient", args="vmap(jacrev)")


def test_hessian(device, np_rng):
    """hessian(f) of f(x) = sum(x^3) + x^T M x equals diag(6 x) + M + M^T (M not symmetric), as does
    jacfwd(jacrev(f)); argnums=1 of g(y, x) = f(x) * sum(y^2) gives 2 f(x) I. Catches a Hessian built from
    one triangle (symmetrising M wrongly), argnums ignored."""
    n = 5
    M, X = np_rng.standard_normal((n, n)), np_rng.standard_normal(n)
    mm, x = _t(M, device), _gapped(X, device)

    def f(x):
        return (x ** 3).sum() + x @ mm @ x

    H = np.diag(6 * X) + M + M.T
    assert_close("torch.func.hessian", func.hessian(f)(x), H, op="gradient", args="closed form")
    assert_close("torch.func.hessian", func.jacfwd(func.jacrev(f))(x), H, op="gradient", args="jacfwd(jacrev)")
    Y = np_rng.standard_normal(3)
    fx = (X ** 3).sum() + X @ M @ X
    got = func.hessian(lambda y, x: f(x) * (y ** 2).sum(), argnums=0)(_t(Y, device), x)
    assert_close("torch.func.hessian", got, 2 * fx * np.eye(3), op="gradient", args="argnums=0")


def test_jvp_vjp(device, np_rng):
    """jvp(f, primals, tangents) returns (f(x), J v) and vjp(f, x) returns (f(x), u -> J^T u) for the closed-form
    Jacobian of f(x, y) = A tanh(x) * y, with two primals (tangents for both / cotangent to both), has_aux for
    vjp; a tangent of the wrong shape raises. Catches J^T v returned by jvp (or J u by vjp), the second
    primal's tangent ignored, the primal output wrong."""
    m, n = 4, 6
    A = np_rng.standard_normal((m, n))
    X, Y = np_rng.standard_normal(n), np_rng.standard_normal(m)
    V, W, U = np_rng.standard_normal(n), np_rng.standard_normal(m), np_rng.standard_normal(m)
    a, x, y = _t(A, device), _gapped(X, device), _t(Y, device)

    def f(x, y):
        return (a @ torch.tanh(x)) * y

    F0 = (A @ np.tanh(X)) * Y
    Jx = Y[:, None] * A * (1 - np.tanh(X) ** 2)[None, :]  # d f / d x (m, n)
    Jy = np.diag(A @ np.tanh(X))                          # d f / d y (m, m)
    out, tangent = func.jvp(f, (x, y), (_t(V, device), _t(W, device)))
    assert_close("torch.func.jvp", out, F0, op="elementwise", args="primal output")
    assert_close("torch.func.jvp", tangent, Jx @ V + Jy @ W, op="gradient", args="J_x v + J_y w")
    out, vjp_fn = func.vjp(f, x, y)
    assert_close("torch.func.vjp", out, F0, op="elementwise", args="primal output")
    gx, gy = vjp_fn(_t(U, device))
    assert_close("torch.func.vjp", gx, Jx.T @ U, op="gradient", args="J_x^T u")
    assert_close("torch.func.vjp", gy, Jy.T @ U, op="gradient", args="J_y^T u")
    out, vjp_fn, aux = func.vjp(lambda x: (f(x, y), x.sum()), x, has_aux=True)
    assert_close("torch.func.vjp", vjp_fn(_t(U, device))[0], Jx.T @ U, op="gradient", args="has_aux: J_x^T u")
    assert_close("torch.func.vjp", aux, X.sum(), op="elementwise", args="has_aux: aux")
    assert_raises("torch.func.jvp", RuntimeError, func.jvp, f, (x, y), (_t(V[:3], device), _t(W, device)),
                  args="tangent shape (3,) for a (6,) primal")


# ---------------------------------------------------------------- functional_call

class _Net(nn.Module):
    """Linear -> BatchNorm1d (eval: uses running stats) -> Linear whose weight is tied to a second head."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 4, bias=False)
        self.tied = nn.Linear(4, 4, bias=False)
        self.tied.weight = self.head.weight

    def forward(self, x, scale=1.0):
        h = self.bn(self.lin(x)) * scale
        return self.head(h), self.tied(h)


def _net_np(p, x, scale=1.0, eps=1e-5):
    h = x @ p["lin.weight"].T + p["lin.bias"]
    h = (h - p["bn.running_mean"]) / np.sqrt(p["bn.running_var"] + eps) * p["bn.weight"] + p["bn.bias"]
    h = h * scale
    return h @ p["head.weight"].T, h @ p["tied.weight"].T


def test_functional_call(device, np_rng):
    """functional_call(module, dict, args, kwargs) runs the module with the given parameters AND buffers
    (BatchNorm running stats) swapped in, leaves the module's own tensors untouched, falls back to the
    module's tensors for missing keys, accepts a tuple of dicts and kwargs; strict=True rejects missing or
    unexpected keys; tie_weights=True (default) makes a value for one tied name apply to both, False only
    to the named one, and different values for tied names raise; the gradient w.r.t. swapped-in parameters
    (torch.func.grad through functional_call) matches the closed form. Catches buffers not swapped (eval BN
    using the module's stats), the swap leaking into the module, tie_weights ignored, strict ignored."""
    sig = inspect.signature(func.functional_call).parameters
    if "strict" not in sig or "tie_weights" not in sig:
        pytest.skip("functional_call lacks strict=/tie_weights= in this torch (added in 2.0/2.1)")
    torch.manual_seed(0)
    net = _Net().to(device).double().eval()
    own = {k: _ref(v) for k, v in net.state_dict().items() if "num_batches" not in k}
    new = {"lin.weight": np_rng.standard_normal((4, 3)), "lin.bias": np_rng.standard_normal(4),
           "bn.weight": np_rng.uniform(0.5, 2, 4), "bn.bias": np_rng.standard_normal(4),
           "bn.running_mean": np_rng.standard_normal(4), "bn.running_var": np_rng.uniform(0.5, 2, 4),
           "head.weight": np_rng.standard_normal((4, 4))}
    X = np_rng.standard_normal((5, 3))
    x = _t(X, device)
    swapped = {k: _t(v, device) for k, v in new.items()}
    o_head, o_tied = func.functional_call(net, swapped, (x,), {"scale": 0.5})
    exp_p = dict(new, **{"tied.weight": new["head.weight"]})
    e_head, e_tied = _net_np(exp_p, X, 0.5)
    assert_close("torch.func.functional_call", o_head, e_head, op="nn", args="params + buffers swapped, kwargs scale=0.5")
    assert_close("torch.func.functional_call", o_tied, e_tied, op="nn", args="tie_weights=True: tied head follows")
    for k, v in net.state_dict().items():
        if k in own:
            assert_close("torch.func.functional_call", v, own[k], op="exact", args=f"module's own {k} untouched")
    part = {"lin.weight": _t(new["lin.weight"], device)}
    got = func.functional_call(net, part, (x,))[0]
    assert_close("torch.func.functional_call", got, _net_np(dict(own, **{"lin.weight": new["lin.weight"]}), X)[0], op="nn",
                 args="missing keys fall back to the module's tensors")
    params = {k: v for k, v in swapped.items() if "running" not in k}
    buffers = {k: v for k, v in swapped.items() if "running" in k}
    got = func.functional_call(net, (params, buffers), (x,), {"scale": 0.5})[0]
    assert_close("torch.func.functional_call", got, e_head, op="nn", args="tuple of (params, buffers) dicts")
    o_head, o_tied = func.functional_call(net, {"head.weight": _t(new["head.weight"], device)}, (x,), tie_weights=False)
    e_head, e_tied = _net_np(dict(own, **{"head.weight": new["head.weight"]}), X)
    assert_close("torch.func.functional_call", o_head, e_head, op="nn", args="tie_weights=False: named head swapped")
    assert_close("torch.func.functional_call", o_tied, _net_np(own, X)[1], op="nn", args="tie_weights=False: tied head keeps its own")
    assert_raises("torch.func.functional_call", ValueError, func.functional_call, net,
                  {"head.weight": _t(new["head.weight"], device), "tied.weight": _t(np.eye(4), device)}, (x,),
                  args="different values for tied weights")
    assert_raises("torch.func.functional_call", RuntimeError, func.functional_call, net, part, (x,), strict=True,
                  args="strict=True, missing keys")
    full = dict(swapped, **{"bn.num_batches_tracked": net.bn.num_batches_tracked, "bogus": _t(1.0, device)})
    assert_raises("torch.func.functional_call", RuntimeError, func.functional_call, net, full, (x,), strict=True,
                  args="strict=True, unexpected key")
    lin = nn.Linear(3, 2).to(device).double()
    T = np_rng.standard_normal((5, 2))
    Wl, bl = np_rng.standard_normal((2, 3)), np_rng.standard_normal(2)

    def loss(p):
        return ((func.functional_call(lin, p, (x,)) - _t(T, device)) ** 2).sum()

    g = func.grad(loss)({"weight": _t(Wl, device), "bias": _t(bl, device)})
    Rr = 2 * (X @ Wl.T + bl - T)
    assert_close("torch.func.functional_call", g["weight"], Rr.T @ X, op="gradient", args="grad w.r.t. swapped weight")
    assert_close("torch.func.functional_call", g["bias"], Rr.sum(0), op="gradient", args="grad w.r.t. swapped bias")
