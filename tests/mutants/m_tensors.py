"""Planted bugs for § 1 tensors: the layout sweep (test_layouts.py: strided/sliced/expanded/channels_last
operands, strided out=) and thread invariance (test_threads.py: results that change with the number of
intra-op threads). The thread mutants only misbehave when torch runs with more than one thread."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.mutants.base import _both, _patch, channels_last, dense_view, mutant, reads_dense

T = "suites/tensors/"
GRAIN = 32_768


# --- layouts ---------------------------------------------------------------------------------------------
@mutant("tensors", "add(out=) with a non-contiguous out writes the result densely from out's start (over its gaps)",
        paths=T + "test_layouts.py", select="test_binary_layouts and add")
def add_strided_out_written_dense():
    def make(orig):
        def bad(input, other, *a, out=None, **kw):
            if out is not None and reads_dense(out):
                r = orig(input, other, *a, **kw)
                if r.shape == out.shape:
                    dense_view(out).copy_(r)
                    return out
            return orig(input, other, *a, **kw) if out is None else orig(input, other, *a, out=out, **kw)
        return bad
    _patch(torch, "add", make)


@mutant("tensors", "log_softmax over the channel dim of a channels_last tensor normalises over the last logical dim",
        paths=T + "test_layouts.py", select="test_softmax_layouts and log_softmax and channels_last")
def log_softmax_channels_last_wrong_dim():
    def make(orig):
        def bad(input, dim=None, *a, **kw):
            if channels_last(input) and dim is not None and dim % input.dim() == 1:
                dim = -1
            return orig(input, dim, *a, **kw)
        return bad
    _both("log_softmax", make)
    _patch(F, "log_softmax", make)


@mutant("tensors", "index_add ignores alpha= when self is not contiguous (the strided kernel adds source as is)",
        paths=T + "test_layouts.py", select="test_indexing_layouts and index_add")
def index_add_strided_self_ignores_alpha():
    def make(orig):
        def bad(input, dim, index, source, *a, alpha=1, **kw):
            if not input.is_contiguous():
                alpha = 1
            return orig(input, dim, index, source, *a, alpha=alpha, **kw)
        return bad
    _both("index_add", make)
    _patch(torch.Tensor, "index_add_", make)


# --- threads ---------------------------------------------------------------------------------------------
def _threads():
    return torch.get_num_threads() > 1


@mutant("tensors", "a full sum over more than 32,768 elements with several threads loses the last chunk's partial sum",
        paths=T + "test_threads.py", select="reductions", threads=2)
def sum_threads_lose_last_chunk():
    def make(orig):
        def bad(input, *a, **kw):
            if _threads() and not a and not kw and input.numel() > GRAIN:
                flat = input.reshape(-1)
                return orig(flat[: (flat.numel() - 1) // GRAIN * GRAIN])
            return orig(input, *a, **kw)
        return bad
    _both("sum", make)


@mutant("tensors", "cumsum with several threads scans each thread's chunk without the carry of the earlier chunks",
        paths=T + "test_threads.py", select="scans", threads=2)
def cumsum_threads_lose_carry():
    def make(orig):
        def bad(input, dim, *a, **kw):
            n = input.shape[dim] if input.dim() else 0
            if _threads() and n > GRAIN and kw.get("out") is None:
                size = -(-n // torch.get_num_threads())
                return torch.cat([orig(c, dim, *a, **kw) for c in torch.split(input, size, dim)], dim)
            return orig(input, dim, *a, **kw)
        return bad
    _both("cumsum", make)


@mutant("tensors", "index_add with several threads loses updates to duplicate indices (a read-modify-write race: "
        "the last writer wins)", paths=T + "test_threads.py", select="accumulations", threads=2)
def index_add_threads_race():
    def racy(target, dim, index, source, alpha):
        sel = target.index_select(dim, index) + alpha * source
        return target.index_copy_(dim, index, sel)

    def make(orig, inplace):
        def bad(input, dim, index, source, *a, alpha=1, **kw):
            if _threads() and not a and not kw and index.numel() > 1 and index.unique().numel() < index.numel():
                return racy(input if inplace else input.clone(), dim, index, source, alpha)
            return orig(input, dim, index, source, *a, alpha=alpha, **kw)
        return bad
    _patch(torch, "index_add", lambda orig: make(orig, False))
    _patch(torch.Tensor, "index_add", lambda orig: make(orig, False))
    _patch(torch.Tensor, "index_add_", lambda orig: make(orig, True))
