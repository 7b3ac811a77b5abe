"""§ 9.1 torch.compile: the inductor lane (C++/OpenMP kernels on CPU, Triton on CUDA).

A compiled model or function must compute what eager computes. The oracle is eager itself in float64 (the
section's one reference, :func:`suites.export._lanes.reference` for the zoo; the same function run eagerly
on float64 copies of the inputs for the op table), compared with the compiled float32 result under the
``export`` tolerance, forward and backward.

Default tier (three graphs): the zoo's MLP (inference graph), and 11 ops of the table (an elementwise
chain, sum, var, softmax, linear, conv2d, layer_norm, indexing with duplicate indices, where, cumsum,
argmax) compiled as ONE function on odd sizes (vector tails) with a gapped input, checking every output and,
through the compiled backward graph, the gradient of every floating input. ``--tier full``: all 24 ops of
the table, every zoo model (the graph breaks of the LSTM and of a data-dependent ``if`` included), model
gradients, ``dynamic=True`` at two sizes, 131,232 elements (past inductor's parallel threshold), and the
modes ``reduce-overhead`` and ``max-autotune-no-cudagraphs``.

Compiling is the cost (seconds per graph on two cores), so each test compiles once; every compile runs
capture, AOT autograd and inductor's lowering anew, and only gcc's output is cached, per torch build and
xdist worker (see the ``inductor`` fixture). ``fullgraph=True`` wherever the model has no graph break by
design, so a capture that silently falls back to eager (an unexpected graph break, the recompile limit) is
an error, not a vacuous pass; ``torch._dynamo.reset()`` before compiling a zoo model, whose ``forward``
code object other tests may have compiled already (dynamo's per-code recompile limit would otherwise send
later compiles to eager).
"""
from __future__ import annotations

import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from harness.checks import assert_close, assert_equal, assert_true
from suites.export._lanes import float64_inputs, reference
from suites.export._zoo import EXAMPLE_BATCH, ZOO

API = "torch.compile"


def _why_not(device: str) -> str | None:
    """Why torch.compile with inductor cannot run here (None when it can): a version or toolchain fact."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    from torch import _dynamo  # imported on first use only (seconds): collecting this module stays cheap

    if not _dynamo.is_dynamo_supported():
        return f"torch.compile (dynamo) does not support this Python/platform under torch {torch.__version__}"
    if torch.device(device).type == "cpu":
        from torch._inductor import config

        cands = config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else (config.cpp.cxx,)
        cands = [c for c in cands if c]
        if not any(shutil.which(c) for c in cands):
            return f"no C++ compiler for inductor's CPU backend (looked for {', '.join(cands)} on PATH; set CXX)"
        return None
    from torch.utils._triton import has_triton

    if not has_triton():
        return f"inductor on {device} needs Triton, which is not installed"
    return None


def _cache_folder(request, tmp_path_factory) -> str:
    """This worker's inductor cache folder, one per (torch build, xdist worker): in pytest's cache
    (.pytest_cache/d/, kept between runs, cleared by --cache-clear) or, with the cache provider
    disabled, a fresh temporary folder."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    build = f"{torch.__version__}-{(getattr(torch.version, 'git_version', None) or 'unknown')[:12]}"
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return str(tmp_path_factory.mktemp(f"inductor-{worker}"))
    return str(cache.mkdir(f"torchconform-inductor-{build}-{worker}".replace("+", "_")))


@pytest.fixture(scope="module")
def inductor(request, tmp_path_factory):
    """Inductor's caches for this module's compiles.

    The whole pipeline runs on every compile: dynamo's capture, AOT autograd and inductor's lowering and
    code generation are never answered from a cache (the FX-graph and AOT-autograd caches are off, so a
    graph compiled by an earlier run, or before a bug was planted, is not reused). Only the C++ compiler's
    output is cached, keyed by the generated source and the compile command, in a folder per torch build
    and xdist worker (:func:`_cache_folder`; ``TORCHINDUCTOR_CACHE_DIR``, set before the first compile
    and restored after the module), so no two processes write one folder and another torch build never
    loads these binaries. A cold folder costs ~2.5x the CPU of a warm one (gcc -O3 per kernel).
    """
    from torch._functorch import config as functorch_config
    from torch._inductor import config as inductor_config

    folder = _cache_folder(request, tmp_path_factory)
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    off_inductor = {k: False for k in ("fx_graph_cache", "fx_graph_remote_cache") if hasattr(inductor_config, k)}
    off_aot = {k: False for k in ("enable_autograd_cache", "enable_remote_autograd_cache") if hasattr(functorch_config, k)}
    try:
        with inductor_config.patch(off_inductor), functorch_config.patch(off_aot):
            yield folder
    finally:
        if old is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = old


