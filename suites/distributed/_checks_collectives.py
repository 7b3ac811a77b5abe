"""Per-rank bodies of the § 8 collective checks (run inside the ranks of a
:class:`suites.distributed._launch.World`). Each takes the RankContext, performs one documented
operation on the inputs of :mod:`suites.distributed._inputs`, and returns NumPy values for the
parent's assertions. Operations the running torch documents as missing from the backend raise
``Unsupported`` before they are tried (a skip with the reason); any error from an operation the backend
documents is a failure."""
from __future__ import annotations

import time

import numpy as np

from suites.distributed import _inputs
from suites.distributed._launch import Unsupported, to_numpy


def _t(a, ctx):
    import torch

    return torch.from_numpy(np.array(a)).to(ctx.device)


# Documented gaps: (backend, operation) -> the torch release that added it (None: never, per the
# torch.distributed docs). The suites support torch >= 2.6; gloo gained ReduceOp.AVG (pytorch#149781)
# and the list form of reduce_scatter (pytorch#149869) in March 2025, first released in 2.8. NCCL has no
# bitwise reductions ("BAND, BOR, and BXOR reductions are not available when using the NCCL backend").
_ADDED_IN = {
    ("gloo", "ReduceOp.AVG"): "2.8",
    ("gloo", "reduce_scatter"): "2.8",
    ("nccl", "ReduceOp.BAND"): None,
    ("nccl", "ReduceOp.BOR"): None,
    ("nccl", "ReduceOp.BXOR"): None,
}


def _require(ctx, what: str) -> None:
    """Raise Unsupported (a skip with the reason) when the running torch's documentation says backend
    ``ctx.backend`` lacks ``what``; otherwise return, so that an error from the operation itself is a
    failure of the test, never a skip."""
    key = (ctx.backend, what)
    if key not in _ADDED_IN:
        return
    import torch
    from packaging.version import Version

    since = _ADDED_IN[key]
    if since is None:
        raise Unsupported(f"the {ctx.backend} backend does not implement {what} (torch.distributed docs)")
    if Version(torch.__version__).release < Version(since).release:
        raise Unsupported(f"the {ctx.backend} backend implements {what} from torch {since} on; "
                          f"this is {torch.__version__}")


def rank_info(ctx):
    import torch.distributed as dist

    return {"rank": dist.get_rank(), "world_size": dist.get_world_size(), "initialized": dist.is_initialized(),
            "backend": str(dist.get_backend()), "available": dist.is_available()}


def all_reduce(ctx, op_name, kind):
    import torch.distributed as dist

    x = _t(_inputs.floats(ctx.rank) if kind == "float" else _inputs.ints(ctx.rank), ctx)
    op = getattr(dist.ReduceOp, op_name)
    _require(ctx, f"ReduceOp.{op_name}")
    dist.all_reduce(x, op=op)
    return to_numpy(x)


def broadcast(ctx, src):
    import torch.distributed as dist

    x = _t(_inputs.floats(ctx.rank), ctx)
    dist.broadcast(x, src=src)
    return to_numpy(x)


def all_gather(ctx):
    import torch
    import torch.distributed as dist

    x = _t(_inputs.floats(ctx.rank), ctx)
    out = [torch.full_like(x, -7.0) for _ in range(ctx.world_size)]
    dist.all_gather(out, x)
    return np.stack([to_numpy(o) for o in out])


def all_gather_into_tensor(ctx):
    import torch
    import torch.distributed as dist

    x = _t(_inputs.floats(ctx.rank), ctx)
    out = torch.full((ctx.world_size * x.numel(),), -7.0, device=ctx.device)
    dist.all_gather_into_tensor(out, x)
    return to_numpy(out)


def reduce_scatter(ctx):
    import torch
    import torch.distributed as dist

    ins = [_t(c, ctx) for c in _inputs.chunks(ctx.rank, ctx.world_size)]
    out = torch.full_like(ins[0], -7.0)
    _require(ctx, "reduce_scatter")
    dist.reduce_scatter(out, ins, op=dist.ReduceOp.SUM)
    return to_numpy(out)


def reduce_scatter_tensor(ctx):
    import torch
    import torch.distributed as dist

    inp = _t(np.concatenate(_inputs.chunks(ctx.rank, ctx.world_size)), ctx)
    out = torch.full((_inputs.N,), -7.0, device=ctx.device)
    dist.reduce_scatter_tensor(out, inp, op=dist.ReduceOp.SUM)
    return to_numpy(out)


def reduce(ctx, dst):
    import torch.distributed as dist

    x = _t(_inputs.floats(ctx.rank), ctx)
    dist.reduce(x, dst=dst, op=dist.ReduceOp.SUM)
    return to_numpy(x)


