"""Planted bugs for § 7 serialization, aimed at the golden artefacts (test_golden.py): files written by
torch 2.13 and read by the build under test, and the build's writer compared with them. A reader bug and a
writer bug that cancel out in a same-build round trip (test_save_load.py) show up here."""
from __future__ import annotations

import torch

from tests.mutants.base import _patch, mutant

GOLDEN = "suites/serialization/test_golden.py"


def _tensors(obj, seen=None):
    """Every tensor in a loaded object (dicts, lists, tuples), each once."""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        if id(obj) not in seen:
            seen.add(id(obj))
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v, seen)


def _patch_load(post):
    def make(orig):
        def bad(f, *a, **kw):
            obj = orig(f, *a, **kw)
            post(obj, kw)
            return obj
        return bad
    _patch(torch, "load", make)


@mutant("serialization", "torch.load(mmap=True) maps every tensor at offset 0 of its storage (the storage offset of "
        "a view is dropped on the mmap path only)", paths=GOLDEN, select="test_golden_checkpoint and mmap")
def load_mmap_drops_storage_offset():
    def post(obj, kw):
        if not kw.get("mmap"):
            return
        with torch.no_grad():
            for t in _tensors(obj):
                if t.storage_offset():
                    t.set_(t.untyped_storage(), 0, t.shape, t.stride())
    _patch_load(post)


@mutant("serialization", "torch.load byte-swaps every 2-byte dtype (float16, bfloat16, int16, uint16) as if the file "
        "were big-endian", paths=GOLDEN, select="test_golden_checkpoint")
def load_two_byte_dtypes_swapped():
    def post(obj, kw):
        done = set()
        for t in _tensors(obj):
            if t.element_size() != 2 or t.is_sparse:
                continue
            s = t.untyped_storage()
            if s.data_ptr() in done or s.nbytes() == 0:
                continue
            done.add(s.data_ptr())
            b = torch.empty(0, dtype=torch.uint8, device=t.device).set_(s)
            b.copy_(b.view(-1, 2).flip(1).reshape(-1))
    _patch_load(post)


@mutant("serialization", "Optimizer.load_state_dict drops the step counters (Adam restarts its bias correction)",
        paths=GOLDEN, select="test_golden_optimizer_resumes")
def optimizer_load_resets_step():
    orig = torch.optim.Optimizer.load_state_dict

    def bad(self, state_dict):
        orig(self, state_dict)
        for st in self.state.values():
            if "step" in st:
                st["step"] = torch.zeros_like(st["step"]) if isinstance(st["step"], torch.Tensor) else 0
    torch.optim.Optimizer.load_state_dict = bad


@mutant("serialization", "torch.save writes every view as its own compact storage (storage sharing and offsets lost "
        "on the writer side; the reader is right)", paths=GOLDEN, select="test_writer_reproduces_checkpoints")
def save_views_as_copies():
    def compact(obj, memo):
        if isinstance(obj, torch.Tensor):
            if id(obj) not in memo:
                c = obj.detach().clone(memory_format=torch.contiguous_format)
                if isinstance(obj, torch.nn.Parameter):
                    c = torch.nn.Parameter(c, requires_grad=obj.requires_grad)
                else:
                    c.requires_grad_(obj.requires_grad)
                memo[id(obj)] = c
            return memo[id(obj)]
        if isinstance(obj, dict):
            out = type(obj)() if type(obj) is not dict else {}
            for k, v in obj.items():
                out[k] = compact(v, memo)
            return out
        if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
            return type(obj)(compact(v, memo) for v in obj)
        return obj

    def make(orig):
        def bad(obj, f, *a, **kw):
            return orig(compact(obj, {}), f, *a, **kw)
        return bad
    _patch(torch, "save", make)
