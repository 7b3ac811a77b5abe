"""Operator library (OpInfo lane): the inventory of torch's OpInfo database.

Every operator of the database is either run under at least one law of the lane on each selected
device, or listed here as a skipped test with the reason it is not (a random sampler, uninitialised
memory, a CUDA-only kernel, no dtypes on the device): no op is dropped silently.
"""
from __future__ import annotations

import pytest

from harness.checks import assert_true
from suites.ops import _opinfo


def test_excluded(device, opinfo_excluded):
    """Lists (as skipped, with the reason) each op whose results cannot be compared on this device."""
    if opinfo_excluded is None:
        pytest.skip(_opinfo.unavailable_reason() or "no case")
    reason = _opinfo.excluded_reason(_opinfo.get(opinfo_excluded), device)
    if reason is None:
        pytest.skip(f"{opinfo_excluded} is excluded on another selected device only; on {device} it runs "
                    f"under the laws")
    pytest.skip(f"{opinfo_excluded} not run on {device}: {reason}")


def test_inventory(device, tier):
    """Catches an op of the database that the lane would silently not test (no law applies and no
    exclusion says why), and a database that did not load its operators."""
    reason = _opinfo.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    ops = _opinfo.all_ops()
    assert_true("op_db", len(ops) >= 300, f"only {len(ops)} OpInfos in torch's database (expected hundreds)")
    inventory = _opinfo.inventory([device], tier)
    silent = [k for k, laws in inventory.items()
              if not laws and _opinfo.excluded_reason(_opinfo.get(k), device) is None]
    assert_true("op_db", not silent, f"ops neither tested nor excluded on {device}: {', '.join(silent[:20])}",
                args=f"{len(silent)} of {len(ops)}")