def scatter(ctx, src):
    import torch
    import torch.distributed as dist

    out = torch.full((_inputs.N,), -7.0, device=ctx.device)
    lst = [_t(c, ctx) for c in _inputs.chunks(ctx.rank, ctx.world_size)] if ctx.rank == src else None
    dist.scatter(out, lst, src=src)
    return to_numpy(out)


def gather(ctx, dst):
    import torch
    import torch.distributed as dist

    x = _t(_inputs.floats(ctx.rank), ctx)
    lst = [torch.full_like(x, -7.0) for _ in range(ctx.world_size)] if ctx.rank == dst else None
    dist.gather(x, lst, dst=dst)
    return None if lst is None else np.stack([to_numpy(o) for o in lst])


def barrier(ctx, sleeper, delay):
    """The ``sleeper`` rank enters the barrier ``delay`` s late; returns seconds each rank waited."""
    import torch.distributed as dist

    dist.barrier()  # align the start
    t0 = time.monotonic()
    if ctx.rank == sleeper:
        time.sleep(delay)
    dist.barrier()
    return time.monotonic() - t0


def async_all_reduce(ctx):
    import torch.distributed as dist

    x = _t(_inputs.floats(ctx.rank), ctx)
    work = dist.all_reduce(x, op=dist.ReduceOp.SUM, async_op=True)
    has_wait = hasattr(work, "wait")
    work.wait()
    return {"value": to_numpy(x), "has_wait": has_wait, "completed": bool(work.is_completed()),
            "sync_result": dist.all_reduce(_t(_inputs.floats(ctx.rank), ctx)) is None}


def ring_send_recv(ctx):
    """Each rank sends its input to rank+1 and receives from rank-1 (isend/irecv, then send/recv)."""
    import torch
    import torch.distributed as dist

    w, r = ctx.world_size, ctx.rank
    x = _t(_inputs.floats(r), ctx)
    got = torch.full_like(x, -7.0)
    reqs = [dist.isend(x, (r + 1) % w), dist.irecv(got, (r - 1) % w)]
    for q in reqs:
        q.wait()
    # blocking pair: rank 0 -> rank w-1
    blocking = None
    if w > 1:
        if r == 0:
            dist.send(x * 3, dst=w - 1)
        elif r == w - 1:
            blocking = torch.full_like(x, -7.0)
            dist.recv(blocking, src=0)
    return {"ring": to_numpy(got), "blocking": None if blocking is None else to_numpy(blocking)}


def all_to_all_single(ctx):
    import torch.distributed as dist
    import torch

    inp = _t(np.concatenate(_inputs.chunks(ctx.rank, ctx.world_size)), ctx)
    out = torch.full_like(inp, -7.0)
    dist.all_to_all_single(out, inp)
    return to_numpy(out)


def objects(ctx):
    import torch.distributed as dist

    lst = [{"from": ctx.rank, "payload": list(range(ctx.rank + 2))}]
    if ctx.rank != ctx.world_size - 1:
        lst = [None]
    dist.broadcast_object_list(lst, src=ctx.world_size - 1)
    gathered = [None] * ctx.world_size
    dist.all_gather_object(gathered, ("rank", ctx.rank, ctx.rank ** 2))
    return {"broadcast": lst[0], "gathered": gathered}


def build(world_size: int) -> dict:
    """name -> (fn, args) for every collective check at this world size."""
    last = world_size - 1
    checks = {"rank_info": (rank_info, ())}
    for op in ("SUM", "PRODUCT", "MIN", "MAX", "AVG"):
        checks[f"all_reduce_{op}"] = (all_reduce, (op, "float"))
    for op in ("BAND", "BOR", "BXOR", "SUM", "MAX"):
        checks[f"all_reduce_int_{op}"] = (all_reduce, (op, "int"))
    checks.update({
        "broadcast_src_last": (broadcast, (last,)),
        "broadcast_src_0": (broadcast, (0,)),
        "all_gather": (all_gather, ()),
        "all_gather_into_tensor": (all_gather_into_tensor, ()),
        "reduce_scatter": (reduce_scatter, ()),
        "reduce_scatter_tensor": (reduce_scatter_tensor, ()),
        "reduce_dst_last": (reduce, (last,)),
        "scatter_src_last": (scatter, (last,)),
        "gather_dst_last": (gather, (last,)),
        "barrier": (barrier, (last, 0.5)),
        "async_all_reduce": (async_all_reduce, ()),
        "send_recv": (ring_send_recv, ()),
        "all_to_all_single": (all_to_all_single, ()),
        "objects": (objects, ()),
    })
    return checks
