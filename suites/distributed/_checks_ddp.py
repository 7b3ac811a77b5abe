"""Per-rank bodies of the § 8 DistributedDataParallel and DistributedSampler checks (run inside
the ranks of a :class:`suites.distributed._launch.World`); they return NumPy values only."""
from __future__ import annotations


from suites.distributed import _models

SEED = 1234
PER_RANK = 8
STEPS = 4
LR = 0.1


def _slice(ctx, x, y, index, per):
    lo = index * per
    return x[lo:lo + per], y[lo:lo + per]


def _ddp(ctx, model, **kw):
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = model.to(ctx.device)
    return DDP(model, device_ids=[ctx.local_rank] if ctx.backend == "nccl" else None, **kw)


def construction(ctx):
    """Ranks start from different parameters and buffers; DDP(...) must broadcast rank 0's."""
    import torch

    torch.manual_seed(100 + ctx.rank)
    model = _models.make_mlp()
    model.marker.fill_(float(ctx.rank + 1))
    before = _models.state_numpy(model)
    ddp = _ddp(ctx, model)
    after = _models.state_numpy(ddp.module)
    same_objects = all(a is b for a, b in zip(model.parameters(), ddp.module.parameters()))
    return {"before": before, "after": after, "wraps_same_module": ddp.module is model and same_objects}


def train(ctx, ddp_kwargs=None, steps=STEPS):
    """SGD on this rank's slice of the global batch through DDP; returns final parameters and
    the first step's gradients (after the all-reduce)."""
    import torch

    x, y = _models.data(SEED, PER_RANK * ctx.world_size)
    xs, ys = _slice(ctx, x, y, ctx.rank, PER_RANK)
    xs, ys = torch.from_numpy(xs).to(ctx.device), torch.from_numpy(ys).to(ctx.device)
    model = _models.load(_models.make_mlp(), _models.init_state(SEED))
    ddp = _ddp(ctx, model, **(ddp_kwargs or {}))
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    grads0 = None
    for i in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(ddp(xs), ys).backward()
        if i == 0:
            grads0 = {n: p.grad.detach().cpu().double().numpy().copy() for n, p in ddp.module.named_parameters()}
        opt.step()
    return {"params": _models.state_numpy(ddp.module), "grads0": grads0}


def no_sync(ctx):
    """Two micro-batches per rank: the first backward inside ddp.no_sync() (local gradients, no
    all-reduce), the second outside (accumulated gradients averaged over ranks)."""
    import torch

    x, y = _models.data(SEED + 1, 2 * PER_RANK * ctx.world_size)
    model = _models.load(_models.make_mlp(), _models.init_state(SEED))
    ddp = _ddp(ctx, model)
    micro = [_slice(ctx, x, y, 2 * ctx.rank + k, PER_RANK) for k in range(2)]
    micro = [(torch.from_numpy(a).to(ctx.device), torch.from_numpy(b).to(ctx.device)) for a, b in micro]
    with ddp.no_sync():
        torch.nn.functional.mse_loss(ddp(micro[0][0]), micro[0][1]).backward()
    local = {n: p.grad.detach().cpu().double().numpy().copy() for n, p in ddp.module.named_parameters()}
    torch.nn.functional.mse_loss(ddp(micro[1][0]), micro[1][1]).backward()
    synced = {n: p.grad.detach().cpu().double().numpy().copy() for n, p in ddp.module.named_parameters()}
    return {"local": local, "synced": synced}


def unused(ctx, find_unused: bool, steps: int = 3):
    """A module with a parameterised branch that forward never calls."""
    import torch

    x, y = _models.data(SEED + 2, PER_RANK * ctx.world_size)
    xs, ys = _slice(ctx, x, y, ctx.rank, PER_RANK)
    xs, ys = torch.from_numpy(xs).to(ctx.device), torch.from_numpy(ys).to(ctx.device)
    model = _models.load(_models.make_mlp(unused_branch=True), _models.init_state(SEED, unused_branch=True))
    ddp = _ddp(ctx, model, find_unused_parameters=find_unused)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    error = None
    done = 0
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(ddp(xs), ys).backward()
            opt.step()
            done += 1
    except RuntimeError as exc:
        error = str(exc)
    return {"params": _models.state_numpy(ddp.module), "error": error, "steps_done": done,
            "unused_grad_is_none": ddp.module.unused.weight.grad is None}


def sampler_default_group(ctx, n, shuffle):
    """DistributedSampler without num_replicas/rank takes them from the default process group."""
    from torch.utils.data.distributed import DistributedSampler

    s = DistributedSampler(list(range(n)), shuffle=shuffle, seed=7)
    return {"indices": list(iter(s)), "num_replicas": s.num_replicas, "rank": s.rank, "len": len(s)}


def build(world_size: int) -> dict:
    return {
        "construction": (construction, ()),
        "train_default": (train, ()),
        # 1e-4 MB = 100 bytes: every parameter gets a bucket of its own
        "train_small_buckets": (train, ({"bucket_cap_mb": 1e-4},)),
        "train_bucket_view": (train, ({"gradient_as_bucket_view": True},)),
        "train_no_broadcast_buffers": (train, ({"broadcast_buffers": False},)),
        "no_sync": (no_sync, ()),
        "unused_find": (unused, (True,)),
        "unused_nofind": (unused, (False,)),
        "sampler_default_group": (sampler_default_group, (11, False)),
    }
