"""§ 9.4 Ecosystem: pruning (torch.nn.utils.prune): l1_unstructured / random_unstructured counts and
positions, ln_structured rows and channels, global_unstructured across modules, the weight_orig /
weight_mask reparametrisation and its forward pre-hook, prune.remove, is_pruned, iterative pruning
(PruningContainer), custom_from_mask and a custom BasePruningMethod, and argument validation.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from harness.checks import assert_close, assert_equal, assert_raises, assert_true


def _linear(device, out=6, inp=5, seed=0):
    """A Linear whose weight magnitudes are all distinct (no ties at the pruning threshold)."""
    lin = nn.Linear(inp, out).to(device=device, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    mags = rng.permutation(np.arange(1, out * inp + 1)) / (out * inp)
    signs = rng.choice([-1.0, 1.0], size=out * inp)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor((mags * signs).reshape(out, inp)))
    return lin


def _smallest_mask(w: np.ndarray, k: int) -> np.ndarray:
    mask = np.ones(w.size)
    mask[np.argsort(np.abs(w).ravel(), kind="stable")[:k]] = 0
    return mask.reshape(w.shape)


@pytest.mark.smoke
@pytest.mark.parametrize("amount,k", [(0.3, 9), (0.5, 15), (7, 7), (0, 0), (1.0, 30)], ids=["0.3", "0.5", "int7", "int0", "1.0"])
def test_l1_unstructured(device, amount, k):
    """l1_unstructured(amount=fraction|int) zeroes exactly round(fraction*n) (or the int) entries, and they are
    the smallest |w| (NumPy argsort); the effective weight = weight_orig * weight_mask; catches largest-first
    pruning, floor instead of round, or an int amount read as a fraction."""
    lin = _linear(device)
    w = lin.weight.detach().cpu().numpy().copy()
    prune.l1_unstructured(lin, "weight", amount=amount)
    exp_mask = _smallest_mask(w, k)
    assert_equal("prune.l1_unstructured", lin.weight_mask, exp_mask, args=f"amount={amount}")
    assert_equal("prune.l1_unstructured", lin.weight, w * exp_mask, args=f"amount={amount}: effective weight")
    assert_equal("prune.l1_unstructured", lin.weight_orig, w, args="weight_orig keeps the original values")


def test_pruning_reparametrisation(device):
    """After pruning: 'weight' leaves the parameters and 'weight_orig' joins them, 'weight_mask' is a buffer,
    a forward pre-hook recomputes weight = weight_orig * mask, gradients reach weight_orig masked, and after an
    optimiser step pruned entries of the effective weight stay zero; catches a mask applied once and lost."""
    lin = _linear(device)
    prune.l1_unstructured(lin, "weight", amount=0.4)
    names = dict(lin.named_parameters())
    assert_true("prune.l1_unstructured", "weight_orig" in names and "weight" not in names, f"parameters are {sorted(names)}")
    assert_true("prune.l1_unstructured", "weight_mask" in dict(lin.named_buffers()), "weight_mask is not a buffer")
    hooks = [h for h in lin._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
    assert_equal("prune.l1_unstructured", len(hooks), 1, args="one pruning forward pre-hook")
    mask = lin.weight_mask.cpu().numpy()
    x = torch.randn(4, 5, dtype=torch.float64, device=device)
    lin(x).sum().backward()
    exp_grad = np.tile(x.sum(0).cpu().numpy(), (6, 1)) * mask
    assert_close("prune.l1_unstructured", lin.weight_orig.grad, exp_grad, op="gradient", args="grad reaches weight_orig masked")
    opt = torch.optim.SGD(lin.parameters(), lr=1.0, weight_decay=0.1)
    opt.step()
    out = lin(x)
    w_eff = lin.weight.detach().cpu().numpy()
    assert_equal("prune.l1_unstructured", w_eff[mask == 0], np.zeros(int((mask == 0).sum())), args="pruned entries after a step")
    exp_out = x.cpu().numpy() @ (lin.weight_orig.detach().cpu().numpy() * mask).T + lin.bias.detach().cpu().numpy()
    assert_close("prune.l1_unstructured", out, exp_out, op="nn", args="forward uses the re-masked weight")


def test_remove_makes_permanent(device):
    """prune.remove replaces weight_orig/weight_mask by a plain Parameter 'weight' holding the masked values,
    drops the hook, and is_pruned turns False; removing from an unpruned module raises ValueError."""
    lin = _linear(device)
    assert_true("prune.is_pruned", not prune.is_pruned(lin), "fresh module reported pruned")
    prune.l1_unstructured(lin, "weight", amount=0.5)
    assert_true("prune.is_pruned", prune.is_pruned(lin), "pruned module not reported pruned")
    masked = lin.weight.detach().clone()
    prune.remove(lin, "weight")
    assert_true("prune.remove", isinstance(lin.weight, nn.Parameter), "weight is not a Parameter after remove")
    assert_true("prune.remove", not hasattr(lin, "weight_orig") and not hasattr(lin, "weight_mask"), "reparametrisation left behind")
    assert_equal("prune.remove", lin.weight.detach(), masked, args="values after remove")
    assert_equal("prune.remove", len(lin._forward_pre_hooks), 0, args="hooks after remove")
    assert_true("prune.is_pruned", not prune.is_pruned(lin), "still reported pruned after remove")
    assert_raises("prune.remove", ValueError, prune.remove, lin, "weight", args="not pruned")
    assert_equal("nn.Module.state_dict", sorted(lin.state_dict()), ["bias", "weight"], args="after remove")


@pytest.mark.parametrize("amount,k", [(0.25, 8), (11, 11)])
def test_random_unstructured_count(device, amount, k):
    """random_unstructured zeroes exactly round(amount*n) (or the int) entries, chosen at random: two seeds give
    different masks; catches a random pruner that ignores amount."""
    counts, masks = [], []
    for seed in (0, 1):
        torch.manual_seed(seed)
        lin = _linear(device, out=6, inp=5)
        prune.random_unstructured(lin, "weight", amount=amount)
        counts.append(int((lin.weight_mask == 0).sum()))
        masks.append(lin.weight_mask.clone())
    assert_equal("prune.random_unstructured", counts, [k, k], args=f"amount={amount}")
    assert_true("prune.random_unstructured", not torch.equal(masks[0], masks[1]), "two seeds gave the same random mask")


@pytest.mark.parametrize("n", [1, 2, math.inf])
@pytest.mark.parametrize("dim", [0, 1])
def test_ln_structured(device, n, dim):
    """ln_structured(amount=2, n, dim) zeroes whole slices along dim: the 2 with the smallest L_n norm (NumPy);
    the rest are untouched; catches pruning along the wrong dim or by the wrong norm."""
    lin = _linear(device, out=6, inp=5, seed=3)
    w = lin.weight.detach().cpu().numpy().copy()
    prune.ln_structured(lin, "weight", amount=2, n=n, dim=dim)
    other = 1 - dim
    norms = np.linalg.norm(w, ord=n, axis=other)
    drop = np.argsort(norms, kind="stable")[:2]
    exp = np.ones_like(w)
    if dim == 0:
        exp[drop, :] = 0
    else:
        exp[:, drop] = 0
    assert_equal("prune.ln_structured", lin.weight_mask, exp, args=f"n={n}, dim={dim}")
    assert_equal("prune.ln_structured", lin.weight, w * exp, args=f"n={n}, dim={dim}")


def test_ln_structured_conv_channels(device):
    """On a Conv2d weight (out, in, kh, kw), ln_structured(dim=0, amount=0.5) removes whole output channels,
    those with the smallest L2 norm over (in, kh, kw)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3).to(device=device, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([1.0, 0.1, 3.0, 0.5], dtype=torch.float64, device=device).view(4, 1, 1, 1))
    w = conv.weight.detach().cpu().numpy().copy()
    prune.ln_structured(conv, "weight", amount=0.5, n=2, dim=0)
    norms = np.sqrt((w ** 2).sum(axis=(1, 2, 3)))
    dropped = set(np.argsort(norms)[:2].tolist())
    for c in range(4):
        exp = 0.0 if c in dropped else 1.0
        assert_equal("prune.ln_structured", conv.weight_mask[c], np.full((3, 3, 3), exp), args=f"channel {c}")


