"""§ 4 nn: torch.nn.functional beyond the layers (interpolate in every mode, grid_sample, affine_grid,
unfold/fold, one_hot, pad, embedding options) against float64 NumPy references written here from the
documented formulas (explicit index math: separable per-axis weight matrices for interpolate, Pillow's
resampling filters for antialias, bilinear/nearest/bicubic taps with the documented padding rules for
grid_sample), with gapped (``[..., ::2]`` of a wider storage, storage offset 1) inputs, channels_last,
sizes past 32,768 elements with random data, and error paths.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64

BIG_HW = (64, 96)  # 2 x 3 x 64 x 96 = 36,864 elements: past 32,768, where CPU kernels take parallel paths


def _gapped(values, dtype, device) -> torch.Tensor:
    """``values`` (NumPy, any shape) as ``dtype`` on ``device`` in a view whose last dim has stride 2 and
    whose storage offset is 1 (``big[..., 1::2]``): a real gap between elements, not a permuted dense view."""
    values = np.asarray(values)
    shape = values.shape
    big = torch.zeros(*shape[:-1], 2 * shape[-1] + 1, dtype=dtype, device=device)
    view = big[..., 1::2]
    view.copy_(torch.from_numpy(np.ascontiguousarray(values)).to(dtype))
    return view


# ---------------------------------------------------------------- interpolate reference
# One (out, in) weight matrix per spatial axis, applied separably. Index rules from the interpolate docs and
# the "half-pixel" convention: align_corners=False maps dst i to src (i + 0.5) * scale - 0.5 (clamped at 0
# for linear), align_corners=True to i * (in - 1) / (out - 1); scale = 1 / scale_factor when a scale_factor is
# given and recompute_scale_factor is not True, else in / out. nearest: floor(i * scale); nearest-exact:
# floor((i + 0.5) * scale); area: adaptive average pooling; bicubic: Keys cubic convolution with A = -0.75,
# taps clamped to the border. antialias: Pillow's separable resampling (support scaled by the downsampling
# factor, triangle / Keys A = -0.5 / Lanczos-3 filters, weights normalised), which the docs promise to match.

def _cubic1(x, a):
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic2(x, a):
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def _axis_weights(kind, n, out, align_corners=False, sf=None, antialias=False):
    W = np.zeros((out, n))
    if align_corners:
        scale = (n - 1) / (out - 1) if out > 1 else 0.0
    else:
        scale = 1.0 / sf if sf else n / out
    for i in range(out):
        if kind == "nearest":
            W[i, min(int(math.floor(i * scale)), n - 1)] = 1
        elif kind == "nearest-exact":
            W[i, min(int(math.floor((i + 0.5) * scale)), n - 1)] = 1
        elif kind == "area":
            a, b = (i * n) // out, -((-(i + 1) * n) // out)
            W[i, a:b] = 1.0 / (b - a)
        elif antialias:
            taps = {"linear": 2, "cubic": 4, "lanczos": 6}[kind]
            support = taps / 2 * scale if scale >= 1 else taps / 2
            inv = 1 / scale if scale >= 1 else 1.0
            center = scale * (i + 0.5)
            lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n)
            for j in range(lo, hi):
                t = abs((j - center + 0.5) * inv)
                if kind == "linear":
                    W[i, j] = max(0.0, 1 - t)
                elif kind == "cubic":
                    W[i, j] = _cubic1(t, -0.5) if t < 1 else (_cubic2(t, -0.5) if t < 2 else 0.0)
                else:
                    W[i, j] = np.sinc(t) * np.sinc(t / 3) if t < 3 else 0.0
            W[i] /= W[i].sum()
        else:
            src = i * scale if align_corners else scale * (i + 0.5) - 0.5
            if kind == "linear":
                src = max(src, 0.0)
                i0 = min(int(math.floor(src)), n - 1)
                lam = src - i0
                W[i, i0] += 1 - lam
                W[i, min(i0 + 1, n - 1)] += lam
            else:  # cubic, source index not clamped, taps clamped
                i0 = int(math.floor(src))
                t = src - i0
                for k, w in enumerate((_cubic2(t + 1, -0.75), _cubic1(t, -0.75), _cubic1(1 - t, -0.75), _cubic2(2 - t, -0.75))):
                    W[i, min(max(i0 - 1 + k, 0), n - 1)] += w
    return W


_KIND = {"bilinear": "linear", "trilinear": "linear", "linear": "linear", "bicubic": "cubic"}


def _apply_axes(x, mats):
    """Apply one (out, in) weight matrix per spatial axis of x (N, C, *S)."""
    y = x
    for k, Wm in enumerate(mats):
        ax = 2 + k
        y = np.moveaxis(Wm @ np.moveaxis(y, ax, -2), -2, ax)
    return y


def interpolate_ref(x, mode, out, align_corners=False, sfs=None, antialias=False):
    kind = _KIND.get(mode, mode)
    return _apply_axes(x, [_axis_weights(kind, x.shape[2 + k], o, bool(align_corners), None if sfs is None else sfs[k],
                                         antialias) for k, o in enumerate(out)])


def _coord_atol(X, n_max, taps_abs_sum=1.0):
    """float32 source coordinates carry a rounding error of about eps32 * n pixels (n the larger of the input
    and output sizes along an axis); the interpolated value moves by that times the local slope, at most
    2 * max|x| per pixel, times the filter's absolute weight sum. This derived absolute allowance replaces the
    `nn` table's 1e-5, which assumes O(1) coordinates (measured worst here: 2e-5)."""
    return max(1e-5, 2 * 2.0 ** -23 * n_max * 2 * float(np.abs(X).max()) * taps_abs_sum)


