"""Operator library: torch.linalg against NumPy/SciPy in float64 and the documented properties of every
result (ordering, orthonormality, triangularity, pivots, ranks, signs, error paths), not only a
reconstruction.

Inputs are well-conditioned random matrices built with NumPy with a KNOWN condition number kappa
(U diag(s) V^H with chosen singular values), batched, and placed contiguous, with gaps between
elements (``buf[..., 1::2]``) or at a storage offset; sizes n in {1, 33, 65, 129} (every size x
layout at --tier full). The oracle always sees the dtype-rounded input.

Tolerances (derived here, on top of the ``linalg`` row of harness/tolerances.py whose rtol stands for
c(n)*u of a backward-stable algorithm at moderate n): a quantity whose forward error is bounded by
the condition number (solve, inv, cholesky factor, lstsq solution) gets a NORMWISE allowance
``rtol * kappa * ||ref||`` (see _oracles.normwise_atol); residuals and orthonormality (backward
errors) get ``rtol * ||A||`` with no kappa; singular values and Hermitian eigenvalues are perfectly
conditioned (Weyl): ``rtol * ||A||_2``. A halved or transposed result misses every one of these by
orders of magnitude.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.ops._oracles import (LAYOUTS, describe, hermitian_pd, linalg_rtol, matrix_with_singular_values,
                                 normwise_atol, place, random_array, random_unitary, to_numpy, unit_roundoff,
                                 well_conditioned)

SIZES = (1, 33, 65, 129)
DTYPES = (torch.float32, torch.float64, torch.complex64)
KAPPA = 10.0
LinAlgError = getattr(torch.linalg, "LinAlgError", RuntimeError)  # a RuntimeError subclass since 1.13


def _cases(tier):
    """(n, layout) pairs: each size once with the layouts rotated at the default tier, the whole grid at full."""
    if tier == "full":
        return [(n, lay) for n in SIZES for lay in LAYOUTS]
    return list(zip(SIZES, ("contiguous", "gapped", "offset", "gapped")))


def _h(x):
    """Conjugate transpose of the last two dims (NumPy)."""
    return np.conj(np.swapaxes(x, -1, -2))


def _eye_like(k, batch=()):
    return np.broadcast_to(np.eye(k), batch + (k, k))


def _is_complex(dtype):
    return dtype.is_complex


def _norm2(a):
    """Largest 2-norm over a batch of matrices."""
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    return float(np.max(np.linalg.norm(a.reshape((-1,) + a.shape[-2:]), ord=2, axis=(-2, -1))))


def _orthonormal_columns(api, q, dtype, args):
    """Q^H Q = I: the backward error of an orthogonalisation is c(n)*u, elementwise <= rtol."""
    Q = to_numpy(q)
    k = Q.shape[-1]
    assert_close(api, _h(Q) @ Q, _eye_like(k, Q.shape[:-2]), dtype=dtype, rtol=0.0, atol=linalg_rtol(dtype),
                 op="linalg", args=args + ", Q^H Q = I")


# ----------------------------------------------------------------------------------------- solve / inv


@pytest.mark.smoke
@pytest.mark.dtypes(DTYPES)
def test_solve(device, dtype, np_rng, tier):
    """linalg.solve for a batch of matrices and of vectors, left=False, against numpy.linalg.solve, plus the
    backward-error residual; catches a solve that transposes A, ignores left=, mishandles a gapped or
    offset input, or treats a batch of vectors as one matrix."""
    cplx = _is_complex(dtype)
    for n, layout in _cases(tier):
        A0 = well_conditioned(np_rng, n, (2,), cplx, KAPPA)
        A = place(A0, dtype, device, layout)
        Ar = to_numpy(A)
        B = place(random_array(np_rng, (2, n, 3), dtype), dtype, device, layout)
        Br = to_numpy(B)
        args = f"n={n}, {layout}: {describe(A)}"
        X = torch.linalg.solve(A, B)
        ref = np.linalg.solve(Ar, Br)
        assert_close("torch.linalg.solve", X, ref, op="linalg", atol=normwise_atol(dtype, ref, KAPPA),
                     check_dtype=dtype, args=args)
        # backward error: ||A X - B|| <= c u ||A|| ||X|| independent of kappa
        Xr = to_numpy(X)
        assert_close("torch.linalg.solve", Ar @ Xr, Br, dtype=dtype, rtol=0.0,
                     atol=linalg_rtol(dtype) * _norm2(Ar) * float(np.max(np.abs(Xr))) * max(n, 1) ** 0.5,
                     op="linalg", args=args + ", residual A X - B")
        # left=False: X A = B
        Bl = place(random_array(np_rng, (2, 3, n), dtype), dtype, device, layout)
        Xl = torch.linalg.solve(A, Bl, left=False)
        refl = np.swapaxes(np.linalg.solve(np.swapaxes(Ar, -1, -2), np.swapaxes(to_numpy(Bl), -1, -2)), -1, -2)
        assert_close("torch.linalg.solve", Xl, refl, op="linalg", atol=normwise_atol(dtype, refl, KAPPA),
                     args=args + ", left=False")
        # a batch of vectors (*, n) with A (*, n, n)
        bv = place(random_array(np_rng, (2, n), dtype), dtype, device, layout)
        xv = torch.linalg.solve(A, bv)
        refv = np.linalg.solve(Ar, to_numpy(bv)[..., None])[..., 0]
        assert_close("torch.linalg.solve", xv, refv, op="linalg", atol=normwise_atol(dtype, refv, KAPPA),
                     args=args + ", batch of vectors")


@pytest.mark.dtypes(DTYPES)
def test_solve_broadcasting_and_errors(device, dtype, np_rng):
    """solve broadcasts batch dims of A (2,1,n,n) and B (3,n,k) to (2,3,n,k); a singular matrix raises
    LinAlgError and solve_ex reports it in info without raising; catches broadcasting that pairs the wrong
    batch members and a singular input answered with garbage."""
    cplx = _is_complex(dtype)
    n = 9
    A0 = well_conditioned(np_rng, n, (2, 1), cplx, KAPPA)
    B0 = random_array(np_rng, (3, n, 4), dtype)
    A, B = place(A0, dtype, device, "gapped"), place(B0, dtype, device, "offset")
    X = torch.linalg.solve(A, B)
    assert_equal("torch.linalg.solve", tuple(X.shape), (2, 3, n, 4), args="broadcast shape")
    ref = np.linalg.solve(to_numpy(A), to_numpy(B))
    assert_close("torch.linalg.solve", X, ref, op="linalg", atol=normwise_atol(dtype, ref, KAPPA), args="broadcast")
    S = well_conditioned(np_rng, n, (3,), cplx, KAPPA)
    S[1, :, 4] = 0  # an exactly singular member: a zero column gives an exactly zero pivot
    St = place(S, dtype, device)
    assert_raises("torch.linalg.solve", LinAlgError, torch.linalg.solve, St, place(B0, dtype, device),
                  args="singular batch member")
    res = torch.linalg.solve_ex(St, place(B0, dtype, device))
    info = to_numpy(res.info)
    assert_true("torch.linalg.solve_ex", info[0] == 0 and info[2] == 0 and info[1] > 0,
                f"info {info.tolist()} should be nonzero only for the singular member 1", args="singular member")
    assert_raises("torch.linalg.solve_ex", LinAlgError, torch.linalg.solve_ex, St, place(B0, dtype, device),
                  check_errors=True, args="check_errors=True")


@pytest.mark.dtypes(DTYPES)
def test_inv(device, dtype, np_rng, tier):
    """linalg.inv against numpy.linalg.inv and A @ inv(A) = I; a singular matrix raises LinAlgError and
    inv_ex reports info; catches a transposed or unconjugated inverse and a singular input answered with
    inf/garbage silently."""
    cplx = _is_complex(dtype)
    for n, layout in _cases(tier):
        A = place(well_conditioned(np_rng, n, (2,), cplx, KAPPA), dtype, device, layout)
        Ar = to_numpy(A)
        args = f"n={n}, {layout}: {describe(A)}"
        Ai = torch.linalg.inv(A)
        ref = np.linalg.inv(Ar)
        assert_close("torch.linalg.inv", Ai, ref, op="linalg", atol=normwise_atol(dtype, ref, KAPPA),
                     check_dtype=dtype, args=args)
        # ||A A^-1 - I|| <= c u kappa (the residual of an inverse is not backward-stable-small)
        assert_close("torch.linalg.inv", Ar @ to_numpy(Ai), _eye_like(n, (2,)), dtype=dtype, rtol=0.0,
                     atol=linalg_rtol(dtype) * KAPPA * max(n, 1) ** 0.5, op="linalg", args=args + ", A inv(A) = I")
        res = torch.linalg.inv_ex(A)
        assert_equal("torch.linalg.inv_ex", res.info, np.zeros(2, dtype=np.int32), args=args + ", info")
    S = well_conditioned(np_rng, 5, (2,), cplx)
    S[0, 3, :] = 0
    St = place(S, dtype, device)
    assert_raises("torch.linalg.inv", LinAlgError, torch.linalg.inv, St, args="singular")
    info = to_numpy(torch.linalg.inv_ex(St).info)
    assert_true("torch.linalg.inv_ex", info[0] > 0 and info[1] == 0, f"info {info.tolist()}", args="singular member 0")
    e = torch.linalg.inv(torch.empty(0, 0, dtype=dtype, device=device))
    assert_equal("torch.linalg.inv", tuple(e.shape), (0, 0), args="0x0")


@pytest.mark.dtypes(DTYPES)
def test_det_slogdet(device, dtype, np_rng, tier):
    """det, slogdet (sign, logabsdet) against numpy on matrices whose |det| is 1 by construction (so
    n=129 does not overflow float32), batched with a singular member (det 0, sign 0, logabsdet -inf),
    and the 0x0 determinant 1; catches a wrong sign from an odd number of pivot swaps, logabsdet as
    log(det) (NaN for negative det), and a singular matrix reported as tiny but nonzero."""
    cplx = _is_complex(dtype)
    u = unit_roundoff(dtype)
    for n, layout in _cases(tier):
        s = np.geomspace(KAPPA ** 0.5, KAPPA ** -0.5, n) if n > 1 else np.ones(1)
        A0 = matrix_with_singular_values(np_rng, n, n, s, (3,), cplx)
        A0[2, :, 0] = 0  # exactly singular third member
        A = place(A0, dtype, device, layout)
        Ar = to_numpy(A)
        args = f"n={n}, {layout}: {describe(A)}"
        # d log|det| = tr(A^-1 dA): relative error <= n * kappa * u * c; c = 8
        rel = 8 * max(n, 1) * KAPPA * u
        d = torch.linalg.det(A)
        assert_close("torch.linalg.det", d, np.linalg.det(Ar), rtol=rel, atol=0.0, check_dtype=dtype, args=args)
        sign, logabs = torch.linalg.slogdet(A)
        nsign, nlog = np.linalg.slogdet(Ar)
        assert_close("torch.linalg.slogdet", logabs, nlog, rtol=0.0, atol=rel,
                     check_dtype=torch.float32 if dtype != torch.float64 else torch.float64, args=args + ", logabsdet")
        if cplx:
            assert_close("torch.linalg.slogdet", sign, nsign, rtol=0.0, atol=rel, args=args + ", sign (unit complex)")
        else:
            assert_equal("torch.linalg.slogdet", sign, nsign, args=args + ", sign")
        assert_equal("torch.linalg.slogdet", to_numpy(logabs)[2], -np.inf, args=args + ", singular logabsdet")
        assert_equal("torch.linalg.det", to_numpy(d)[2], 0.0, args=args + ", singular det")
    e = torch.empty(0, 0, dtype=dtype, device=device)
    assert_equal("torch.linalg.det", complex(torch.linalg.det(e).item()), 1 + 0j, args="0x0")
    assert_equal("torch.linalg.slogdet", float(torch.linalg.slogdet(e).logabsdet.item()), 0.0, args="0x0")


# ----------------------------------------------------------------------------------------- eigen


def _hermitian(np_rng, n, batch, cplx):
    """A random Hermitian (indefinite) matrix with eigenvalues uniform in [-2, 2]."""
    q = random_unitary(np_rng, n, batch, cplx)
    lam = np.sort(np_rng.uniform(-2, 2, size=batch + (n,)), axis=-1)
    return (q * lam[..., None, :]) @ _h(q)


@pytest.mark.dtypes(DTYPES)
def test_eigh(device, dtype, np_rng, tier):
    """eigh/eigvalsh with UPLO='L' and 'U' (the other triangle filled with junk that must be ignored):
    real eigenvalues in ascending order equal to numpy's, orthonormal eigenvectors, A V = V diag(w);
    catches an ignored UPLO, descending or unsorted eigenvalues, non-orthogonal vectors and a
    complex eigenvalue dtype."""
    cplx = _is_complex(dtype)
    rdt = torch.float64 if dtype == torch.float64 else torch.float32
    for n, layout in _cases(tier):
        H = _hermitian(np_rng, n, (2,), cplx)
        H = to_numpy(place(H, dtype, "cpu"))  # dtype-rounded Hermitian matrix
        H = (H + _h(H)) / 2
        nrm = _norm2(H)
        ref_w = np.linalg.eigvalsh(H)
        junk = random_array(np_rng, H.shape, dtype, -50, 50)
        for uplo in ("L", "U"):
            tri = np.tril(H) if uplo == "L" else np.triu(H)
            other = np.triu(junk, 1) if uplo == "L" else np.tril(junk, -1)
            A = place(tri + other, dtype, device, layout)
            args = f"n={n}, UPLO={uplo}, {layout}: {describe(A)}"
            w, V = torch.linalg.eigh(A, UPLO=uplo)
            assert_equal("torch.linalg.eigh", w.dtype, rdt, args=args + ", eigenvalue dtype")
            W = to_numpy(w)
            assert_true("torch.linalg.eigh", np.all(np.diff(W, axis=-1) >= 0), "eigenvalues not ascending", args=args)
            # Weyl: |w - w*| <= ||dA||_2 <= c u ||A||_2
            assert_close("torch.linalg.eigh", w, ref_w, rtol=0.0, atol=linalg_rtol(dtype) * nrm, args=args + ", eigenvalues")
            _orthonormal_columns("torch.linalg.eigh", V, dtype, args)
            Vr = to_numpy(V)
            assert_close("torch.linalg.eigh", H @ Vr, Vr * W[..., None, :], dtype=dtype, rtol=0.0,
                         atol=linalg_rtol(dtype) * nrm, op="linalg", args=args + ", A V = V diag(w)")
            wv = torch.linalg.eigvalsh(A, UPLO=uplo)
            assert_close("torch.linalg.eigvalsh", wv, ref_w, rtol=0.0, atol=linalg_rtol(dtype) * nrm, args=args)


def _normal_matrix(np_rng, n, cplx):
    """A normal matrix Q diag-ish(lambda) Q^H with known, separated eigenvalues (perfectly conditioned).
    Real: 2x2 rotation-scale blocks [[a, b], [-b, a]] give the pairs a +- ib (real orthogonal Q)."""
    reals = np_rng.permutation(np.linspace(-1.5, 1.5, n))
    if cplx:
        lam = reals + 1j * np_rng.uniform(-1, 1, n)
        q = random_unitary(np_rng, n, (), True)
        return (q * lam) @ _h(q), lam
    T = np.zeros((n, n))
    lam = []
    i = 0
    for k in range(n // 2):
        a, b = reals[k], np_rng.uniform(0.1, 1.0) * np_rng.choice([-1, 1])
        T[i:i + 2, i:i + 2] = [[a, b], [-b, a]]
        lam += [a + 1j * b, a - 1j * b]
        i += 2
    if n % 2:
        T[i, i] = reals[-1]
        lam.append(reals[-1] + 0j)
    q = random_unitary(np_rng, n, (), False)
    return q @ T @ q.T, np.array(lam)


def _match(got, exp):
    """Indices pairing each expected eigenvalue with its nearest computed one; None if not a bijection."""
    idx = np.argmin(np.abs(got[None, :] - exp[:, None]), axis=1)
    return idx if len(set(idx.tolist())) == len(idx) else None


@pytest.mark.dtypes(DTYPES)
def test_eig(device, dtype, np_rng, tier):
    """eig/eigvals of non-symmetric (normal) matrices with known eigenvalues: complex results, every
    eigenvalue found (conjugate pairs for real input), unit-norm eigenvectors with A v = lambda v, and
    eigvals equal to eig's values; catches a real-only eig, dropped imaginary parts and unnormalised
    vectors."""
    cplx = _is_complex(dtype)
    cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
    for n, layout in _cases(tier):
        A0, lam = _normal_matrix(np_rng, n, cplx)
        A = place(A0, dtype, device, layout)
        Ar = to_numpy(A)
        nrm = _norm2(Ar)
        args = f"n={n}, {layout}: {describe(A)}"
        w, V = torch.linalg.eig(A)
        assert_equal("torch.linalg.eig", (w.dtype, V.dtype), (cdt, cdt), args=args + ", dtypes")
        W = to_numpy(w)
        idx = _match(W, lam)
        assert_true("torch.linalg.eig", idx is not None, f"eigenvalues {W[:6]} do not match {lam[:6]}", args=args)
        # normal matrix: eigenvalues perfectly conditioned, |dl| <= ||dA||_2 <= c u ||A||
        assert_close("torch.linalg.eig", W[idx], lam, dtype=dtype, rtol=0.0, atol=linalg_rtol(dtype) * nrm,
                     op="linalg", args=args + ", eigenvalues")
        Vr = to_numpy(V)
        assert_close("torch.linalg.eig", np.linalg.norm(Vr, axis=0), np.ones(n), dtype=dtype, op="linalg",
                     args=args + ", unit-norm eigenvectors")
        assert_close("torch.linalg.eig", Ar @ Vr, Vr * W[None, :], dtype=dtype, rtol=0.0,
                     atol=linalg_rtol(dtype) * nrm, op="linalg", args=args + ", A V = V diag(w)")
        wv = to_numpy(torch.linalg.eigvals(A))
        jdx = _match(wv, lam)
        assert_true("torch.linalg.eigvals", jdx is not None, "eigvals do not match the spectrum", args=args)
        assert_close("torch.linalg.eigvals", wv[jdx], lam, dtype=dtype, rtol=0.0, atol=linalg_rtol(dtype) * nrm,
                     op="linalg", args=args)


# ----------------------------------------------------------------------------------------- svd / qr


def _shapes(n, tier):
    """Square, tall and wide (m, k) for a size; at the default tier the two larger sizes take one shape
    each (65: tall, 129: square) to keep the run short; --tier full runs all three everywhere."""
    if tier == "full" or n < 65:
        return [(n, n), (n + 5, n), (n, n + 5)]
    return [(n + 5, n)] if n == 65 else [(n, n)]


@pytest.mark.dtypes(DTYPES)
def test_svd(device, dtype, np_rng, tier):
    """svd (full_matrices True/False) and svdvals on square, tall and wide matrices with known singular
    values: shapes of U/S/Vh, S real, non-negative and descending and equal to the known values,
    orthonormal U and V, U diag(S) Vh = A; catches unsorted or signed singular values, full_matrices
    ignored, Vh returned as V, and non-orthogonal factors."""
    cplx = _is_complex(dtype)
    rdt = torch.float64 if dtype == torch.float64 else torch.float32
    for n, layout in _cases(tier):
        for m, k in _shapes(n, tier):
            r = min(m, k)
            s = np.sort(np_rng.uniform(0.1, 10.0, r))[::-1]
            A = place(matrix_with_singular_values(np_rng, m, k, s, (2,), cplx), dtype, device, layout)
            Ar = to_numpy(A)
            ref_s = np.linalg.svd(Ar, compute_uv=False)
            args = f"{m}x{k}, {layout}: {describe(A)}"
            for full in (True, False):
                U, S, Vh = torch.linalg.svd(A, full_matrices=full)
                a = args + f", full_matrices={full}"
                exp_shapes = ((2, m, m), (2, r), (2, k, k)) if full else ((2, m, r), (2, r), (2, r, k))
                assert_equal("torch.linalg.svd", (tuple(U.shape), tuple(S.shape), tuple(Vh.shape)), exp_shapes, args=a)
                assert_equal("torch.linalg.svd", S.dtype, rdt, args=a + ", S dtype")
                Sr = to_numpy(S)
                assert_true("torch.linalg.svd", np.all(Sr >= 0) and np.all(np.diff(Sr, axis=-1) <= 0),
                            f"singular values not non-negative descending: {Sr[0, :5]}", args=a)
                assert_close("torch.linalg.svd", S, ref_s, rtol=0.0, atol=linalg_rtol(dtype) * 10.0, args=a + ", S")
                _orthonormal_columns("torch.linalg.svd", U, dtype, a + ", U")
                _orthonormal_columns("torch.linalg.svd", Vh.mH, dtype, a + ", V")
                Ur, Vhr = to_numpy(U), to_numpy(Vh)
                recon = (Ur[..., :, :r] * Sr[..., None, :]) @ Vhr[..., :r, :]
                assert_close("torch.linalg.svd", recon, Ar, dtype=dtype, rtol=0.0, atol=linalg_rtol(dtype) * 10.0,
                             op="linalg", args=a + ", U S Vh = A")
            assert_close("torch.linalg.svdvals", torch.linalg.svdvals(A), ref_s, rtol=0.0,
                         atol=linalg_rtol(dtype) * 10.0, check_dtype=rdt, args=args)


@pytest.mark.dtypes(DTYPES)
def test_qr(device, dtype, np_rng, tier):
    """qr in every mode ('reduced', 'complete', 'r') on square, tall and wide matrices: shapes, Q with
    orthonormal columns, R exactly upper triangular, Q R = A, |R| equal to numpy's (R is unique up to
    a unit scaling of its rows), and mode='r' returning an empty Q; catches a mode ignored, R with
    nonzero entries below the diagonal, and a Q R that does not reconstruct."""
    cplx = _is_complex(dtype)
    for n, layout in _cases(tier):
        for m, k in _shapes(n, tier):
            r = min(m, k)
            A = place(matrix_with_singular_values(np_rng, m, k, np.geomspace(KAPPA, 1, r), (2,), cplx),
                      dtype, device, layout)
            Ar = to_numpy(A)
            base = f"{m}x{k}, {layout}: {describe(A)}"
            for mode, qs, rs in (("reduced", (m, r), (r, k)), ("complete", (m, m), (m, k)), ("r", None, (r, k))):
                args = base + f", mode={mode}"
                Q, R = torch.linalg.qr(A, mode=mode)
                assert_equal("torch.linalg.qr", tuple(R.shape), (2,) + rs, args=args + ", R shape")
                Rr = to_numpy(R)
                assert_equal("torch.linalg.qr", np.tril(Rr, -1), np.zeros_like(Rr), args=args + ", R upper triangular")
                ref_r = np.linalg.qr(Ar, mode="r" if mode == "r" else ("complete" if mode == "complete" else "reduced"))
                ref_r = ref_r if mode == "r" else ref_r[1]
                # |R_ij| is invariant under R -> D R with D unitary diagonal; normwise error <= c u kappa ||A||
                assert_close("torch.linalg.qr", np.abs(Rr), np.abs(ref_r), dtype=dtype, rtol=0.0,
                             atol=normwise_atol(dtype, ref_r, KAPPA), op="linalg", args=args + ", |R|")
                if mode == "r":
                    assert_equal("torch.linalg.qr", Q.numel(), 0, args=args + ", Q empty")
                    continue
                assert_equal("torch.linalg.qr", tuple(Q.shape), (2,) + qs, args=args + ", Q shape")
                _orthonormal_columns("torch.linalg.qr", Q, dtype, args)
                assert_close("torch.linalg.qr", to_numpy(Q) @ Rr, Ar, dtype=dtype, rtol=0.0,
                             atol=normwise_atol(dtype, Ar, 1.0), op="linalg", args=args + ", Q R = A")


# ----------------------------------------------------------------------------------------- cholesky / lu


@pytest.mark.dtypes(DTYPES)
def test_cholesky(device, dtype, np_rng, tier):
    """cholesky (upper=False/True) against numpy.linalg.cholesky: lower (or upper) triangular with a
    real positive diagonal, L L^H = A, U = L^H; cholesky_ex info is 0; catches upper= ignored, a
    missing conjugate in the complex upper factor and junk left in the unused triangle."""
    cplx = _is_complex(dtype)
    for n, layout in _cases(tier):
        A = place(hermitian_pd(np_rng, n, (2,), cplx, KAPPA), dtype, device, layout)
        Ar = to_numpy(A)
        Ar = (Ar + _h(Ar)) / 2
        ref = np.linalg.cholesky(Ar)
        args = f"n={n}, {layout}: {describe(A)}"
        L = torch.linalg.cholesky(A)
        Lr = to_numpy(L)
        assert_equal("torch.linalg.cholesky", np.triu(Lr, 1), np.zeros_like(Lr), args=args + ", lower triangular")
        diag = np.diagonal(Lr, axis1=-2, axis2=-1)
        assert_true("torch.linalg.cholesky", np.all(diag.real > 0) and np.all(diag.imag == 0),
                    "diagonal not real positive", args=args)
        # the Cholesky factor's relative perturbation is <= c u kappa
        assert_close("torch.linalg.cholesky", L, ref, op="linalg", atol=normwise_atol(dtype, ref, KAPPA), args=args)
        assert_close("torch.linalg.cholesky", Lr @ _h(Lr), Ar, dtype=dtype, rtol=0.0,
                     atol=normwise_atol(dtype, Ar, 1.0), op="linalg", args=args + ", L L^H = A")
        U = torch.linalg.cholesky(A, upper=True)
        Ur = to_numpy(U)
        assert_equal("torch.linalg.cholesky", np.tril(Ur, -1), np.zeros_like(Ur), args=args + ", upper=True triangular")
        assert_close("torch.linalg.cholesky", U, _h(ref), op="linalg", atol=normwise_atol(dtype, ref, KAPPA),
                     args=args + ", upper=True is L^H")
        res = torch.linalg.cholesky_ex(A)
        assert_equal("torch.linalg.cholesky_ex", res.info, np.zeros(2, dtype=np.int32), args=args + ", info")
        assert_close("torch.linalg.cholesky_ex", res.L, ref, op="linalg", atol=normwise_atol(dtype, ref, KAPPA), args=args)


@pytest.mark.dtypes(DTYPES)
def test_cholesky_not_pd(device, dtype, np_rng):
    """A matrix whose leading minor of order 3 is the first that is not positive definite: cholesky
    raises LinAlgError, cholesky_ex reports info = 3 for that batch member and 0 for a PD one, and
    check_errors=True raises; catches a non-PD input answered with NaNs silently and a wrong info."""
    cplx = _is_complex(dtype)
    good = hermitian_pd(np_rng, 6, (), cplx)
    bad = np.diag([2.0, 1.0, -1.0, 3.0, 1.0, 1.0]).astype(good.dtype)
    A = place(np.stack([good, bad]), dtype, device, "gapped")
    assert_raises("torch.linalg.cholesky", LinAlgError, torch.linalg.cholesky, A, args="not PD")
    assert_raises("torch.linalg.cholesky", LinAlgError, torch.linalg.cholesky, A, upper=True, args="not PD, upper")
    info = torch.linalg.cholesky_ex(A).info
    assert_equal("torch.linalg.cholesky_ex", info, np.array([0, 3], dtype=np.int32), args="leading minor 3 not PD")
    assert_raises("torch.linalg.cholesky_ex", LinAlgError, torch.linalg.cholesky_ex, A, check_errors=True,
                  args="check_errors=True")


@pytest.mark.dtypes(DTYPES)
def test_lu(device, dtype, np_rng, tier):
    """lu / lu_factor / lu_unpack on square, tall and wide matrices: P a permutation matrix, L unit
    lower triangular with |L_ij| <= 1 (partial pivoting), U upper triangular, P L U = A, pivots 1-based
    int32 with pivots[i] >= i+1, lu_unpack(lu_factor(A)) = lu(A), and (float64) the same P, L, U as
    scipy.linalg.lu; pivot=False is documented as CUDA-only; catches a missing row exchange, 0-based
    pivots, a non-unit L diagonal and a wrong permutation direction (L U = P A instead of P L U = A)."""
    sl = pytest.importorskip("scipy.linalg", reason="SciPy (the ops extra) is the oracle of P, L, U")
    cplx = _is_complex(dtype)
    for n, layout in _cases(tier):
        for m, k in _shapes(n, tier):
            r = min(m, k)
            A = place(matrix_with_singular_values(np_rng, m, k, np.geomspace(KAPPA, 1, r), (2,), cplx),
                      dtype, device, layout)
            Ar = to_numpy(A)
            args = f"{m}x{k}, {layout}: {describe(A)}"
            P, L, U = torch.linalg.lu(A)
            Pr, Lr, Ur = to_numpy(P), to_numpy(L), to_numpy(U)
            assert_equal("torch.linalg.lu", (tuple(P.shape), tuple(L.shape), tuple(U.shape)),
                         ((2, m, m), (2, m, r), (2, r, k)), args=args + ", shapes")
            is_perm = np.all((Pr == 0) | (Pr == 1)) and np.all(Pr.sum(-1) == 1) and np.all(Pr.sum(-2) == 1)
            assert_true("torch.linalg.lu", is_perm, "P is not a permutation matrix", args=args)
            assert_equal("torch.linalg.lu", np.diagonal(Lr, axis1=-2, axis2=-1), np.ones((2, r)), args=args + ", unit diag L")
            assert_equal("torch.linalg.lu", np.triu(Lr, 1), np.zeros_like(Lr), args=args + ", L lower")
            assert_equal("torch.linalg.lu", np.tril(Ur, -1), np.zeros_like(Ur), args=args + ", U upper")
            # complex pivot search maximises cabs1 = |Re| + |Im| (LAPACK i?amax), so
            # |l| = |a| / |p| <= cabs1(a) / (cabs1(p) / sqrt 2) <= sqrt 2; real: |l| <= 1
            bound = math.sqrt(2) if cplx else 1.0
            assert_true("torch.linalg.lu", np.all(np.abs(Lr) <= bound * (1 + 4 * unit_roundoff(dtype))),
                        f"|L| max {np.abs(Lr).max()} > {bound}: not partial pivoting", args=args)
            # backward error of partial pivoting: c n u rho ||A||, growth rho small for random matrices
            assert_close("torch.linalg.lu", Pr @ Lr @ Ur, Ar, dtype=dtype, rtol=0.0,
                         atol=normwise_atol(dtype, Ar, 1.0), op="linalg", args=args + ", P L U = A")
            if dtype == torch.float64:
                for b in range(2):
                    sp, slo, sup = sl.lu(Ar[b])
                    assert_equal("torch.linalg.lu", Pr[b], sp, args=args + f", P vs scipy (member {b})")
                    assert_close("torch.linalg.lu", L[b], slo, op="linalg", args=args + ", L vs scipy")
                    assert_close("torch.linalg.lu", U[b], sup, op="linalg", atol=normwise_atol(dtype, sup), args=args + ", U vs scipy")
            LU, piv = torch.linalg.lu_factor(A)
            assert_equal("torch.linalg.lu_factor", (piv.dtype, tuple(piv.shape)), (torch.int32, (2, r)), args=args)
            pv = to_numpy(piv)
            assert_true("torch.linalg.lu_factor", np.all(pv >= np.arange(1, r + 1)) and np.all(pv <= m),
                        f"pivots {pv[0, :8]} not 1-based with pivots[i] >= i+1", args=args)
            P2, L2, U2 = torch.lu_unpack(LU, piv)
            for name, x, y in (("P", P2, P), ("L", L2, L), ("U", U2, U)):
                assert_equal("torch.lu_unpack", x, y, args=args + f", {name} vs linalg.lu")
            res = torch.linalg.lu_factor_ex(A)
            assert_equal("torch.linalg.lu_factor_ex", res.info, np.zeros(2, dtype=np.int32), args=args + ", info")
    if device == "cpu":
        assert_raises("torch.linalg.lu", RuntimeError, torch.linalg.lu, place(np.eye(3), dtype, device), pivot=False,
                      args="pivot=False on CPU (documented CUDA-only)")
    else:
        A = place(well_conditioned(np_rng, 8, (), cplx) + 8 * np.eye(8), dtype, device)
        P, L, U = torch.linalg.lu(A, pivot=False)
        assert_equal("torch.linalg.lu", P.numel(), 0, args="pivot=False: P empty")
        assert_close("torch.linalg.lu", to_numpy(L) @ to_numpy(U), to_numpy(A), dtype=dtype, op="linalg", args="pivot=False")


@pytest.mark.dtypes(DTYPES)
def test_lu_solve(device, dtype, np_rng, tier):
    """lu_solve(LU, pivots, B) with left=True/False and adjoint=False/True against numpy.linalg.solve of
    A, A^H and the right-hand forms; catches adjoint= solving with A^T instead of A^H (complex), left=
    ignored and pivots applied in the wrong order."""
    cplx = _is_complex(dtype)
    for n, layout in _cases(tier):
        A = place(well_conditioned(np_rng, n, (2,), cplx, KAPPA), dtype, device, layout)
        Ar = to_numpy(A)
        LU, piv = torch.linalg.lu_factor(A)
        for left in (True, False):
            for adjoint in (False, True):
                shape = (2, n, 3) if left else (2, 3, n)
                B = place(random_array(np_rng, shape, dtype), dtype, device, layout)
                Br = to_numpy(B)
                M = _h(Ar) if adjoint else Ar
                ref = np.linalg.solve(M, Br) if left else _h(np.linalg.solve(_h(M), _h(Br)))
                X = torch.linalg.lu_solve(LU, piv, B, left=left, adjoint=adjoint)
                assert_close("torch.linalg.lu_solve", X, ref, op="linalg", atol=normwise_atol(dtype, ref, KAPPA),
                             args=f"n={n}, {layout}, left={left}, adjoint={adjoint}")


# ----------------------------------------------------------------------------------------- lstsq


def _tall_problem(np_rng, m, n, dtype, kappa, batch=(2,)):
    cplx = _is_complex(dtype)
    A = matrix_with_singular_values(np_rng, m, n, np.geomspace(kappa, 1, n), batch, cplx)
    return A, random_array(np_rng, batch + (m, 3), dtype)


@pytest.mark.dtypes(DTYPES)
def test_lstsq(device, dtype, np_rng, tier):
    """lstsq with every CPU driver (gels, gelsy, gelsd, gelss) on tall full-rank problems against
    numpy.linalg.lstsq: the solution; residuals ||A X - B||^2 per column where documented (gels, gelsd,
    gelss); rank n for the rank-revealing drivers and an empty rank for gels; singular values
    (descending, equal to numpy's) for gelsd/gelss and empty otherwise; catches a driver argument
    ignored, residuals not squared, and rank/singular values missing or swapped."""
    cplx = _is_complex(dtype)
    drivers = ("gels", "gelsy", "gelsd", "gelss") if device == "cpu" else ("gels",)
    for n, layout in _cases(tier):
        m = n + 7
        A0, B0 = _tall_problem(np_rng, m, n, dtype, KAPPA)
        A, B = place(A0, dtype, device, layout), place(B0, dtype, device, layout)
        Ar, Br = to_numpy(A), to_numpy(B)
        ref = np.stack([np.linalg.lstsq(Ar[b], Br[b], rcond=None)[0] for b in range(2)])
        resid = np.sum(np.abs(Ar @ ref - Br) ** 2, axis=-2)
        sv = np.linalg.svd(Ar, compute_uv=False)
        # least-squares sensitivity: kappa + kappa^2 * ||r|| / (||A|| ||x||)
        eta = float(np.sqrt(resid.max())) / (_norm2(Ar) * float(np.linalg.norm(ref, axis=-2).min()))
        factor = KAPPA + KAPPA ** 2 * eta
        for driver in drivers:
            args = f"{m}x{n}, driver={driver}, {layout}: {describe(A)}"
            out = torch.linalg.lstsq(A, B, driver=driver)
            assert_close("torch.linalg.lstsq", out.solution, ref, op="linalg",
                         atol=normwise_atol(dtype, ref, factor), check_dtype=dtype, args=args + ", solution")
            if driver != "gelsy":  # gelsy residuals: test_lstsq_gelsy_residuals (documented, not computed)
                # |d ||r||^2| = 2 ||r|| ||dr||, ||dr|| <= c u kappa ||A|| ||x||
                ratm = 2 * float(np.sqrt(resid.max())) * linalg_rtol(dtype) * KAPPA * _norm2(Ar) * float(np.abs(ref).max()) * n ** 0.5
                assert_close("torch.linalg.lstsq", out.residuals, resid, rtol=0.0, atol=max(ratm, linalg_rtol(dtype)),
                             args=args + ", residuals")
            if driver == "gels":
                assert_equal("torch.linalg.lstsq", out.rank.numel(), 0, args=args + ", rank empty for gels")
            else:
                assert_equal("torch.linalg.lstsq", out.rank, np.full(2, n), args=args + ", rank")
            if driver in ("gelsd", "gelss"):
                assert_close("torch.linalg.lstsq", out.singular_values, sv, rtol=0.0,
                             atol=linalg_rtol(dtype) * KAPPA, args=args + ", singular values")
            else:
                assert_equal("torch.linalg.lstsq", out.singular_values.numel(), 0, args=args + ", singular values empty")


@pytest.mark.devices("cpu")
@pytest.mark.dtypes(torch.float64, torch.complex64)
def test_lstsq_rank_deficient(device, dtype, np_rng):
    """Rank-deficient A (rank 4 of 7 columns) with the rank-revealing drivers and rcond: the rank is 4
    for every member of a batch, gelsd/gelss return numpy's minimum-norm solution, and residuals are
    empty (not full rank); catches a rank computed from stale workspace and a non-minimum-norm answer."""
    cplx = _is_complex(dtype)
    s = [5.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0]
    A0 = matrix_with_singular_values(np_rng, 10, 7, s, (3,), cplx)
    A0[0] = matrix_with_singular_values(np_rng, 10, 7, [5.0, 4, 3, 2, 1.5, 1.2, 1.0], (), cplx)  # full rank
    B0 = random_array(np_rng, (3, 10, 2), dtype)
    A, B = place(A0, dtype, device, "gapped"), place(B0, dtype, device)
    Ar, Br = to_numpy(A), to_numpy(B)
    rcond = 1e-4
    for driver in ("gelsd", "gelss"):  # gelsy: test_lstsq_gelsy_rank
        out = torch.linalg.lstsq(A, B, rcond=rcond, driver=driver)
        assert_equal("torch.linalg.lstsq", out.rank, np.array([7, 4, 4]), args=f"driver={driver}, batched rank")
        assert_equal("torch.linalg.lstsq", out.residuals.numel(), 0, args=f"driver={driver}, residuals empty")
        ref = np.stack([np.linalg.lstsq(Ar[b], Br[b], rcond=rcond)[0] for b in range(3)])
        assert_close("torch.linalg.lstsq", out.solution, ref, op="linalg", atol=normwise_atol(dtype, ref, 5.0),
                     args=f"driver={driver}, minimum-norm solution")


@pytest.mark.devices("cpu")
@pytest.mark.dtypes(torch.float64, torch.complex64)
def test_lstsq_gelsy_rank(device, dtype, np_rng):
    """gelsy (QR with column pivoting) reveals the rank of every batch member, including one whose first
    column is zero after a full-rank member: rank 4, and A X = the projection of B (a consistent
    right-hand side is solved exactly). torch 2.13 reuses the pivot array JPVT across the batch without
    zeroing it, so the pivoting is switched off and the rank comes out 0 (pytorch/pytorch#187411, fixed
    by #187436); kept apart so the expectation manifest can name it."""
    cplx = _is_complex(dtype)
    full = matrix_with_singular_values(np_rng, 10, 7, [5.0, 4, 3, 2, 1.5, 1.2, 1.0], (), cplx)
    low = matrix_with_singular_values(np_rng, 10, 6, [5.0, 3.0, 2.0, 1.0, 0.0, 0.0], (), cplx)
    low = np.concatenate([np.zeros((10, 1), dtype=low.dtype), low], axis=1)  # zero first column, rank 4
    A = place(np.stack([full, low]), dtype, device)
    Ar = to_numpy(A)
    X0 = random_array(np_rng, (2, 7, 2), dtype)
    B = place(Ar @ X0, dtype, device)
    out = torch.linalg.lstsq(A, B, rcond=1e-4, driver="gelsy")
    assert_equal("torch.linalg.lstsq", out.rank, np.array([7, 4]), args="driver=gelsy, batched rank")
    assert_close("torch.linalg.lstsq", Ar @ to_numpy(out.solution), to_numpy(B), dtype=dtype, rtol=0.0,
                 atol=normwise_atol(dtype, to_numpy(B), 5.0), op="linalg", args="driver=gelsy, A X = B (consistent)")


@pytest.mark.devices("cpu")
@pytest.mark.dtypes(torch.float64)
def test_lstsq_gelsy_residuals(device, dtype, np_rng):
    """The documented contract: residuals are computed when m > n and every matrix is full rank, for any
    driver. torch 2.13 returns an empty tensor for driver='gelsy' (pytorch/pytorch#56483); kept as a
    separate test so the expectation manifest can name it."""
    A0, B0 = _tall_problem(np_rng, 12, 5, dtype, KAPPA)
    A, B = place(A0, dtype, device), place(B0, dtype, device)
    Ar, Br = to_numpy(A), to_numpy(B)
    ref = np.stack([np.linalg.lstsq(Ar[b], Br[b], rcond=None)[0] for b in range(2)])
    resid = np.sum(np.abs(Ar @ ref - Br) ** 2, axis=-2)
    out = torch.linalg.lstsq(A, B, driver="gelsy")
    assert_close("torch.linalg.lstsq", out.residuals, resid, op="linalg", args="driver=gelsy, residuals")


# ----------------------------------------------------------------------------------------- norms


VECTOR_ORDS = (2, 1, float("inf"), float("-inf"), 0, 3, 0.5, -1, -2)


def _np_vector_norm(x, ordv, axis, keepdims):
    a = np.abs(x)
    if ordv == float("inf"):
        r = a.max(axis=axis, keepdims=keepdims)
    elif ordv == float("-inf"):
        r = a.min(axis=axis, keepdims=keepdims)
    elif ordv == 0:
        r = (a != 0).sum(axis=axis, keepdims=keepdims).astype(np.float64)
    else:
        with np.errstate(divide="ignore"):
            r = np.sum(a ** ordv, axis=axis, keepdims=keepdims) ** (1.0 / ordv)
    return r


@pytest.mark.dtypes(DTYPES)
def test_vector_norm(device, dtype, np_rng):
    """vector_norm for every ord (2, 1, inf, -inf, 0, 3, 0.5, -1, -2), dim None/int/tuple/negative,
    keepdim, on a gapped 3-D input with exact zeros, and a 40,000-element vector (chunked reduction);
    real result dtype for complex input; catches a wrong ord formula (e.g. -inf as max), a wrong
    reduced dim, ignored keepdim and a zero count for ord=0 that counts all elements."""
    x0 = random_array(np_rng, (4, 5, 6), dtype, -3, 3)
    x0[1, 2, :3] = 0
    x = place(x0, dtype, device, "gapped")
    X = to_numpy(x)
    rdt = torch.float64 if dtype == torch.float64 else torch.float32
    for ordv in VECTOR_ORDS:
        for dim in (None, 1, -1, (0, 2)):
            for keepdim in (False, True):
                got = torch.linalg.vector_norm(x, ord=ordv, dim=dim, keepdim=keepdim)
                axis = None if dim is None else dim
                exp = _np_vector_norm(X, ordv, axis, keepdim)
                if dim is None and keepdim:
                    exp = np.reshape(exp, (1, 1, 1))
                assert_close("torch.linalg.vector_norm", got, exp, op="reduction", check_dtype=rdt,
                             args=f"ord={ordv}, dim={dim}, keepdim={keepdim}")
    big = place(random_array(np_rng, (40_000,), dtype), dtype, device, "offset")
    B = to_numpy(big)
    for ordv in (2, 1, float("inf"), 3):
        assert_close("torch.linalg.vector_norm", torch.linalg.vector_norm(big, ord=ordv),
                     _np_vector_norm(B, ordv, None, False), op="reduction", args=f"40000 elements, ord={ordv}")


@pytest.mark.dtypes(torch.float32, torch.complex64)
def test_vector_norm_dtype(device, dtype, np_rng):
    """vector_norm(dtype=float64/complex128) casts BEFORE reducing: the result of 40,000 float32 values is
    within float64 accuracy of the float64 norm of the rounded input, and real-valued; catches a dtype=
    that only casts the float32 result."""
    x = place(random_array(np_rng, (40_000,), dtype), dtype, device, "gapped")
    X = to_numpy(x)
    wide = torch.complex128 if dtype.is_complex else torch.float64
    for ordv in (2, 1, 3):
        got = torch.linalg.vector_norm(x, ord=ordv, dtype=wide)
        assert_close("torch.linalg.vector_norm", got, _np_vector_norm(X, ordv, None, False), op="reduction",
                     dtype=torch.float64, check_dtype=torch.float64, args=f"dtype={wide}, ord={ordv}")


MATRIX_ORDS = ("fro", "nuc", float("inf"), float("-inf"), 1, -1, 2, -2)


@pytest.mark.dtypes(DTYPES)
def test_matrix_norm(device, dtype, np_rng):
    """matrix_norm for every ord ('fro', 'nuc', inf, -inf, 1, -1, 2, -2) over dim=(-2,-1), (0, 2) and
    (2, 0), keepdim, dtype=, against numpy.linalg.norm; catches row and column sums swapped (inf vs 1),
    dim order ignored, 'nuc' as 'fro' and -2 as the largest singular value."""
    x = place(random_array(np_rng, (3, 4, 5), dtype, -2, 2), dtype, device, "gapped")
    X = to_numpy(x)
    rdt = torch.float64 if dtype == torch.float64 else torch.float32
    for ordv in MATRIX_ORDS:
        for dim in ((-2, -1), (0, 2), (2, 0)):
            for keepdim in (False, True):
                got = torch.linalg.matrix_norm(x, ord=ordv, dim=dim, keepdim=keepdim)
                exp = np.linalg.norm(X, ord=ordv, axis=dim, keepdims=keepdim)
                tol_op = "linalg" if ordv in ("nuc", 2, -2) else "reduction"
                assert_close("torch.linalg.matrix_norm", got, exp, op=tol_op, check_dtype=rdt,
                             args=f"ord={ordv}, dim={dim}, keepdim={keepdim}")
    if dtype == torch.float32:
        got = torch.linalg.matrix_norm(x, ord="fro", dtype=torch.float64)
        assert_close("torch.linalg.matrix_norm", got, np.linalg.norm(X, "fro", axis=(-2, -1)), op="reduction",
                     check_dtype=torch.float64, args="dtype=float64")


@pytest.mark.dtypes(DTYPES)
def test_norm(device, dtype, np_rng):
    """linalg.norm dispatch: ord=None flattens to the vector 2-norm (any ndim, dim=None), a 2-D input with
    ord set is a matrix norm, dim=int is a vector norm, dim=2-tuple a matrix norm; keepdim; dtype=float64
    accumulates in float64; catches a norm that treats a 2-D ord=1 as the vector 1-norm, ignores dim, or
    casts only the result for dtype=."""
    x = place(random_array(np_rng, (3, 4, 5), dtype, -2, 2), dtype, device, "offset")
    X = to_numpy(x)
    assert_close("torch.linalg.norm", torch.linalg.norm(x), np.sqrt(np.sum(np.abs(X) ** 2)), op="reduction",
                 args="ord=None, dim=None, 3-D")
    m = x[1]
    M = X[1]
    for ordv in MATRIX_ORDS:
        assert_close("torch.linalg.norm", torch.linalg.norm(m, ord=ordv), np.linalg.norm(M, ord=ordv),
                     op="linalg", args=f"2-D, ord={ordv}")
    for ordv in (None, 1, float("inf"), 3):
        for keepdim in (False, True):
            exp = _np_vector_norm(X, 2 if ordv is None else ordv, 1, keepdim)
            assert_close("torch.linalg.norm", torch.linalg.norm(x, ord=ordv, dim=1, keepdim=keepdim), exp,
                         op="reduction", args=f"dim=1, ord={ordv}, keepdim={keepdim}")
    for ordv in (None, "fro", "nuc", 1, -2):
        exp = np.linalg.norm(X, ord=ordv, axis=(0, 2))
        assert_close("torch.linalg.norm", torch.linalg.norm(x, ord=ordv, dim=(0, 2)), exp, op="linalg",
                     args=f"dim=(0, 2), ord={ordv}")
    assert_raises("torch.linalg.norm", RuntimeError, torch.linalg.norm, x, ord=2, args="ord=2 on a 3-D input, dim=None")
    if dtype == torch.float32:
        big = place(random_array(np_rng, (40_000,), dtype), dtype, device, "gapped")
        got = torch.linalg.norm(big, dtype=torch.float64)
        assert_close("torch.linalg.norm", got, np.sqrt(np.sum(to_numpy(big) ** 2)), op="reduction", dtype=torch.float64,
                     check_dtype=torch.float64, args="dtype=float64 computes in float64 (40000 elements)")


# ----------------------------------------------------------------------------------------- rank / pinv / exp


@pytest.mark.dtypes(DTYPES)
def test_matrix_rank(device, dtype, np_rng):
    """matrix_rank with the default tolerance on an exactly rank-deficient matrix, with atol=, rtol=,
    both (the max applies), and hermitian=True on an indefinite Hermitian matrix (|eigenvalues| count);
    the singular values are chosen far from every threshold; catches atol/rtol ignored or combined with
    min instead of max, and hermitian=True counting only positive eigenvalues."""
    cplx = _is_complex(dtype)
    s = np.array([10.0, 4.0, 1.0, 0.3, 0.02, 0.0, 0.0])
    A = place(matrix_with_singular_values(np_rng, 9, 7, s, (2,), cplx), dtype, device, "gapped")
    cases = [({}, 5), ({"atol": 0.1}, 4), ({"rtol": 0.05}, 3), ({"atol": 0.5, "rtol": 1e-3}, 3),
             ({"atol": 1e-3, "rtol": 0.2}, 2), ({"rtol": 0.2, "atol": 1e-3}, 2), ({"atol": 20.0}, 0)]
    for kw, expected in cases:
        got = torch.linalg.matrix_rank(A, **kw)
        assert_equal("torch.linalg.matrix_rank", got, np.full(2, expected), args=f"{kw}")
    q = random_unitary(np_rng, 6, (), cplx)
    lam = np.array([5.0, -3.0, 0.5, -0.05, 0.0, 0.0])
    H = place((q * lam) @ _h(q), dtype, device)
    for kw, expected in (({}, 4), ({"atol": 0.1}, 3), ({"rtol": 0.5}, 2)):
        got = torch.linalg.matrix_rank(H, hermitian=True, **kw)
        assert_equal("torch.linalg.matrix_rank", int(got), expected, args=f"hermitian=True, {kw}")


@pytest.mark.dtypes(DTYPES)
def test_pinv(device, dtype, np_rng):
    """pinv against numpy.linalg.pinv and the four Moore-Penrose conditions on tall/wide full-rank
    matrices, rtol= cutting small singular values (compared with numpy's rcond), atol=, and
    hermitian=True on an indefinite Hermitian matrix; catches pinv as inv(A^T A) A^T without a cutoff,
    an ignored rtol, and hermitian= ignoring signs."""
    cplx = _is_complex(dtype)
    for m, k in ((9, 6), (6, 9)):
        A = place(matrix_with_singular_values(np_rng, m, k, np.geomspace(KAPPA, 1, 6), (2,), cplx), dtype, device,
                  "gapped")
        Ar = to_numpy(A)
        P = torch.linalg.pinv(A)
        Pr = to_numpy(P)
        ref = np.linalg.pinv(Ar)
        args = f"{m}x{k}"
        assert_close("torch.linalg.pinv", P, ref, op="linalg", atol=normwise_atol(dtype, ref, KAPPA), args=args)
        at = normwise_atol(dtype, Ar, KAPPA)
        pt = normwise_atol(dtype, ref, KAPPA)
        assert_close("torch.linalg.pinv", Ar @ Pr @ Ar, Ar, dtype=dtype, rtol=0.0, atol=at, op="linalg", args=args + ", A A+ A = A")
        assert_close("torch.linalg.pinv", Pr @ Ar @ Pr, Pr, dtype=dtype, rtol=0.0, atol=pt, op="linalg", args=args + ", A+ A A+ = A+")
        AP, PA = Ar @ Pr, Pr @ Ar
        assert_close("torch.linalg.pinv", AP, _h(AP), dtype=dtype, rtol=0.0, atol=linalg_rtol(dtype) * KAPPA, op="linalg",
                     args=args + ", A A+ Hermitian")
        assert_close("torch.linalg.pinv", PA, _h(PA), dtype=dtype, rtol=0.0, atol=linalg_rtol(dtype) * KAPPA, op="linalg",
                     args=args + ", A+ A Hermitian")
    s = np.array([10.0, 5.0, 1.0, 0.05, 0.01])
    A = place(matrix_with_singular_values(np_rng, 7, 5, s, (), cplx), dtype, device)
    Ar = to_numpy(A)
    for kw, rc in (({"rtol": 0.02}, 0.02), ({"atol": 0.5}, 0.05), ({"rtol": 0.3, "atol": 0.2}, 0.3)):
        ref = np.linalg.pinv(Ar, rcond=rc)  # cutoff rc * sigma_max; every threshold sits between singular values
        assert_close("torch.linalg.pinv", torch.linalg.pinv(A, **kw), ref, op="linalg",
                     atol=normwise_atol(dtype, ref, KAPPA), args=f"{kw}")
    q = random_unitary(np_rng, 6, (), cplx)
    lam = np.array([5.0, -3.0, 2.0, -1.0, 0.5, -0.7])
    Hr = (q * lam) @ _h(q)
    H = place(Hr, dtype, device)
    Hr = to_numpy(H)
    Hr = (Hr + _h(Hr)) / 2
    ref = np.linalg.pinv(Hr, hermitian=True)
    assert_close("torch.linalg.pinv", torch.linalg.pinv(H, hermitian=True), ref, op="linalg",
                 atol=normwise_atol(dtype, ref, 10.0), args="hermitian=True")


@pytest.mark.dtypes(DTYPES)
def test_matrix_exp(device, dtype, np_rng, tier):
    """matrix_exp against scipy.linalg.expm on batched random matrices with ||A||_2 = 2, the zero matrix
    (identity) and a diagonal matrix (elementwise exp); catches an elementwise exp, a truncated Taylor
    series and a batch computed from the first member only."""
    sl = pytest.importorskip("scipy.linalg", reason="SciPy (the ops extra) is the oracle of matrix_exp")
    cplx = _is_complex(dtype)
    for n, layout in _cases(tier):
        nb = 2 if (n < 129 or tier == "full") else 1  # scipy's expm at 129 dominates the default run
        A0 = random_array(np_rng, (nb, n, n), dtype)
        A0 = A0 * (2.0 / np.linalg.norm(A0, ord=2, axis=(-2, -1))[:, None, None])
        A = place(A0, dtype, device, layout)
        Ar = to_numpy(A)
        ref = np.stack([sl.expm(Ar[b]) for b in range(nb)])
        # exp's relative condition number at A is at most ||A|| e^{||A||} / ||e^A|| <= 2 e^2 here
        assert_close("torch.linalg.matrix_exp", torch.linalg.matrix_exp(A), ref, op="linalg",
                     atol=normwise_atol(dtype, ref, 2 * math.e ** 2), args=f"n={n}, {layout}: {describe(A)}")
    z = torch.zeros(3, 4, 4, dtype=dtype, device=device)
    assert_close("torch.linalg.matrix_exp", torch.linalg.matrix_exp(z), _eye_like(4, (3,)), op="linalg", args="zero -> I")
    d = np_rng.uniform(-3, 3, 5)
    D = place(np.diag(d), dtype, device)
    assert_close("torch.linalg.matrix_exp", torch.linalg.matrix_exp(D), np.diag(np.exp(to_numpy(D).diagonal())),
                 op="linalg", args="diagonal")


@pytest.mark.dtypes(DTYPES)
def test_cross(device, dtype, np_rng):
    """linalg.cross along dim=-1 (default), dim=1 and dim=0, with broadcasting (1,3) x (4,3), against
    numpy.cross; a dim of size != 3 raises; catches the sign/order of the cross product, dim ignored
    and broadcasting refused or wrong."""
    a = place(random_array(np_rng, (4, 3, 5, 3), dtype), dtype, device, "gapped")
    b = place(random_array(np_rng, (4, 3, 5, 3), dtype), dtype, device, "offset")
    A, B = to_numpy(a), to_numpy(b)
    assert_close("torch.linalg.cross", torch.linalg.cross(a, b), np.cross(A, B), op="elementwise", args="dim=-1")
    assert_close("torch.linalg.cross", torch.linalg.cross(a, b, dim=1), np.cross(A, B, axis=1), op="elementwise", args="dim=1")
    c = place(random_array(np_rng, (3, 6), dtype), dtype, device, "gapped")
    d = place(random_array(np_rng, (3, 6), dtype), dtype, device)
    assert_close("torch.linalg.cross", torch.linalg.cross(c, d, dim=0), np.cross(to_numpy(c), to_numpy(d), axis=0),
                 op="elementwise", args="dim=0")
    e = place(random_array(np_rng, (1, 3), dtype), dtype, device)
    f = place(random_array(np_rng, (4, 3), dtype), dtype, device, "gapped")
    assert_close("torch.linalg.cross", torch.linalg.cross(e, f), np.cross(to_numpy(e), to_numpy(f)), op="elementwise",
                 args="broadcast (1,3) x (4,3)")
    assert_raises("torch.linalg.cross", RuntimeError, torch.linalg.cross, c, d, dim=1, args="dim of size 6")


@pytest.mark.dtypes(DTYPES)
def test_multi_dot(device, dtype, np_rng):
    """multi_dot of 2, 3 and 5 matrices (with a 1-D first and last argument) against a float64 chain of
    products, on gapped inputs; fewer than two tensors raise; catches a chain multiplied in the wrong
    order, 1-D ends not treated as row/column vectors, and a dropped middle factor."""
    dims = [7, 33, 5, 65, 4, 9]
    mats = [place(random_array(np_rng, (dims[i], dims[i + 1]), dtype), dtype, device, "gapped" if i % 2 else "offset")
            for i in range(5)]
    for k in (2, 3, 5):
        got = torch.linalg.multi_dot(mats[:k])
        ref = to_numpy(mats[0])
        for t in mats[1:k]:
            ref = ref @ to_numpy(t)
        assert_close("torch.linalg.multi_dot", got, ref, op="matmul", args=f"{k} matrices")
    v1 = place(random_array(np_rng, (7,), dtype), dtype, device)
    v2 = place(random_array(np_rng, (65,), dtype), dtype, device)
    got = torch.linalg.multi_dot([v1, mats[0], mats[1], mats[2], v2])
    ref = to_numpy(v1) @ to_numpy(mats[0]) @ to_numpy(mats[1]) @ to_numpy(mats[2]) @ to_numpy(v2)
    assert_equal("torch.linalg.multi_dot", tuple(got.shape), (), args="1-D ends give a scalar")
    assert_close("torch.linalg.multi_dot", got, ref, op="matmul", args="1-D first and last")
    assert_raises("torch.linalg.multi_dot", RuntimeError, torch.linalg.multi_dot, [mats[0]], args="one tensor")


# ----------------------------------------------------------------------------------------- the rest of torch.linalg


@pytest.mark.dtypes(DTYPES)
def test_solve_triangular(device, dtype, np_rng):
    """solve_triangular with upper=True/False, left=True/False, unitriangular=True/False against
    scipy.linalg.solve_triangular on well-conditioned triangular matrices whose other triangle holds junk;
    catches upper= ignored (reading the junk), unitriangular= ignored (dividing by the stored diagonal)."""
    sl = pytest.importorskip("scipy.linalg", reason="SciPy (the ops extra) is the oracle of solve_triangular")
    n = 33
    T0 = random_array(np_rng, (n, n), dtype, -0.3, 0.3) / n ** 0.5
    T0[np.diag_indices(n)] = np_rng.uniform(1.0, 2.0, n)
    B0 = random_array(np_rng, (n, 4), dtype)
    for upper in (True, False):
        for left in (True, False):
            for unit in (False, True):
                A = place(T0, dtype, device, "gapped")
                Ar = to_numpy(A)
                tri = np.triu(Ar) if upper else np.tril(Ar)
                if unit:
                    tri[np.diag_indices(n)] = 1
                B = place(B0 if left else B0.T, dtype, device, "offset")
                Br = to_numpy(B)
                if left:
                    ref = sl.solve_triangular(tri, Br, lower=not upper)
                else:
                    ref = sl.solve_triangular(tri.T, Br.T, lower=upper).T
                X = torch.linalg.solve_triangular(A, B, upper=upper, left=left, unitriangular=unit)
                assert_close("torch.linalg.solve_triangular", X, ref, op="linalg", atol=normwise_atol(dtype, ref, 10.0),
                             args=f"upper={upper}, left={left}, unitriangular={unit}")


@pytest.mark.dtypes(DTYPES)
def test_linalg_misc(device, dtype, np_rng):
    """cond (every p), matrix_power (negative, zero, positive), vecdot (conjugates the first argument),
    vander (N=), diagonal (offset, dims), tensorinv/tensorsolve, householder_product (from geqrf) and
    ldl_factor/ldl_solve against NumPy/SciPy; catches each function's main argument ignored."""
    cplx = _is_complex(dtype)
    A = place(well_conditioned(np_rng, 6, (2,), cplx, KAPPA), dtype, device, "gapped")
    Ar = to_numpy(A)
    for p in (None, "fro", "nuc", float("inf"), float("-inf"), 1, -1, 2, -2):
        exp = np.linalg.cond(Ar, p)
        # cond = ||A|| ||A^-1||: relative error <= c u kappa per factor
        assert_close("torch.linalg.cond", torch.linalg.cond(A, p), exp, rtol=linalg_rtol(dtype) * KAPPA, atol=0.0,
                     args=f"p={p}")
    for k in (-3, -1, 0, 1, 4):
        exp = np.stack([np.linalg.matrix_power(Ar[b], k) for b in range(2)])
        factor = KAPPA ** abs(k) if k < 0 else 1.0 + abs(k)
        assert_close("torch.linalg.matrix_power", torch.linalg.matrix_power(A, k), exp, op="linalg",
                     atol=normwise_atol(dtype, exp, factor), args=f"n={k}")
    x = place(random_array(np_rng, (4, 50), dtype), dtype, device, "gapped")
    y = place(random_array(np_rng, (50,), dtype), dtype, device)
    assert_close("torch.linalg.vecdot", torch.linalg.vecdot(x, y), np.sum(np.conj(to_numpy(x)) * to_numpy(y), -1),
                 op="reduction", args="conj(x) . y, broadcast")
    assert_close("torch.linalg.vecdot", torch.linalg.vecdot(x.mT, x.mT, dim=0),
                 np.sum(np.abs(to_numpy(x)) ** 2, -1), op="reduction", args="dim=0")
    v = place(random_array(np_rng, (2, 5), dtype), dtype, device, "gapped")
    for N in (None, 3, 7):
        exp = np.stack([np.vander(to_numpy(v)[b], N, increasing=True) for b in range(2)])
        assert_close("torch.linalg.vander", torch.linalg.vander(v, N=N), exp, op="elementwise", args=f"N={N}")
    t = place(random_array(np_rng, (3, 4, 5), dtype), dtype, device, "offset")
    for off, d1, d2 in ((0, -2, -1), (1, -2, -1), (-2, 0, 2)):
        assert_equal("torch.linalg.diagonal", torch.linalg.diagonal(t, offset=off, dim1=d1, dim2=d2),
                     np.diagonal(to_numpy(t), off, d1, d2), args=f"offset={off}, dims=({d1},{d2})")
    T = place(well_conditioned(np_rng, 24, (), cplx, KAPPA).reshape(4, 6, 8, 3), dtype, device)
    ref = np.linalg.tensorinv(to_numpy(T), ind=2)
    assert_close("torch.linalg.tensorinv", torch.linalg.tensorinv(T, ind=2), ref, op="linalg",
                 atol=normwise_atol(dtype, ref.reshape(24, 24), KAPPA), args="ind=2")
    rhs = place(random_array(np_rng, (4, 6), dtype), dtype, device)
    ref = np.linalg.tensorsolve(to_numpy(T), to_numpy(rhs))
    assert_close("torch.linalg.tensorsolve", torch.linalg.tensorsolve(T, rhs), ref, op="linalg",
                 atol=normwise_atol(dtype, ref.reshape(-1), KAPPA), args="(4,6,8,3) . X = (4,6)")
    # householder_product: Q from geqrf's reflectors, built here as prod_i (I - tau_i v_i v_i^H)
    M = place(matrix_with_singular_values(np_rng, 8, 5, np.geomspace(KAPPA, 1, 5), (), cplx), dtype, device)
    a, tau = torch.geqrf(M)
    ar, taur = to_numpy(a), to_numpy(tau)
    Q = np.eye(8, dtype=ar.dtype)
    for i in range(5):
        vv = np.zeros(8, dtype=ar.dtype)
        vv[i] = 1
        vv[i + 1:] = ar[i + 1:, i]
        Q = Q @ (np.eye(8) - taur[i] * np.outer(vv, np.conj(vv)))
    assert_close("torch.linalg.householder_product", torch.linalg.householder_product(a, tau), Q[:, :5], op="linalg",
                 atol=linalg_rtol(dtype) * 8, args="from geqrf")
    # ldl_factor / ldl_solve on a symmetric (Hermitian) indefinite matrix
    q = random_unitary(np_rng, 7, (), cplx)
    S0 = (q * np.array([3.0, -2.0, 1.5, -1.0, 2.5, -1.2, 1.1])) @ _h(q)
    S = place(S0, dtype, device)
    Sr = to_numpy(S)
    herm = cplx
    LD, piv = torch.linalg.ldl_factor(S, hermitian=herm)
    B = place(random_array(np_rng, (7, 2), dtype), dtype, device)
    Sh = np.tril(Sr) + _h(np.tril(Sr, -1)) if herm else np.tril(Sr) + np.tril(Sr, -1).T
    ref = np.linalg.solve(Sh, to_numpy(B))
    assert_close("torch.linalg.ldl_solve", torch.linalg.ldl_solve(LD, piv, B, hermitian=herm), ref, op="linalg",
                 atol=normwise_atol(dtype, ref, 3.0), args=f"hermitian={herm}")
    info = torch.linalg.ldl_factor_ex(S, hermitian=herm).info
    assert_equal("torch.linalg.ldl_factor_ex", int(info), 0, args="info")


@pytest.mark.slow
@pytest.mark.dtypes(torch.float32, torch.float64)
def test_linalg_large(device, dtype, np_rng):
    """n in (257, 513), gapped: solve against numpy, eigh ascending/orthonormal/eigen-equation, svd descending
    and orthonormal with U S Vh = A, qr and cholesky reconstructions; catches blocked-algorithm paths that
    only large sizes reach (LAPACK panel widths, multithreaded updates)."""
    for n in (257, 513):
        A = place(well_conditioned(np_rng, n, (), False, KAPPA), dtype, device, "gapped")
        Ar = to_numpy(A)
        args = f"n={n}, {describe(A)}"
        B = place(random_array(np_rng, (n, 4), dtype), dtype, device, "offset")
        ref = np.linalg.solve(Ar, to_numpy(B))
        assert_close("torch.linalg.solve", torch.linalg.solve(A, B), ref, op="linalg",
                     atol=normwise_atol(dtype, ref, KAPPA * 4), args=args)
        H = place(hermitian_pd(np_rng, n, (), False, KAPPA), dtype, device, "gapped")
        Hr = to_numpy(H)
        Hr = (Hr + Hr.T) / 2
        w, V = torch.linalg.eigh(H)
        W, Vr = to_numpy(w), to_numpy(V)
        assert_true("torch.linalg.eigh", np.all(np.diff(W) >= 0), "eigenvalues not ascending", args=args)
        assert_close("torch.linalg.eigh", w, np.linalg.eigvalsh(Hr), rtol=0.0, atol=linalg_rtol(dtype) * KAPPA * 4, args=args)
        _orthonormal_columns("torch.linalg.eigh", V, dtype, args)
        assert_close("torch.linalg.eigh", Hr @ Vr, Vr * W, dtype=dtype, rtol=0.0, atol=linalg_rtol(dtype) * KAPPA * 4,
                     op="linalg", args=args + ", A V = V diag(w)")
        U, S, Vh = torch.linalg.svd(A)
        Sr = to_numpy(S)
        assert_true("torch.linalg.svd", np.all(np.diff(Sr) <= 0) and np.all(Sr >= 0), "not descending/non-negative", args=args)
        _orthonormal_columns("torch.linalg.svd", U, dtype, args + ", U")
        _orthonormal_columns("torch.linalg.svd", Vh.mT, dtype, args + ", V")
        assert_close("torch.linalg.svd", (to_numpy(U) * Sr) @ to_numpy(Vh), Ar, dtype=dtype, rtol=0.0,
                     atol=normwise_atol(dtype, Ar, 4.0), op="linalg", args=args + ", U S Vh = A")
        Q, R = torch.linalg.qr(A)
        _orthonormal_columns("torch.linalg.qr", Q, dtype, args)
        assert_close("torch.linalg.qr", to_numpy(Q) @ to_numpy(R), Ar, dtype=dtype, rtol=0.0,
                     atol=normwise_atol(dtype, Ar, 4.0), op="linalg", args=args + ", Q R = A")
        L = to_numpy(torch.linalg.cholesky(H))
        assert_close("torch.linalg.cholesky", L @ L.T, Hr, dtype=dtype, rtol=0.0, atol=normwise_atol(dtype, Hr, 4.0),
                     op="linalg", args=args + ", L L^T = A")
