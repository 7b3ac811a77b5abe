"""§ 1 Tensors: thread invariance. Each op runs on >= 2^17 random elements (past ATen's parallel grain of
32,768, so the work is split into chunks) once with ``torch.set_num_threads(1)`` and once with all of the
threads torch had at the start (its default is the machine's physical cores: 2 on the 2-core reference
machine), and both results are compared with NumPy float64 and with each other: integer results, indices,
sorts and selections bit-exactly, float results within the harness's K-aware allowance for their
accumulation length (``assert_close(op=..., k=, scale=)``).

Covered: sum, mean, prod, max (values and indices), argmax with ties across chunks, var, vector_norm over all
dims and each dim; cumsum and cumprod; index_add, index_put(accumulate=True) and scatter_add with duplicate
indices; stable sort and unique; float32 and bfloat16 matmul; float32 conv2d.

The thread count is per process and restored by a fixture, so pytest-xdist workers do not interfere. Each
test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, to_numpy as _ref
from suites.tensors._tensors import accumulate_tol, reduction_tol

N = 2 ** 18 + 5  # 1-D inputs: uneven chunks
ROWS, COLS = 257, 1021  # 2-D inputs: 262,397 elements


@pytest.fixture
def thread_counts():
    """(1, all): ``all`` is torch's thread count when the test starts. Restored afterwards."""
    start = torch.get_num_threads()
    many = start
    if start == 1:  # e.g. OMP_NUM_THREADS=1: try the machine's cores
        torch.set_num_threads(os.cpu_count() or 1)
        many = torch.get_num_threads()
        if many == 1:
            torch.set_num_threads(start)
            pytest.skip("torch runs with 1 thread and cannot be given more (os.cpu_count() is 1): "
                        "there is no multi-threaded result to compare")
    try:
        yield (1, many)
    finally:
        torch.set_num_threads(start)


@dataclass
class Probe:
    """One call to run under each thread count: ``run()`` returns a tensor or a tuple of tensors;
    ``expected``/``tol`` are the NumPy reference and allowance (None: exact), one per returned tensor."""
    api: str
    args: str
    run: Callable[[], object]
    expected: tuple
    tol: tuple


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _check(api, got, expected, tol, args):
    __tracebackhide__ = True
    if tol is None:
        assert_equal(api, got, expected, args=args)
    else:
        assert_close(api, got, expected, args=args, **tol)


def _probe(api, args, run, expected, tol):
    return Probe(api, args, run, _tuple(expected), tol if isinstance(tol, tuple) else (tol,))


def _f32(np_rng, shape, low, high):
    return torch.from_numpy(np_rng.uniform(low, high, size=shape)).to(torch.float32)


def _axes(X, dim):
    return tuple(range(X.ndim)) if dim is None else (dim,)


def _k(X, dim):
    return int(np.prod([X.shape[a] for a in _axes(X, dim)]))


# ---- cases ---------------------------------------------------------------------------------------------
def _reductions(np_rng):
    probes = []
    for shape in [(N,), (ROWS, COLS)]:
        dims = [None] if len(shape) == 1 else [None, 0, 1]
        x = _f32(np_rng, shape, -1, 3)  # positive mean: a dropped or doubled chunk moves every sum
        X = _ref(x)
        xi = torch.from_numpy(np_rng.integers(-50, 51, size=shape))
        XI = _ref(xi)
        p = torch.exp(_f32(np_rng, shape, -2.5 / math.sqrt(x.numel()), 2.5 / math.sqrt(x.numel())))
        P = _ref(p)
        for dim in dims:
            kw = {} if dim is None else {"dim": dim}
            ax = _axes(X, dim)
            k = _k(X, dim)
            a = f"shape={shape}, dim={dim}"
            scale = np.abs(X).sum(axis=ax)  # per output: the float64 sum of |terms|
            probes += [
                _probe("torch.sum", a + ", float32", lambda x=x, kw=kw: torch.sum(x, **kw), X.sum(axis=ax), reduction_tol(k, scale)),
                _probe("torch.sum", a + ", int64", lambda xi=xi, kw=kw: torch.sum(xi, **kw), XI.sum(axis=ax), None),
                _probe("torch.mean", a, lambda x=x, kw=kw: torch.mean(x, **kw), X.mean(axis=ax), reduction_tol(k, scale / k)),
                _probe("torch.prod", a, lambda p=p, kw=kw: torch.prod(p) if not kw else torch.prod(p, kw["dim"]), P.prod(axis=ax), reduction_tol(k)),
                # var: the deviations carry the rounding of x and of the mean, so 2 * sum(x^2) / (k-1) is the scale
                _probe("torch.var", a, lambda x=x, kw=kw: torch.var(x, **kw), X.var(axis=ax, ddof=1), reduction_tol(k, 2 * (X * X).sum(axis=ax) / (k - 1))),
                _probe("torch.linalg.vector_norm", a, lambda x=x, kw=kw: torch.linalg.vector_norm(x, **kw), np.sqrt((X * X).sum(axis=ax)), reduction_tol(k)),
                _probe("torch.amax", a, lambda x=x, kw=kw: torch.amax(x, **kw) if kw else torch.amax(x), X.max(axis=ax), None),
            ]
            if dim is not None:  # max(dim): values and the first index of ties (quarters: many ties)
                q = torch.round(x * 4) / 4
                Q = _ref(q)
                probes.append(_probe("torch.max", a + ", ties", lambda q=q, dim=dim: tuple(torch.max(q, dim)),
                                     (Q.max(axis=dim), Q.argmax(axis=dim)), (None, None)))
    # argmax over all: the maximum appears at 8 random places spread over the chunks; the first one wins
    t = np_rng.integers(0, 9, size=N).astype(np.int32)
    t[np_rng.choice(N, 8, replace=False)] = 9
    ti = torch.from_numpy(t)
    probes.append(_probe("torch.argmax", f"shape=({N},), int32, 8 tied maxima", lambda: torch.argmax(ti), np.argmax(t), None))
    t2 = torch.from_numpy(np_rng.integers(0, 5, size=(ROWS, COLS)).astype(np.int32))
    for dim in (0, 1):
        probes.append(_probe("torch.argmax", f"shape=({ROWS}, {COLS}), int32, dim={dim}, ties", lambda dim=dim: torch.argmax(t2, dim),
                             np.argmax(_ref(t2), axis=dim), None))
    return probes


