"""§ 4 nn.Module and layers: Embedding (padding_idx, max_norm, from_pretrained, sparse) and EmbeddingBag
(sum/mean/max, offsets, per_sample_weights, include_last_offset, padding_idx) against NumPy indexing.

Each test names the broken torch it would catch in its docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.checks import assert_close, assert_equal, assert_raises, assert_true
from suites.nn._ref import np64


@pytest.mark.smoke
def test_embedding_lookup(device, dtype):
    """Embedding(num, dim)(idx) = weight[idx] for any index shape (0-d, 1-d, 2-d, repeated); weight is
    (num, dim) and initialised N(0, 1). Catches off-by-one rows, transposed weight, wrong default init."""
    m = nn.Embedding(2000, 5, device=device, dtype=dtype)
    assert_equal("nn.Embedding", tuple(m.weight.shape), (2000, 5))
    w = np64(m.weight)
    assert_true("nn.Embedding", abs(w.std() - 1) < 0.05 and abs(w.mean()) < 0.05, f"init std {w.std():.3f}, mean {w.mean():.3f}: not N(0,1)")
    for idx in [torch.tensor(7), torch.tensor([0, 1999, 3, 3]), torch.tensor([[4, 5, 6], [6, 5, 4]])]:
        idx = idx.to(device)
        y = m(idx)
        assert_close("nn.Embedding", y, w[idx.cpu().numpy()], op="exact", args=f"idx shape {tuple(idx.shape)}", check_dtype=dtype)
    if device == "cpu":  # on CUDA an out-of-range index is a device-side assert that poisons the context
        assert_raises("nn.Embedding", (IndexError, RuntimeError), m, torch.tensor([2000]), args="index == num_embeddings")
        assert_raises("nn.Embedding", (IndexError, RuntimeError), m, torch.tensor([-1]), args="negative index")


def test_embedding_grad(device):
    """The weight gradient accumulates output grads row by row (repeated indices add up)."""
    m = nn.Embedding(6, 3, device=device, dtype=torch.float64)
    idx = torch.tensor([[1, 2, 1], [5, 1, 0]], device=device)
    g = torch.randn(2, 3, 3, device=device, dtype=torch.float64)
    m(idx).backward(g)
    ref = np.zeros((6, 3))
    np.add.at(ref, idx.cpu().numpy().ravel(), np64(g).reshape(-1, 3))
    assert_close("nn.Embedding", m.weight.grad, ref, op="gradient", args="weight.grad")


@pytest.mark.parametrize("padding_idx", [2, -1])
def test_embedding_padding_idx(device, padding_idx):
    """padding_idx: that row is initialised to zeros and gets no gradient (stays trainable otherwise);
    a negative padding_idx counts from the end. Catches padding rows that learn."""
    m = nn.Embedding(5, 3, padding_idx=padding_idx, device=device, dtype=torch.float64)
    row = padding_idx % 5
    assert_equal("nn.Embedding", m.padding_idx, row, args=f"padding_idx={padding_idx} normalised")
    assert_close("nn.Embedding", m.weight[row], np.zeros(3), op="exact", args="padding row zero-initialised")
    idx = torch.tensor([row, 0, row, 1], device=device)
    (m(idx) * torch.arange(1.0, 13, device=device, dtype=torch.float64).view(4, 3)).sum().backward()
    grad = np64(m.weight.grad)
    assert_close("nn.Embedding", grad[row], np.zeros(3), op="exact", args="no grad to padding row")
    assert_close("nn.Embedding", grad[0], np.array([4.0, 5.0, 6.0]), op="gradient", args="grad of other row")


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm(device, norm_type):
    """max_norm: every row *looked up* whose norm_type-norm exceeds max_norm is renormalised IN PLACE in
    weight to norm max_norm (output too); rows not looked up are untouched. Catches renormalising the
    output only, all rows, or with the wrong norm."""
    m = nn.Embedding(4, 3, max_norm=1.5, norm_type=norm_type, device=device, dtype=torch.float64)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[3.0, 4.0, 0.0], [0.1, 0.2, 0.2], [-2.0, 2.0, 1.0], [5.0, 5.0, 5.0]]))
    before = np64(m.weight)
    y = m(torch.tensor([0, 1, 2, 0], device=device))
    norms = np.linalg.norm(before, ord=norm_type, axis=1)
    after = before.copy()
    for r in (0, 1, 2):
        if norms[r] > 1.5:
            after[r] = before[r] * 1.5 / norms[r]
    # torch scales by max_norm / (norm + 1e-7) (documented epsilon), so allow 1e-7 relative.
    assert_close("nn.Embedding", m.weight, after, op="nn", rtol=1e-6, args=f"max_norm=1.5, norm_type={norm_type} weight in place")
    assert_close("nn.Embedding", y, after[[0, 1, 2, 0]], op="nn", rtol=1e-6, args="output renormalised")
    assert_close("nn.Embedding", m.weight[3], before[3], op="exact", args="row not looked up untouched")


def test_embedding_from_pretrained_and_sparse(device):
    """from_pretrained copies the matrix and freezes it by default (freeze=False trains); sparse=True
    yields a sparse gradient with the same dense value."""
    w = torch.randn(4, 2, dtype=torch.float64, device=device)
    m = nn.Embedding.from_pretrained(w)
    assert_true("nn.Embedding.from_pretrained", not m.weight.requires_grad, "freeze=True by default")
    assert_close("nn.Embedding.from_pretrained", m(torch.tensor([3, 0], device=device)), np64(w)[[3, 0]], op="exact")
    m2 = nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1)
    assert_true("nn.Embedding.from_pretrained", m2.weight.requires_grad and m2.padding_idx == 1, "freeze=False/padding_idx ignored")
    s = nn.Embedding(5, 2, sparse=True, device=device, dtype=torch.float64)
    s(torch.tensor([1, 1, 3], device=device)).sum().backward()
    assert_true("nn.Embedding", s.weight.grad.is_sparse, "sparse=True must give a sparse gradient")
    ref = np.zeros((5, 2))
    ref[1], ref[3] = 2.0, 1.0
    assert_close("nn.Embedding", s.weight.grad.to_dense(), ref, op="exact", args="sparse grad values")


def test_embedding_scale_grad_by_freq(device):
    """scale_grad_by_freq=True divides each row's gradient by how often it occurs in the mini-batch."""
    m = nn.Embedding(5, 2, scale_grad_by_freq=True, device=device, dtype=torch.float64)
    idx = torch.tensor([1, 1, 1, 3, 0, 3], device=device)
    g = torch.arange(12.0, device=device, dtype=torch.float64).view(6, 2)
    m(idx).backward(g)
    ref = np.zeros((5, 2))
    np.add.at(ref, idx.cpu().numpy(), np64(g))
    ref /= np.maximum(np.bincount(idx.cpu().numpy(), minlength=5), 1)[:, None]
    assert_close("nn.Embedding", m.weight.grad, ref, op="gradient", args="scale_grad_by_freq=True")