_INTERP_CASES = [("nearest", 1), ("nearest", 2), ("nearest", 3), ("nearest-exact", 1), ("nearest-exact", 2),
                 ("linear", 1), ("bilinear", 2), ("bicubic", 2), ("trilinear", 3), ("area", 1), ("area", 2), ("area", 3)]
_SHAPES = {1: (2, 3, 11), 2: (2, 3, 7, 9), 3: (1, 2, 5, 6, 7)}


def _interp_kwargs(nd):
    """size up/down, a float scale_factor (coordinate scale 1/sf, not in/out), the same with
    recompute_scale_factor=True (scale in/out), and a per-axis tuple of scale factors."""
    return [dict(size=(13, 4, 5)[:nd]), dict(size=(3, 11, 2)[:nd]), dict(scale_factor=1.7),
            dict(scale_factor=1.7, recompute_scale_factor=True), dict(scale_factor=0.6),
            dict(scale_factor=(2.5, 0.5, 1.3)[:nd])]


@pytest.mark.parametrize("mode,nd", _INTERP_CASES, ids=[f"{m}-{n}d" for m, n in _INTERP_CASES])
def test_interpolate(device, mode, nd, np_rng):
    """F.interpolate in every mode and dimensionality against the index-math reference, on gapped float32
    inputs, for size= (up and down), scale_factor= (float and per-axis tuple), recompute_scale_factor, and
    align_corners True/False for the interpolating modes; output shape floor(in * scale_factor). Catches
    align_corners ignored or inverted, scale_factor ignored in favour of in/out (or recompute ignored),
    nearest vs nearest-exact swapped, bicubic taps not clamped, area not averaging, axes swapped."""
    x = _gapped(np_rng.standard_normal(_SHAPES[nd]), torch.float32, device)
    X = np64(x)
    acs = (False, True) if mode in ("linear", "bilinear", "bicubic", "trilinear") else (None,)
    for kw in _interp_kwargs(nd):
        for ac in acs:
            kk = dict(kw, mode=mode) if ac is None else dict(kw, mode=mode, align_corners=ac)
            y = F.interpolate(x, **kk)
            sf = kw.get("scale_factor")
            if "size" in kw:
                out = kw["size"]
            else:
                sft = sf if isinstance(sf, tuple) else (sf,) * nd
                out = tuple(int(math.floor(X.shape[2 + k] * sft[k])) for k in range(nd))
            assert_equal("F.interpolate", tuple(y.shape[2:]), tuple(out), args=f"{kk}: output size")
            sfs = None
            if sf is not None and not kw.get("recompute_scale_factor"):
                sfs = sf if isinstance(sf, tuple) else (sf,) * nd
            ref = interpolate_ref(X, mode, out, ac, sfs)
            assert_close("F.interpolate", y, ref, op="nn", check_dtype=torch.float32, args=str(kk))


@pytest.mark.dtypes(torch.float32, torch.bfloat16)
@pytest.mark.parametrize("mode", ["nearest", pytest.param("bilinear", marks=pytest.mark.smoke), "bicubic"])
def test_interpolate_large_channels_last(device, dtype, mode, np_rng):
    """bilinear/bicubic/nearest on a 36,864-element random 2 x 3 x 64 x 96 input in contiguous and
    channels_last layouts (separate vectorised kernels) and float32/bfloat16 (the diffusion and detection
    production dtypes), up- and downsampling, align_corners both ways; channels_last is preserved. Catches
    a channels_last kernel with wrong channel strides, a parallel split of output rows that drops rows,
    low-precision weights computed in bfloat16."""
    x = torch.tensor(np_rng.standard_normal((2, 3) + BIG_HW), device=device).to(dtype)
    X = np64(x)
    acs = (None,) if mode == "nearest" else (False, True)
    atol = _coord_atol(X, 101, 1.5 if mode == "bicubic" else 1.0) if dtype == torch.float32 else None
    xcl = x.contiguous(memory_format=torch.channels_last)
    for size in ((101, 77),):  # up in H, down in W
        for ac in acs:
            kw = dict(size=size, mode=mode) if ac is None else dict(size=size, mode=mode, align_corners=ac)
            ref = interpolate_ref(X, mode, size, ac)
            for layout, xi in (("contiguous", x), ("channels_last", xcl)):
                y = F.interpolate(xi, **kw)
                if layout == "channels_last":
                    assert_true("F.interpolate", y.is_contiguous(memory_format=torch.channels_last),
                                "channels_last input gave a non-channels_last result", args=str(kw))
                assert_close("F.interpolate", y, ref, op="nn", atol=atol, check_dtype=dtype, args=f"{kw}, {layout}")


