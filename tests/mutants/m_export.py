"""Planted bugs for § 9.1 torch.compile (test_compile.py): eager is right, the compiled graph is not.
Three patch inductor's lowerings (what a code-generation bug looks like), one replaces the default backend
with one whose graph pass is wrong. Each also turns off inductor's FX-graph and AOT-autograd caches, so a
graph compiled under a plant is never stored where an unplanted process could load it."""
from __future__ import annotations

import torch

from tests.mutants.base import mutant

COMPILE = "suites/export/test_compile.py"


def _no_graph_caches():
    from torch._functorch import config as functorch_config
    from torch._inductor import config as inductor_config

    for k in ("fx_graph_cache", "fx_graph_remote_cache"):
        if hasattr(inductor_config, k):
            setattr(inductor_config, k, False)
    for k in ("enable_autograd_cache", "enable_remote_autograd_cache"):
        if hasattr(functorch_config, k):
            setattr(functorch_config, k, False)


def _lowerings():
    from torch._inductor import lowering

    return lowering.lowerings


@mutant("export", "inductor's addmm lowering drops the bias (lowers addmm(b, x, w) as mm(x, w)): every compiled "
        "nn.Linear loses its bias", paths=COMPILE, select="test_compile_zoo_forward or test_compile_op_table")
def inductor_addmm_drops_bias():
    _no_graph_caches()
    low, aten = _lowerings(), torch.ops.aten

    def bad(inp, mat1, mat2, *a, **kw):
        return low[aten.mm.default](mat1, mat2)
    for key in (aten.addmm, aten.addmm.default):
        if key in low:
            low[key] = bad


@mutant("export", "inductor's index_put lowering ignores accumulate=True: the backward of x[idx] loses the "
        "contributions of duplicate indices", paths=COMPILE, select="test_compile_op_table")
def inductor_index_put_ignores_accumulate():
    _no_graph_caches()
    low = _lowerings()

    def make(orig):
        def bad(*a, **kw):
            a = list(a)
            if len(a) >= 4:
                a[3] = False
            if "accumulate" in kw:
                kw["accumulate"] = False
            return orig(*a, **kw)
        return bad
    for key in list(low):
        if str(key).startswith(("aten.index_put", "aten._unsafe_index_put", "prims._unsafe_index_put")):
            low[key] = make(low[key])


@mutant("export", "inductor's var lowering ignores correction= (always the biased variance)",
        paths=COMPILE, select="test_compile_op_table")
def inductor_var_ignores_correction():
    _no_graph_caches()
    low, aten = _lowerings(), torch.ops.aten

    def make(orig):
        def bad(x, axis=None, *a, correction=None, **kw):
            return orig(x, axis, *a, correction=0, **kw)
        return bad
    for key in (aten.var, aten.var.correction):
        if key in low:
            low[key] = make(low[key])


@mutant("export", "torch.compile's default backend runs a graph pass that drops the bias of conv2d (a conv+bias "
        "fusion that forgets the bias) before inductor", paths=COMPILE, select="test_compile_op_table")
def compile_default_backend_drops_conv_bias():
    _no_graph_caches()
    import torch.nn.functional as F

    conv = {torch.conv2d, F.conv2d}

    def backend(gm, example_inputs):
        from torch._inductor.compile_fx import compile_fx

        for node in gm.graph.nodes:
            if node.op == "call_function" and node.target in conv:
                if len(node.args) >= 3:
                    node.args = node.args[:2] + (None,) + node.args[3:]
                elif "bias" in node.kwargs:
                    node.kwargs = {**node.kwargs, "bias": None}
        gm.recompile()
        return compile_fx(gm, example_inputs)

    orig = torch.compile

    def bad(model=None, *a, **kw):
        if kw.get("backend", "inductor") == "inductor":
            kw["backend"] = backend
        return orig(model, *a, **kw)
    torch.compile = bad
