"""§ 8 Devices and distributed: ``torch.distributed`` collectives and point-to-point operations.

Every check runs in the real ranks of one shared process group (``gloo`` on CPU, world size 2;
``nccl`` with >= 2 GPUs) started once by :mod:`suites.distributed._launch`; each rank returns what
it observed and the parent test compares it with a NumPy float64 oracle built from the same
deterministic per-rank inputs (:mod:`suites.distributed._inputs`). Operations the running torch
documents as missing from a backend (gloo's AVG and list reduce_scatter before 2.8, NCCL's bitwise
reductions) are skipped with that reason before they are tried; an error from anything else fails.
"""
from __future__ import annotations


import numpy as np
import pytest

from harness.checks import assert_close, assert_equal, assert_true
from suites.distributed import _checks_collectives, _inputs
from suites.distributed._launch import values


@pytest.fixture(scope="module")
def results(world):
    """Every collective check, run once per backend in one round trip to the ranks."""
    out = world.run_checks(_checks_collectives.build(world.world_size))
    out["_world_size"] = world.world_size
    out["_backend"] = world.backend
    return out


def _w(results):
    return results["_world_size"]


def _floats(w):
    return [_inputs.floats(r).astype(np.float64) for r in range(w)]


@pytest.mark.smoke
def test_rank_and_world_size(results):
    """get_rank/get_world_size/is_initialized/get_backend in each rank: catches ranks that all
    report 0, a wrong world size, or a group that reports another backend."""
    w = _w(results)
    for r, info in enumerate(values(results, "rank_info")):
        assert_equal("torch.distributed.get_rank", info["rank"], r)
        assert_equal("torch.distributed.get_world_size", info["world_size"], w)
        assert_equal("torch.distributed.is_initialized", info["initialized"], True)
        assert_equal("torch.distributed.get_backend", info["backend"], results["_backend"])


_FLOAT_OPS = {"SUM": lambda xs: np.sum(xs, axis=0), "PRODUCT": lambda xs: np.prod(xs, axis=0),
              "MIN": lambda xs: np.min(xs, axis=0), "MAX": lambda xs: np.max(xs, axis=0),
              "AVG": lambda xs: np.mean(xs, axis=0)}


@pytest.mark.parametrize("op", list(_FLOAT_OPS))
def test_all_reduce(results, op):
    """all_reduce(op=ReduceOp.X) leaves the elementwise reduction over ranks in every rank's
    tensor: catches a wrong or ignored op (SUM done for MAX), a rank left out, AVG not divided,
    or a rank whose tensor is not overwritten."""
    ref = _FLOAT_OPS[op](np.stack(_floats(_w(results))))
    for r, got in enumerate(values(results, f"all_reduce_{op}")):
        assert_close("torch.distributed.all_reduce", got, ref, op="reduction", args=f"op=ReduceOp.{op}, rank {r}")


_INT_OPS = {"BAND": np.bitwise_and.reduce, "BOR": np.bitwise_or.reduce, "BXOR": np.bitwise_xor.reduce,
            "SUM": lambda xs: np.sum(xs, axis=0), "MAX": lambda xs: np.max(xs, axis=0)}


@pytest.mark.parametrize("op", list(_INT_OPS))
def test_all_reduce_int(results, op):
    """all_reduce on int64 tensors with the bitwise ops BAND/BOR/BXOR (and SUM/MAX), exactly:
    catches bitwise ops mapped to the wrong reduction or integers routed through floats."""
    xs = np.stack([_inputs.ints(r) for r in range(_w(results))])
    ref = _INT_OPS[op](xs) if op in ("SUM", "MAX") else _INT_OPS[op](xs, axis=0)
    for r, got in enumerate(values(results, f"all_reduce_int_{op}")):
        assert_equal("torch.distributed.all_reduce", got.dtype, np.dtype(np.int64), args=f"op={op} dtype")
        assert_equal("torch.distributed.all_reduce", got, ref, args=f"op=ReduceOp.{op}, int64, rank {r}")


@pytest.mark.parametrize("which", ["src_last", "src_0"])
def test_broadcast(results, which):
    """broadcast(t, src) copies src's tensor into every rank (src's own unchanged): catches an
    ignored src (always rank 0) or a rank that keeps its own data."""
    w = _w(results)
    src = w - 1 if which == "src_last" else 0
    for r, got in enumerate(values(results, f"broadcast_{which}")):
        assert_equal("torch.distributed.broadcast", got, _inputs.floats(src), args=f"src={src}, rank {r}")


def test_all_gather(results):
    """all_gather(list, t): slot j of every rank's list holds rank j's tensor: catches swapped
    slots, slots left untouched, or a rank's own tensor copied everywhere."""
    ref = np.stack(_floats(_w(results)))
    for r, got in enumerate(values(results, "all_gather")):
        assert_equal("torch.distributed.all_gather", got, ref, args=f"rank {r}")