def _scans(np_rng):
    probes = []
    for shape, dims in [((N,), [0]), ((ROWS, COLS), [0, 1])]:
        x = _f32(np_rng, shape, -1, 3)
        X = _ref(x)
        xi = torch.from_numpy(np_rng.integers(-50, 51, size=shape))
        for dim in dims:
            k = shape[dim]
            a = f"shape={shape}, dim={dim}"
            p = torch.exp(_f32(np_rng, shape, -2.5 / math.sqrt(k), 2.5 / math.sqrt(k)))
            probes += [
                _probe("torch.cumsum", a + ", float32", lambda x=x, dim=dim: torch.cumsum(x, dim), np.cumsum(X, axis=dim),
                       reduction_tol(k, np.cumsum(np.abs(X), axis=dim))),
                _probe("torch.cumsum", a + ", int64", lambda xi=xi, dim=dim: torch.cumsum(xi, dim), np.cumsum(_ref(xi), axis=dim), None),
                _probe("torch.cumprod", a, lambda p=p, dim=dim: torch.cumprod(p, dim), np.cumprod(_ref(p), axis=dim), reduction_tol(k)),
            ]
    return probes


def _accumulations(np_rng):
    probes = []
    for dtype in (torch.float32, torch.int64):
        def rnd(shape):
            if dtype.is_floating_point:
                return _f32(np_rng, shape, -5, 5)
            return torch.from_numpy(np_rng.integers(-50, 51, size=shape))
        dn = str(dtype).rsplit(".", 1)[-1]
        # index_add along dim 0: 4,096 source rows (262,144 elements) into 1,000 rows
        x, src = rnd((1000, 64)), rnd((4096, 64))
        idx = torch.from_numpy(np_rng.integers(0, 1000, size=4096))
        X, S, I = _ref(x), _ref(src), _ref(idx)
        e = X.copy()
        np.add.at(e, I, 2 * S)
        tol = accumulate_tol(dtype, X, (I[:, None], np.arange(64)[None, :]), 2 * S)
        probes.append(_probe("torch.index_add", f"{dn}, dim=0, 4096 rows into 1000, alpha=2",
                             lambda x=x, idx=idx, src=src: torch.index_add(x, 0, idx, src, alpha=2), e, tol))
        # index_put(accumulate=True): 2^18 values into 1,000 slots
        y, vals = rnd((1000,)), rnd((2 ** 18,))
        pos = torch.from_numpy(np_rng.integers(0, 1000, size=2 ** 18))
        Y, V, P = _ref(y), _ref(vals), _ref(pos)
        e = Y.copy()
        np.add.at(e, P, V)
        probes.append(_probe("torch.index_put", f"{dn}, 2^18 values into 1000 slots, accumulate=True",
                             lambda y=y, pos=pos, vals=vals: torch.index_put(y, (pos,), vals, accumulate=True), e,
                             accumulate_tol(dtype, Y, (P,), V)))
        # scatter_add along dim 1: (64, 4096) into (64, 1000)
        z, s = rnd((64, 1000)), rnd((64, 4096))
        ind = torch.from_numpy(np_rng.integers(0, 1000, size=(64, 4096)))
        Z, SS, IND = _ref(z), _ref(s), _ref(ind)
        e = Z.copy()
        grid = (np.arange(64)[:, None], IND)
        np.add.at(e, grid, SS)
        probes.append(_probe("torch.scatter_add", f"{dn}, dim=1, (64, 4096) into (64, 1000)",
                             lambda z=z, ind=ind, s=s: torch.scatter_add(z, 1, ind, s), e, accumulate_tol(dtype, Z, grid, SS)))
    return probes