def _has_lanczos() -> bool:
    return "'lanczos'" in (F.interpolate.__doc__ or "")


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "lanczos"])
def test_interpolate_antialias(device, mode, np_rng):
    """antialias=True downsampling (align_corners=False) matches Pillow's resampling as documented: the filter
    support widens by the downsampling factor (triangle for bilinear, Keys a = -0.5 for bicubic, Lanczos-3
    for lanczos), weights normalised per output pixel; size= and scale_factor=, gapped input, channels_last.
    Catches antialias ignored (plain 2/4-tap interpolation aliases), the wrong cubic coefficient, support
    not scaled, border weights not renormalised."""
    if mode == "lanczos":
        if not _has_lanczos():
            pytest.skip("this torch's F.interpolate does not document mode='lanczos' (new in torch 2.13)")
        if device != "cpu":
            pytest.skip("mode='lanczos' is documented as CPU only")
    x = _gapped(np_rng.uniform(0, 1, (2, 3, 40, 37)), torch.float32, device)
    X = np64(x)
    kind = {"bilinear": "linear", "bicubic": "cubic", "lanczos": "lanczos"}[mode]

    def ref(out, sfs=None):
        return _apply_axes(X, [_axis_weights(kind, X.shape[2 + k], o, False, None if sfs is None else sfs[k], antialias=True)
                               for k, o in enumerate(out)])

    for size in ((13, 11), (7, 20), (40, 9)):
        for layout in ("contiguous", "channels_last"):
            xi = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
            y = F.interpolate(xi, size=size, mode=mode, antialias=True, align_corners=False)
            assert_close("F.interpolate", y, ref(size), op="nn", args=f"{mode}, antialias, size={size}, {layout}")
    for sf in (0.3, 0.45):
        y = F.interpolate(x, scale_factor=sf, mode=mode, antialias=True)
        out = tuple(int(math.floor(X.shape[2 + k] * sf)) for k in range(2))
        assert_close("F.interpolate", y, ref(out, (sf, sf)), op="nn", args=f"{mode}, antialias, scale_factor={sf}")


def test_interpolate_edge_sizes(device, np_rng):
    """A 1-pixel input upsampled (every tap clamps to it), outputs of size 1 (align_corners=True uses scale 0,
    so the first pixel), an empty batch, in every interpolating mode; catches a division by (out - 1) = 0,
    taps read outside a 1-pixel input, an empty batch crashing."""
    for mode, nd in (("nearest", 2), ("nearest-exact", 2), ("linear", 1), ("bilinear", 2), ("bicubic", 2),
                     ("trilinear", 3), ("area", 2)):
        acs = (False, True) if mode in ("linear", "bilinear", "bicubic", "trilinear") else (None,)
        for in_size, out_size in ((1, 4), (5, 1), (1, 1)):
            X = np_rng.standard_normal((2, 2) + (in_size,) * nd)
            x = torch.tensor(X, dtype=torch.float32, device=device)
            for ac in acs:
                kw = dict(size=(out_size,) * nd, mode=mode) if ac is None else dict(size=(out_size,) * nd, mode=mode, align_corners=ac)
                assert_close("F.interpolate", F.interpolate(x, **kw), interpolate_ref(np64(x), mode, (out_size,) * nd, ac),
                             op="nn", args=f"{kw}, input size {in_size}")
        e = torch.empty((0, 2) + (4,) * nd, device=device)
        assert_equal("F.interpolate", tuple(F.interpolate(e, size=(3,) * nd, mode=mode).shape), (0, 2) + (3,) * nd,
                     args=f"{mode}, empty batch")


@pytest.mark.slow
@pytest.mark.dtypes(torch.float32, torch.bfloat16)
@pytest.mark.parametrize("mode,nd", _INTERP_CASES, ids=[f"{m}-{n}d" for m, n in _INTERP_CASES])
def test_interpolate_grid_full(device, dtype, mode, nd, np_rng):
    """The interpolate grid on larger random inputs (about 40,000 elements), contiguous and channels_last
    (channels_last_3d for 5-D), more scale factors (integer, fractional, below 1), in float32 and bfloat16;
    catches layout- and dtype-specific kernels that the default grid does not reach."""
    shape = {1: (4, 8, 1250), 2: (2, 4, 70, 72), 3: (1, 4, 20, 22, 23)}[nd]
    x = torch.tensor(np_rng.standard_normal(shape), device=device).to(dtype)
    X = np64(x)
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}.get(nd)
    layouts = [("contiguous", x)] + ([("channels_last", x.contiguous(memory_format=fmt))] if fmt else [])
    acs = (False, True) if mode in ("linear", "bilinear", "bicubic", "trilinear") else (None,)
    n_max = max(shape[2:]) * 3
    atol = _coord_atol(X, n_max, 1.5 if mode == "bicubic" else 1.0) if dtype == torch.float32 else None
    for sf in (2.0, 3.0, 1.37, 0.5, 0.71):
        out = tuple(int(math.floor(X.shape[2 + k] * sf)) for k in range(nd))
        for ac in acs:
            ref = interpolate_ref(X, mode, out, ac, None if ac else (sf,) * nd)
            kw = dict(scale_factor=sf, mode=mode) if ac is None else dict(scale_factor=sf, mode=mode, align_corners=ac)
            for layout, xi in layouts:
                assert_close("F.interpolate", F.interpolate(xi, **kw), ref, op="nn", atol=atol, check_dtype=dtype,
                             args=f"{kw}, {layout}")


