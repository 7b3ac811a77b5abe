"""Collection of the OpInfo lane (suites/ops/test_opinfo_*.py): parametrizes every test that takes
``opinfo_case`` over the (op, dtype) cases of its law at the selected tier. Other tests in suites/ops
are left alone.

The cases are parametrized after the plugin's ``device`` (``trylast``), so ids read
``test_ref[cpu-float32-add]``. Case lists depend only on torch, the tier and the selected devices, in
op_db order with dtypes sorted, so every xdist worker collects the same ids in the same order. torch's
OpInfo database is imported here, once per process, and only when such a test is collected.
"""
from __future__ import annotations

import pytest

from harness import devices as _devices, options as _options


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc):
    wanted = {"opinfo_case", "opinfo_excluded"} & set(metafunc.fixturenames)
    if not wanted:
        return
    from suites.ops import _opinfo

    config = metafunc.config
    tier = config.getoption(_options.TIER.dest)
    devs = _devices.resolve(config.getoption(_options.DEVICE.dest))
    if "opinfo_case" in wanted:
        metafunc.parametrize("opinfo_case", _opinfo.parametrization(metafunc.function, devs, tier))
    if "opinfo_excluded" in wanted:
        metafunc.parametrize("opinfo_excluded", _opinfo.excluded_parametrization(devs))


def pytest_collection_modifyitems(config, items):
    """Run the lane's tests grouped by (device, op, dtype) so an op's samples are generated once and
    reused by each law (a small per-process cache); other tests keep their places."""
    slots = [i for i, it in enumerate(items) if "opinfo_case" in getattr(it, "fixturenames", ())]
    if len(slots) < 2:
        return
    from suites.ops import _opinfo

    mine = [items[i] for i in slots]
    mine.sort(key=_opinfo.run_order)
    for i, it in zip(slots, mine):
        items[i] = it


@pytest.fixture(autouse=True)
def _opinfo_full_fp32(request):
    """float32 means float32 in this lane: cuDNN's TF32 (on by default for convolutions) is a documented
    ~1e-3 precision trade the float32 tolerances do not allow; off for the lane's tests, restored after.
    No effect on CPU."""
    if "opinfo_case" not in request.fixturenames:
        yield
        return
    import torch

    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
