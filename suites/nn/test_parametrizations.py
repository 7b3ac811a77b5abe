"""§ 4 nn: torch.nn.utils.parametrizations (weight_norm, spectral_norm, orthogonal) and the parametrize
machinery (register_parametrization, chaining, right_inverse on assignment, cached(), remove_parametrizations
with leave_parametrized) against closed forms in float64 NumPy: g * v / ||v||, power iteration and
numpy.linalg.svd, Q^T Q = I and the QR initialisation, hand-derived gradients.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations as P
from torch.nn.utils import parametrize

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64


def _norm_except(v, dim):
    """||v|| over every dim except ``dim`` (keepdims), or over the whole tensor for dim=None."""
    if dim is None:
        return np.sqrt((v ** 2).sum())
    axes = tuple(i for i in range(v.ndim) if i != dim % v.ndim)
    return np.sqrt((v ** 2).sum(axis=axes, keepdims=True))


# ---------------------------------------------------------------- weight_norm

@pytest.mark.parametrize("make,dim", [pytest.param(lambda d: nn.Linear(5, 7, device=d), 1, marks=pytest.mark.smoke),
                                      (lambda d: nn.Linear(5, 7, device=d), 0),
                                      (lambda d: nn.Linear(5, 7, device=d), None), (lambda d: nn.Conv2d(3, 4, 3, device=d), 0),
                                      (lambda d: nn.Conv2d(3, 4, 3, device=d), 1)],
                         ids=["linear-dim1", "linear-dim0", "linear-dimNone", "conv-dim0", "conv-dim1"])
def test_weight_norm(device, make, dim, np_rng):
    """parametrizations.weight_norm(module, dim): original0 = g = ||w|| over every dim but ``dim`` (keepdim
    shape; a scalar over the whole tensor for dim=None), original1 = v = w, weight = g * v / ||v|| so the
    weight is unchanged at registration and follows a new g; the forward uses it; the gradients of g and v
    equal the closed forms dL/dg = sum(G * v/||v||) and dL/dv = g/||v|| (G - (sum(G * v/||v||)) v/||v||) per
    slice; remove_parametrizations(leave_parametrized=True) keeps g * v / ||v||. Catches the norm taken over
    the wrong dims, g and v swapped, dim=None normalising per row, broken gradient through the norm."""
    torch.manual_seed(0)
    m = make(device)
    w0 = np64(m.weight)
    P.weight_norm(m, dim=dim)
    assert_true("parametrizations.weight_norm", parametrize.is_parametrized(m, "weight"), "weight not parametrized")
    g, v = m.parametrizations.weight.original0, m.parametrizations.weight.original1
    exp_g = _norm_except(w0, dim)
    assert_equal("parametrizations.weight_norm", tuple(g.shape), tuple(np.shape(exp_g)), args=f"dim={dim}: g shape")
    assert_close("parametrizations.weight_norm", g, exp_g, op="nn", args=f"dim={dim}: g = ||w||")
    assert_close("parametrizations.weight_norm", v, w0, op="exact", args=f"dim={dim}: v = w")
    assert_close("parametrizations.weight_norm", m.weight, w0, op="nn", args=f"dim={dim}: weight unchanged at registration")
    with torch.no_grad():
        g.copy_(torch.tensor(np_rng.uniform(0.5, 2.0, size=tuple(g.shape)), dtype=g.dtype))
    G0, V = np64(g), np64(v)
    nv = _norm_except(V, dim)
    W = G0 * V / nv
    assert_close("parametrizations.weight_norm", m.weight, W, op="nn", args=f"dim={dim}: weight = g v / ||v||")
    shape_in = (2, 5) if isinstance(m, nn.Linear) else (2, 3, 6, 6)
    x = torch.tensor(np_rng.standard_normal(shape_in), dtype=torch.float32, device=device)
    y = m(x)
    if isinstance(m, nn.Linear):
        assert_close("parametrizations.weight_norm", y, np64(x) @ W.T + np64(m.bias), op="nn", args="forward uses g v/||v||")
    R = np_rng.standard_normal(tuple(y.shape))
    (y * torch.tensor(R, dtype=y.dtype, device=device)).sum().backward()
    if isinstance(m, nn.Linear):
        Gw = R.T @ np64(x)  # dL/dW of a linear layer
        vhat = V / nv
        if dim is None:
            s = (Gw * vhat).sum()
        else:
            s = (Gw * vhat).sum(axis=tuple(i for i in range(V.ndim) if i != dim), keepdims=True)
        assert_close("parametrizations.weight_norm", g.grad, s, op="gradient", dtype=torch.float32, args=f"dim={dim}: dL/dg")
        assert_close("parametrizations.weight_norm", v.grad, G0 / nv * (Gw - s * vhat), op="gradient",
                     dtype=torch.float32, args=f"dim={dim}: dL/dv")
    else:
        assert_true("parametrizations.weight_norm", g.grad is not None and v.grad is not None, "no gradient reached g/v")
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    assert_true("parametrize.remove_parametrizations", not parametrize.is_parametrized(m), "still parametrized")
    assert_close("parametrize.remove_parametrizations", m.weight, W, op="nn", args="leave_parametrized=True keeps g v/||v||")


# ---------------------------------------------------------------- spectral_norm

def _designed(np_rng, rows, cols, s):
    """A rows x cols matrix with singular values ``s`` (random singular vectors)."""
    U, _ = np.linalg.qr(np_rng.standard_normal((rows, rows)))
    V, _ = np.linalg.qr(np_rng.standard_normal((cols, cols)))
    S = np.zeros((rows, cols))
    S[np.arange(len(s)), np.arange(len(s))] = s
    return U @ S @ V.T


def _unit(x):
    return x / max(np.linalg.norm(x), 1e-12)


def test_spectral_norm_power_iteration(device, np_rng):
    """spectral_norm(n_power_iterations=k): in training mode each access runs exactly k steps u = W v/|W v|,
    v = W^T u/|W^T u| from the stored u, v, and the weight is W / (u . W v); in eval mode u, v stay put and
    the weight uses them; the gradient of the original is G/s - (sum(G * W)/s^2) u v^T (u, v constant).
    Compared to the same iteration in float64 NumPy from the same start vectors for k = 1 and 3. Catches
    n_power_iterations ignored, iteration in eval mode, sigma from the wrong vectors, a backward through u, v."""
    W = _designed(np_rng, 6, 8, [3.0, 2.7, 1.0, 0.5, 0.3, 0.1])  # small gap: 1 vs 3 steps differ visibly
    for k in (1, 3):
        m = nn.Linear(8, 6, device=device, dtype=torch.float64)
        with torch.no_grad():
            m.weight.copy_(torch.tensor(W))
        P.spectral_norm(m, n_power_iterations=k)
        sn = m.parametrizations.weight[0]
        with torch.no_grad():
            sn._u.copy_(torch.tensor(_unit(np_rng.standard_normal(6))))
            sn._v.copy_(torch.tensor(_unit(np_rng.standard_normal(8))))
        u, v = np64(sn._u), np64(sn._v)
        m.train()
        w = m.weight
        for _ in range(k):
            u = _unit(W @ v)
            v = _unit(W.T @ u)
        sigma = u @ W @ v
        assert_close("parametrizations.spectral_norm", sn._u, u, op="linalg", args=f"n_power_iterations={k}: u")
        assert_close("parametrizations.spectral_norm", sn._v, v, op="linalg", args=f"n_power_iterations={k}: v")
        assert_close("parametrizations.spectral_norm", w, W / sigma, op="linalg", args=f"n_power_iterations={k}: W / sigma")
        Gr = np_rng.standard_normal((6, 8))
        (w * torch.tensor(Gr, device=device)).sum().backward()
        exp_grad = Gr / sigma - (Gr * W).sum() / sigma ** 2 * np.outer(u, v)
        assert_close("parametrizations.spectral_norm", m.parametrizations.weight.original.grad, exp_grad, op="gradient",
                     args=f"n_power_iterations={k}: grad of the original")
        m.eval()
        u_before, v_before = np64(sn._u), np64(sn._v)
        we = m.weight
        assert_close("parametrizations.spectral_norm", sn._u, u_before, op="exact", args="eval: u not updated")
        assert_close("parametrizations.spectral_norm", we, W / (u_before @ W @ v_before), op="linalg", args="eval: weight")


@pytest.mark.parametrize("kind", ["linear", "conv", "convtranspose"])
def test_spectral_norm_converges(device, kind, np_rng):
    """After registration (15 warm-up iterations) and 20 training-mode forwards, the largest singular value
    of the normalised weight (reshaped to (size(dim), -1), dim=0 by default and 1 for ConvTranspose) is 1
    within the power-iteration error, for designed singular values [5, 2, ...] in float32; the forward uses
    the normalised weight. Catches normalisation by the Frobenius norm, the wrong reshape dim for
    ConvTranspose, the default dim ignored."""
    if kind == "linear":
        m = nn.Linear(8, 6, device=device)
        shape, dim = (6, 8), 0
    elif kind == "conv":
        m = nn.Conv2d(3, 5, 2, device=device)
        shape, dim = (5, 3, 2, 2), 0
    else:
        m = nn.ConvTranspose2d(5, 3, 2, device=device)  # weight (in=5, out=3, 2, 2); documented default dim=1
        shape, dim = (5, 3, 2, 2), 1
    perm = (dim,) + tuple(i for i in range(len(shape)) if i != dim)
    mat_shape = (shape[dim], int(np.prod(shape)) // shape[dim])
    Wm = _designed(np_rng, mat_shape[0], mat_shape[1], [5.0, 2.0] + [1.0] * (min(mat_shape) - 2))
    W = np.transpose(Wm.reshape(tuple(shape[i] for i in perm)), np.argsort(perm))
    with torch.no_grad():
        m.weight.copy_(torch.tensor(W, dtype=torch.float32))
    P.spectral_norm(m)
    m.train()
    for _ in range(20):
        wn = m.weight
    mat = np.transpose(np64(wn), perm).reshape(mat_shape)
    # (2/5)^(2*35) is far below float32 rounding: the remaining error is float32 arithmetic (linalg class)
    assert_close("parametrizations.spectral_norm", np.linalg.svd(mat, compute_uv=False)[0], 1.0, op="linalg",
                 dtype=torch.float32, args=f"{kind}: sigma_max after power iterations")
    assert_close("parametrizations.spectral_norm", wn, W / 5.0, op="linalg", args=f"{kind}: W / sigma_max")
    if kind == "linear":
        x = torch.tensor(np_rng.standard_normal((3, 8)), dtype=torch.float32, device=device)
        assert_close("parametrizations.spectral_norm", m(x), np64(x) @ (W / 5.0).T + np64(m.bias), op="linalg",
                     args="forward uses the normalised weight")


# ---------------------------------------------------------------- orthogonal

@pytest.mark.parametrize("shape", [(5, 5), (7, 4), (3, 6)], ids=["square", "tall", "wide"])
@pytest.mark.parametrize("orthogonal_map", [None, "matrix_exp", "cayley", "householder"])
def test_orthogonal(device, shape, orthogonal_map, np_rng):
    """parametrizations.orthogonal: the weight has orthonormal columns (Q^T Q = I) when tall or square and
    orthonormal rows (Q Q^T = I) when wide, for every orthogonal_map and use_trivialization; with the default
    trivialization (and householder) the initial Q is the QR orthogonalisation of the original weight, so
    Q^T W (tall) / Q W^T (wide) is upper triangular; assigning an orthogonal matrix sets the weight to it;
    after SGD steps the weight is still orthogonal and has moved. Catches a map that is not orthogonal,
    the tall/wide case transposed, the initialisation discarding the original weight, assignment ignored,
    steps leaving the manifold."""
    rows, cols = shape
    kw = {} if orthogonal_map is None else dict(orthogonal_map=orthogonal_map)
    for triv in (True, False):
        torch.manual_seed(1)
        m = nn.Linear(cols, rows, bias=False, device=device)
        W = np64(m.weight)
        P.orthogonal(m, use_trivialization=triv, **kw)
        Q = np64(m.weight)
        eye = np.eye(min(rows, cols))
        gram = Q.T @ Q if rows >= cols else Q @ Q.T
        args = f"{shape}, map={orthogonal_map}, use_trivialization={triv}"
        assert_close("parametrizations.orthogonal", gram, eye, op="linalg", dtype=torch.float32, args=args + ": Q^T Q = I")
        if triv or orthogonal_map == "householder":
            R = Q.T @ W if rows >= cols else Q @ W.T
            assert_close("parametrizations.orthogonal", np.tril(R, -1), np.zeros_like(R), op="linalg", dtype=torch.float32,
                         args=args + ": initial Q from QR of the original weight")
        if triv or orthogonal_map == "householder":
            Q0, _ = np.linalg.qr(np_rng.standard_normal((max(rows, cols), min(rows, cols))))
            Q0 = Q0 if rows >= cols else Q0.T
            m.weight = torch.tensor(Q0, dtype=torch.float32, device=device)
            assert_close("parametrizations.orthogonal", m.weight, Q0, op="linalg", args=args + ": assignment")
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        x = torch.tensor(np_rng.standard_normal((16, cols)), dtype=torch.float32, device=device)
        target = torch.tensor(np_rng.standard_normal((16, rows)), dtype=torch.float32, device=device)
        before = np64(m.weight)
        for _ in range(3):
            opt.zero_grad()
            ((m(x) - target) ** 2).mean().backward()
            opt.step()
        Q = np64(m.weight)
        gram = Q.T @ Q if rows >= cols else Q @ Q.T
        assert_close("parametrizations.orthogonal", gram, eye, op="linalg", dtype=torch.float32, args=args + ": after 3 SGD steps")
        assert_true("parametrizations.orthogonal", np.abs(Q - before).max() > 1e-4, "weight did not move under SGD", args=args)
    assert_raises("parametrizations.orthogonal", ValueError, P.orthogonal, nn.Linear(3, 3, device=device),
                  orthogonal_map="qr", args="unknown orthogonal_map")


def test_orthogonal_batched(device, np_rng):
    """A parameter with more than two dims is a batch of matrices (documented): every (5, 3) slice of a
    (2, 4, 5, 3) parameter gets orthonormal columns and its own QR initialisation. Catches the batch
    flattened into one matrix, only the first matrix orthogonalised."""
    m = nn.Module()
    W = np_rng.standard_normal((2, 4, 5, 3))
    m.weight = nn.Parameter(torch.tensor(W, dtype=torch.float32, device=device))
    P.orthogonal(m, "weight")
    Q = np64(m.weight)
    assert_equal("parametrizations.orthogonal", Q.shape, (2, 4, 5, 3), args="batched shape kept")
    gram = np.einsum("...ij,...ik->...jk", Q, Q)
    assert_close("parametrizations.orthogonal", gram, np.broadcast_to(np.eye(3), gram.shape), op="linalg",
                 dtype=torch.float32, args="every matrix of the batch: Q^T Q = I")
    R = np.einsum("...ij,...ik->...jk", Q, W)
    assert_close("parametrizations.orthogonal", np.tril(R, -1), np.zeros_like(R), op="linalg", dtype=torch.float32,
                 args="each matrix initialised from its own QR")


@pytest.mark.slow
@pytest.mark.parametrize("make,dim", [(lambda: nn.Conv1d(3, 5, 3), 0), (lambda: nn.Conv3d(2, 4, 2), 0),
                                      (lambda: nn.ConvTranspose1d(5, 3, 3), 1), (lambda: nn.ConvTranspose3d(4, 2, 2), 1),
                                      (lambda: nn.Embedding(9, 6), 0)],
                         ids=["conv1d", "conv3d", "convtranspose1d", "convtranspose3d", "embedding"])
def test_spectral_weight_norm_modules(device, make, dim, np_rng):
    """spectral_norm converges to sigma_max = 1 over the documented reshape dim (0, or 1 for ConvTranspose)
    and weight_norm's float64 gradient matches finite differences, on more module kinds; catches kind-
    specific dim defaults and gradient bugs."""
    torch.manual_seed(0)
    m = make().to(device)
    P.spectral_norm(m)
    m.train()
    for _ in range(100):
        w = m.weight
    Wn = np64(w)
    mat = np.moveaxis(Wn, dim, 0).reshape(Wn.shape[dim], -1)
    assert_close("parametrizations.spectral_norm", np.linalg.svd(mat, compute_uv=False)[0], 1.0, op="linalg",
                 dtype=torch.float32, args=f"{type(m).__name__}: sigma_max after 115 iterations")
    m2 = make().to(device).double()
    P.weight_norm(m2, dim=dim)
    g, v = m2.parametrizations.weight.original0, m2.parametrizations.weight.original1
    wn = m2.parametrizations.weight[0]  # the registered parametrization: forward(g, v) -> weight
    ok = torch.autograd.gradcheck(lambda gg, vv: wn(gg, vv),
                                  (g.detach().clone().requires_grad_(True), v.detach().clone().requires_grad_(True)),
                                  raise_exception=False)
    assert_true("parametrizations.weight_norm", ok, "backward differs from finite differences", args=type(m2).__name__)


# ---------------------------------------------------------------- parametrize machinery

class _Symmetric(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, X):
        self.calls += 1
        return X.triu() + X.triu(1).transpose(-1, -2)


class _AddConst(nn.Module):
    def __init__(self, M):
        super().__init__()
        self.register_buffer("M", M)

    def forward(self, X):
        return X + self.M


class _Exp(nn.Module):
    def forward(self, X):
        return torch.exp(X)

    def right_inverse(self, Y):
        return torch.log(Y)


def test_register_parametrization(device, np_rng):
    """register_parametrization: weight = f(original) with original the unconstrained tensor (initially the old
    weight when there is no right_inverse); a second registration chains (applied after the first); the
    gradient of the original is the closed form through both; inside parametrize.cached() the parametrization
    runs once for repeated accesses; assignment goes through right_inverse (exp/log); remove_parametrizations
    with leave_parametrized True keeps the parametrized value, False restores the original, and the module's
    class is restored; removing a non-parametrized tensor raises. Catches chaining in the wrong order,
    caching ignored or never invalidated, right_inverse skipped on assignment, leave_parametrized ignored."""
    torch.manual_seed(0)
    m = nn.Linear(4, 4, device=device, dtype=torch.float64)
    W0 = np64(m.weight)
    sym = _Symmetric()
    parametrize.register_parametrization(m, "weight", sym)
    assert_true("parametrize.register_parametrization", parametrize.is_parametrized(m, "weight") and not parametrize.is_parametrized(m, "bias"),
                "is_parametrized wrong")
    assert_close("parametrize.register_parametrization", m.parametrizations.weight.original, W0, op="exact",
                 args="original = previous weight")
    symm = np.triu(W0) + np.triu(W0, 1).T
    assert_close("parametrize.register_parametrization", m.weight, symm, op="exact", args="weight = f(original)")
    Mc = np_rng.standard_normal((4, 4))
    parametrize.register_parametrization(m, "weight", _AddConst(torch.tensor(Mc, device=device)))
    assert_close("parametrize.register_parametrization", m.weight, symm + Mc, op="exact", args="chained: g(f(original))")
    Rg = np_rng.standard_normal((4, 4))
    (m.weight * torch.tensor(Rg, device=device)).sum().backward()
    exp_grad = np.triu(Rg) + np.triu(Rg.T, 1)
    assert_close("parametrize.register_parametrization", m.parametrizations.weight.original.grad, exp_grad, op="gradient",
                 args="grad of the original through both parametrizations")
    sym.calls = 0
    with parametrize.cached():
        a = m.weight
        b = m.weight
        assert_true("parametrize.cached", a is b and sym.calls == 1, f"recomputed inside cached(): {sym.calls} calls")
    m.weight
    assert_true("parametrize.cached", sym.calls == 2, f"not recomputed after cached(): {sym.calls} calls")
    state = m.state_dict()
    assert_true("parametrize.register_parametrization", "parametrizations.weight.original" in state,
                f"state_dict keys {sorted(state)}")
    value = np64(m.weight)
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    assert_true("parametrize.remove_parametrizations", type(m) is nn.Linear and isinstance(m.weight, nn.Parameter),
                f"class {type(m).__name__} / weight {type(m.weight).__name__} not restored")
    assert_close("parametrize.remove_parametrizations", m.weight, value, op="exact", args="leave_parametrized=True")
    parametrize.register_parametrization(m, "weight", _Symmetric())
    orig = np64(m.parametrizations.weight.original)
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    assert_close("parametrize.remove_parametrizations", m.weight, orig, op="exact", args="leave_parametrized=False")
    assert_raises("parametrize.remove_parametrizations", ValueError, parametrize.remove_parametrizations, m, "weight",
                  args="not parametrized")
    p = nn.Linear(3, 2, device=device, dtype=torch.float64)
    with torch.no_grad():
        p.bias.copy_(torch.tensor([0.5, 2.0]))
    parametrize.register_parametrization(p, "bias", _Exp())
    assert_close("parametrize.register_parametrization", p.parametrizations.bias.original, np.log([0.5, 2.0]), op="elementwise",
                 args="right_inverse applied at registration")
    assert_close("parametrize.register_parametrization", p.bias, np.array([0.5, 2.0]), op="elementwise", args="exp(log(b)) = b")
    p.bias = torch.tensor([3.0, 0.25], device=device, dtype=torch.float64)
    assert_close("parametrize.register_parametrization", p.parametrizations.bias.original, np.log([3.0, 0.25]), op="elementwise",
                 args="assignment goes through right_inverse")
    assert_close("parametrize.register_parametrization", p.bias, np.array([3.0, 0.25]), op="elementwise", args="assigned value")