@pytest.fixture
def compiler(request, device):
    """torch.compile, with the inductor caches set up; skips with the reason where it cannot run."""
    why = _why_not(device)
    if why:
        pytest.skip(why)
    request.getfixturevalue("inductor")
    return torch.compile


# ------------------------------------------------------------------------------------- the zoo
# Every other model compiles as one graph (fullgraph=True). These break the graph by design, and the
# compiled pieces around the break must still be right:
_GRAPH_BREAKS = {
    "control_flow": "`if x.sum() > 0` branches on the data",
    "rnn": "dynamo does not trace nn.LSTM/nn.GRU modules (they run eager unless torch._dynamo.config.allow_rnn)",
}


def _zoo_params():
    return [pytest.param(n, marks=[] if n == "mlp" else [pytest.mark.slow], id=n) for n in ZOO]


@pytest.mark.parametrize("model", _zoo_params())
def test_compile_zoo_forward(compiler, device, model):
    """torch.compile(model) (inductor) computes the eager float64 reference within the export tolerance on
    every input case (both branches of the control-flow model), at the example batch and at batch 1 / 3;
    catches inductor kernels that drop a bias, fuse an activation wrongly, use BatchNorm batch statistics or
    keep dropout active in eval, mis-handle masks, or reuse a graph guarded on the wrong shape."""
    torch._dynamo.reset()
    entry = ZOO[model]
    m = entry.build(device)
    cm = compiler(m, fullgraph=model not in _GRAPH_BREAKS)
    batches = (EXAMPLE_BATCH,) if model == "mlp" else (EXAMPLE_BATCH, 1, 3)
    for case in entry.cases:
        for batch in batches:
            inputs = entry.inputs(batch=batch, case=case, device=device)
            with torch.no_grad():
                got = cm(*inputs)
            ref = reference(entry, inputs, device)
            assert_close(API, got, ref, op="export", check_dtype=torch.float32,
                         args=f"{model}, case={case}, batch={batch}")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn", "buffered"])
def test_compile_zoo_backward(compiler, device, model):
    """The gradients of a compiled model's loss with respect to every parameter equal eager float64's (the
    compiled backward graph); catches a compiled backward that drops a term, mis-reduces a bias gradient
    over the batch or reuses the forward's layout wrongly."""
    torch._dynamo.reset()
    entry = ZOO[model]
    inputs = entry.inputs(device=device)
    grads = {}
    for dtype, compiled in ((torch.float64, False), (torch.float32, True)):
        m = entry.build(device, dtype)
        fn = compiler(m, fullgraph=True) if compiled else m
        xs = float64_inputs(inputs) if dtype == torch.float64 else inputs
        out = fn(*xs)
        weight = torch.linspace(-1.0, 1.0, out.numel(), dtype=torch.float64, device=device).reshape(out.shape)
        (out * weight.to(dtype)).sum().backward()
        grads[dtype] = {k: p.grad for k, p in m.named_parameters()}
    for k, g in grads[torch.float32].items():
        assert_true(API, g is not None, f"no gradient for {k}", args=model)
        assert_close(API, g, grads[torch.float64][k], op="export", check_dtype=torch.float32, args=f"{model}: d/d {k}")


# ---------------------------------------------------------------------------------- the op table
def _inputs(rows: int, cols: int, device, seed: int = 0) -> dict:
    """Float32 inputs of the op table: (rows, cols) matrices, one a gapped view of a wider storage
    (stride 2 along the columns), a (batch 2, 3-channel) image and indices with duplicates."""
    g = torch.Generator().manual_seed(seed * 1009 + rows * 31 + cols)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    wide = r(rows, 2 * cols)
    x = {"a": r(rows, cols), "b": r(rows, cols), "wide": wide, "w": r(7, cols) * 0.3, "bias": r(7),
         "img": r(2, 3, 6, 7), "kern": r(4, 3, 3, 3) * 0.3, "kbias": r(4),
         "lnw": 1.0 + 0.1 * r(cols), "lnb": 0.1 * r(cols)}
    idx = torch.tensor([rows - 1, 1, rows - 1, 0]) % rows           # duplicates: accumulate in backward
    x["idx"] = idx
    x["cidx"] = torch.tensor([cols - 1, 0, 2, 0]) % cols
    x["gidx"] = torch.randint(0, cols, (rows, 3), generator=g)
    x["mask"] = torch.rand(rows, cols, generator=g) > 0.5
    return {k: v.to(device) for k, v in x.items()}