def test_interpolate_errors(device):
    """Documented argument errors: align_corners with a non-interpolating mode, both or neither of size and
    scale_factor, antialias with nearest or a non-4-D input, a mode that does not fit the input's rank.
    Catches options silently ignored instead of rejected."""
    x = torch.randn(1, 2, 4, 5, device=device)
    assert_raises("F.interpolate", ValueError, F.interpolate, x, size=3, mode="nearest", align_corners=True,
                  args="nearest with align_corners")
    assert_raises("F.interpolate", ValueError, F.interpolate, x, size=3, scale_factor=2.0, args="size and scale_factor")
    assert_raises("F.interpolate", ValueError, F.interpolate, x, args="neither size nor scale_factor")
    assert_raises("F.interpolate", ValueError, F.interpolate, x, size=3, mode="nearest", antialias=True,
                  args="antialias with nearest")
    assert_raises("F.interpolate", ValueError, F.interpolate, x[0], size=3, mode="linear", antialias=True,
                  args="antialias on 3-D input")
    assert_raises("F.interpolate", (NotImplementedError, ValueError), F.interpolate, x[0], size=3, mode="bilinear",
                  args="bilinear on 3-D input")
    assert_raises("F.interpolate", (NotImplementedError, ValueError), F.interpolate, x, size=(3, 3, 3), mode="trilinear",
                  args="trilinear on 4-D input")


# ---------------------------------------------------------------- grid_sample reference

def _unnormalize(c, n, ac):
    return (c + 1) / 2 * (n - 1) if ac else ((c + 1) * n - 1) / 2


def _reflect(x, twice_low, twice_high):
    if twice_low == twice_high:
        return np.zeros_like(x)
    lo, span = twice_low / 2, (twice_high - twice_low) / 2
    x = np.abs(x - lo)
    extra, flips = np.fmod(x, span), np.floor(x / span)
    return np.where(flips % 2 == 0, extra + lo, span - extra + lo)


def _pad_coord(x, n, padding_mode, ac):
    """The documented padding rules: border clamps to the edge pixels, reflection reflects by the border
    (about the pixel centres with align_corners=True, the pixel edges otherwise) then clamps; zeros leaves
    the coordinate alone and out-of-range taps read 0."""
    if padding_mode == "border":
        return np.clip(x, 0, n - 1)
    if padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (n - 1)) if ac else _reflect(x, -1, 2 * n - 1)
        return np.clip(x, 0, n - 1)
    return x


def _gather(x, idx):
    """x (N, C, *S); idx: per spatial dim an integer array (N, *O); 0 where any index is out of range."""
    N, C = x.shape[:2]
    sizes = x.shape[2:]
    ok = np.ones(idx[0].shape, dtype=bool)
    clipped = []
    for i, s in zip(idx, sizes):
        ok &= (i >= 0) & (i < s)
        clipped.append(np.clip(i, 0, s - 1))
    n = np.arange(N).reshape((N,) + (1,) * (idx[0].ndim - 1))
    v = np.moveaxis(x, 1, -1)[(n,) + tuple(clipped)]  # (N, *O, C)
    v = np.where(ok[..., None], v, 0.0)
    return np.moveaxis(v, -1, 1)


def grid_sample_ref(x, grid, mode, padding_mode, ac):
    """x (N, C, *S) with S = (H, W) or (D, H, W); grid (N, *O, nd) with grid[..., 0] indexing W, [..., 1] H,
    [..., 2] D."""
    sizes = x.shape[2:]
    nd = len(sizes)
    coords = [grid[..., nd - 1 - k] for k in range(nd)]  # per spatial dim, in x's dim order
    if mode == "bicubic":  # 2-D only: padding applies to each of the 4 x 4 taps
        iy, ix = (_unnormalize(coords[k], sizes[k], ac) for k in range(2))
        y0, x0 = np.floor(iy), np.floor(ix)
        ty, tx = iy - y0, ix - x0
        wy = [_cubic2(ty + 1, -0.75), _cubic1(ty, -0.75), _cubic1(1 - ty, -0.75), _cubic2(2 - ty, -0.75)]
        wx = [_cubic2(tx + 1, -0.75), _cubic1(tx, -0.75), _cubic1(1 - tx, -0.75), _cubic2(2 - tx, -0.75)]
        out = 0.0
        for i in range(4):
            for j in range(4):
                cy = np.trunc(_pad_coord(y0 - 1 + i, sizes[0], padding_mode, ac)).astype(np.int64)
                cx = np.trunc(_pad_coord(x0 - 1 + j, sizes[1], padding_mode, ac)).astype(np.int64)
                out = out + _gather(x, [cy, cx]) * (wy[i] * wx[j])[:, None]
        return out
    pos = [_pad_coord(_unnormalize(coords[k], sizes[k], ac), sizes[k], padding_mode, ac) for k in range(nd)]
    if mode == "nearest":  # round half to even (nearbyint)
        return _gather(x, [np.rint(p).astype(np.int64) for p in pos])
    base = [np.floor(p) for p in pos]
    frac = [p - b for p, b in zip(pos, base)]
    out = 0.0
    for corner in np.ndindex(*(2,) * nd):
        w = 1.0
        idx = []
        for k, c in enumerate(corner):
            w = w * (frac[k] if c else 1 - frac[k])
            idx.append(base[k].astype(np.int64) + c)
        out = out + _gather(x, idx) * w[:, None]
    return out


