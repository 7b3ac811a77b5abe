"""Operator library: torch.fft against numpy.fft in complex128 on the dtype-rounded input.

Every transform (fft/ifft/rfft/irfft/hfft/ihfft, the 2-D and n-D forms, hfft2/ihfft2/hfftn/ihfftn),
every ``norm`` ("backward", "ortho", "forward" and the default), ``n=``/``s=`` padding and cropping,
``dim=`` (last, first, non-adjacent), odd and prime lengths (1, 7, 97, 127, 128, 1000 and a 40,000-point
transform), batched inputs laid out with gaps between elements or at a storage offset; fftshift/
ifftshift over dims; fftfreq/rfftfreq with ``d=``.

Tolerance (derived): an FFT computed with O(log N) butterfly stages has a normwise error
``||y - y*||_2 <= c * u * log2(N) * ||y*||_2`` (u the unit roundoff of the working dtype); every element's
error is bounded by the norm of the error. We allow c = 8 per transformed dimension, which is far below
what a wrong normalisation (a factor sqrt(N) or N), a dropped padding or a wrong axis produce.
NumPy has no hfft2/hfftn: their oracle is the identity hfftn(x, norm) = irfftn(conj(x), norm') and
ihfftn(x, norm) = conj(rfftn(x, norm')) with norm' the opposite normalisation (backward <-> forward).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.ops._oracles import describe, place, random_array, to_numpy, unit_roundoff

LENGTHS = (1, 7, 97, 127, 128, 1000)
NORMS = (None, "backward", "ortho", "forward")
DTYPES = (torch.float32, torch.float64, torch.complex64)
_SWAP = {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}


def _complex_of(dtype):
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def _real_of(dtype):
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


def _fft_atol(dtype, ref, sizes, axes):
    """c * u * sum(log2 N_i) * (largest 2-norm of the reference over the transformed axes)."""
    r = np.asarray(ref)
    if r.size == 0:
        return 0.0
    stages = sum(max(1.0, math.log2(max(n, 1))) for n in sizes)
    nrm = float(np.max(np.sqrt(np.sum(np.abs(r) ** 2, axis=tuple(axes)))))
    return 8.0 * unit_roundoff(dtype) * stages * max(nrm, 1e-300)


def _check(api, got, ref, dtype, sizes, axes, args, out_dtype):
    assert_close(api, got, ref, rtol=0.0, atol=_fft_atol(dtype, ref, sizes, axes), check_dtype=out_dtype, args=args)


def _n_choices(L):
    """None, a crop and a pad of a length (the crop only where it shortens)."""
    out = [None, L + 5]
    if L > 2:
        out.append(L // 2 + 1)
    return out


def _n_norm(L, tier, i=0):
    """(n, norm) pairs: every norm with the natural length, and each pad/crop with one norm (rotating
    with ``i`` so every norm meets a pad and a crop across lengths); the whole product at --tier full."""
    ns = _n_choices(L)
    if tier == "full":
        return [(n, norm) for n in ns for norm in NORMS]
    out = [(None, norm) for norm in NORMS]
    return out + [(n, NORMS[(i + j) % len(NORMS)]) for j, n in enumerate(ns[1:], start=1)]


@pytest.mark.smoke
@pytest.mark.dtypes(DTYPES)
def test_fft_ifft(device, dtype, np_rng, tier):
    """fft/ifft over every length in (1, 7, 97, 127, 128, 1000), every norm, n= padding and cropping, on a
    gapped batch along dim=-1 and an offset batch along dim=0, against numpy.fft; catches norm= ignored,
    ifft without the 1/n factor or the conjugate sign, n= ignored and a transform along the wrong dim."""
    layouts = ("gapped", "offset") if tier != "full" else ("gapped", "offset", "contiguous")
    for i, L in enumerate(LENGTHS):
        for layout in layouts:
            shape, dim = ((3, L), -1) if layout != "offset" else ((L, 3), 0)
            x = place(random_array(np_rng, shape, dtype), dtype, device, layout)
            X = to_numpy(x)
            for name, ref_fn in (("fft", np.fft.fft), ("ifft", np.fft.ifft)):
                fn = getattr(torch.fft, name)
                for n, norm in _n_norm(L, tier, i):
                    got = fn(x, n=n, dim=dim, norm=norm)
                    ref = ref_fn(X, n=n, axis=dim, norm=norm)
                    _check(f"torch.fft.{name}", got, ref, dtype, [n or L], [dim], f"L={L}, n={n}, dim={dim}, "
                           f"norm={norm}, {layout}: {describe(x)}", _complex_of(dtype))


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_rfft_irfft(device, dtype, np_rng, tier):
    """rfft (real -> n//2+1 complex bins) and irfft (half spectrum -> n real values, default n = 2(m-1))
    over every length, norm, n= pad/crop and dim, against numpy.fft; a complex input to rfft raises;
    catches a full spectrum from rfft, irfft returning the wrong length for odd n, norm= ignored and the
    imaginary part kept in irfft's real output."""
    cdt = _complex_of(dtype)
    for i, L in enumerate(LENGTHS):
        x = place(random_array(np_rng, (3, L), dtype), dtype, device, "gapped")
        X = to_numpy(x)
        for n, norm in _n_norm(L, tier, i):
            args = f"L={L}, n={n}, norm={norm}, {describe(x)}"
            got = torch.fft.rfft(x, n=n, norm=norm)
            ref = np.fft.rfft(X, n=n, norm=norm)
            _check("torch.fft.rfft", got, ref, dtype, [n or L], [-1], args, cdt)
        # irfft of arbitrary complex bins: the contract (and numpy's) drops the imaginary parts of the DC
        # and Nyquist bins, which a genuine half spectrum would not exercise
        Y = random_array(np_rng, (L, 2), cdt)
        y = place(Y, cdt, device, "offset")
        Yr = to_numpy(y)
        for j, n in enumerate([None, 2 * L - 1, L + 3] + ([L // 2] if L > 3 else [])):
            if n is None and L == 1:
                continue  # default n = 2(m-1) = 0 is an error (below)
            for norm in (NORMS if (n is None or tier == "full") else (NORMS[(i + j) % 4],)):
                got = torch.fft.irfft(y, n=n, dim=0, norm=norm)
                ref = np.fft.irfft(Yr, n=n, axis=0, norm=norm)
                _check("torch.fft.irfft", got, ref, dtype, [n or 2 * (L - 1)], [0],
                       f"m={L}, n={n}, dim=0, norm={norm}, {describe(y)}", dtype)
    assert_raises("torch.fft.rfft", RuntimeError, torch.fft.rfft, torch.ones(4, dtype=cdt, device=device),
                  args="complex input")
    assert_raises("torch.fft.irfft", RuntimeError, torch.fft.irfft, torch.ones(1, dtype=cdt, device=device),
                  args="one bin, default n = 0")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_hfft_ihfft(device, dtype, np_rng, tier):
    """hfft (Hermitian half-signal -> real spectrum) and ihfft (real -> half Hermitian signal) over every
    length, norm and n=, against numpy.fft.hfft/ihfft; catches hfft computed as irfft without the
    conjugate or the factor n, and ihfft with the wrong normalisation."""
    cdt, rdt = _complex_of(dtype), _real_of(dtype)
    for i, L in enumerate(LENGTHS):
        h = place(random_array(np_rng, (2, L), cdt), cdt, device, "gapped")
        H = to_numpy(h)
        for j, n in enumerate([None, 2 * L - 1, L + 3]):
            if n is None and L == 1:
                continue
            for norm in (NORMS if (n is None or tier == "full") else (NORMS[(i + j) % 4],)):
                got = torch.fft.hfft(h, n=n, norm=norm)
                _check("torch.fft.hfft", got, np.fft.hfft(H, n=n, norm=norm), dtype, [n or 2 * (L - 1)], [-1],
                       f"m={L}, n={n}, norm={norm}", rdt)
        r = place(random_array(np_rng, (L, 2), rdt), rdt, device, "offset")
        R = to_numpy(r)
        for n, norm in _n_norm(L, tier, i):
            got = torch.fft.ihfft(r, n=n, dim=0, norm=norm)
            _check("torch.fft.ihfft", got, np.fft.ihfft(R, n=n, axis=0, norm=norm), dtype, [n or L], [0],
                   f"L={L}, n={n}, dim=0, norm={norm}", cdt)


_ND_CASES = [
    # (input shape, s, dim) -- dim None with s covers the last len(s) dims
    ((4, 7, 6), None, None),
    ((4, 7, 6), (5, 9), (-2, -1)),
    ((4, 7, 6), (3, 8), (0, 2)),
    ((5, 4, 6), (8, 4), (2, 0)),
    ((4, 7, 6), (4, 3, 10), None),
    ((3, 97, 1), None, (1,)),
]


@pytest.mark.dtypes(DTYPES)
def test_fft2_fftn(device, dtype, np_rng):
    """fft2/ifft2 and fftn/ifftn with s= (padding and cropping), dim= (last two, non-adjacent, reversed
    order, one dim) and every norm, against numpy.fft.fft2/fftn on gapped inputs; catches s= applied to
    the wrong dims, a dim order that pairs s with the wrong axis, and norm= ignored in n-D."""
    cdt = _complex_of(dtype)
    for shape, s, dim in _ND_CASES:
        x = place(random_array(np_rng, shape, dtype), dtype, device, "gapped")
        X = to_numpy(x)
        axes = dim if dim is not None else (tuple(range(-len(s), 0)) if s is not None else tuple(range(len(shape))))
        sizes = s if s is not None else [shape[a] for a in axes]
        for norm in NORMS:
            args = f"shape={shape}, s={s}, dim={dim}, norm={norm}"
            for name, ref_fn in (("fftn", np.fft.fftn), ("ifftn", np.fft.ifftn)):
                got = getattr(torch.fft, name)(x, s=s, dim=dim, norm=norm)
                _check(f"torch.fft.{name}", got, ref_fn(X, s=s, axes=axes, norm=norm), dtype, sizes, axes, args, cdt)
            if dim is None or len(dim) == 2:
                d2 = dim if dim is not None else (-2, -1)
                s2 = s if (s is None or len(s) == 2) else None
                if s is not None and s2 is None:
                    continue
                for name, ref_fn in (("fft2", np.fft.fft2), ("ifft2", np.fft.ifft2)):
                    got = getattr(torch.fft, name)(x, s=s2, dim=d2, norm=norm)
                    sz = s2 if s2 is not None else [shape[a] for a in d2]
                    _check(f"torch.fft.{name}", got, ref_fn(X, s=s2, axes=d2, norm=norm), dtype, sz, d2, args, cdt)


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_rfftn_irfftn(device, dtype, np_rng):
    """rfft2/rfftn (last listed dim halved) and irfft2/irfftn (s= gives the real output sizes) with s= and
    dim=, every norm, against numpy.fft.rfftn/irfftn; catches the halved dim taken as the first instead of
    the last listed one and irfftn's default last size (2(m-1)) wrong."""
    cdt = _complex_of(dtype)
    for shape, s, dim in _ND_CASES:
        x = place(random_array(np_rng, shape, dtype), dtype, device, "offset")
        X = to_numpy(x)
        axes = dim if dim is not None else (tuple(range(-len(s), 0)) if s is not None else tuple(range(len(shape))))
        sizes = s if s is not None else [shape[a] for a in axes]
        for norm in NORMS:
            args = f"shape={shape}, s={s}, dim={dim}, norm={norm}"
            got = torch.fft.rfftn(x, s=s, dim=dim, norm=norm)
            _check("torch.fft.rfftn", got, np.fft.rfftn(X, s=s, axes=axes, norm=norm), dtype, sizes, axes, args, cdt)
            if len(axes) == 2 and (s is None or len(s) == 2):
                got = torch.fft.rfft2(x, s=s, dim=axes, norm=norm)
                _check("torch.fft.rfft2", got, np.fft.rfft2(X, s=s, axes=axes, norm=norm), dtype, sizes, axes, args, cdt)
        # inverse: a half spectrum along the last listed axis
        spec_shape = list(shape)
        spec = place(random_array(np_rng, tuple(spec_shape), cdt), cdt, device, "gapped")
        S = to_numpy(spec)
        if s is None and spec_shape[axes[-1]] == 1:
            continue  # default output size 2(m-1) = 0
        for norm in NORMS:
            args = f"spectrum {tuple(spec_shape)}, s={s}, dim={dim}, norm={norm}"
            ref = np.fft.irfftn(S, s=s, axes=axes, norm=norm)
            out_sizes = [ref.shape[a] for a in axes]
            got = torch.fft.irfftn(spec, s=s, dim=dim, norm=norm)
            _check("torch.fft.irfftn", got, ref, dtype, out_sizes, axes, args, dtype)
            if len(axes) == 2 and (s is None or len(s) == 2):
                got = torch.fft.irfft2(spec, s=s, dim=axes, norm=norm)
                ref2 = np.fft.irfft2(S, s=s, axes=axes, norm=norm)
                _check("torch.fft.irfft2", got, ref2, dtype, out_sizes, axes, args, dtype)


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_hfftn_ihfftn(device, dtype, np_rng):
    """hfft2/hfftn and ihfft2/ihfftn with s=, dim= and every norm against the identities with
    numpy.fft.irfftn/rfftn (hfftn(x) = irfftn(conj x) with the opposite normalisation); catches a
    missing conjugate, the normalisation applied in the wrong direction and s= ignored."""
    cdt, rdt = _complex_of(dtype), _real_of(dtype)
    for shape, s, dim in _ND_CASES:
        axes = dim if dim is not None else (tuple(range(-len(s), 0)) if s is not None else tuple(range(len(shape))))
        h = place(random_array(np_rng, shape, cdt), cdt, device, "gapped")
        H = to_numpy(h)
        r = place(random_array(np_rng, shape, rdt), rdt, device, "offset")
        R = to_numpy(r)
        two = len(axes) == 2 and (s is None or len(s) == 2)
        for norm in NORMS:
            args = f"shape={shape}, s={s}, dim={dim}, norm={norm}"
            if not (s is None and shape[axes[-1]] == 1):
                ref = np.fft.irfftn(np.conj(H), s=s, axes=axes, norm=_SWAP[norm])
                sizes = [ref.shape[a] for a in axes]
                _check("torch.fft.hfftn", torch.fft.hfftn(h, s=s, dim=dim, norm=norm), ref, dtype, sizes, axes, args, rdt)
                if two:
                    _check("torch.fft.hfft2", torch.fft.hfft2(h, s=s, dim=axes, norm=norm), ref, dtype, sizes, axes,
                           args, rdt)
            ref = np.conj(np.fft.rfftn(R, s=s, axes=axes, norm=_SWAP[norm]))
            sizes = s if s is not None else [shape[a] for a in axes]
            _check("torch.fft.ihfftn", torch.fft.ihfftn(r, s=s, dim=dim, norm=norm), ref, dtype, sizes, axes, args, cdt)
            if two:
                _check("torch.fft.ihfft2", torch.fft.ihfft2(r, s=s, dim=axes, norm=norm), ref, dtype, sizes, axes,
                       args, cdt)


@pytest.mark.dtypes(torch.float32, torch.complex64)
def test_fft_large(device, dtype, np_rng, tier):
    """A 40,000-point fft/ifft/rfft (2^6 * 5^4: mixed radix) and, at --tier full, the prime length 32,771
    (Bluestein/Rader paths), gapped, against numpy; and a round trip ifft(fft(x)) = x; catches a kernel
    wrong only past the small-size code path or at prime lengths."""
    lengths = (40_000, 32_771) if tier == "full" else (40_000,)
    for L in lengths:
        x = place(random_array(np_rng, (L,), dtype), dtype, device, "gapped")
        X = to_numpy(x)
        got = torch.fft.fft(x)
        _check("torch.fft.fft", got, np.fft.fft(X), dtype, [L], [-1], f"L={L}", _complex_of(dtype))
        _check("torch.fft.ifft", torch.fft.ifft(got), X, dtype, [L, L], [-1], f"L={L}, round trip", _complex_of(dtype))
        if not dtype.is_complex:
            _check("torch.fft.rfft", torch.fft.rfft(x, norm="ortho"), np.fft.rfft(X, norm="ortho"), dtype, [L], [-1],
                   f"L={L}, norm=ortho", _complex_of(dtype))


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_fftshift(device, dtype, np_rng):
    """fftshift/ifftshift with dim None, an int, a negative int and a tuple, on odd and even sizes, equal
    numpy.fft.fftshift/ifftshift exactly and invert each other; catches ifftshift = fftshift (wrong for
    odd sizes) and dim ignored."""
    x = place(random_array(np_rng, (5, 6, 7), dtype), dtype, device, "gapped")
    X = to_numpy(x)
    for dim in (None, 0, 1, -1, (0, 2), (2, 1)):
        a = fs = torch.fft.fftshift(x, dim=dim)
        assert_equal("torch.fft.fftshift", a, np.fft.fftshift(X, axes=dim), args=f"dim={dim}")
        b = torch.fft.ifftshift(x, dim=dim)
        assert_equal("torch.fft.ifftshift", b, np.fft.ifftshift(X, axes=dim), args=f"dim={dim}")
        assert_equal("torch.fft.ifftshift", torch.fft.ifftshift(fs, dim=dim), X, args=f"dim={dim}, inverse of fftshift")
    f = torch.fft.fftfreq(9, device=device)
    assert_equal("torch.fft.fftshift", torch.fft.fftshift(f), np.fft.fftshift(np.fft.fftfreq(9).astype(np.float32)),
                 args="frequencies ascending")


@pytest.mark.dtypes(torch.float32, torch.float64)
def test_fftfreq(device, dtype):
    """fftfreq/rfftfreq for n in (1, 2, 7, 8, 1000) and d in (1, 0.1, 2.5) against numpy, dtype= honoured
    and the default dtype used otherwise; catches d= ignored (or multiplied instead of divided), the
    negative half off by one for odd n and rfftfreq returning n//2 bins."""
    for n in (1, 2, 7, 8, 1000):
        for d in (1.0, 0.1, 2.5):
            got = torch.fft.fftfreq(n, d=d, dtype=dtype, device=device)
            assert_close("torch.fft.fftfreq", got, np.fft.fftfreq(n, d=d), check_dtype=dtype, args=f"n={n}, d={d}")
            got = torch.fft.rfftfreq(n, d=d, dtype=dtype, device=device)
            assert_close("torch.fft.rfftfreq", got, np.fft.rfftfreq(n, d=d), check_dtype=dtype, args=f"n={n}, d={d}")
    assert_equal("torch.fft.fftfreq", torch.fft.fftfreq(4, device=device).dtype, torch.get_default_dtype(),
                 args="default dtype")
    assert_true("torch.fft.fftfreq", torch.fft.fftfreq(4, device=device).device.type == device, "device= ignored",
                args="device")