def test_all_gather_into_tensor(results):
    """all_gather_into_tensor(out, t): out is the concatenation of every rank's t in rank order."""
    ref = np.concatenate(_floats(_w(results)))
    for r, got in enumerate(values(results, "all_gather_into_tensor")):
        assert_equal("torch.distributed.all_gather_into_tensor", got, ref, args=f"rank {r}")


def _reduce_scatter_ref(w, r):
    return np.sum([_inputs.chunks(src, w)[r].astype(np.float64) for src in range(w)], axis=0)


@pytest.mark.parametrize("name", ["reduce_scatter", "reduce_scatter_tensor"])
def test_reduce_scatter(results, name):
    """reduce_scatter(out, list) / reduce_scatter_tensor(out, t): rank r receives the SUM over
    ranks of chunk r: catches a wrong chunk (rank order), a missing reduction, or no scatter."""
    w = _w(results)
    for r, got in enumerate(values(results, name)):
        assert_close(f"torch.distributed.{name}", got, _reduce_scatter_ref(w, r), op="reduction", args=f"rank {r}")


def test_reduce(results):
    """reduce(t, dst) puts the SUM over ranks into dst's tensor: catches an ignored dst."""
    w = _w(results)
    got = values(results, "reduce_dst_last")[w - 1]
    assert_close("torch.distributed.reduce", got, np.sum(_floats(w), axis=0), op="reduction", args=f"dst={w - 1}")


def test_scatter(results):
    """scatter(out, list, src): rank r receives src's chunk r: catches an ignored src or chunks
    sent to the wrong ranks."""
    w = _w(results)
    src_chunks = _inputs.chunks(w - 1, w)
    for r, got in enumerate(values(results, "scatter_src_last")):
        assert_equal("torch.distributed.scatter", got, src_chunks[r], args=f"src={w - 1}, rank {r}")


def test_gather(results):
    """gather(t, list, dst): dst's list holds every rank's tensor in rank order."""
    w = _w(results)
    got = values(results, "gather_dst_last")[w - 1]
    assert_equal("torch.distributed.gather", got, np.stack(_floats(w)), args=f"dst={w - 1}")


def test_barrier(results):
    """barrier() blocks until every rank has entered it: with the last rank 0.5 s late, every
    rank waits at least ~0.5 s (0.4 s allowed for clock granularity): catches a no-op barrier."""
    for r, waited in enumerate(values(results, "barrier")):
        assert_true("torch.distributed.barrier", waited >= 0.4,
                    f"rank {r} left the barrier after {waited:.3f} s although the last rank entered it 0.5 s late")


def test_async_work_handle(results):
    """all_reduce(async_op=True) returns a Work handle whose wait() completes the op (then
    is_completed() is True and the value is right); the blocking form returns None."""
    ref = np.sum(_floats(_w(results)), axis=0)
    for r, got in enumerate(values(results, "async_all_reduce")):
        assert_true("torch.distributed.all_reduce", got["has_wait"], "async_op=True returned no Work with wait()")
        assert_true("Work.is_completed", got["completed"], "is_completed() is False after wait()")
        assert_true("torch.distributed.all_reduce", got["sync_result"], "async_op=False returned a value, not None")
        assert_close("torch.distributed.all_reduce", got["value"], ref, op="reduction", args=f"async_op=True, rank {r}")


def test_send_recv(results):
    """isend/irecv around a ring and blocking send/recv from rank 0 to the last rank deliver the
    sender's tensor: catches wrong peers (src/dst ignored) or an unfilled receive buffer."""
    w = _w(results)
    got = values(results, "send_recv")
    for r in range(w):
        assert_equal("torch.distributed.irecv", got[r]["ring"], _inputs.floats((r - 1) % w), args=f"rank {r} from {(r - 1) % w}")
    if w > 1:
        assert_close("torch.distributed.recv", got[w - 1]["blocking"], _inputs.floats(0).astype(np.float64) * 3,
                     op="elementwise", args="src=0")


def test_all_to_all_single(results):
    """all_to_all_single(out, in): rank r's out holds chunk r of every rank, in rank order."""
    w = _w(results)
    for r, got in enumerate(values(results, "all_to_all_single")):
        ref = np.concatenate([_inputs.chunks(src, w)[r] for src in range(w)])
        assert_equal("torch.distributed.all_to_all_single", got, ref, args=f"rank {r}")


def test_object_collectives(results):
    """broadcast_object_list and all_gather_object carry picklable objects intact and in rank order."""
    w = _w(results)
    for r, got in enumerate(values(results, "objects")):
        assert_equal("torch.distributed.broadcast_object_list", got["broadcast"],
                     {"from": w - 1, "payload": list(range(w + 1))}, args=f"src={w - 1}, rank {r}")
        assert_equal("torch.distributed.all_gather_object", got["gathered"], [("rank", k, k * k) for k in range(w)],
                     args=f"rank {r}")