def _grid_for(np_rng, out_shape, sizes, ac, lo=-1.4, hi=1.4):
    """Random normalized grid points in [lo, hi] whose pixel positions sit at least 0.05 px away from
    half-integers, so nearest rounding cannot legitimately differ between float32 and float64."""
    nd = len(sizes)
    g = np_rng.uniform(lo, hi, size=tuple(out_shape) + (nd,))
    for k in range(nd):
        n = sizes[nd - 1 - k]
        p = _unnormalize(g[..., k], n, ac)
        f = p - np.floor(p)
        near = np.abs(f - 0.5) < 0.05
        p = np.where(near, np.floor(p) + np.where(f < 0.5, 0.4, 0.6), p)
        g[..., k] = (2 * p / (n - 1) - 1) if ac else ((2 * p + 1) / n - 1)
    return g


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
def test_grid_sample(device, mode, np_rng):
    """F.grid_sample on 4-D input with every padding_mode (zeros, border, reflection) and align_corners
    True/False against the tap reference, grid points inside and outside [-1, 1]; a gapped 36,864-element
    input and a gapped grid; float64 gradients w.r.t. input and grid match finite differences (bilinear,
    bicubic). Catches x/y grid components swapped, align_corners unnormalisation wrong, a padding mode
    ignored (zeros used instead of reflect), nearest rounding half away from zero, broken backward."""
    x = _gapped(np_rng.standard_normal((2, 3) + BIG_HW), torch.float32, device)
    X = np64(x)
    atol = _coord_atol(X, max(BIG_HW), 1.5 if mode == "bicubic" else 1.0)  # float32 unnormalised coordinates
    for ac in (False, True):
        G = _grid_for(np_rng, (2, 20, 50), BIG_HW, ac)
        g = _gapped(G.transpose(0, 1, 3, 2), torch.float32, device).transpose(2, 3)  # gapped along the output width
        Gr = np64(g)
        for pad in ("zeros", "border", "reflection"):
            y = F.grid_sample(x, g, mode=mode, padding_mode=pad, align_corners=ac)
            assert_close("F.grid_sample", y, grid_sample_ref(X, Gr, mode, pad, ac), op="nn", atol=atol,
                         check_dtype=torch.float32, args=f"mode={mode}, padding_mode={pad}, align_corners={ac}")
    if mode != "nearest":
        xs = torch.tensor(np_rng.standard_normal((1, 2, 4, 5)), device=device, requires_grad=True)
        gs = torch.tensor(_grid_for(np_rng, (1, 3, 3), (4, 5), False, -0.9, 0.9), device=device, requires_grad=True)
        ok = torch.autograd.gradcheck(lambda a, b: F.grid_sample(a, b, mode=mode, padding_mode="zeros", align_corners=False),
                                      (xs, gs), raise_exception=False)
        assert_true("F.grid_sample", ok, "backward differs from finite differences", args=f"mode={mode}, float64")


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_3d(device, mode, np_rng):
    """F.grid_sample on 5-D input (bilinear means trilinear there) with every padding_mode and align_corners,
    grid[..., 0/1/2] indexing W/H/D; catches the depth coordinate taken from the wrong grid component and
    the 3-D padding paths."""
    sizes = (4, 5, 6)
    x = _gapped(np_rng.standard_normal((2, 2) + sizes), torch.float32, device)
    X = np64(x)
    for ac in (False, True):
        G = _grid_for(np_rng, (2, 3, 4, 5), sizes, ac)
        g = torch.tensor(G, dtype=torch.float32, device=device)
        Gr = np64(g)
        for pad in ("zeros", "border", "reflection"):
            y = F.grid_sample(x, g, mode=mode, padding_mode=pad, align_corners=ac)
            assert_close("F.grid_sample", y, grid_sample_ref(X, Gr, mode, pad, ac), op="nn",
                         args=f"5-D, mode={mode}, padding_mode={pad}, align_corners={ac}")


def _base_coords(n, ac):
    """Normalised pixel-centre coordinates along one axis: linspace(-1, 1, n), scaled by (n-1)/n when
    align_corners=False (pixel edges at +-1); a single pixel sits at 0."""
    if n == 1:
        return np.zeros(1)
    c = np.linspace(-1, 1, n)
    return c if ac else c * (n - 1) / n