FLOAT_INPUTS = ("a", "b", "wide", "w", "bias", "img", "kern", "kbias", "lnw", "lnb")


def _c(x):
    return x["wide"][:, ::2]  # gapped (column stride 2): inductor must index it with its strides


# The op table: name -> f(inputs). Every op reads the float32 inputs of _inputs().
OPS = {
    "chain": lambda x: (torch.sigmoid(_c(x)) * torch.tanh(x["b"]) + torch.exp(x["a"].clamp(max=3.0))
                        - torch.sqrt(x["b"].abs() + 1.0)),
    "gelu_silu": lambda x: F.gelu(x["a"]) + F.silu(_c(x)) * 0.5,
    "erf_pow_log1p": lambda x: torch.erf(_c(x)) * x["a"].pow(3) - torch.log1p(x["b"].abs()),
    "sum": lambda x: x["a"].sum(1),
    "mean_keepdim": lambda x: _c(x).mean(0, keepdim=True),
    "amax": lambda x: x["a"].amax(1),
    "var": lambda x: x["b"].var(1),
    "norm": lambda x: _c(x).norm(dim=1),
    "logsumexp": lambda x: torch.logsumexp(x["a"], 1),
    "softmax": lambda x: torch.softmax(x["a"] * 2.0, -1),
    "log_softmax": lambda x: torch.log_softmax(x["b"], 0),
    "matmul": lambda x: x["a"] @ x["w"].t(),
    "linear": lambda x: F.linear(_c(x), x["w"], x["bias"]),
    "conv2d": lambda x: F.conv2d(x["img"], x["kern"], x["kbias"], padding=1),
    "layer_norm": lambda x: F.layer_norm(x["b"], x["b"].shape[-1:], x["lnw"], x["lnb"]),
    "index": lambda x: x["a"][x["idx"]],
    "index_select": lambda x: x["b"].index_select(1, x["cidx"]),
    "gather": lambda x: torch.gather(x["a"], 1, x["gidx"]),
    "index_add": lambda x: torch.zeros_like(x["b"]).index_add(0, x["idx"], x["b"][: x["idx"].numel()] * 2.0),
    "where": lambda x: torch.where(x["mask"], x["a"], x["b"] * 2.0),
    "masked_fill": lambda x: _c(x).masked_fill(x["mask"], -1.5),
    "cumsum": lambda x: _c(x).cumsum(1),
    "topk": lambda x: x["a"].topk(3, dim=1).values,
    "argmax": lambda x: (x["a"] - x["b"]).argmax(1),
}
# The default tier's share (one compiled function, forward + backward): one op of each kind the
# brief names, chosen so a cold compile stays within the default budget; the rest at --tier full.
DEFAULT_OPS = ("chain", "sum", "var", "softmax", "linear", "conv2d", "layer_norm", "index", "where", "cumsum", "argmax")


def op_table(names):
    """One function computing the ops ``names`` (a dict of outputs): what gets compiled as one graph."""
    def table(x: dict) -> dict:
        return {n: OPS[n](x) for n in names}
    return table


def _run_table(fn, x: dict, dtype, grad: bool):
    """Run ``fn`` on ``x`` (floats cast to ``dtype``); with ``grad``, also the gradient of a fixed
    weighting of every floating output with respect to every floating input."""
    xs = {k: (v.detach().to(dtype, copy=True).requires_grad_(grad) if k in FLOAT_INPUTS else v) for k, v in x.items()}
    out = fn(xs)
    grads = {}
    if grad:
        g = torch.Generator().manual_seed(7)
        loss = 0
        for k, o in out.items():
            if o.is_floating_point():
                weight = torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.device, dtype)
                loss = loss + (o * weight).sum()
        loss.backward()
        grads = {k: xs[k].grad for k in FLOAT_INPUTS}
    return out, grads


def _assert_table(label: str, got: dict, ref: dict, grads: dict, ref_grads: dict) -> None:
    assert_equal(API, sorted(got), sorted(ref), args=f"{label}: outputs")
    for k, o in got.items():
        if o.is_floating_point():
            assert_close(API, o, ref[k], op="export", check_dtype=torch.float32, args=f"{label}: {k}")
        else:
            assert_equal(API, o.dtype, ref[k].dtype, args=f"{label}: {k} dtype")
            assert_equal(API, o, ref[k], args=f"{label}: {k}")
    for k, g in grads.items():
        assert_true(API, g is not None, f"no gradient reached input {k}", args=label)
        assert_close(API, g, ref_grads[k], op="export", check_dtype=torch.float32, args=f"{label}: d/d {k}")