def _bags(inp, offsets, include_last=False):
    ends = list(offsets[1:]) + ([] if include_last else [len(inp)])
    starts = offsets[:-1] if include_last else offsets
    return [inp[s:e] for s, e in zip(starts, ends)]


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(device, dtype, mode):
    """EmbeddingBag(mode) with 1-d input + offsets reduces each bag's rows by sum/mean/max; an empty bag
    gives zeros; 2-d input means fixed-length bags. Catches the default mode (mean) changed, bags
    off by one at offsets, empty bags producing NaN."""
    m = nn.EmbeddingBag(10, 3, mode=mode, device=device, dtype=dtype)
    w = np64(m.weight)
    inp = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = [0, 2, 2, 5]  # bag 1 empty
    y = m(torch.tensor(inp, device=device), torch.tensor(offsets, device=device))
    red = {"sum": lambda r: r.sum(0), "mean": lambda r: r.mean(0), "max": lambda r: r.max(0)}[mode]
    ref = np.stack([red(w[b]) if len(b) else np.zeros(3) for b in _bags(inp, offsets)])
    assert_close("nn.EmbeddingBag", y, ref, op="reduction", args=f"mode={mode}, offsets={offsets}", check_dtype=dtype)
    inp2 = torch.tensor([[1, 2, 3], [4, 4, 0]], device=device)
    ref2 = np.stack([red(w[r]) for r in inp2.cpu().numpy()])
    assert_close("nn.EmbeddingBag", m(inp2), ref2, op="reduction", args=f"mode={mode}, 2-d input")
    assert_equal("nn.EmbeddingBag", nn.EmbeddingBag(3, 2).mode, "mean", args="default mode")


def test_embedding_bag_options(device):
    """per_sample_weights scale rows (mode='sum' only; other modes raise); include_last_offset=True treats
    the last offset as the end; padding_idx entries are excluded (mean divides by the non-padding count)."""
    m = nn.EmbeddingBag(6, 2, mode="sum", device=device, dtype=torch.float64)
    w = np64(m.weight)
    inp = torch.tensor([0, 2, 3, 5, 1], device=device)
    off = torch.tensor([0, 3], device=device)
    psw = torch.tensor([0.5, 2.0, -1.0, 3.0, 0.25], device=device, dtype=torch.float64)
    ref = np.stack([0.5 * w[0] + 2 * w[2] - w[3], 3 * w[5] + 0.25 * w[1]])
    assert_close("nn.EmbeddingBag", m(inp, off, per_sample_weights=psw), ref, op="reduction", args="per_sample_weights")
    mm = nn.EmbeddingBag(6, 2, mode="mean", device=device, dtype=torch.float64)
    assert_raises("nn.EmbeddingBag", (NotImplementedError, RuntimeError, ValueError), mm, inp, off, per_sample_weights=psw,
                  args="per_sample_weights with mode='mean'")
    li = nn.EmbeddingBag(6, 2, mode="sum", include_last_offset=True, device=device, dtype=torch.float64)
    wl = np64(li.weight)
    y = li(inp, torch.tensor([0, 3, 5], device=device))
    assert_close("nn.EmbeddingBag", y, np.stack([wl[[0, 2, 3]].sum(0), wl[[5, 1]].sum(0)]), op="reduction",
                 args="include_last_offset=True")
    pm = nn.EmbeddingBag(6, 2, mode="mean", padding_idx=2, device=device, dtype=torch.float64)
    wp = np64(pm.weight)
    y = pm(inp, off)
    assert_close("nn.EmbeddingBag", y, np.stack([wp[[0, 3]].mean(0), wp[[5, 1]].mean(0)]), op="reduction",
                 args="padding_idx=2 excluded from mean")


def test_embedding_bag_gradcheck(device):
    """EmbeddingBag backward w.r.t. weight (sum and mean) and per_sample_weights by finite differences."""
    for mode in ("sum", "mean"):
        m = nn.EmbeddingBag(5, 2, mode=mode, device=device, dtype=torch.float64)
        inp = torch.tensor([0, 2, 2, 4], device=device)
        off = torch.tensor([0, 1], device=device)
        w = m.weight.detach().clone().requires_grad_(True)
        f = lambda w: torch.func.functional_call(m, {"weight": w}, (inp, off))  # noqa: E731
        assert_true("nn.EmbeddingBag", torch.autograd.gradcheck(f, (w,)), "gradcheck failed", args=f"mode={mode}")
