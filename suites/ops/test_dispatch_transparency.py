"""§ 13 Operators: a pass-through dispatch mode must not change what an op computes.

``torch.utils._python_dispatch.TorchDispatchMode`` is the mechanism behind the field's tools that watch a
model run: ``torch.utils.flop_counter.FlopCounterMode``, debug/tracing modes, functionalization, fake
tensors and coverage recorders (this suite's own ledger). PyTorch documents that a mode sees every aten
call and that returning ``func(*args, **kwargs)`` runs it unchanged. While a Python mode is active, the
dispatcher may take another path for an op (Python decompositions of composite ops, the meta/out= wrappers),
so a wrong decomposition shows up only there: ``torch.compile`` and every tool above then compute something
other than eager.

Each case runs the op on gapped random inputs plainly, under a pass-through mode, and under
``FlopCounterMode``, and requires the same values (the two paths may round differently: the op's own
tolerance class, in float64 for the linear algebra), the same dtype and shape, and ``out=`` written.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal

pytestmark = pytest.mark.devices("cpu", "cuda")


def _modes():
    from torch.utils._python_dispatch import TorchDispatchMode

    class PassThrough(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    out = [("pass-through TorchDispatchMode", PassThrough)]
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # noqa: PERF203 - an old build without the counter keeps the pass-through mode
        return out
    out.append(("FlopCounterMode", lambda: FlopCounterMode(display=False)))
    return out


def _gapped(g, shape, dtype, device):
    """Random values with a gap between elements (the last dim strided by 2)."""
    if dtype.is_complex:
        real = torch.randn(*shape[:-1], 2 * shape[-1], generator=g, dtype=torch.float64)
        imag = torch.randn(*shape[:-1], 2 * shape[-1], generator=g, dtype=torch.float64)
        full = torch.complex(real, imag).to(dtype)
    else:
        full = torch.randn(*shape[:-1], 2 * shape[-1], generator=g, dtype=torch.float64).to(dtype)
    return full.to(device)[..., ::2]


def _lstsq(A, B):
    r = torch.linalg.lstsq(A, B, driver="gels" if A.device.type == "cpu" else None)
    return (r.solution, r.residuals)


# name, op class of the comparison, input shapes, callable on those inputs
CASES = [
    ("torch.linalg.lstsq", "linalg", [(2, 8, 3), (2, 8, 2)], _lstsq),
    ("torch.linalg.pinv", "linalg", [(5, 4)], lambda A: torch.linalg.pinv(A)),
    ("torch.linalg.pinv(hermitian)", "linalg", [(4, 4)], lambda A: torch.linalg.pinv(A @ A.mH, hermitian=True)),
    ("torch.linalg.solve", "linalg", [(4, 4), (4, 2)], lambda A, B: torch.linalg.solve(A + 4 * torch.eye(4, dtype=A.dtype, device=A.device), B)),
    ("torch.linalg.svdvals", "linalg", [(6, 4)], torch.linalg.svdvals),
    ("torch.linalg.matrix_norm(nuc)", "linalg", [(5, 4)], lambda A: torch.linalg.matrix_norm(A, "nuc")),
    ("torch.linalg.det", "linalg", [(3, 5, 5)], torch.linalg.det),
    ("torch.linalg.eigvalsh", "linalg", [(5, 5)], lambda A: torch.linalg.eigvalsh(A + A.mH)),
    ("torch.linalg.vector_norm", "reduction", [(7, 33)], lambda x: torch.linalg.vector_norm(x, 3, dim=-1)),
    ("torch.matmul", "matmul", [(3, 9, 8), (8, 5)], torch.matmul),
    ("torch.nn.functional.softmax", "reduction", [(4, 37)], lambda x: torch.softmax(x.real if x.is_complex() else x, -1)),
    ("torch.cumsum", "reduction", [(3, 50)], lambda x: torch.cumsum(x, 1)),
    ("torch.var_mean", "reduction", [(6, 40)], lambda x: torch.var_mean(x, 1, correction=0)),
    ("torch.nn.functional.layer_norm", "nn", [(4, 3, 16)], lambda x: torch.nn.functional.layer_norm(x.real if x.is_complex() else x, (16,))),
    ("torch.nn.functional.conv2d", "matmul", [(2, 3, 9, 18), (4, 3, 3, 6)],
     lambda x, w: torch.nn.functional.conv2d(x.real if x.is_complex() else x, w.real if w.is_complex() else w, padding=1)),
]


@pytest.mark.dtypes(torch.float64, torch.complex64)
@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_pass_through_mode_changes_nothing(device, dtype, seed, case):
    """Every op of the table gives the same result under a pass-through TorchDispatchMode and under
    FlopCounterMode as without a mode; catches an op whose Python-dispatch path (a decomposition) is
    wrong: complex residuals not |r|^2, a missing conjugate, a dropped argument."""
    name, op, shapes, fn = next(c for c in CASES if c[0] == case)
    g = torch.Generator().manual_seed(seed)
    args = [_gapped(g, s, dtype, device) for s in shapes]
    plain = fn(*args)
    plain = plain if isinstance(plain, tuple) else (plain,)
    for mode_name, make in _modes():
        with make():
            got = fn(*args)
        got = got if isinstance(got, tuple) else (got,)
        for i, (p, q) in enumerate(zip(plain, got)):
            where = f"{dtype}, output {i}, under {mode_name}"
            assert_equal(name, (q.dtype, tuple(q.shape)), (p.dtype, tuple(p.shape)), args=where + ": dtype and shape")
            if p.numel():
                assert_close(name, q, p, op=op, dtype=p.dtype, args=where)


OUT_CASES = {
    # name: (shape of the input, out= tensor's dtype and shape, call, NumPy oracle, op class)
    "torch.linalg.matrix_rank": ((4, 4), (torch.int64, ()), lambda x, out: torch.linalg.matrix_rank(x, out=out),
                                 lambda a: np.linalg.matrix_rank(a), "exact"),
    "torch.linalg.norm": ((6, 7), (torch.float64, ()), lambda x, out: torch.linalg.norm(x, out=out),
                          lambda a: np.linalg.norm(a), "reduction"),
    "torch.sum": ((6, 7), (torch.float64, (6,)), lambda x, out: torch.sum(x, 1, out=out), lambda a: a.sum(1), "reduction"),
}


@pytest.mark.parametrize("api", sorted(OUT_CASES))
def test_out_written_under_mode(device, seed, api):
    """The op with out= writes out under a pass-through mode as it does without one (against NumPy on the
    same float64 input; the rank of a random 4x4 is 4); catches an out= wrapper on the Python-dispatch path
    that computes the result and drops it."""
    shape, (odt, oshape), call, oracle, op = OUT_CASES[api]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(device)
    expect = oracle(x.cpu().numpy())
    for mode_name, make in [("no mode", None)] + _modes():
        out = torch.full(oshape, -7, dtype=odt, device=device)
        if make is None:
            call(x, out)
        else:
            with make():
                call(x, out)
        if op == "exact":
            assert_equal(api, out.cpu().numpy(), np.asarray(expect), args=f"out=, {mode_name}")
        else:
            assert_close(api, out, expect, op=op, args=f"out=, {mode_name}")