@pytest.mark.parametrize("ops", [pytest.param(DEFAULT_OPS, marks=pytest.mark.smoke, id="default"),
                                 pytest.param(tuple(OPS), marks=pytest.mark.slow, id="all")])
def test_compile_op_table(compiler, device, ops):
    """The op table compiled as one graph (fullgraph=True) on odd sizes (5 x 19: vector tails) with a gapped
    input returns every output of eager float64 within the export tolerance (argmax exactly) and, through
    the compiled backward graph, the gradient of every floating input (index ops with duplicate indices
    accumulate); catches a fused kernel that drops a term or a bias, reads a strided input as contiguous,
    reduces over the wrong axis or with the wrong correction, mis-handles a vector tail, or a backward
    that loses a contribution."""
    x = _inputs(5, 19, device)
    got, grads = _run_table(compiler(op_table(ops), fullgraph=True), x, torch.float32, grad=True)
    ref, ref_grads = _run_table(op_table(ops), x, torch.float64, grad=True)
    _assert_table(f"{len(ops)} ops, 5x19, gapped input", got, ref, grads, ref_grads)


@pytest.mark.slow
def test_compile_op_table_dynamic(compiler, device):
    """torch.compile(dynamic=True) of the op table gives eager's results (forward and gradients) at two
    input sizes from the same compiled function; catches a dynamic-shape kernel that bakes in the first
    size (a loop bound, a tail, a reduction length, a softmax/var divisor)."""
    fn = compiler(op_table(DEFAULT_OPS), dynamic=True, fullgraph=True)
    for rows, cols in ((5, 19), (11, 40)):
        x = _inputs(rows, cols, device, seed=1)
        got, grads = _run_table(fn, x, torch.float32, grad=True)
        ref, ref_grads = _run_table(op_table(DEFAULT_OPS), x, torch.float64, grad=True)
        _assert_table(f"dynamic=True, {rows}x{cols}", got, ref, grads, ref_grads)


def _pointwise_reduce(a, b):
    c = torch.sigmoid(a) * b + torch.tanh(a - b)
    return {"chain": c, "sum": c.sum(1), "softmax": torch.softmax(a, 1), "cumsum": b.cumsum(1),
            "var": a.var(0)}


@pytest.mark.slow
def test_compile_parallel_sizes(compiler, device):
    """Elementwise chains, row and column reductions, softmax and cumsum compiled on 96 x 1367 (131,232
    elements: past the size where inductor's C++ kernels split work across OpenMP threads) equal eager
    float64; catches a parallel kernel that reads a chunk at the wrong offset or drops a partial sum."""
    g = torch.Generator().manual_seed(3)
    a, b = (torch.randn(96, 1367, generator=g).to(device) for _ in range(2))
    got = compiler(_pointwise_reduce, fullgraph=True)(a, b)
    ref = _pointwise_reduce(a.double(), b.double())
    for k, o in got.items():
        # sums over 1,367 terms: the K-aware reduction allowance (harness.tolerances.for_reduction)
        # for the cumsum and row sums, the export row elsewhere
        if k in ("sum", "cumsum"):
            scale = (torch.sigmoid(a.double()) * b.double() + torch.tanh(a.double() - b.double())).abs().sum(1)
            scale = scale if k == "sum" else b.double().abs().cumsum(1)
            assert_close(API, o, ref[k], op="reduction", k=a.shape[1], scale=scale, args=f"96x1367: {k}")
        else:
            assert_close(API, o, ref[k], op="export", check_dtype=torch.float32, args=f"96x1367: {k}")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune-no-cudagraphs"])
def test_compile_modes(compiler, device, mode):
    """torch.compile(mode=...) of the zoo's MLP and CNN computes the eager float64 reference (on CPU,
    reduce-overhead has no CUDA graphs to use, max-autotune benchmarks GEMM and conv choices); catches a
    mode whose alternative kernels or templates compute something else."""
    for model in ("mlp", "cnn"):
        torch._dynamo.reset()
        entry = ZOO[model]
        cm = compiler(entry.build(device), mode=mode, fullgraph=True)
        for batch in (EXAMPLE_BATCH, EXAMPLE_BATCH):  # a second call runs the recorded/tuned path
            inputs = entry.inputs(batch=batch, device=device)
            with torch.no_grad():
                got = cm(*inputs)
            assert_close(API, got, reference(entry, inputs, device), op="export", check_dtype=torch.float32,
                         args=f"{model}, mode={mode}")
