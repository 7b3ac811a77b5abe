"""harness.tolerances: rounding to a dtype, ULP distances, the ULP and K-aware modes of assert_close."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from harness import checks, tolerances

NP_FORMATS = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


def _edge_values(name):
    fi = np.finfo(NP_FORMATS.get(name, np.float32))
    return np.array([0.0, -0.0, math.inf, -math.inf, float(fi.max), -float(fi.max), float(fi.tiny),
                     float(fi.smallest_subnormal), 1.0, -1.0, 1.5, 65504.0, 65520.0, 65519.99, 2.0 ** -24,
                     2.0 ** -25, 1.5 * 2.0 ** -25, 3.4028235e38, 3.4028236e38, 1e-50, 1e300])


def _random_values(rng, n=50_000):
    return rng.standard_normal(n) * 10.0 ** rng.integers(-46, 40, n)


@pytest.mark.parametrize("name", ["float16", "float32"])
def test_round_to_matches_numpy_casts(name):
    rng = np.random.default_rng(1)
    x = np.concatenate([_random_values(rng), _edge_values(name)])
    with np.errstate(over="ignore"):
        want = x.astype(NP_FORMATS[name]).astype(np.float64)
    got = tolerances.round_to(x, name)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_round_to_bfloat16_matches_torch():
    """On float32 inputs (torch's float32 -> bfloat16 conversion is one round to nearest even)."""
    rng = np.random.default_rng(2)
    with np.errstate(over="ignore"):
        x = np.concatenate([_random_values(rng), _edge_values("float32")]).astype(np.float32)
    want = torch.from_numpy(x).to(torch.bfloat16).double().numpy()
    got = tolerances.round_to(x.astype(np.float64), "bfloat16")
    np.testing.assert_array_equal(got, want)
    assert tolerances.round_to(np.array([1.0 + 2.0 ** -8]), "bfloat16")[0] == 1.0  # tie to even
    assert tolerances.round_to(np.array([1.0 + 3 * 2.0 ** -8]), "bfloat16")[0] == 1.0 + 2.0 ** -6


def test_round_to_float64_is_identity():
    x = np.array([0.1, -3e-310, math.inf])
    np.testing.assert_array_equal(tolerances.round_to(x, torch.float64), x)


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_ulp_distance_counts_representable_values(name):
    dt = NP_FORMATS[name]
    rng = np.random.default_rng(3)
    v = (rng.standard_normal(2000) * 10.0 ** rng.integers(-4, 4, 2000)).astype(dt)
    up = np.nextafter(v, dt(np.inf))
    up2 = np.nextafter(up, dt(np.inf))
    d1 = tolerances.ulp_distance(up.astype(np.float64), v.astype(np.float64), name)
    d2 = tolerances.ulp_distance(v.astype(np.float64), up2.astype(np.float64), name)
    assert set(d1.tolist()) == {1.0} and set(d2.tolist()) == {2.0}
    fi = np.finfo(dt)
    sub = float(fi.smallest_subnormal)
    cases = [(math.inf, float(fi.max), 1.0), (sub, -sub, 2.0), (0.0, -0.0, 0.0), (float(fi.tiny), 0.0, 2.0 ** (fi.nmant))]
    for a, e, want in cases:
        assert tolerances.ulp_distance(np.array([a]), np.array([e]), name)[0] == want, (name, a, e)
    assert math.isnan(tolerances.ulp_distance(np.array([math.nan]), np.array([1.0]), name)[0])


def test_ulp_distance_bfloat16():
    b = torch.tensor([1.0, 1.0078125, 3e38, 1e-40, -2.5], dtype=torch.bfloat16)
    nb = torch.nextafter(b, torch.tensor(float("inf"), dtype=torch.bfloat16))
    d = tolerances.ulp_distance(nb.double().numpy(), b.double().numpy(), "bfloat16")
    assert d.tolist() == [1.0] * 5
    # an unrounded value is rounded first: within half a bfloat16 ulp of 1.0 is 0 ulp away
    assert tolerances.ulp_distance(np.array([1.0]), np.array([1.0 + 2.0 ** -9]), torch.bfloat16)[0] == 0.0


def _sigmoid_ref(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_ulp_mode_catches_a_flushed_tail_that_an_absolute_floor_hides():
    """The issue's defect: with atol 1e-5, a sigmoid returning 0 below x = -11.6 passed."""
    x = torch.linspace(-30, 30, 241)
    X = checks.to_numpy(x)
    flushed = torch.where(x < -11.6, torch.zeros_like(x), torch.sigmoid(x))
    with checks.collecting() as log:
        ok = checks.assert_close("torch.sigmoid", torch.sigmoid(x), _sigmoid_ref(X), op="transcendental")
        # the old table's floor accepted the flushed tail
        checks.assert_close("torch.sigmoid", flushed, _sigmoid_ref(X), op="elementwise", atol=1e-5)
        with pytest.raises(AssertionError, match=r"got 0\.0, expected .* ulp > 4 ulp of float32"):
            checks.assert_close("torch.sigmoid", flushed, _sigmoid_ref(X), op="transcendental")
    assert ok["ulp"] == 4.0 and 0.0 <= ok["max_ulp"] <= 4.0 and ok["ratio"] == ok["max_ulp"] / 4.0
    bad = log.as_dict()["entries"][0]
    assert bad["ratio"] > 1e6 and bad["max_ulp"] > 1e8


def test_ulp_mode_budgets_and_overrides():
    one = np.array([1.0])
    up1 = torch.tensor([1.0 + 2.0 ** -23])  # 1 ulp above 1.0 in float32
    checks.assert_close("f", up1, one, op="transcendental")
    checks.assert_close("f", up1, one, ulp=1)
    with pytest.raises(AssertionError, match="1 ulp > 0 ulp of float32"):
        checks.assert_close("f", up1, one, ulp=0)
    # bfloat16: 1 ulp allowed, 2 not
    b1 = torch.tensor([1.0078125], dtype=torch.bfloat16)
    b2 = torch.tensor([1.015625], dtype=torch.bfloat16)
    checks.assert_close("f", b1, one, op="transcendental")
    with pytest.raises(AssertionError, match="2 ulp > 1 ulp of bfloat16"):
        checks.assert_close("f", b2, one, op="transcendental")
    with pytest.raises(TypeError):
        checks.assert_close("f", up1, one, ulp=2, rtol=1e-3)
    # an explicit rtol=/atol= on a ULP class compares with rtol/atol instead
    e = checks.assert_close("f", torch.tensor([0.0]), np.array([1e-9]), op="transcendental", atol=1e-8)
    assert "ulp" not in e and e["atol"] == 1e-8
    with pytest.raises(TypeError):
        checks.assert_close("f", up1, one, op="reduction", ulp=2, k=3)
    # integers stay exact; complex compares relatively (rtol = ulp * eps)
    checks.assert_close("f", torch.tensor([3]), np.array([3]), ulp=4)
    z = checks.assert_close("f", torch.tensor([1 + 1j], dtype=torch.complex64), np.array([1 + 1j]), op="transcendental")
    assert "max_ulp" not in z and z["rtol"] == pytest.approx(4 * 2.0 ** -23) and z["atol"] == 0.0


def test_ulp_mode_overflow_and_specials():
    """exp past float32's range: the oracle rounds to inf, so inf is right; NaN must match NaN."""
    x = torch.tensor([88.0, 88.8, 200.0, -200.0, float("nan"), float("inf"), float("-inf")])
    with np.errstate(over="ignore"):
        want = np.exp(checks.to_numpy(x))
    checks.assert_close("torch.exp", torch.exp(x), want, op="transcendental")
    with pytest.raises(AssertionError, match="got nan, expected 1.0"):
        checks.assert_close("f", torch.tensor([math.nan]), np.array([1.0]), op="transcendental")
    with pytest.raises(AssertionError):  # inf where the oracle is far from overflow
        checks.assert_close("f", torch.tensor([math.inf]), np.array([1.0]), op="transcendental")


def test_max_ulp_recorded_for_elementwise_only():
    x = torch.tensor([1.0, 2.0])
    e = checks.assert_close("f", x, np.array([1.0, 2.0 + 2.0 ** -22]))
    assert e["max_ulp"] == 1.0
    r = checks.assert_close("f", x, np.array([1.0, 2.0]), op="reduction")
    assert "max_ulp" not in r


def test_k_aware_allowance_grows_with_sqrt_k():
    f32 = [tolerances.for_matmul(torch.float32, k).srtol for k in (16, 64, 256, 1024, 4096)]
    u = 2.0 ** -24
    assert f32[0] == pytest.approx(17 * u)  # small K: the deterministic gamma_(k+1)
    assert f32[2] == pytest.approx(tolerances.LAMBDA * 16 * u)  # then LAMBDA * sqrt(k)
    assert f32[4] / f32[3] == pytest.approx(2.0)
    r = tolerances.for_reduction(torch.float64, 10_000)
    assert r.srtol == pytest.approx(2 * tolerances.LAMBDA * 100 * 2.0 ** -53)  # float64 oracle errs too
    b = tolerances.for_matmul(torch.bfloat16, 513)
    assert b.rtol == 2.0 ** -7 and b.srtol == pytest.approx(tolerances.LAMBDA * math.sqrt(513) * u)
    assert tolerances.for_terms("reduction", torch.int64, 5) == tolerances.EXACT
    with pytest.raises(KeyError):
        tolerances.for_terms("elementwise", torch.float32, 5)


@pytest.mark.parametrize("dt", [torch.float32, torch.bfloat16, torch.float64])
def test_k_aware_matmul_passes_and_a_halved_product_fails(dt):
    rng = np.random.default_rng(4)
    a = torch.from_numpy(rng.uniform(-1, 1, (40, 300))).to(dt)
    b = torch.from_numpy(rng.uniform(-1, 1, (300, 20))).to(dt)
    A, B = checks.to_numpy(a), checks.to_numpy(b)
    S = np.abs(A) @ np.abs(B)
    e = checks.assert_close("torch.mm", a @ b, A @ B, op="matmul", k=300, scale=S)
    assert e["k"] == 300 and e["srtol"] > 0 and e["ratio"] < 1
    with pytest.raises(AssertionError, match=r"srtol=.*\*scale"):
        checks.assert_close("torch.mm", (a @ b) * 0.5, A @ B, op="matmul", k=300, scale=S)
    with pytest.raises(AssertionError):  # one term of the 300 dropped
        checks.assert_close("torch.mm", a[:, 1:] @ b[1:], A @ B, op="matmul", k=300, scale=S)


def test_k_aware_without_scale_uses_the_result():
    x = torch.rand(1000, dtype=torch.float32)
    checks.assert_close("torch.sum", x.sum(), checks.to_numpy(x).sum(), op="reduction", k=1000)
    with pytest.raises(AssertionError):
        checks.assert_close("torch.sum", x.sum() * 1.001, checks.to_numpy(x).sum(), op="reduction", k=1000)


def test_entries_are_plain_json_types():
    with checks.collecting() as log:
        checks.assert_close("f", torch.tensor([1.0]), np.array([1.0]), rtol=np.float64(1e-3), atol=np.float32(1e-4))
        checks.assert_close("f", torch.tensor([1.0]), np.array([1.0]), op="transcendental")
        checks.assert_close("f", torch.ones(3, 3), np.full((3, 3), 3.0) / 3, op="matmul", k=np.int64(3),
                            scale=np.full((3, 3), 3.0))
    for entry in log.as_dict()["entries"]:
        for key, value in entry.items():
            assert type(value) in (int, float, str), (key, type(value))
    json.dumps(log.as_dict(), allow_nan=False)


def test_ulp_rows_are_consistent():
    for name, tol in tolerances.TABLE["transcendental"].items():
        assert tol.ulp is not None and tol.atol == 0.0
        assert tol.rtol == pytest.approx(tol.ulp * tolerances.eps(name))
    for op, row in tolerances.TABLE.items():
        if op not in ("exact", "transcendental"):
            assert all(t.ulp is None for t in row.values()), op
