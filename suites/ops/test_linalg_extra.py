"""Operator library: the iterative / randomized linear algebra of torch (torch.lobpcg, torch.svd_lowrank,
torch.pca_lowrank) against numpy.linalg in float64.

lobpcg is checked on SPD matrices with well separated spectra (largest and smallest k eigenpairs vs
numpy.linalg.eigh, the residual ||A x - lambda x||, B-orthonormal eigenvectors, the generalized problem
A x = lambda B x against eigh of B^-1/2 A B^-1/2), and its documented size error. The low-rank SVDs are
exact on a matrix of rank <= q (the randomized range finder captures the whole range): singular values
equal numpy's, U and V have orthonormal columns, U diag(S) V^T reconstructs the input (minus M for
svd_lowrank, minus the column means for pca_lowrank with center=True).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_raises, assert_true


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems (n <= 60) are below every intra-op grain size, so one thread runs the same kernels; with
    two, BLAS worker spin-waits made each lobpcg call 5-10x slower on a loaded 2-core runner."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _spd(np_rng, n, eigvals):
    q, _ = np.linalg.qr(np_rng.standard_normal((n, n)))
    return (q * np.asarray(eigvals)) @ q.T


@pytest.mark.smoke
@pytest.mark.dtypes(torch.float64, torch.float32)
@pytest.mark.parametrize("largest", [True, False])
def test_lobpcg(device, dtype, np_rng, largest):
    """Catches lobpcg returning the wrong end of the spectrum (largest ignored), eigenvalues not
    matching eigh, or vectors that are not eigenvectors (large residual) / not orthonormal."""
    n, k = 24, 3
    # both ends separated from the bulk by a gap of ~3x and a condition number of 100: ~15 iterations either way
    ev = np.concatenate([[10.0, 9.0, 8.0], np.linspace(3.0, 6.0, n - 6), [0.3, 0.2, 0.1]])
    a64 = _spd(np_rng, n, ev)
    a = torch.tensor(a64, dtype=dtype, device=device)
    x0 = torch.tensor(np_rng.standard_normal((n, k)), dtype=dtype, device=device)
    w, v = torch.lobpcg(a, k=k, X=x0, largest=largest, tol=1e-8 if dtype == torch.float64 else 1e-5, niter=100)
    ref = np.sort(np.linalg.eigvalsh(a64))
    want = ref[::-1][:k] if largest else ref[:k]
    order = np.argsort(-want) if largest else np.argsort(want)
    got = w.cpu().double().numpy()
    got_sorted = np.sort(got)[::-1] if largest else np.sort(got)
    # Convergence to tol: eigenvalues to ~tol*|lambda_max| relative; the linalg row is c(n)*u.
    tol = 1e-8 if dtype == torch.float64 else 1e-5
    assert_close("torch.lobpcg", got_sorted, want[order], op="linalg", rtol=tol, atol=tol * ev.max(),
                 args=f"k={k}, largest={largest}")  # iterative: converges to tol, not to rounding
    v64 = v.cpu().double().numpy()
    res = np.linalg.norm(a64 @ v64 - v64 * got[None, :], axis=0)
    assert_true("torch.lobpcg", np.all(res <= 50 * tol * ev.max()), f"residual ||Av - wv|| = {res} too large",
                args=f"largest={largest}")
    assert_close("torch.lobpcg", v64.T @ v64, np.eye(k), op="linalg", rtol=0, atol=50 * tol,
                 args="V^T V = I")  # orthonormality to the convergence tolerance


def test_lobpcg_generalized(device, np_rng):
    """Catches lobpcg ignoring B (solving A x = lambda x instead of A x = lambda B x)."""
    n, k = 30, 2
    a64 = _spd(np_rng, n, np.concatenate([[50.0, 40.0], np.linspace(1, 10, n - 2)]))
    b64 = _spd(np_rng, n, np.linspace(1.0, 3.0, n))
    bl = np.linalg.cholesky(b64)
    bi = np.linalg.inv(bl)
    ref = np.sort(np.linalg.eigvalsh(bi @ a64 @ bi.T))[::-1][:k]
    a = torch.tensor(a64, device=device)
    b = torch.tensor(b64, device=device)
    w, v = torch.lobpcg(a, k=k, B=b, largest=True, tol=1e-8, niter=100)
    assert_close("torch.lobpcg", np.sort(w.cpu().numpy())[::-1], ref, op="linalg", rtol=1e-6, atol=1e-6,
                 args="B=SPD")  # iterative solver converged to tol=1e-8
    v64 = v.cpu().numpy()
    assert_close("torch.lobpcg", v64.T @ b64 @ v64, np.eye(k), op="linalg", rtol=0, atol=1e-6, args="V^T B V = I")


def test_lobpcg_too_small(device):
    """Catches lobpcg silently running where it is documented not applicable (n < 3k)."""
    a = torch.eye(5, dtype=torch.float64, device=device)
    assert_raises("torch.lobpcg", ValueError, torch.lobpcg, a, k=2, args="n=5 < 3*k")


def _low_rank(np_rng, m, n, r, shift=None):
    u = np_rng.standard_normal((m, r))
    v = np_rng.standard_normal((r, n))
    a = u @ v
    return a if shift is None else a + shift


def _check_svd(api, u, s, v, target, q, dtype, args):
    u64, s64, v64 = (x.cpu().double().numpy() for x in (u, s, v))
    ref = np.linalg.svd(target, compute_uv=False)
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    assert_close(api, s64, ref[:q], op="linalg", rtol=tol, atol=tol * ref[0], args=args)
    assert_close(api, u64.T @ u64, np.eye(q), op="linalg", rtol=0, atol=tol * 10, args=args + ", U^T U = I")
    assert_close(api, v64.T @ v64, np.eye(q), op="linalg", rtol=0, atol=tol * 10, args=args + ", V^T V = I")
    assert_close(api, (u64 * s64) @ v64.T, target, op="linalg", rtol=0, atol=tol * ref[0] * 10, args=args + ", U S V^T")


@pytest.mark.dtypes(torch.float64, torch.float32)
def test_svd_lowrank(device, dtype, np_rng):
    """Catches svd_lowrank returning wrong singular values, non-orthonormal factors, a reconstruction off
    the input, or ignoring M (the SVD of A - M)."""
    m, n, r = 50, 30, 4
    a64 = _low_rank(np_rng, m, n, r)
    a = torch.tensor(a64, dtype=dtype, device=device)
    u, s, v = torch.svd_lowrank(a, q=r, niter=2)
    assert_true("torch.svd_lowrank", tuple(u.shape) == (m, r) and tuple(s.shape) == (r,) and tuple(v.shape) == (n, r),
                f"shapes {tuple(u.shape)}, {tuple(s.shape)}, {tuple(v.shape)}", args="q=4")
    _check_svd("torch.svd_lowrank", u, s, v, a64, r, dtype, "q=4")
    # M: a rank-1 shift; the SVD is of A - M (rank r again).
    m64 = np.outer(np_rng.standard_normal(m), np_rng.standard_normal(n))
    u, s, v = torch.svd_lowrank(torch.tensor(a64 + m64, dtype=dtype, device=device), q=r, niter=2,
                                M=torch.tensor(m64, dtype=dtype, device=device))
    _check_svd("torch.svd_lowrank", u, s, v, a64, r, dtype, "q=4, M=rank-1")
    # non-contiguous input: a column-strided view
    big = torch.tensor(np.repeat(a64, 2, axis=1), dtype=dtype, device=device)[:, ::2]
    u, s, v = torch.svd_lowrank(big, q=r)
    _check_svd("torch.svd_lowrank", u, s, v, a64, r, dtype, "q=4, non-contiguous")


@pytest.mark.dtypes(torch.float64, torch.float32)
def test_pca_lowrank(device, dtype, np_rng):
    """Catches pca_lowrank not centering (center=True subtracts the column means) or centering when
    center=False, and wrong singular values / factors."""
    m, n, r = 60, 20, 3
    a64 = _low_rank(np_rng, m, n, r, shift=np_rng.standard_normal(n) * 5)  # nonzero column means
    a = torch.tensor(a64, dtype=dtype, device=device)
    centered = a64 - a64.mean(axis=0, keepdims=True)
    u, s, v = torch.pca_lowrank(a, q=r, center=True, niter=2)
    _check_svd("torch.pca_lowrank", u, s, v, centered, r, dtype, "q=3, center=True")
    b64 = _low_rank(np_rng, m, n, r)
    u, s, v = torch.pca_lowrank(torch.tensor(b64, dtype=dtype, device=device), q=r, center=False, niter=2)
    _check_svd("torch.pca_lowrank", u, s, v, b64, r, dtype, "q=3, center=False")
    assert_raises("torch.pca_lowrank", ValueError, torch.pca_lowrank, a, q=n + 1, args="q > min(m, n)")


class _Tracked(torch.Tensor):
    """A Tensor subclass that logs the torch functions dispatched to it through __torch_function__."""

    seen: ClassVar[list] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.seen.append(func)
        return super().__torch_function__(func, types, args, kwargs or {})


def test_torch_function_override(device, np_rng):
    """lobpcg / svd_lowrank / pca_lowrank are in torch.overrides' overridable set: called on a Tensor subclass
    they dispatch through __torch_function__ (with the function itself), and still return the right answer.
    Catches a Python-level linalg function that bypasses the override protocol (subclasses and modes never
    see it) or loses the result on the subclass path."""
    _Tracked.seen = []
    n, k = 24, 2
    a64 = _spd(np_rng, n, np.concatenate([[10.0, 9.0], np.linspace(1.0, 4.0, n - 2)]))
    a = torch.tensor(a64, device=device).as_subclass(_Tracked)
    w, _ = torch.lobpcg(a, k=k, largest=True, tol=1e-8, niter=100)
    assert_true("torch.lobpcg", torch.lobpcg in _Tracked.seen, "lobpcg did not dispatch __torch_function__")
    assert_close("torch.lobpcg", np.sort(w.cpu().double().numpy())[::-1], [10.0, 9.0], op="linalg", rtol=1e-8, atol=1e-6,
                 args="Tensor subclass")  # iterative: converged to tol=1e-8
    b64 = _low_rank(np_rng, 30, 20, 3)
    b = torch.tensor(b64, device=device).as_subclass(_Tracked)
    for api, fn, target in (("torch.svd_lowrank", torch.svd_lowrank, b64),
                            ("torch.pca_lowrank", torch.pca_lowrank, b64 - b64.mean(0, keepdims=True))):
        u, s, v = fn(b, q=3, niter=2)
        assert_true(api, fn in _Tracked.seen, f"{api} did not dispatch __torch_function__")
        _check_svd(api, u, s, v, target, 3, torch.float64, "Tensor subclass")
