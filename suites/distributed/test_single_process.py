"""§ 8 Devices and distributed: the torch.distributed.distributed_c10d collectives in ONE process
(world_size=1): their documented world-size-1 results, called in the test process itself.

The multi-rank behaviour is checked in test_collectives.py (ranks in child processes). Here the group is
a single rank (gloo on CPU, nccl on one GPU) rendezvousing through a FileStore in tmp_path, so each
collective is called directly by the test and its result is compared with the NumPy closed form at world
size 1: every reduction is the identity (AVG divides by 1, PRODUCT multiplies by nothing else), gathers
return a list of one / the input itself, scatters hand the single chunk back, all_to_all is a copy.
The async_op=True handles complete and wait() returns True. Documented errors: send to self (ValueError),
a non-contiguous tensor, a gather list of the wrong length, an op a backend lacks (PREMUL_SUM on gloo,
MAX on complex tensors).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_raises, assert_true

dist = pytest.importorskip("torch.distributed")


@pytest.fixture
def c10d(device, tmp_path):
    """A world of one rank on ``device`` (gloo for cpu, nccl for cuda), destroyed afterwards."""
    from datetime import timedelta

    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    backend = "gloo" if device == "cpu" else "nccl"
    if backend == "gloo" and not dist.is_gloo_available():
        pytest.skip("this build has no gloo backend")
    if backend == "nccl" and not dist.is_nccl_available():
        pytest.skip("this build has no nccl backend")
    from torch.distributed import distributed_c10d

    store = dist.FileStore(os.path.join(str(tmp_path), "store"), 1)
    dist.init_process_group(backend, store=store, rank=0, world_size=1, timeout=timedelta(seconds=30))
    try:
        yield distributed_c10d
    finally:
        dist.destroy_process_group()


def _t(np_rng, device, n=12, dtype=torch.float32):
    return torch.tensor(np_rng.standard_normal(n), dtype=dtype, device=device)


def test_world_of_one(c10d, device, np_rng):
    """Catches a single-rank group reporting a wrong rank/world size, and torch.is_distributed /
    Tensor.is_distributed returning True for an ordinary tensor (documented: always False, legacy)."""
    assert_equal("torch.distributed.get_world_size", c10d.get_world_size(), 1)
    assert_equal("torch.distributed.get_rank", c10d.get_rank(), 0)
    assert_equal("torch.distributed.is_initialized", c10d.is_initialized(), True)
    x = _t(np_rng, device)
    assert_equal("torch.is_distributed", torch.is_distributed(x), False)
    assert_equal("Tensor.is_distributed", x.is_distributed(), False)


_FLOAT_OPS = ("SUM", "PRODUCT", "MIN", "MAX", "AVG")
_INT_OPS = ("SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR")


@pytest.mark.smoke
@pytest.mark.parametrize("async_op", [False, True])
def test_all_reduce(c10d, device, np_rng, async_op):
    """all_reduce with every ReduceOp at world size 1 is the identity (in place): catches AVG divided by
    a wrong count, SUM doubling, bitwise ops through floats, a result written to a copy, a handle that
    never completes; non-contiguous input and MAX on complex tensors are documented errors."""
    for op in _FLOAT_OPS:
        x64 = np_rng.standard_normal(33)
        x = torch.tensor(x64, dtype=torch.float32, device=device)
        ptr = x.data_ptr()
        work = c10d.all_reduce(x, op=getattr(dist.ReduceOp, op), async_op=async_op)
        if async_op:
            assert_equal("torch.distributed.all_reduce", work.wait(), True, args=f"op={op}, async_op=True: wait()")
            assert_true("torch.distributed.all_reduce", work.is_completed(), "handle not completed after wait()")
        else:
            assert_true("torch.distributed.all_reduce", work is None, f"async_op=False returned {work!r}")
        assert_true("torch.distributed.all_reduce", x.data_ptr() == ptr, "result not written in place")
        assert_close("torch.distributed.all_reduce", x, x64.astype(np.float32), op="exact", args=f"op=ReduceOp.{op}")
    # NCCL documents no bitwise reductions (BAND/BOR/BXOR are gloo/MPI only): those run on gloo here
    for op in (_INT_OPS if device == "cpu" else [o for o in _INT_OPS if not o.startswith("B")]):
        i64 = np_rng.integers(-1000, 1000, size=17)
        xi = torch.tensor(i64, dtype=torch.int64, device=device)
        c10d.all_reduce(xi, op=getattr(dist.ReduceOp, op))
        assert_equal("torch.distributed.all_reduce", xi, i64, args=f"op=ReduceOp.{op}, int64")
    z = torch.tensor(np_rng.standard_normal((4, 2)), dtype=torch.float32, device=device)
    zc = torch.view_as_complex(z.clone())
    c10d.all_reduce(zc, op=dist.ReduceOp.SUM)
    assert_close("torch.distributed.all_reduce", torch.view_as_real(zc), z, op="exact", args="complex64 SUM")
    assert_raises("torch.distributed.all_reduce", ValueError, c10d.all_reduce, zc, op=dist.ReduceOp.MAX,
                  match="complex", args="complex, op=MAX")
    b64 = np_rng.standard_normal(24)
    big = torch.tensor(b64, dtype=torch.float64, device=device)
    c10d.all_reduce(big[::2], op=dist.ReduceOp.SUM)  # a gapped view: reduced in place, the gaps untouched
    assert_close("torch.distributed.all_reduce", big, b64, op="exact", args="non-contiguous view [::2]")


def test_all_reduce_premul_sum(c10d, device, np_rng):
    """PREMUL_SUM (nccl: the factor times the sum, at world size 1 factor * x); gloo documents it as
    unsupported and must raise instead of silently summing."""
    mk = getattr(dist, "_make_nccl_premul_sum", None)
    if mk is None:
        pytest.skip("this torch has no torch.distributed._make_nccl_premul_sum")
    x64 = np_rng.standard_normal(9)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    if device == "cpu":
        assert_raises("torch.distributed.all_reduce", RuntimeError, c10d.all_reduce, x, op=mk(2.5),
                      match="PREMUL_SUM", args="gloo, PREMUL_SUM")
        return
    c10d.all_reduce(x, op=mk(2.5))
    assert_close("torch.distributed.all_reduce", x, 2.5 * x64, op="elementwise", args="PREMUL_SUM(2.5)")


def test_all_reduce_coalesced(c10d, device, np_rng):
    """all_reduce_coalesced over a list of tensors (deprecated, still public): each is reduced in place,
    catches a tensor skipped or the flattened buffer not copied back."""
    xs64 = [np_rng.standard_normal(5), np_rng.standard_normal((2, 3))]
    xs = [torch.tensor(a, dtype=torch.float64, device=device) for a in xs64]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        c10d.all_reduce_coalesced(xs, op=dist.ReduceOp.SUM)
    for got, ref in zip(xs, xs64):
        assert_close("torch.distributed.all_reduce_coalesced", got, ref, op="exact")


@pytest.mark.parametrize("async_op", [False, True])
def test_broadcast_and_reduce(c10d, device, np_rng, async_op):
    """broadcast(src=0) and reduce(dst=0) at world size 1 leave the tensor unchanged: catches a broadcast
    that zeroes or reallocates the buffer, reduce ignoring op, and an out-of-range src that is accepted."""
    x64 = np_rng.standard_normal((3, 4))
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    work = c10d.broadcast(x, src=0, async_op=async_op)
    if async_op:
        assert_equal("torch.distributed.broadcast", work.wait(), True, args="async_op=True")
    assert_close("torch.distributed.broadcast", x, x64.astype(np.float32), op="exact", args="src=0")
    for op in ("SUM", "PRODUCT", "MAX", "MIN"):
        y = torch.tensor(x64, dtype=torch.float64, device=device)
        work = c10d.reduce(y, dst=0, op=getattr(dist.ReduceOp, op), async_op=async_op)
        if async_op:
            work.wait()
        assert_close("torch.distributed.reduce", y, x64, op="exact", args=f"dst=0, op={op}")
    assert_raises("torch.distributed.broadcast", (ValueError, RuntimeError), c10d.broadcast, x, src=1,
                  args="src=1 >= world_size")


def test_all_gather(c10d, device, np_rng):
    """all_gather fills a list of one with the input; all_gather_into_tensor / all_gather_single fill the
    concatenated (n,) and the stacked (1, n) output forms; all_gather_coalesced fills one list per input.
    Catches an output left unwritten, the stacked form rejected, or a list of wrong length accepted."""
    x64 = np_rng.standard_normal(10)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    ref = x64.astype(np.float32)
    out = [torch.zeros(10, device=device)]
    c10d.all_gather(out, x)
    assert_close("torch.distributed.all_gather", out[0], ref, op="exact")
    assert_raises("torch.distributed.all_gather", (ValueError, RuntimeError), c10d.all_gather,
                  [torch.zeros(10, device=device), torch.zeros(10, device=device)], x, args="2 outputs in a world of 1")
    single = getattr(c10d, "all_gather_single", None) or c10d.all_gather_into_tensor
    name = "torch.distributed." + single.__name__
    flat = torch.zeros(10, device=device)
    work = single(flat, x, async_op=True)
    assert_equal(name, work.wait(), True, args="async_op=True")
    assert_close(name, flat, ref, op="exact", args="concatenated output")
    if hasattr(c10d, "all_gather_coalesced"):
        y64 = np_rng.standard_normal((2, 2))
        y = torch.tensor(y64, dtype=torch.float32, device=device)
        outs = [[torch.zeros(10, device=device), torch.zeros(2, 2, device=device)]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            c10d.all_gather_coalesced(outs, [x, y])
        assert_close("torch.distributed.all_gather_coalesced", outs[0][0], ref, op="exact")
        assert_close("torch.distributed.all_gather_coalesced", outs[0][1], y64.astype(np.float32), op="exact")


def test_all_gather_single_stacked(c10d, device, np_rng):
    """all_gather_single documents two output forms: the concatenation (world*n,) and the stack (world, n)
    of the inputs. Catches the stacked form rejected or left unwritten (gloo on torch 2.13 rejects it:
    'invalid tensor size at index 0 (expected (10), got (1, 10))', a real finding)."""
    single = getattr(c10d, "all_gather_single", None)
    if single is None:
        pytest.skip("this torch has no distributed_c10d.all_gather_single (added after 2.6)")
    x64 = np_rng.standard_normal(10)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    stacked = torch.zeros(1, 10, device=device)
    single(stacked, x)
    assert_close("torch.distributed.all_gather_single", stacked, x64.astype(np.float32)[None, :], op="exact",
                 args="stacked (world, n) output")


def test_gather_scatter(c10d, device, np_rng):
    """gather(dst=0) returns a list of one holding the input; scatter(src=0) writes the one chunk:
    catches an unwritten gather list, a scatter that leaves the output untouched, and a scatter list of the
    wrong length accepted."""
    x64 = np_rng.standard_normal(7)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    ref = x64.astype(np.float32)
    glist = [torch.zeros(7, device=device)]
    c10d.gather(x, gather_list=glist, dst=0)
    assert_close("torch.distributed.gather", glist[0], ref, op="exact", args="dst=0")
    out = torch.zeros(7, device=device)
    work = c10d.scatter(out, scatter_list=[x], src=0, async_op=True)
    work.wait()
    assert_close("torch.distributed.scatter", out, ref, op="exact", args="src=0, async_op=True")
    assert_raises("torch.distributed.scatter", (ValueError, RuntimeError), c10d.scatter, torch.zeros(7, device=device),
                  scatter_list=[x, x], src=0, args="2 chunks in a world of 1")


def test_reduce_scatter(c10d, device, np_rng):
    """reduce_scatter (list form) and reduce_scatter_tensor / reduce_scatter_single at world size 1 hand
    back the single input chunk: catches an output left unwritten or an op applied twice."""
    x64 = np_rng.standard_normal(8)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    ref = x64.astype(np.float32)
    for op in ("SUM", "MAX"):
        out = torch.zeros(8, device=device)
        c10d.reduce_scatter(out, [x], op=getattr(dist.ReduceOp, op))
        assert_close("torch.distributed.reduce_scatter", out, ref, op="exact", args=f"op={op}")
    single = getattr(c10d, "reduce_scatter_single", None) or c10d.reduce_scatter_tensor
    name = "torch.distributed." + single.__name__
    out = torch.zeros(8, device=device)
    work = single(out, x, async_op=True)
    work.wait()
    assert_close(name, out, ref, op="exact", args="async_op=True")
    if hasattr(c10d, "reduce_scatter_tensor") and single is not c10d.reduce_scatter_tensor:
        out = torch.zeros(8, device=device)
        c10d.reduce_scatter_tensor(out, x)
        assert_close("torch.distributed.reduce_scatter_tensor", out, ref, op="exact")


def test_all_to_all(c10d, device, np_rng):
    """all_to_all (lists) and all_to_all_single (with and without split sizes) at world size 1 copy the
    input to the output: catches an unwritten output, split sizes ignored, wrong split sizes accepted."""
    x64 = np_rng.standard_normal(6)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    ref = x64.astype(np.float32)
    outs = [torch.zeros(6, device=device)]
    c10d.all_to_all(outs, [x])
    assert_close("torch.distributed.all_to_all", outs[0], ref, op="exact")
    out = torch.zeros(6, device=device)
    c10d.all_to_all_single(out, x)
    assert_close("torch.distributed.all_to_all_single", out, ref, op="exact")
    out = torch.zeros(6, device=device)
    work = c10d.all_to_all_single(out, x, output_split_sizes=[6], input_split_sizes=[6], async_op=True)
    work.wait()
    assert_close("torch.distributed.all_to_all_single", out, ref, op="exact", args="split sizes [6], async_op=True")
    assert_raises("torch.distributed.all_to_all_single", (ValueError, RuntimeError), c10d.all_to_all_single,
                  torch.zeros(6, device=device), x, output_split_sizes=[3, 3], input_split_sizes=[3, 3],
                  args="2 splits in a world of 1")


def test_send_self(c10d, device, np_rng):
    """send to its own rank is documented as an error (ValueError: destination rank should not be the same
    as the rank of the current process): catches a send to self that deadlocks or is silently dropped."""
    x = _t(np_rng, device, 5)
    assert_raises("torch.distributed.send", ValueError, c10d.send, x, dst=0, match="destination rank", args="dst=self")


@pytest.mark.parametrize("order", ["recv_first", "send_first"])
def test_isend_irecv_self(c10d, device, np_rng, order):
    """isend/irecv document that, unlike send/recv, they allow src == dst (send to self): the message posted
    with isend arrives in the irecv buffer. Catches a self message dropped or corrupted (gloo on torch 2.13
    raises 'Pair is not connected' instead, a real finding). Posting order must not matter."""
    x64 = np_rng.standard_normal(5)
    x = torch.tensor(x64, dtype=torch.float32, device=device)
    assert_equal("torch.distributed.get_rank", c10d.get_rank(), 0, args="self is rank 0")
    buf = torch.zeros(5, device=device)
    if order == "recv_first":
        rwork = c10d.irecv(buf, src=0)
        swork = c10d.isend(x, dst=0)
    else:
        swork = c10d.isend(x, dst=0)
        rwork = c10d.irecv(buf, src=0)
    swork.wait()
    rwork.wait()
    assert_close("torch.distributed.irecv", buf, x64.astype(np.float32), op="exact", args="src=self (isend dst=self)")


def test_recv_self(c10d, device, np_rng):
    """recv (blocking) from its own rank: documented only for irecv as allowed, so recv from self must raise
    rather than hang or return a value."""
    if device != "cpu":
        pytest.skip("a blocking recv from self is only defined to fail fast on gloo; nccl would wait for a sender")
    buf = torch.zeros(5, device=device)
    assert_raises("torch.distributed.recv", (ValueError, RuntimeError), c10d.recv, buf, src=0, args="src=self")
    assert_equal("torch.distributed.recv", buf, np.zeros(5, dtype=np.float32), args="buffer untouched after the error")
