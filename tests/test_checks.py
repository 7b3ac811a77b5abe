"""harness.checks: comparisons, messages and the recorded error."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness import checks, tolerances


def test_close_passes_and_records_ratio():
    with checks.collecting() as log:
        entry = checks.assert_close("torch.sum", torch.tensor([1.0, 2.0]), np.array([1.0, 2.000001]), op="reduction")
    assert log.count == 1
    assert 0 < entry["ratio"] < 1
    assert entry["rtol"] == tolerances.lookup("reduction", torch.float32).rtol
    assert log.as_dict()["worst_ratio"] == pytest.approx(entry["ratio"])


def test_close_failure_message_names_api_values_and_index():
    with pytest.raises(AssertionError) as info:
        checks.assert_close("torch.exp", torch.tensor([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 5.0]]), args="x")
    msg = str(info.value)
    assert msg.startswith("got 4.0, expected 5.0 at index (1, 1)")
    assert msg.endswith("[torch.exp(x)]")
    assert "1/4 elements off" in msg


def test_nan_and_inf_positions_must_match():
    checks.assert_close("f", torch.tensor([math.nan, math.inf, 1.0]), np.array([math.nan, math.inf, 1.0]))
    with pytest.raises(AssertionError, match="got nan, expected 1.0"):
        checks.assert_close("f", torch.tensor([math.nan]), np.array([1.0]))
    with pytest.raises(AssertionError, match="got inf, expected -inf"):
        checks.assert_close("f", torch.tensor([math.inf]), np.array([-math.inf]))
    with pytest.raises(AssertionError):
        checks.assert_close("f", torch.tensor([math.nan]), np.array([math.nan]), equal_nan=False)


def test_shape_dtype_device_mismatch():
    with pytest.raises(AssertionError, match=r"got shape \(2,\), expected \(2, 1\)"):
        checks.assert_close("f", torch.zeros(2), np.zeros((2, 1)))
    with pytest.raises(AssertionError, match="got dtype torch.float32, expected torch.float64"):
        checks.assert_close("f", torch.zeros(2), np.zeros(2), check_dtype=torch.float64)
    with pytest.raises(AssertionError, match="expected cuda"):
        checks.assert_close("f", torch.zeros(2), np.zeros(2), check_device="cuda")


def test_scalar_reference_broadcasts_and_empty_passes():
    checks.assert_close("f", torch.full((3,), 2.0), 2.0)
    checks.assert_close("f", torch.zeros(0, 3), np.zeros((0, 3)))


def test_bfloat16_uses_its_own_tolerance():
    x = torch.tensor([1.0 + 2 ** -8], dtype=torch.bfloat16)  # rounds to 1.0 in bfloat16
    checks.assert_close("f", x, np.array([1.0 + 2 ** -8]))
    with pytest.raises(AssertionError):
        checks.assert_close("f", x.float(), np.array([1.0 + 2 ** -8]))


def test_complex_values():
    checks.assert_close("f", torch.tensor([1 + 2j]), np.array([1 + 2j]))
    with pytest.raises(AssertionError, match=r"got \(1\+2j\), expected \(1-2j\)"):
        checks.assert_close("f", torch.tensor([1 + 2j]), np.array([1 - 2j]))


def test_assert_equal_exact():
    checks.assert_equal("f", torch.tensor([1, 2, 3]), np.array([1, 2, 3]))
    checks.assert_equal("f", torch.float32, torch.float32)
    checks.assert_equal("f", torch.tensor([math.nan]), np.array([math.nan]))
    with pytest.raises(AssertionError, match=r"got 3, expected 4 at index \(2,\) \(1/3 elements differ\) \[f\(\)\]"):
        checks.assert_equal("f", torch.tensor([1, 2, 3]), np.array([1, 2, 4]))
    with pytest.raises(AssertionError, match="got torch.int32, expected torch.int64"):
        checks.assert_equal("f", torch.int32, torch.int64)


def test_assert_raises():
    err = checks.assert_raises("torch.zeros", RuntimeError, torch.zeros, -1)
    assert isinstance(err, RuntimeError)
    with pytest.raises(AssertionError, match="got no error, expected RuntimeError"):
        checks.assert_raises("torch.zeros", RuntimeError, torch.zeros, 1)
    with pytest.raises(AssertionError, match="got RuntimeError.*expected ValueError"):
        checks.assert_raises("torch.zeros", ValueError, torch.zeros, -1)
    with pytest.raises(AssertionError, match="expected a message matching"):
        checks.assert_raises("torch.zeros", RuntimeError, torch.zeros, -1, match="no such words")


def test_log_keeps_the_worst_entries():
    with checks.collecting(keep=3) as log:
        for i in range(50):
            checks.assert_close("f", torch.tensor([1.0]), np.array([1.0 + i * 4e-8]))
    d = log.as_dict()
    assert d["count"] == 50 and len(d["entries"]) == 3
    assert d["worst_ratio"] == max(e["ratio"] for e in d["entries"])


def test_tolerance_table_is_complete():
    for op in tolerances.OP_CLASSES:
        for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.int64, torch.bool):
            tol = tolerances.lookup(op, dt)
            assert tol.rtol >= 0 and tol.atol >= 0
    assert tolerances.lookup("elementwise", torch.int32) == tolerances.EXACT
    with pytest.raises(KeyError):
        tolerances.lookup("nonsense", torch.float32)