def test_global_unstructured(device):
    """global_unstructured over two modules prunes the globally smallest |w| (one threshold across both
    tensors), so the per-module counts differ; catches per-module instead of global pruning."""
    a = _linear(device, out=4, inp=5, seed=1)
    b = _linear(device, out=3, inp=5, seed=2)
    with torch.no_grad():
        b.weight.mul_(10.0)  # b's weights are mostly larger: a global threshold prunes mostly in a
    wa, wb = a.weight.detach().cpu().numpy().copy(), b.weight.detach().cpu().numpy().copy()
    prune.global_unstructured([(a, "weight"), (b, "weight")], pruning_method=prune.L1Unstructured, amount=14)
    allw = np.concatenate([wa.ravel(), wb.ravel()])
    mask = np.ones(allw.size)
    mask[np.argsort(np.abs(allw), kind="stable")[:14]] = 0
    assert_equal("prune.global_unstructured", a.weight_mask, mask[:20].reshape(4, 5), args="module a")
    assert_equal("prune.global_unstructured", b.weight_mask, mask[20:].reshape(3, 5), args="module b")
    counts = (int((a.weight_mask == 0).sum()), int((b.weight_mask == 0).sum()))
    assert_true("prune.global_unstructured", counts != (8, 6), f"pruned {counts}: the per-module split of 14 over 20 + 15 weights")