def test_affine_grid(device, np_rng):
    """F.affine_grid(theta, size, align_corners) equals theta @ [x, y, (z,) 1] over the normalised pixel
    centres (2-D and 3-D, both align_corners); the identity theta through grid_sample returns the input
    (bilinear, align_corners=False); a theta of the wrong shape raises. Catches x/y order swapped, the
    align_corners scaling missing, the translation column ignored."""
    for ac in (False, True):
        theta = torch.tensor(np_rng.uniform(-1, 1, (2, 2, 3)), dtype=torch.float32, device=device)
        T = np64(theta)
        g = F.affine_grid(theta, [2, 3, 5, 7], align_corners=ac)
        ys, xs = np.meshgrid(_base_coords(5, ac), _base_coords(7, ac), indexing="ij")
        P = np.stack([xs, ys, np.ones_like(xs)], -1)  # (H, W, 3)
        assert_close("F.affine_grid", g, np.einsum("nij,hwj->nhwi", T, P), op="nn", args=f"2-D, align_corners={ac}")
        theta3 = torch.tensor(np_rng.uniform(-1, 1, (1, 3, 4)), dtype=torch.float32, device=device)
        g3 = F.affine_grid(theta3, [1, 2, 3, 4, 6], align_corners=ac)
        zs, ys, xs = np.meshgrid(_base_coords(3, ac), _base_coords(4, ac), _base_coords(6, ac), indexing="ij")
        P3 = np.stack([xs, ys, zs, np.ones_like(xs)], -1)
        assert_close("F.affine_grid", g3, np.einsum("nij,dhwj->ndhwi", np64(theta3), P3), op="nn",
                     args=f"3-D, align_corners={ac}")
    x = _gapped(np_rng.standard_normal((2, 3, 6, 8)), torch.float32, device)
    eye = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]] * 2, device=device)
    back = F.grid_sample(x, F.affine_grid(eye, list(x.shape), align_corners=False), align_corners=False)
    assert_close("F.affine_grid", back, np64(x), op="nn", args="identity theta round trip through grid_sample")
    assert_raises("F.affine_grid", (ValueError, RuntimeError), F.affine_grid, torch.zeros(1, 3, 3, device=device),
                  [1, 1, 4, 4], align_corners=False, args="theta (1,3,3) for a 4-D size")


# ---------------------------------------------------------------- unfold / fold

