"""§ 8 Devices and distributed: ``DistributedDataParallel`` and ``DistributedSampler`` in real ranks.

The ranks (one shared process group per backend, see conftest.py) train a small MLP; the parent
computes the single-process reference on the concatenated batch in float64 (plain autograd, no
DDP) and compares parameters and gradients with the ``training``/``gradient`` tolerances.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_true
from suites.distributed import _checks_ddp as C
from suites.distributed import _models
from suites.distributed._launch import values


@pytest.fixture(scope="module")
def results(world):
    out = world.run_checks(C.build(world.world_size), timeout=120)
    out["_world_size"] = world.world_size
    return out


def _reference_model(unused_branch=False):
    m = _models.make_mlp(dtype=torch.float64, unused_branch=unused_branch)
    return _models.load(m, _models.init_state(C.SEED, unused_branch=unused_branch))


def _reference_training(x, y, steps, unused_branch=False):
    """Single-process SGD on the whole batch (mean MSE), float64: what DDP must reproduce."""
    m = _reference_model(unused_branch)
    x, y = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    grads0 = None
    for i in range(steps):
        m.zero_grad(set_to_none=True)
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        if i == 0:
            grads0 = {n: p.grad.numpy().copy() for n, p in m.named_parameters() if p.grad is not None}
        with torch.no_grad():
            for p in m.parameters():
                if p.grad is not None:
                    p -= C.LR * p.grad
    return _models.state_numpy(m), grads0


@pytest.mark.smoke
def test_ddp_construction_broadcasts_rank0_state(results):
    """DDP(module) broadcasts rank 0's parameters and buffers to every rank at construction:
    ranks built with different seeds (and buffer values) end equal to rank 0's initial state;
    catches a DDP that skips the initial sync (ranks would silently train different models)."""
    got = values(results, "construction")
    r0 = got[0]["before"]
    assert_true("DistributedDataParallel", any(not np.array_equal(r0[k], got[-1]["before"][k]) for k in r0),
                "ranks started equal: the construction broadcast would be untested")
    for r, g in enumerate(got):
        assert_true("DistributedDataParallel.module", g["wraps_same_module"],
                    "ddp.module is not the wrapped module (or its Parameters were replaced)")
        for k in r0:
            assert_equal("DistributedDataParallel", g["after"][k], r0[k], args=f"rank {r}, {k} after construction")


@pytest.mark.parametrize("variant", ["default", "small_buckets", "bucket_view", "no_broadcast_buffers"])
def test_ddp_equals_single_process(results, variant):
    """Training through DDP with W ranks (each on its slice of the batch) equals single-process
    SGD on the concatenated batch: same averaged gradients at step 1 and same parameters after
    4 steps, with default buckets, bucket_cap_mb tiny (one bucket per parameter),
    gradient_as_bucket_view=True and broadcast_buffers=False; catches gradients summed instead of
    averaged, a bucket left unreduced, or gradients reduced in the wrong order."""
    w = results["_world_size"]
    x, y = _models.data(C.SEED, C.PER_RANK * w)
    ref_params, ref_grads = _reference_training(x, y, C.STEPS)
    for r, got in enumerate(values(results, f"train_{variant}")):
        for k, v in ref_grads.items():
            assert_close("DistributedDataParallel", got["grads0"][k], v, op="gradient", dtype=torch.float32,
                         args=f"{variant}, rank {r}, grad {k} step 1")
        for k, v in ref_params.items():
            assert_close("DistributedDataParallel", got["params"][k], v, op="training", dtype=torch.float32,
                         args=f"{variant}, rank {r}, {k} after {C.STEPS} SGD steps")


def test_ddp_no_sync_accumulation(results):
    """Inside ddp.no_sync() backward leaves each rank's LOCAL gradient (no all-reduce); the next
    backward outside accumulates and averages: the result equals the gradient of the sum of
    micro-batch losses over the whole batch divided by W; catches no_sync that still syncs or a
    sync step that drops the accumulated part."""
    w = results["_world_size"]
    x, y = _models.data(C.SEED + 1, 2 * C.PER_RANK * w)
    per = C.PER_RANK

    def grads(parts):
        m = _reference_model()
        loss = sum(((m(torch.from_numpy(x[k * per:(k + 1) * per]).double()) -
                     torch.from_numpy(y[k * per:(k + 1) * per]).double()) ** 2).mean() for k in parts)
        loss.backward()
        return {n: p.grad.numpy().copy() for n, p in m.named_parameters()}

    synced_ref = {k: v / w for k, v in grads(range(2 * w)).items()}
    got = values(results, "no_sync")
    for r in range(w):
        local_ref = grads([2 * r])
        for k in local_ref:
            assert_close("DistributedDataParallel.no_sync", got[r]["local"][k], local_ref[k], op="gradient",
                         dtype=torch.float32, args=f"rank {r}, {k}: local grad inside no_sync")
            assert_close("DistributedDataParallel.no_sync", got[r]["synced"][k], synced_ref[k], op="gradient",
                         dtype=torch.float32, args=f"rank {r}, {k}: grad after the sync step")


def test_ddp_find_unused_parameters(results):
    """find_unused_parameters=True: a parameter branch forward never uses does not stall the
    reduction; used parameters train exactly as single-process SGD, unused ones keep grad None and
    their initial values."""
    w = results["_world_size"]
    x, y = _models.data(C.SEED + 2, C.PER_RANK * w)
    ref, _ = _reference_training(x, y, 3, unused_branch=True)
    for r, got in enumerate(values(results, "unused_find")):
        assert_equal("DistributedDataParallel", got["error"], None, args="find_unused_parameters=True")
        assert_equal("DistributedDataParallel", got["steps_done"], 3, args="find_unused_parameters=True")
        assert_true("DistributedDataParallel", got["unused_grad_is_none"], "unused parameter got a gradient")
        for k, v in ref.items():
            assert_close("DistributedDataParallel", got["params"][k], v, op="training", dtype=torch.float32,
                         args=f"find_unused_parameters=True, rank {r}, {k}")


def test_ddp_unused_parameters_error_without_find(results):
    """Without find_unused_parameters, an unused parameter leaves the reduction unfinished and the
    NEXT forward raises the documented RuntimeError ('Expected to have finished reduction in the
    prior iteration ...'); catches a DDP that silently trains on unsynchronised gradients."""
    for r, got in enumerate(values(results, "unused_nofind")):
        assert_equal("DistributedDataParallel", got["steps_done"], 1, args=f"find_unused_parameters=False, rank {r}")
        assert_true("DistributedDataParallel", got["error"] is not None and "finished reduction" in got["error"],
                    f"expected the 'Expected to have finished reduction' error, got {str(got['error'])[:200]!r}")


def test_distributed_sampler_reads_process_group(results):
    """DistributedSampler() without num_replicas/rank takes them from the default group; with
    shuffle=False rank r gets indices r, r+W, ... padded by wrapping to ceil(n/W) each."""
    w = results["_world_size"]
    n = 11
    per = -(-n // w)
    padded = list(range(n)) + list(range(n))[: per * w - n]
    for r, got in enumerate(values(results, "sampler_default_group")):
        assert_equal("DistributedSampler", got["num_replicas"], w, args=f"rank {r}")
        assert_equal("DistributedSampler", got["rank"], r, args=f"rank {r}")
        assert_equal("DistributedSampler", got["indices"], padded[r::w], args=f"shuffle=False, n={n}, rank {r}")
        assert_equal("DistributedSampler.__len__", got["len"], per, args=f"n={n}, rank {r}")