def test_iterative_pruning_composes(device):
    """Pruning the same tensor twice builds a PruningContainer; the second amount applies to the entries still
    unpruned (l1 0.5 then 0.5 of the rest: 15 + 8 = 23 of 30 zeroed), earlier zeros stay zero, and the
    second round removes the smallest of the survivors; catches a second mask that replaces the first."""
    lin = _linear(device)
    w = lin.weight.detach().cpu().numpy().copy()
    prune.l1_unstructured(lin, "weight", amount=0.5)
    first = lin.weight_mask.clone()
    prune.l1_unstructured(lin, "weight", amount=0.5)
    hooks = [h for h in lin._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
    assert_true("prune.PruningContainer", len(hooks) == 1 and isinstance(hooks[0], prune.PruningContainer),
                f"hooks: {[type(h).__name__ for h in hooks]}")
    assert_equal("prune.PruningContainer", int((lin.weight_mask == 0).sum()), 23, args="15 + round(0.5 * 15)")
    assert_true("prune.PruningContainer", bool(((first == 0) <= (lin.weight_mask == 0)).all()), "a previously pruned entry came back")
    assert_equal("prune.PruningContainer", lin.weight_mask, _smallest_mask(w, 23), args="smallest 23 overall")
    prune.random_unstructured(lin, "weight", amount=3)
    assert_equal("prune.PruningContainer", int((lin.weight_mask == 0).sum()), 26, args="then 3 random among survivors")


def test_custom_from_mask_and_custom_method(device):
    """custom_from_mask applies a given mask (bias too); a BasePruningMethod subclass's compute_mask is used by
    its apply(); identity prunes nothing; catches a custom mask ignored or inverted."""
    lin = _linear(device)
    bmask = torch.tensor([1, 0, 1, 0, 0, 1], dtype=torch.float64, device=device)
    b = lin.bias.detach().clone()
    prune.custom_from_mask(lin, "bias", mask=bmask)
    assert_equal("prune.custom_from_mask", lin.bias, (b * bmask).cpu(), args="bias")

    class EveryOther(prune.BasePruningMethod):
        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            mask = default_mask.clone()
            mask.view(-1)[::2] = 0
            return mask
    w = lin.weight.detach().cpu().numpy().copy()
    EveryOther.apply(lin, "weight")
    exp = np.ones(w.size); exp[::2] = 0
    assert_equal("prune.BasePruningMethod.apply", lin.weight, w * exp.reshape(w.shape), args="custom method")
    other = _linear(device)
    prune.identity(other, "weight")
    assert_equal("prune.identity", other.weight_mask, np.ones((6, 5)), args="identity")


@pytest.mark.parametrize("amount", [1.5, -0.1, -1, 31], ids=["1.5", "-0.1", "int-1", "int31>n"])
def test_invalid_amount_raises(device, amount):
    """amount must be a fraction in [0, 1] or an int in [0, n]; anything else raises (ValueError), and a
    failed call leaves the module unpruned."""
    lin = _linear(device)
    assert_raises("prune.l1_unstructured", (ValueError, TypeError), prune.l1_unstructured, lin, "weight", amount=amount,
                  args=f"amount={amount}")
    assert_true("prune.is_pruned", not hasattr(lin, "weight_mask"), "failed prune left a mask behind")


def test_pruned_model_within_budget(device):
    """Pruning 10% of a trained linear model's smallest weights changes its output by exactly x @ (W*mask - W)^T
    (NumPy), i.e. within the bound ||x|| * ||W - W*mask||; catches a forward that ignores the mask."""
    lin = _linear(device, out=3, inp=8, seed=4)
    x = torch.randn(16, 8, dtype=torch.float64, device=device)
    with torch.no_grad():
        before = lin(x).cpu().numpy()
    w = lin.weight.detach().cpu().numpy().copy()
    prune.l1_unstructured(lin, "weight", amount=0.1)
    with torch.no_grad():
        after = lin(x)
    mask = _smallest_mask(w, round(0.1 * w.size))
    assert_close("prune.l1_unstructured", after, before + x.cpu().numpy() @ (w * mask - w).T, op="nn", args="output change")
    bound = np.linalg.norm(x.cpu().numpy(), axis=1) * np.linalg.norm(w - w * mask)
    assert_true("prune.l1_unstructured", bool((np.linalg.norm(after.cpu().numpy() - before, axis=1) <= bound + 1e-12).all()),
                "output change exceeds ||x|| * ||dW||")