def _unfold_ref(a, k, d, p, s):
    """Sliding blocks as (N, C*kh*kw, L): channel-major, then kernel row, then column; blocks row-major."""
    a = np.pad(a, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    N, C, H, W = a.shape
    oh = (H - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (W - d[1] * (k[1] - 1) - 1) // s[1] + 1
    cols = np.empty((N, C, k[0], k[1], oh, ow))
    for i in range(k[0]):
        for j in range(k[1]):
            cols[:, :, i, j] = a[:, :, i * d[0]: i * d[0] + s[0] * (oh - 1) + 1: s[0], j * d[1]: j * d[1] + s[1] * (ow - 1) + 1: s[1]]
    return cols.reshape(N, C * k[0] * k[1], oh * ow), (oh, ow)


def _fold_ref(cols, out_hw, k, d, p, s):
    """Sum every block back into its place (overlaps add), then crop the padding."""
    N = cols.shape[0]
    C = cols.shape[1] // (k[0] * k[1])
    H, W = out_hw[0] + 2 * p[0], out_hw[1] + 2 * p[1]
    oh = (H - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (W - d[1] * (k[1] - 1) - 1) // s[1] + 1
    c = cols.reshape(N, C, k[0], k[1], oh, ow)
    out = np.zeros((N, C, H, W))
    for i in range(k[0]):
        for j in range(k[1]):
            out[:, :, i * d[0]: i * d[0] + s[0] * (oh - 1) + 1: s[0], j * d[1]: j * d[1] + s[1] * (ow - 1) + 1: s[1]] += c[:, :, i, j]
    return out[:, :, p[0]: p[0] + out_hw[0], p[1]: p[1] + out_hw[1]]


@pytest.mark.parametrize("k,d,p,s", [((2, 3), (1, 1), (0, 0), (1, 1)), ((3, 2), (1, 2), (1, 0), (2, 1)),
                                     ((2, 2), (2, 1), (1, 1), (1, 3))],
                         ids=["k2x3", "k3x2-d1x2-p1x0-s2x1", "k2-d2x1-p1-s1x3"])
def test_unfold_fold(device, k, d, p, s, np_rng):
    """F.unfold extracts (N, C*kh*kw, L) blocks in the documented order for a 36,864-element gapped input
    with tuple kernel/dilation/padding/stride; F.fold sums random blocks back (overlaps add) and
    fold(unfold(x)) = x * (blocks covering each pixel), so fold(unfold(x)) / fold(unfold(1)) = x; unbatched
    3-D/2-D inputs work; a block count that does not match output_size raises. Catches a wrong block order,
    dilation/stride swapped, overlaps overwritten instead of summed, padding not cropped."""
    x = _gapped(np_rng.standard_normal((2, 3) + BIG_HW), torch.float32, device)
    X = np64(x)
    kw = dict(kernel_size=k, dilation=d, padding=p, stride=s)
    u = F.unfold(x, **kw)
    U, (oh, ow) = _unfold_ref(X, k, d, p, s)
    assert_close("F.unfold", u, U, op="exact", args=str(kw))
    cols = _gapped(np_rng.standard_normal(U.shape), torch.float32, device)
    f = F.fold(cols, output_size=BIG_HW, **kw)
    assert_close("F.fold", f, _fold_ref(np64(cols), BIG_HW, k, d, p, s), op="reduction", args=f"{kw}, random blocks")
    count = _fold_ref(_unfold_ref(np.ones((1, 1) + BIG_HW), k, d, p, s)[0], BIG_HW, k, d, p, s)
    ff = F.fold(u, output_size=BIG_HW, **kw)
    assert_close("F.fold", ff, X * count, op="reduction", args=f"{kw}: fold(unfold(x)) = x * overlap count")
    covered = count[0, 0] > 0
    ratio = ff / F.fold(F.unfold(torch.ones_like(x), **kw), output_size=BIG_HW, **kw)
    assert_close("F.fold", np64(ratio)[..., covered], X[..., covered], op="nn", args=f"{kw}: inverse up to the overlap count")
    ub = F.unfold(x[0], **kw)
    assert_close("F.unfold", ub, U[0], op="exact", args="unbatched (C, H, W)")
    assert_close("F.fold", F.fold(ub, output_size=BIG_HW, **kw), (X * count)[0], op="reduction", args="unbatched (C*k, L)")
    assert_raises("F.fold", RuntimeError, F.fold, cols[..., :-1], output_size=BIG_HW, **kw, args="one block missing")


# ---------------------------------------------------------------- one_hot, pad

def test_one_hot(device, np_rng):
    """F.one_hot(t, num_classes) is int64 with a 1 at each index along a new last dim: num_classes=-1 infers
    max + 1, an explicit larger num_classes widens, any input shape (0-d, 2-D, gapped, empty with an explicit
    num_classes); negative indices, indices >= num_classes, an empty input with -1 and a float input raise.
    Catches off-by-one class counts, a 1 in the wrong column, negatives wrapping around."""
    t = _gapped(np_rng.integers(0, 7, size=(3, 50)), torch.int64, device)
    T = t.cpu().numpy()
    for nc in (-1, 7, 12):
        k = int(T.max()) + 1 if nc == -1 else nc
        got = F.one_hot(t, nc)
        assert_equal("F.one_hot", got.dtype, torch.int64, args=f"num_classes={nc}")
        assert_equal("F.one_hot", got, (T[..., None] == np.arange(k)).astype(np.int64), args=f"num_classes={nc}")
    assert_equal("F.one_hot", F.one_hot(torch.tensor(3, device=device), 5), np.eye(5, dtype=np.int64)[3], args="0-d input")
    assert_equal("F.one_hot", tuple(F.one_hot(torch.empty(0, 2, dtype=torch.int64, device=device), 4).shape), (0, 2, 4),
                 args="empty input, num_classes=4")
    if device == "cpu":  # on CUDA the range checks are device-side asserts that poison the context
        assert_raises("F.one_hot", RuntimeError, F.one_hot, torch.tensor([1, -1]), args="negative index")
        assert_raises("F.one_hot", RuntimeError, F.one_hot, torch.tensor([1, 5]), 5, args="index == num_classes")
    assert_raises("F.one_hot", RuntimeError, F.one_hot, torch.empty(0, dtype=torch.int64, device=device), args="empty, -1")
    assert_raises("F.one_hot", RuntimeError, F.one_hot, torch.tensor([1.0], device=device), args="float input")


def _pad_ref(a, pad, mode, value=0.0):
    """F.pad's pad tuple runs from the last dim backwards (left, right, top, bottom, ...); negative entries
    crop. Reference: crop the negative sides, then numpy.pad the positive ones."""
    nd = len(pad) // 2
    widths = [(0, 0)] * (a.ndim - nd) + [(pad[2 * (nd - 1 - i)], pad[2 * (nd - 1 - i) + 1]) for i in range(nd)]
    sl = tuple(slice(max(-lo, 0), a.shape[i] - max(-hi, 0)) for i, (lo, hi) in enumerate(widths))
    a = a[sl]
    pos = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    return np.pad(a, pos, mode=np_mode, constant_values=value) if mode == "constant" else np.pad(a, pos, mode=np_mode)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad(device, mode, np_rng):
    """F.pad with every mode on 3-D, 4-D and 5-D gapped inputs with asymmetric pads (last dim first),
    constant value=, negative pads (cropping) for constant/replicate/circular, and a reflect pad as large
    as the size minus 1; a reflect pad >= the size and a pad tuple too long for the mode raise. Catches the
    pad order reversed (first dim first), reflect including the edge (symmetric), circular wrapping the
    wrong side, value= ignored."""
    cases = {3: [(2, 1), (0, 3)], 4: [(1, 2, 3, 0), (2, 2, 1, 1)], 5: [(1, 0, 2, 1, 1, 2)]}
    for nd_in, pads in cases.items():
        shape = (2, 3, 5, 6, 7)[:nd_in]
        x = _gapped(np_rng.standard_normal(shape), torch.float32, device)
        X = np64(x)
        for pad in pads:
            kw = dict(value=-2.5) if mode == "constant" else {}
            assert_close("F.pad", F.pad(x, pad, mode=mode, **kw), _pad_ref(X, pad, mode, -2.5), op="exact",
                         args=f"{nd_in}-D, pad={pad}, mode={mode}")
    x = _gapped(np_rng.standard_normal((2, 3, 5, 6)), torch.float32, device)
    X = np64(x)
    if mode != "reflect":
        pad = (-1, 2, 1, -2)
        assert_close("F.pad", F.pad(x, pad, mode=mode), _pad_ref(X, pad, mode), op="exact", args=f"negative pad {pad}")
    else:
        assert_close("F.pad", F.pad(x, (5, 5, 4, 4), mode=mode), _pad_ref(X, (5, 5, 4, 4), mode), op="exact",
                     args="pad = size - 1")
        assert_raises("F.pad", RuntimeError, F.pad, x, (6, 0), mode=mode, args="pad = size")
    if mode != "constant":
        assert_raises("F.pad", (NotImplementedError, RuntimeError), F.pad, x, (1, 1, 1, 1, 1, 1, 1, 1), mode=mode,
                      args="8 pad values on 4-D input")
    if mode == "constant":
        i = _gapped(np.arange(12).reshape(2, 6), torch.int64, device)
        assert_equal("F.pad", F.pad(i, (2, 1), value=-5), np.pad(np.arange(12).reshape(2, 6), [(0, 0), (2, 1)],
                     constant_values=-5), args="int64 input, value=-5")


# ---------------------------------------------------------------- embedding options

def test_embedding_options(device, np_rng):
    """F.embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse): the lookup is
    weight[input]; padding_idx rows get zero gradient; max_norm renormalises the looked-up rows of weight in
    place to norm max_norm (norm_type 2 and 1; other rows untouched) and the output uses the renormalised
    rows; scale_grad_by_freq divides each row's gradient by its count in the batch; sparse=True returns a
    sparse gradient equal to the dense one. Catches padding rows that learn, max_norm applied to the output
    only (weight unchanged) or to all rows, frequency scaling ignored, a sparse gradient with wrong values."""
    w0 = np_rng.standard_normal((10, 4)) * 2
    idx_np = np.array([[1, 2, 1, 7], [7, 7, 0, 2], [3, 1, 1, 9]])
    idx = torch.tensor(idx_np, device=device)
    up = np_rng.standard_normal((3, 4, 4))
    upt = torch.tensor(up, device=device)

    def grad_ref(scale=None, pad=None):
        g = np.zeros_like(w0)
        np.add.at(g, idx_np.ravel(), up.reshape(-1, 4))
        if scale is not None:
            cnt = np.bincount(idx_np.ravel(), minlength=10)
            g = g / np.maximum(cnt, 1)[:, None]
        if pad is not None:
            g[pad] = 0
        return g

    w = torch.tensor(w0, device=device, requires_grad=True)
    y = F.embedding(idx, w)
    assert_close("F.embedding", y, w0[idx_np], op="exact", args="lookup")
    y.backward(upt)
    assert_close("F.embedding", w.grad, grad_ref(), op="gradient", args="grad: repeated rows add")
    w = torch.tensor(w0, device=device, requires_grad=True)
    y = F.embedding(idx, w, padding_idx=7)
    assert_close("F.embedding", y, w0[idx_np], op="exact", args="padding_idx=7: lookup unchanged")
    y.backward(upt)
    assert_close("F.embedding", w.grad, grad_ref(pad=7), op="gradient", args="padding_idx=7: no grad to row 7")
    w = torch.tensor(w0, device=device, requires_grad=True)
    F.embedding(idx, w, scale_grad_by_freq=True).backward(upt)
    assert_close("F.embedding", w.grad, grad_ref(scale=True), op="gradient", args="scale_grad_by_freq=True")
    for norm_type in (2.0, 1.0):
        max_norm = 1.5
        w = torch.tensor(w0, device=device)
        y = F.embedding(idx, w, max_norm=max_norm, norm_type=norm_type)
        norms = np.linalg.norm(w0, ord=norm_type, axis=1)
        used = np.zeros(10, dtype=bool)
        used[np.unique(idx_np)] = True
        exp_w = w0.copy()
        shrink = used & (norms > max_norm)
        exp_w[shrink] *= (max_norm / (norms[shrink] + 1e-7))[:, None]
        assert_true("F.embedding", shrink.any() and (~used).any(), "test data must renormalise some rows and skip others")
        assert_close("F.embedding", w, exp_w, op="nn", args=f"max_norm={max_norm}, norm_type={norm_type}: weight renormalised in place")
        assert_close("F.embedding", y, exp_w[idx_np], op="nn", args=f"max_norm, norm_type={norm_type}: output")
    w = torch.tensor(w0, device=device, requires_grad=True)
    F.embedding(idx, w, sparse=True).backward(upt)
    assert_true("F.embedding", w.grad.is_sparse, "sparse=True gave a dense gradient", args="sparse=True")
    assert_close("F.embedding", w.grad.to_dense(), grad_ref(), op="gradient", args="sparse=True: values")