def _sorting(np_rng):
    probes = []
    q = torch.from_numpy(np.round(np_rng.uniform(-5, 5, size=N) * 4) / 4).to(torch.float32)  # many ties
    Q = _ref(q)
    order = np.argsort(Q, kind="stable")
    probes.append(_probe("torch.sort", f"shape=({N},), float32, stable=True, ties", lambda: tuple(torch.sort(q, stable=True)),
                         (Q[order], order), (None, None)))
    order_d = np.argsort(-Q, kind="stable")
    probes.append(_probe("torch.sort", f"shape=({N},), float32, descending, stable=True, ties",
                         lambda: tuple(torch.sort(q, descending=True, stable=True)), (Q[order_d], order_d), (None, None)))
    m = torch.from_numpy(np_rng.integers(-20, 21, size=(ROWS, COLS)))
    M = _ref(m)
    for dim in (0, 1):
        o = np.argsort(M, axis=dim, kind="stable")
        probes.append(_probe("torch.sort", f"shape=({ROWS}, {COLS}), int64, dim={dim}, stable=True",
                             lambda dim=dim: tuple(torch.sort(m, dim=dim, stable=True)), (np.take_along_axis(M, o, dim), o), (None, None)))
    u = torch.from_numpy(np_rng.integers(0, 5000, size=N))
    vals, inv, cnt = np.unique(_ref(u), return_inverse=True, return_counts=True)
    probes.append(_probe("torch.unique", f"shape=({N},), int64, sorted, return_inverse, return_counts",
                         lambda: tuple(torch.unique(u, sorted=True, return_inverse=True, return_counts=True)),
                         (vals, inv.reshape(-1), cnt), (None, None, None)))
    return probes


def _matmul(np_rng):
    probes = []
    for dtype in (torch.float32, torch.bfloat16):
        a = _f32(np_rng, (512, 128), -1, 1).to(dtype)
        b = _f32(np_rng, (128, 256), -1, 1).to(dtype)
        A, B = _ref(a), _ref(b)
        # a K-term dot product per element (2^17 of them): the K-aware matmul allowance, scale |A| @ |B|
        tol = {"op": "matmul", "k": 128, "scale": np.abs(A) @ np.abs(B)}
        probes.append(_probe("torch.matmul", f"(512, 128) @ (128, 256), {str(dtype).rsplit('.', 1)[-1]}",
                             lambda a=a, b=b: torch.matmul(a, b), A @ B, tol))
    return probes


def _conv2d_ref(X, W, pad):
    Xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(Xp, W.shape[2:], axis=(2, 3))  # N, C, H, W, kh, kw
    return np.einsum("nchwij,ocij->nohw", win, W, optimize=True)


def _conv(np_rng):
    x = _f32(np_rng, (4, 8, 64, 64), -1, 1)  # 2^17 input elements, 2^18 output elements
    w = _f32(np_rng, (16, 8, 3, 3), -1, 1)
    X, W = _ref(x), _ref(w)
    exp = _conv2d_ref(X, W, 1)
    # each output: a 72-term dot product; the K-aware matmul allowance with scale conv(|x|, |w|)
    tol = {"op": "matmul", "k": 8 * 9, "scale": _conv2d_ref(np.abs(X), np.abs(W), 1)}
    return [_probe("torch.nn.functional.conv2d", "(4, 8, 64, 64) * (16, 8, 3, 3), padding=1, float32",
                   lambda: torch.nn.functional.conv2d(x, w, padding=1), exp, tol)]


CASES = {"reductions": _reductions, "scans": _scans, "accumulations": _accumulations, "sorting": _sorting,
         "matmul": _matmul, "conv2d": _conv}


@pytest.mark.devices("cpu")
@pytest.mark.parametrize("family", list(CASES))
def test_thread_invariance(device, family, np_rng, thread_counts):
    """Each op of the family gives NumPy's result with 1 thread and with all threads, and the two results
    agree (bit-exactly for integers, indices, sorts and selections). Catches a parallel reduction or scan
    that drops, double-counts or misorders a chunk or loses the carry between chunks, argmax/max that keep
    a later chunk's tie, accumulations that lose duplicate indices when threads race, a parallel sort that
    is unstable across chunks, and GEMM/conv kernels whose multi-threaded blocking computes a wrong tile."""
    one, many = thread_counts
    for p in CASES[family](np_rng):
        results = {}
        for n in (one, many):
            torch.set_num_threads(n)
            got = _tuple(p.run())
            results[n] = got
            for g, e, t in zip(got, p.expected, p.tol):
                _check(p.api, g, e, t, f"{p.args}, threads={n}")
        for g1, gn, t in zip(results[one], results[many], p.tol):
            _check(p.api, gn, _ref(g1), t, f"{p.args}, {many} threads against 1 thread")
