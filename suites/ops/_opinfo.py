"""Operator library: torch's OpInfo database as a generated lane (loader, case tables, sample adapters).

PyTorch ships a database of its operators in the wheel,
``torch.testing._internal.common_methods_invocations.op_db``: one ``OpInfo`` per operator variant with
sample inputs, the dtypes it supports per device, its method / in-place / ``out=`` variants and, for a
third of them, a NumPy/SciPy reference ``ref``. ``suites/ops/test_opinfo_*.py`` turns it into tests
(one per law x op x dtype, ids ``test_ref[cpu-float32-add]``); this module is everything they share:

* **loading**: lazily, once per process, only when a ``test_opinfo_*`` module is collected. The database
  is private API: when it cannot be imported (``expecttest`` missing, an import error on some torch), the
  lane collects one skipped test per law with that single reason. Importing it has global side effects
  (``torch.backends.disable_global_flags()``, TorchScript call wrappers, warning filters); they are undone
  so the rest of the run sees the torch it would have seen without this lane.
* **stable fields only** (present from torch 2.6 on): ``name``, ``variant_test_name``, ``op``, ``ref``,
  ``sample_inputs_func``, ``supported_dtypes(device_type)``, ``supports_out``, ``method_variant``,
  ``inplace_variant``, ``supports_autograd``, ``supports_gradgrad``, ``check_batched_grad``,
  ``check_batched_forward_grad``, ``gradcheck_wrapper``, ``skips``, ``decorators`` (``DecorateInfo``:
  ``decorators``, ``cls_name``, ``test_name``, ``device_type``, ``dtypes``, ``active_if``) and
  ``SampleInput.input/args/kwargs/output_process_fn_grad/broadcasts_input``.
* **tables** (data, each entry with its reason): ops excluded from the lane, ops exempt from one law, the
  op class (tolerance row of ``harness/tolerances.py``) per OpInfo family.
* **cases**: which (law, op, dtype) a tier runs; **samples**: seeded, selected, cached per process, and the
  transforms the consistency laws need (gaps, column-major, stride 0, zero size, float64 copies).
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import itertools
import math
import random
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------

_MODULE = "torch.testing._internal.common_methods_invocations"


@functools.lru_cache(maxsize=1)
def _load():
    """(op_db as a tuple, None) or (None, the one reason the lane cannot run)."""
    import torch

    if importlib.util.find_spec("expecttest") is None:
        return None, ("torch's OpInfo database needs the 'expecttest' package, which is not installed "
                      "(pip install 'torchconform[ops]')")
    frozen_before = torch.backends.flags_frozen()
    script_calls = (torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__)
    filters = list(warnings.filters)
    try:
        module = importlib.import_module(_MODULE)
        op_db = tuple(module.op_db)
    except Exception as exc:  # noqa: BLE001 - private test infrastructure, not the API under test:
        # whatever makes it unimportable on this torch, the lane reports it as its one skip reason.
        return None, (f"torch {torch.__version__}: cannot import {_MODULE}.op_db "
                      f"({type(exc).__name__}: {str(exc)[:200]})")
    finally:
        # common_utils (imported by op_db) freezes torch.backends flags and wraps TorchScript calls at
        # import; undo both so other sections run against the torch they would see without this lane.
        # (the flag lives in the globals of torch/backends/__init__.py, which are not the module's
        # __dict__ on every version, so it is set where flags_frozen() reads it)
        if not frozen_before and torch.backends.flags_frozen():
            torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
        torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__ = script_calls
        warnings.filters[:] = filters
    if not op_db:
        return None, f"torch {torch.__version__}: {_MODULE}.op_db is empty"
    return op_db, None


def unavailable_reason() -> str | None:
    """Why the OpInfo lane cannot run here, or None."""
    return _load()[1]


def all_ops() -> tuple:
    ops, reason = _load()
    if ops is None:
        raise RuntimeError(reason)
    return ops


def key(op) -> str:
    """'add', 'max.reduction_with_dim': the OpInfo's name plus its variant (unique in op_db)."""
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


@functools.lru_cache(maxsize=1)
def _by_key() -> dict:
    return {key(op): op for op in all_ops()}


def get(op_key: str):
    return _by_key()[op_key]


# --------------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------------

# Canonical order: case lists must be identical in every xdist worker, so sets of dtypes are sorted.
DTYPE_ORDER = ("float32", "float64", "bfloat16", "float16", "complex64", "complex128", "int64", "int32",
               "int16", "int8", "uint8", "bool", "complex32", "uint16", "uint32", "uint64")
# The dtype each op runs at when only one is run: float32 (the production dtype) where supported.
PRIMARY_ORDER = ("float32", "float64", "int64", "int32", "bool", "complex64", "uint8", "int16", "int8",
                 "complex128", "bfloat16", "float16")
LOW_PRECISION = ("float32", "bfloat16", "float16", "complex64")
_HIGH = {"float32": "float64", "bfloat16": "float64", "float16": "float64", "complex64": "complex128",
         "complex32": "complex128"}


def dtype_name(dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def _rank(name: str) -> tuple:
    return (DTYPE_ORDER.index(name), name) if name in DTYPE_ORDER else (len(DTYPE_ORDER), name)


_SUPPORTED: dict = {}


def supported(op, device: str) -> tuple[str, ...]:
    """The dtype names the OpInfo says the op supports on ``device`` (canonical order)."""
    ck = (key(op), device)
    if ck not in _SUPPORTED:
        dts = op.supported_dtypes(device) or ()
        _SUPPORTED[ck] = tuple(sorted({dtype_name(d) for d in dts}, key=_rank))
    return _SUPPORTED[ck]


def primary(op, device: str) -> str | None:
    names = supported(op, device)
    return next((d for d in PRIMARY_ORDER if d in names), names[0] if names else None)


def high_of(name: str) -> str:
    return _HIGH[name]


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


# --------------------------------------------------------------------------------------------------
# op classes: the tolerance row (harness/tolerances.py) each OpInfo family is compared with
# --------------------------------------------------------------------------------------------------

# Pure data movement, selection, comparisons and exactly rounded conversions: the result is bit-exact
# (a copy, a pick, or the one correctly rounded value), so any difference is a bug.
_EXACT = {
    "abs", "positive", "neg", "conj", "conj_physical", "real", "imag", "sign", "sgn", "signbit", "ceil", "floor",
    "trunc", "frac", "round", "isfinite", "isinf", "isposinf", "isneginf", "isreal", "isnan", "logical_not",
    "bitwise_not", "fill", "bfloat16", "bool", "byte", "char", "double", "float", "half", "int", "long", "short",
    "cdouble", "cfloat", "chalf", "nn.functional.relu", "nn.functional.relu6", "nn.functional.hardtanh",
    "nn.functional.threshold", "nn.functional.hardshrink", "clamp_max", "clamp_min", "clamp", "maximum", "minimum",
    "fmax", "fmin", "max.binary", "min.binary", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
    "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift",
    "__rand__", "__ror__", "__rxor__", "gcd", "lcm", "heaviside", "copysign", "nextafter", "complex",
    "item", "broadcast_to", "broadcast_shapes", "broadcast_tensors", "block_diag", "chunk", "unsafe_chunk", "clone",
    "contiguous", "resolve_conj", "resolve_neg", "view_as_real", "view_as_complex", "expand", "expand_as",
    "expand_copy", "diag", "diag_embed", "diagonal", "diagonal_copy", "diagonal_scatter", "alias_copy", "flip",
    "fliplr", "flipud", "masked_fill", "masked_scatter", "masked_select", "meshgrid", "as_strided",
    "as_strided_copy", "as_strided_scatter", "constant_pad_nd", "nn.functional.pad", "narrow", "narrow_copy",
    "view_copy", "permute", "permute_copy", "roll", "rot90", "split", "unsafe_split", "split_with_sizes",
    "split_with_sizes_copy", "select", "select_scatter", "slice", "slice_scatter", "tensor_split", "hsplit",
    "vsplit", "dsplit", "ravel", "unravel_index", "reshape", "reshape_as", "view", "view_as", "atleast_1d",
    "atleast_2d", "atleast_3d", "flatten", "unflatten", "column_stack", "gather", "index_fill", "index_copy",
    "index_select", "_unsafe_masked_index", "__getitem__", "sort", "msort", "argsort", "unique",
    "unique_consecutive", "take", "take_along_dim", "scatter", "stack", "_chunk_cat", "hstack", "vstack", "dstack",
    "cat", "unbind", "unbind_copy", "unfold", "unfold_copy", "movedim", "squeeze", "squeeze_copy", "unsqueeze",
    "unsqueeze_copy", "transpose", "transpose_copy", "T", "H", "mT", "mH", "t", "t_copy", "tril", "triu",
    "triu_indices", "tril_indices", "where", "nonzero", "nonzero_static", "argwhere", "repeat_interleave",
    "nn.functional.pixel_shuffle", "nn.functional.pixel_unshuffle", "nn.functional.channel_shuffle", "diagflat",
    "fft.fftshift", "fft.ifftshift", "linalg.diagonal", "repeat", "tile", "to", "kthvalue", "topk", "mode",
    "median", "nanmedian", "max", "min", "amax", "amin", "argmax", "argmin", "aminmax", "cummax", "cummin", "all",
    "any", "count_nonzero", "equal", "allclose", "isclose", "isin", "bucketize", "searchsorted", "histc", "bincount",
    "nn.functional.one_hot", "nn.functional.max_pool1d", "nn.functional.max_pool2d",
    "nn.functional.max_pool3d", "nn.functional.adaptive_max_pool1d", "nn.functional.adaptive_max_pool2d",
    "nn.functional.adaptive_max_pool3d", "nn.functional.max_unpool1d", "nn.functional.max_unpool2d",
    "nn.functional.max_unpool3d", "max_pool2d_with_indices_backward", "masked.amax", "masked.amin",
    "masked.argmax", "masked.argmin", "masked.median", "zeros_like", "ones_like", "full_like", "new_zeros",
    "new_ones", "new_full", "ones", "zeros", "full", "eye", "scalar_tensor", "zero_", "hash_tensor",
    "nn.functional.unfold", "lu_unpack", "cartesian_prod", "combinations",
}
# Products and dot products, convolutions, attention, distances: error grows with the inner dimension.
_MATMUL = {
    "mm", "bmm", "addmm", "addmv", "addbmm", "baddbmm", "dot", "vdot", "mv", "addr", "matmul", "__rmatmul__",
    "einsum", "tensordot", "inner", "linalg.multi_dot", "linalg.vecdot", "nn.functional.linear",
    "nn.functional.bilinear", "nn.functional.conv1d", "nn.functional.conv2d", "nn.functional.conv3d",
    "nn.functional.conv_transpose1d", "nn.functional.conv_transpose2d", "nn.functional.conv_transpose3d", "cdist",
    "nn.functional.pdist", "dist", "nn.functional.cosine_similarity", "nn.functional.pairwise_distance",
    "nn.functional.scaled_dot_product_attention", "nn.functional.multi_head_attention_forward",
    "nn.functional.linear_cross_entropy", "nn.functional.triplet_margin_loss",
    "nn.functional.triplet_margin_with_distance_loss", "nn.functional.cosine_embedding_loss", "cov", "corrcoef",
    "sparse.mm", "sparse.sampled_addmm", "torch._scaled_mm", "torch._scaled_mm_v2", "chain_matmul", "kron",
    "outer", "cross", "linalg.cross", "linalg.matrix_power", "stft", "istft", "nn.functional.embedding_bag",
}
# Decompositions, solves, inverses, determinants: a few eps times the condition of the samples.
_LINALG_PREFIX = ("linalg.",)
_LINALG = {
    "cholesky", "cholesky_inverse", "cholesky_solve", "lu", "lu_solve", "qr", "svd", "svd_lowrank", "pca_lowrank",
    "geqrf", "ormqr", "triangular_solve", "pinverse", "matrix_exp", "logdet", "det", "inverse", "norm.nuc",
}
# Sums, means, norms, softmax, scans, FFTs: error grows with the number of terms.
_REDUCTION = {
    "cumsum", "cumprod", "logcumsumexp", "cumulative_trapezoid", "trapz", "trapezoid", "softmax",
    "log_softmax", "nn.functional.softmin", "_softmax_backward_data", "torch.ops.aten._safe_softmax.default",
    "logsumexp", "norm", "var_mean", "std_mean", "quantile", "nanquantile", "histogram", "histogramdd",
    "index_add", "index_reduce", "scatter_add", "scatter_reduce", "index_put", "put", "_segment_reduce",
    "_unsafe_masked_index_put_accumulate", "renorm", "nn.functional.normalize", "trace", "linalg.vector_norm",
    "linalg.norm", "linalg.matrix_norm", "nn.functional.local_response_norm", "nn.functional.kl_div",
    "sum_to_size", "nn.functional.ctc_loss",
}
_REDUCTION_PREFIX = ("masked.",)


def class_at(op, dtype: str) -> str:
    """:func:`op_class` at a dtype: for complex results abs/sgn compute (|z|, z/|z|) rather than select,
    so they are elementwise; and elementwise complex functions are computed from several real operations
    (pow = exp(y log x), sinc, trigonometric ones), whose rounding the exponent's magnitude amplifies, so
    they get the reduction row (1e-5 relative to |z| in complex64, 84 ulps) instead of one rounding."""
    cls = op_class(op)
    if dtype.startswith("complex"):
        if cls == "exact" and key(op) in ("abs", "sgn", "sign", "angle"):
            return "elementwise" if dtype == "complex128" else "reduction"
        if cls == "elementwise" and dtype != "complex128":
            return "reduction"
    return cls


def op_class(op) -> str:
    """The tolerance row of ``harness/tolerances.py`` an OpInfo is compared with. First match wins:
    the exact / matmul / linalg / reduction name sets above, then the OpInfo family (Unary and Binary
    ufuncs: one rounding per element, ``elementwise``; ReductionOpInfo and SpectralFuncInfo:
    ``reduction``), then ``linalg.*`` and ``masked.*`` names; everything else (composites in
    ``nn.functional``: normalisation, pooling, losses, interpolation; several roundings) is ``nn``."""
    full, name = key(op), op.name
    for table, cls in ((_EXACT, "exact"), (_MATMUL, "matmul"), (_LINALG, "linalg"), (_REDUCTION, "reduction")):
        if full in table or name in table:
            return cls
    family = type(op).__name__
    if name.startswith("special.") and "_polynomial_" in name:
        return "reduction"  # an n-term three-point recurrence, rounded at every step
    if family in ("UnaryUfuncInfo", "BinaryUfuncInfo"):
        return "elementwise"
    if family in ("ReductionOpInfo", "SpectralFuncInfo"):
        return "reduction"
    if name.startswith(_LINALG_PREFIX):
        return "linalg"
    if name.startswith(_REDUCTION_PREFIX):
        return "reduction"
    if name in ("lerp", "addcmul", "addcdiv", "logaddexp2", "nn.functional.hardswish",
                "nn.functional.leaky_relu", "nn.functional.glu", "nn.functional.gelu") \
            or name.startswith("signal.windows."):
        return "elementwise"
    # composites: nn.functional layers, sequences built by repeated steps (linspace, logspace, arange),
    # finite differences (gradient, diff with n > 1), embedding with max_norm renormalisation
    return "nn"


# --------------------------------------------------------------------------------------------------
# exclusions: ops whose results cannot be compared (visible as one skipped test each, with the reason)
# --------------------------------------------------------------------------------------------------

_RANDOM = "random sampler: every call draws new values, so no two results (or a reference) can be compared"
_EMPTY = "returns uninitialised memory: only shape/dtype are defined, and the values differ run to run"
EXCLUDED: dict[str, str] = {
    "bernoulli": _RANDOM, "cauchy": _RANDOM, "exponential": _RANDOM, "geometric": _RANDOM,
    "log_normal": _RANDOM, "normal": _RANDOM, "normal.in_place": _RANDOM, "normal.number_mean": _RANDOM,
    "uniform": _RANDOM, "multinomial": _RANDOM, "rand_like": _RANDOM, "randn": _RANDOM, "randn_like": _RANDOM,
    "randint": _RANDOM, "randint_like": _RANDOM,
    "nn.functional.dropout": _RANDOM + " (training=True samples)",
    "nn.functional.dropout2d": _RANDOM + " (training=True samples)",
    "nn.functional.dropout3d": _RANDOM + " (training=True samples)",
    "nn.functional.alpha_dropout": _RANDOM + " (training=True samples)",
    "nn.functional.feature_alpha_dropout.with_train": _RANDOM,
    "nn.functional.rrelu": _RANDOM + " (random negative slope in training mode)",
    "nn.functional.fractional_max_pool2d": _RANDOM + " (random pooling regions)",
    "nn.functional.fractional_max_pool3d": _RANDOM + " (random pooling regions)",
    "svd_lowrank": _RANDOM + " (randomised range finder)",
    "pca_lowrank": _RANDOM + " (randomised range finder)",
    "empty": _EMPTY, "empty_like": _EMPTY, "empty_strided": _EMPTY, "empty_permuted": _EMPTY,
    "new_empty": _EMPTY, "new_empty_strided": _EMPTY,
    "resize_": _EMPTY + " (the grown part)", "resize_as_": _EMPTY + " (the grown part)",
    "jiterator_unary": "CUDA-only: a runtime-compiled CUDA kernel (the OpInfo lists CPU dtypes, the op raises there)",
    "jiterator_binary": "CUDA-only: a runtime-compiled CUDA kernel (the OpInfo lists CPU dtypes, the op raises there)",
    "jiterator_binary_return_by_ref": "CUDA-only: a runtime-compiled CUDA kernel",
    "jiterator_4inputs_with_extra_args": "CUDA-only: a runtime-compiled CUDA kernel",
    "jiterator_2inputs_2outputs": "CUDA-only: a runtime-compiled CUDA kernel",
    "bmm.triton_optimized": "CUDA-only: a Triton kernel variant of bmm (plain bmm is checked)",
}


def excluded_reason(op, device: str) -> str | None:
    """Why ``op`` is not run on ``device`` at all, or None."""
    reason = EXCLUDED.get(key(op))
    if reason is not None:
        return reason
    only = _only_devices(op)
    if only is not None and device not in only:
        return f"the OpInfo restricts this op to {'/'.join(sorted(only))} (onlyCUDA/onlyCPU decorator)"
    if not supported(op, device):
        return f"the OpInfo lists no dtypes for {device}"
    return None


def _only_devices(op) -> set | None:
    from torch.testing._internal import common_device_type as cdt

    marks = {getattr(cdt, "onlyCUDA", None): "cuda", getattr(cdt, "onlyCPU", None): "cpu"}
    out = set()
    for dec in tuple(op.decorators or ()) + tuple(op.skips or ()):
        if callable(dec) and dec in marks:
            out.add(marks[dec])
    return out or None


# --------------------------------------------------------------------------------------------------
# torch's own knowledge of broken cases (DecorateInfo skips / expected failures), honoured as skips
# --------------------------------------------------------------------------------------------------

def _fresh_probe():
    """A new function for one of torch's decorators to decorate, to read what it does (a fresh one each
    time: unittest.expectedFailure marks the function it is given in place, and wrappers such as
    toleranceOverride copy that mark from the function they wrap)."""
    def probe():
        return None
    return probe


def _as_run_by_torch(test_name: str, dtype: str) -> str:
    """torch runs test_numpy_ref only at float64 / complex128 / int64: its skips for that test name
    those dtypes and mean every dtype of the kind."""
    if test_name != "test_numpy_ref":
        return dtype
    if dtype.startswith("complex"):
        return "complex128"
    if dtype.startswith(("float", "bfloat")):
        return "float64"
    return "int64"


def torch_skip_reason(op, torch_tests, device: str, dtype_name_: str) -> str | None:
    """The reason torch's OpInfo gives for skipping or expecting failure of one of ``torch_tests``
    (``(cls_name, test_name)`` pairs of torch's own test suite that check the same law) for this op on
    ``device`` at this dtype, or None. Only ``unittest.skip*`` and ``unittest.expectedFailure``
    decorators count; tolerance overrides and device-capability skips for other devices do not."""
    for info in tuple(op.skips or ()) + tuple(op.decorators or ()):
        if type(info).__name__ != "DecorateInfo":
            continue
        cls_name, test_name = getattr(info, "cls_name", None), getattr(info, "test_name", None)
        if cls_name is None and test_name is None:
            continue  # blanket decorators are for torch's harness (device capabilities), not a finding
        matched = [t for c, t in torch_tests
                   if (cls_name is None or cls_name == c) and (test_name is None or test_name == t)]
        if not matched:
            continue
        dev = getattr(info, "device_type", None)
        if dev is not None and dev != device:
            continue
        dts = getattr(info, "dtypes", None)
        if dts is not None and not any(torch_dtype(_as_run_by_torch(t, dtype_name_)) in dts for t in matched):
            continue
        active = getattr(info, "active_if", True)
        if callable(active):
            active = active({})
        if not active:
            continue
        for dec in getattr(info, "decorators", ()):
            if not callable(dec):
                continue
            probed = dec(_fresh_probe())
            where = f"{cls_name or '*'}.{test_name or '*'}"
            if getattr(probed, "__unittest_skip__", False):
                why = getattr(probed, "__unittest_skip_why__", "") or "no reason given"
                return f"torch's OpInfo skips {where} for {key(op)} on {device} {dtype_name_}: {why}"
            if getattr(probed, "__unittest_expecting_failure__", False):
                return (f"torch's OpInfo marks {where} as an expected failure for {key(op)} on {device} "
                        f"{dtype_name_} (no reason text in the DecorateInfo)")
    return None


# --------------------------------------------------------------------------------------------------
# laws and cases
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Law:
    name: str
    torch_tests: tuple  # (cls_name, test_name) of torch's own tests of the same law, for its skips
    samples_default: int
    samples_full: int
    full_only: bool = False


LAWS: dict[str, Law] = {law.name: law for law in (
    Law("ref", (("TestCommon", "test_numpy_ref"), ("TestUnaryUfuncs", "test_reference_numerics_normal"),
                ("TestUnaryUfuncs", "test_reference_numerics_small"),
                ("TestUnaryUfuncs", "test_reference_numerics_large"),
                ("TestUnaryUfuncs", "test_reference_numerics_extremal"),
                ("TestBinaryUfuncs", "test_reference_numerics"),
                ("TestBinaryUfuncs", "test_reference_numerics_small_values"),
                ("TestBinaryUfuncs", "test_reference_numerics_large_values"),
                ("TestBinaryUfuncs", "test_reference_numerics_extremal_values"),
                ("TestReductions", "test_ref_small_input"), ("TestReductions", "test_ref_large_input"),
                ("TestReductions", "test_ref_duplicate_values"), ("TestReductions", "test_ref_extremal_values")),
        12, 24),
    Law("precision", (), 4, 16),
    Law("out", (("TestCommon", "test_out"),), 3, 8),
    Law("inplace", (("TestCommon", "test_variant_consistency_eager"),), 4, 8),
    Law("method", (("TestCommon", "test_variant_consistency_eager"),), 3, 8),
    Law("gapped", (("TestCommon", "test_noncontiguous_samples"), ("TestUnaryUfuncs", "test_non_contig"),
                   ("TestBinaryUfuncs", "test_non_contig")), 4, 8),
    Law("transposed", (("TestCommon", "test_noncontiguous_samples"),), 3, 8),
    Law("expanded", (("TestCommon", "test_noncontiguous_samples"), ("TestUnaryUfuncs", "test_non_contig_expand"),
                     ("TestBinaryUfuncs", "test_non_contig_expand")), 4, 8),
    Law("zero_size", (("TestCommon", "test_numpy_ref"),), 3, 8),
    Law("vmap", (("TestVmapOperatorsOpInfo", "test_vmap_exhaustive"),), 3, 8),
    Law("backward", (("TestBwdGradients", "test_fn_grad"),), 2, 8),
    Law("gradcheck", (("TestBwdGradients", "test_fn_grad"),), 2, 4, full_only=True),
    Law("gradgradcheck", (("TestBwdGradients", "test_fn_gradgrad"),), 1, 2, full_only=True),
)}

# Per-law exemptions: ops (or "op@dtype") for which a law does not hold by design (each with the
# reason). They are collected as skipped tests carrying the reason, so the report lists them.
LAW_EXEMPT: dict[str, dict[str, str]] = {law: {} for law in LAWS}
_QUOTIENT = ("rounds the quotient to the input dtype before truncating/flooring it, so a lower-precision "
             "quotient can round across an integer and move the result by one by definition")
LAW_EXEMPT["precision"].update({
    "nextafter": "the result is the neighbour of x in the input's own dtype: the float64 neighbour is a "
                 "different number by definition",
    "div.trunc_rounding": _QUOTIENT, "div.floor_rounding": _QUOTIENT, "floor_divide": _QUOTIENT,
    "remainder": _QUOTIENT, "__rmod__": _QUOTIENT,
})
_STORAGE = ("addresses the underlying storage, not the logical elements: a copy, a float64 twin or another "
            "layout views different memory by definition")
for _law in ("precision", "gapped", "transposed", "expanded", "vmap", "zero_size", "out"):
    LAW_EXEMPT[_law].update({k: _STORAGE for k in ("as_strided", "as_strided.partial_views", "as_strided_copy",
                                                   "as_strided_scatter")})
_SPARSE = "takes sparse-layout operands: strided layout transforms and vmap do not apply to them"
_SCALED_MM = ("float8 operands with a required layout (row-major first, column-major second operand) by "
              "contract; the project's tolerance table has no float8 rows")
for _law in ("gapped", "transposed", "expanded", "vmap"):
    LAW_EXEMPT[_law].update({"sparse.sampled_addmm": _SPARSE, "sparse.mm.reduce": _SPARSE})
    LAW_EXEMPT[_law].update({"torch._scaled_mm": _SCALED_MM, "torch._scaled_mm_v2": _SCALED_MM})
_VIEW = ("documented to need strides compatible with the new shape: it raises on other layouts by contract "
         "(reshape is the layout-agnostic form)")
LAW_EXEMPT["transposed"].update({"view": _VIEW, "view_as": _VIEW})
_BN_CONST = ("an expanded input makes whole normalisation groups constant: the output is then the rounding "
             "noise of the mean divided by sqrt(eps), which differs between correct kernels")
for _law in ("backward", "gradcheck", "gradgradcheck"):
    LAW_EXEMPT[_law].update({k: _STORAGE for k in ("as_strided", "as_strided.partial_views", "as_strided_copy",
                                                   "as_strided_scatter")})
_BINS = ("the bin index is a floor of a position computed in the input dtype: a lower-precision position "
         "crosses bin edges by definition")
LAW_EXEMPT["precision"].update({"histc": _BINS, "histogram": _BINS, "histogramdd": _BINS})
_EIG_ORDER = ("the order of the eigenvalues is unspecified: complex64 and complex128 may list a conjugate "
              "pair in opposite order (and the cotangents then meet different outputs)")
LAW_EXEMPT["precision"].update({"linalg.eigvals@complex64": _EIG_ORDER, "linalg.eig@complex64": _EIG_ORDER})
LAW_EXEMPT["ref"].update({"nn.functional.pairwise_distance@uint8": (
    "x1 - x2 is a uint8 difference (wraps modulo 256, torch's integer arithmetic) before the norm, while op.ref "
    "takes the difference in int64: the two differ by definition wherever x2 > x1")})
LAW_EXEMPT["backward"].update({"linalg.eigvals@complex64": _EIG_ORDER, "linalg.eig@complex64": _EIG_ORDER})
LAW_EXEMPT["expanded"].update({
    "nn.functional.batch_norm": _BN_CONST, "native_batch_norm": _BN_CONST, "_native_batch_norm_legit": _BN_CONST,
    "view": _VIEW, "view_as": _VIEW,
    "argsort": "an expanded (stride-0) row holds equal values, so every permutation is a valid argsort",
    "nn.functional.embedding": "max_norm renormalises the weight in place, and an expanded weight cannot be "
                               "written (torch raises by design)",
    "nn.functional.embedding_bag": "max_norm renormalises the weight in place, and an expanded weight cannot be "
                                   "written (torch raises by design)",
})
_BN_VMAP = ("updates running_mean/running_var in place, which vmap refuses for unbatched running stats "
            "(documented torch.func limitation: functorch.experimental.replace_all_batch_norm_modules_)")
_NO_RULE = ("torch.func.vmap has no batching rule and no fallback for this op (it raises 'Batching rule not "
            "implemented ... could not generate a fallback')")
LAW_EXEMPT["vmap"].update({
    "nn.functional.batch_norm": _BN_VMAP, "native_batch_norm": _BN_VMAP, "_native_batch_norm_legit": _BN_VMAP,
    "_batch_norm_with_update": _BN_VMAP, "nn.functional.instance_norm": _BN_VMAP,
    "narrow": _NO_RULE + " for a tensor start", "tensor_split": _NO_RULE + " for tensor indices",
    "column_stack": _NO_RULE,
    "nn.functional.one_hot": "without num_classes the result shape depends on the values, which vmap rejects by "
                             "design (it asks for an explicit num_classes)",
    "nn.functional.multi_head_attention_forward": "calls dropout (a random op) in training mode, which vmap "
                                                  "refuses unless told how to batch randomness",
    "nn.functional.scaled_dot_product_attention": "samples with dropout_p > 0 call a random op, which vmap "
                                                  "refuses unless told how to batch randomness",
})
_CONV_UNBATCHED = "an unbatched input's dim 0 is its channels: emptying it contradicts the weight"
LAW_EXEMPT["zero_size"].update({
    "nn.functional.one_hot": "the NumPy reference reshapes with -1, which NumPy cannot do for an empty array",
    "unbind": "the NumPy reference splits into input.shape[dim] pieces and divides by zero for an empty dim",
    "unbind_copy": "the NumPy reference splits into input.shape[dim] pieces and divides by zero for an empty dim",
    "hash_tensor": "torch refuses to reduce an empty tensor without dim= (as max/amax do); the reference "
                   "returns a value",
    "native_group_norm": "N, C and HxW are passed as integers; an emptied input contradicts them",
    "equal": "torch.equal is False for tensors of different shapes by contract; the NumPy reference broadcasts",
    "nn.functional.pairwise_distance": "torch refuses a negative-order norm over an empty dim (no identity) by "
                                       "design; the reference returns inf",
    "nn.functional.rms_norm": "normalized_shape is passed explicitly: emptying a 1-D input contradicts it",
    "special.spherical_bessel_j0@bool": "the NumPy reference negates its input, which NumPy refuses for bool",
    "nn.functional.conv_transpose1d": _CONV_UNBATCHED, "nn.functional.conv_transpose2d": _CONV_UNBATCHED,
    "nn.functional.conv_transpose3d": _CONV_UNBATCHED,
})


@dataclass(frozen=True)
class Case:
    law: str
    op_key: str
    dtype: str

    @property
    def id(self) -> str:
        return f"{self.dtype}-{self.op_key}"


def _dtypes_for(law: str, op, device: str, tier: str) -> tuple[str, ...]:
    names = supported(op, device)
    if not names:
        return ()
    p = primary(op, device)
    full = tier == "full"
    if law == "ref":
        if op.ref is None:
            return ()
        return names if full else (p,)
    if law == "precision":
        highs = set(supported(op, "cpu"))
        lows = [d for d in LOW_PRECISION if d in names and _HIGH[d] in highs]
        if full:
            return tuple(lows)
        # default tier: float32 where no NumPy reference checks it already (test_ref does), bfloat16
        # where the op computes (pure data movement is dtype-generic copying)
        picks = [] if op.ref is not None else ["float32"]
        if op_class(op) != "exact":
            picks.append("bfloat16")
        return tuple(d for d in picks if d in lows)
    if law in ("backward", "gradcheck", "gradgradcheck"):
        if not op.supports_autograd:
            return ()
        if law == "gradgradcheck" and not op.supports_gradgrad:
            return ()
        bwd = {dtype_name(d) for d in (op.supported_backward_dtypes(device) or ())}
        if law == "backward":
            lows = [d for d in ("float32", "bfloat16", "complex64") if d in bwd and d in names
                    and _HIGH[d] in bwd]
            return tuple(lows) if full else tuple(lows[:1])
        hi = [d for d in ("float64", "complex128") if d in bwd]
        return tuple(hi) if full else tuple(hi[:1])
    if law == "out" and not op.supports_out:
        return ()
    if law == "inplace" and op.inplace_variant is None:
        return ()
    if law == "method" and op.method_variant is None:
        return ()
    if law == "zero_size" and op.ref is None:
        return ()
    if law == "vmap" and not (op.check_batched_forward_grad or op.check_batched_grad):
        return ()
    if full:
        extra = [d for d in ("float64", "bfloat16", "int64", "complex64", "bool") if d in names and d != p]
        return (p, *extra)
    return (p,)


def cases(law: str, devices, tier: str) -> list[Case]:
    """The cases of ``law`` at ``tier`` over the union of ``devices`` (the test skips, with a reason, a
    dtype a particular device does not support)."""
    out = []
    for op in all_ops():
        if key(op) in EXCLUDED:
            continue
        seen = []
        for dev in devices:
            if excluded_reason(op, dev) is not None:
                continue
            for d in _dtypes_for(law, op, dev, tier):
                if d not in seen:
                    seen.append(d)
        out.extend(Case(law, key(op), d) for d in sorted(seen, key=_rank))
    return out


def inventory(devices, tier: str) -> dict[str, list[str]]:
    """op key -> the laws it runs under (an op with none must be in EXCLUDED or have no dtypes)."""
    inv = {key(op): [] for op in all_ops()}
    for law in LAWS:
        for c in cases(law, devices, tier if not LAWS[law].full_only else "full"):
            if law not in inv[c.op_key]:
                inv[c.op_key].append(law)
    return inv


# --------------------------------------------------------------------------------------------------
# samples
# --------------------------------------------------------------------------------------------------

def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "little") & 0x7FFFFFFF


def _spread(seq: list, n: int) -> list:
    """``n`` items spread evenly over ``seq`` (first and last included)."""
    if len(seq) <= n:
        return list(seq)
    if n == 1:
        return [seq[0]]
    idx = sorted({round(i * (len(seq) - 1) / (n - 1)) for i in range(n)})
    return [seq[i] for i in idx]


_CAP = 48  # samples drawn from an OpInfo's generator before selecting (some generate thousands)
# At the default tier a sample whose tensors hold more than this many elements in total is left to the
# full tier (OpInfo's few huge samples, e.g. a 5-million-element grid_sampler_3d input, would otherwise
# dominate the lane's run time).
DEFAULT_MAX_NUMEL = 1 << 16
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 16  # the conftest runs an op's laws back to back, so a small cache serves them all


def _drawn(op, device: str, dtype: str, requires_grad: bool) -> list:
    """The first ``_CAP`` SampleInputs of ``op``, seeded from (op, device, dtype) so every process draws
    the same values; cached per process (callers get copies)."""
    import torch

    ck = (key(op), device, dtype, requires_grad)
    if ck in _CACHE:
        _CACHE.move_to_end(ck)
        return _CACHE[ck]
    with torch.random.fork_rng(devices=[] if device == "cpu" else None):
        # torch.manual_seed() also records a stack trace per lazily-initialised accelerator module
        # (milliseconds in a deep pytest stack); the CPU generator alone is what a CPU sample uses.
        seed = _seed(key(op), device, dtype, requires_grad)
        if device == "cpu":
            torch.default_generator.manual_seed(seed)
        else:
            torch.manual_seed(seed)
        np_state, py_state = np.random.get_state(), random.getstate()
        np.random.seed(_seed(key(op), dtype))
        random.seed(_seed(key(op), dtype))  # some sample functions draw lengths/classes from `random`
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gen = op.sample_inputs_func(op, device, torch_dtype(dtype), requires_grad)
                drawn = list(itertools.islice(gen, _CAP))
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
    _CACHE[ck] = drawn
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return drawn


def _numel(s) -> int:
    return sum(t.numel() for t in tensors_of((s.input, tuple(s.args), dict(s.kwargs))))


def samples(op, device: str, dtype: str, n: int, *, requires_grad: bool = False, tier: str = "default",
            where=None) -> list:
    """Up to ``n`` samples of ``op`` on ``device`` at ``dtype`` (fresh copies), spread over the OpInfo's
    sample list after keeping those ``where(sample)`` accepts (a law's applicability) and, at the
    default tier, those of at most ``DEFAULT_MAX_NUMEL`` elements."""
    drawn = _drawn(op, device, dtype, requires_grad)
    if tier != "full":
        drawn = [s for s in drawn if _numel(s) <= DEFAULT_MAX_NUMEL]
    if where is not None:
        drawn = [s for s in drawn if where(Sample(s.input, s.args, s.kwargs))]
    # most arguments first (a stable sort): the spread then takes the samples that exercise dim=,
    # keepdim=, alpha=... as well as the plain ones at the end
    drawn = sorted(drawn, key=lambda s: -(len(s.args) + len(s.kwargs)))
    return [copy_sample(s) for s in _spread(drawn, n)]


# applicability predicates of the laws (on an uncopied sample: they must not modify it)
def has_tensor_input(s: Sample) -> bool:
    return is_tensor(s.input)


def has_gappable(s: Sample) -> bool:
    return any(t.dim() > 0 and t.numel() > 0 for t in tensors_of((s.input, s.args, s.kwargs)))


def has_matrix(s: Sample) -> bool:
    return any(t.dim() >= 2 and t.shape[-1] >= 2 and t.shape[-2] >= 2
               for t in tensors_of((s.input, s.args, s.kwargs)))


def has_expandable(s: Sample) -> bool:
    x = s.input
    return is_tensor(x) and _float_like(x) and any(d >= 2 for d in x.shape)


def has_batchable(s: Sample) -> bool:
    x = s.input
    return is_tensor(x) or (isinstance(x, (list, tuple)) and bool(x) and all(is_tensor(t) for t in x))


def has_zero_sizable(s: Sample) -> bool:
    return zero_sized_input(s) is not None


def same_rng(device: str, seed: int = 0) -> None:
    """Reset the generators an op draws from (dropout inside attention, random samplers in composites)
    so that the two computations a law compares draw the same numbers (masks agree across dtypes)."""
    import torch

    torch.default_generator.manual_seed(seed)
    if device != "cpu" and hasattr(torch, device):
        getattr(torch, device).manual_seed(seed)


def is_tensor(x) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


def tree_map(fn, obj):
    """Apply ``fn`` to every tensor in nested lists/tuples/dicts (types kept, namedtuples too)."""
    if is_tensor(obj):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(tree_map(fn, o) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(tree_map(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: tree_map(fn, v) for k, v in obj.items()}
    return obj


def leaves(obj) -> list:
    """Tensors and scalars of a (nested) result, in order; None kept as a leaf."""
    if is_tensor(obj):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in leaves(o)]
    if isinstance(obj, dict):  # insertion order, as tree_map walks it
        return [x for v in obj.values() for x in leaves(v)]
    return [obj]


def tensors_of(obj) -> list:
    return [x for x in leaves(obj) if is_tensor(x)]


class Sample:
    """A SampleInput's parts: ``input`` (tensor, list of tensors or scalar), ``args``, ``kwargs``."""

    __slots__ = ("input", "args", "kwargs", "output_process_fn_grad", "broadcasts_input")

    def __init__(self, input, args, kwargs, output_process_fn_grad=None, broadcasts_input=False):
        self.input, self.args, self.kwargs = input, tuple(args), dict(kwargs)
        self.output_process_fn_grad = output_process_fn_grad or (lambda x: x)
        self.broadcasts_input = bool(broadcasts_input)

    def map(self, fn) -> "Sample":
        """A new Sample with ``fn`` applied to every tensor (input, args, kwargs)."""
        return Sample(tree_map(fn, self.input), tree_map(fn, self.args), tree_map(fn, self.kwargs),
                      self.output_process_fn_grad, self.broadcasts_input)

    def call(self, fn, **extra):
        return fn(self.input, *self.args, **self.kwargs, **extra)

    def with_input(self, new_input) -> "Sample":
        return Sample(new_input, self.args, self.kwargs, self.output_process_fn_grad, self.broadcasts_input)

    def describe(self) -> str:
        parts = [describe_value(self.input)] + [describe_value(a) for a in self.args]
        return ", ".join(parts + [f"{k}={describe_value(v)}" for k, v in self.kwargs.items()])


def copy_sample(s) -> Sample:
    """A deep copy of a SampleInput (tensors cloned with their strides; requires_grad kept)."""
    def cp(t):
        c = t.detach().clone()
        return c.requires_grad_(t.requires_grad) if (c.is_floating_point() or c.is_complex()) else c
    return Sample(tree_map(cp, s.input), tree_map(cp, tuple(s.args)), tree_map(cp, dict(s.kwargs)),
                  getattr(s, "output_process_fn_grad", None), getattr(s, "broadcasts_input", False))


# --------------------------------------------------------------------------------------------------
# transforms the laws need
# --------------------------------------------------------------------------------------------------

def sentinel(dtype):
    """A value that must never appear in a result computed from the logical elements: NaN for floats,
    a large value for integers, True for bool."""
    import torch

    if dtype.is_floating_point or dtype.is_complex:
        return float("nan")
    if dtype == torch.bool:
        return True
    return int(torch.iinfo(dtype).max // 3)


def gapped(t):
    """The same logical values with real gaps: the last dim strided by 2 in a storage twice as wide whose
    gap elements hold :func:`sentinel` (a kernel ignoring strides reads them). 0-d and empty tensors
    are returned unchanged."""
    import torch

    if t.dim() == 0 or t.numel() == 0:
        return t
    buf = torch.full((*t.shape[:-1], 2 * t.shape[-1]), sentinel(t.dtype), dtype=t.dtype, device=t.device)
    view = buf[..., ::2]
    with torch.no_grad():
        view.copy_(t)
    return view.requires_grad_(t.requires_grad) if t.requires_grad else view


def column_major(t):
    """The same values in column-major order (dense, but the last two dims transposed in memory)."""
    if t.dim() < 2 or t.shape[-1] < 2 or t.shape[-2] < 2:
        return t
    return t.mT.contiguous().mT


def gap_values_intact(t) -> bool:
    """For a tensor made by :func:`gapped`: whether the gap elements still hold the sentinel."""
    import torch

    base = t._base if t._base is not None else t
    if base is t:
        return True
    gaps = base[..., 1::2]
    s = sentinel(t.dtype)
    if isinstance(s, float) and math.isnan(s):
        return bool(torch.isnan(gaps).all())
    return bool((gaps == s).all())


def upcast(s: Sample, low: str, high: str) -> Sample:
    """The sample with every ``low``-dtype tensor (and a ``dtype=low`` argument) converted exactly to
    ``high``: the float64 twin of a low-precision sample, with identical values."""
    import torch

    lo, hi = torch_dtype(low), torch_dtype(high)

    def conv(t):
        if t.dtype != lo:
            return t
        c = t.detach().to(hi)
        return c.requires_grad_(t.requires_grad)
    out = s.map(conv)
    out.args = tuple(hi if a is lo else a for a in out.args)
    out.kwargs = {k: (hi if v is lo else v) for k, v in out.kwargs.items()}
    return out


def to_device(s: Sample, device: str) -> Sample:
    def mv(t):
        c = t.detach().to(device)
        return c.requires_grad_(t.requires_grad)
    return s.map(mv)


# --------------------------------------------------------------------------------------------------
# NumPy conversion for op.ref
# --------------------------------------------------------------------------------------------------

def _np_dtype(dt):
    import torch

    if dt in (torch.bfloat16, torch.float16):
        return np.float32 if dt is torch.bfloat16 else np.float16
    if dt is getattr(torch, "complex32", None):
        return np.complex64
    return torch.empty((), dtype=dt).numpy().dtype.type


def numpy_sample(s: Sample, *, upcast_floats: bool = True, int_to_float: bool = False):
    """(input, args, kwargs) for ``op.ref``: tensors as NumPy arrays, torch dtypes as NumPy dtypes. With
    ``upcast_floats`` the reference computes from the same values at double precision: floating tensors
    in float64 / complex128, integer tensors in int64 (the result is wrapped back to torch's integer
    dtype by :func:`round_like`, which models torch's modular integer arithmetic; NumPy 2 would refuse a
    negative scalar with uint8 and computes int8/uint8 math functions in float16), and with
    ``int_to_float`` (an op that promotes integers to float) integer and bool tensors in float64."""
    import torch

    def conv(x):
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().resolve_conj().resolve_neg()
            if upcast_floats and t.is_floating_point():
                return t.to(torch.float64).numpy()
            if upcast_floats and t.is_complex():
                return t.to(torch.complex128).numpy()
            if upcast_floats and int_to_float and not t.is_floating_point():
                return t.to(torch.float64).numpy()
            if upcast_floats and t.dtype in (torch.int8, torch.uint8, torch.int16, torch.int32):
                return t.to(torch.int64).numpy()
            if t.dtype in (torch.bfloat16, torch.float16):
                return t.to(torch.float32).numpy()
            return t.numpy()
        if isinstance(x, torch.dtype):
            return _np_dtype(x)
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return type(x)(*(conv(o) for o in x))
        if isinstance(x, (list, tuple)):
            return type(x)(conv(o) for o in x)
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        return x
    return conv(s.input), conv(s.args), conv(s.kwargs)


# How each OpInfo family's ``ref`` is meant to be called (as torch's own reference tests call it):
# unary ufuncs with the NumPy kwargs of ``op.sample_kwargs`` (test_unary_ufuncs), reductions with the
# args of ``op.generate_args_kwargs`` and only the input converted (test_reductions), FFTs with NumPy's
# axis names (test_spectral_ops), everything else with the whole sample converted (test_ops).
_FFT_1D = {"fft.fft", "fft.ifft", "fft.rfft", "fft.irfft", "fft.hfft", "fft.ihfft"}
# Reductions whose op.ref defaults differ from torch's for arguments a sample may leave out (NumPy's
# ddof=0 vs torch's correction=1): only the generate_args_kwargs calls, which spell them out, are used.
_REF_DEFAULTS_DIFFER = {"std", "var", "std.unbiased", "var.unbiased", "masked.std", "masked.var"}


def reference_calls(op, s: Sample, device: str, dtype: str, *, upcast_floats: bool = True):
    """(label, torch thunk, reference thunk) triples for sample ``s``."""
    family = type(op).__name__
    to_float = bool(getattr(op, "promotes_int_to_float", False))

    def np_in(x):
        return numpy_sample(Sample(x, (), {}), upcast_floats=upcast_floats, int_to_float=to_float)[0]

    if family == "UnaryUfuncInfo" and hasattr(op, "sample_kwargs") and is_tensor(s.input):
        t = s.input
        torch_kw, np_kw = op.sample_kwargs(device, torch_dtype(dtype), t)
        yield (f"{describe_value(t)}, {_kw(torch_kw)}", lambda: op.op(t, **torch_kw),
               lambda: op.ref(np_in(t), **np_kw))
        return
    if family == "ReductionOpInfo" and hasattr(op, "generate_args_kwargs") and is_tensor(s.input):
        t = s.input
        extra = [{}]  # as torch's test_ref_small_input: no dim, then single dims
        if t.dim() >= 1:
            extra.append({"dim": 0})
        if t.dim() >= 2:
            extra.append({"dim": -1})
        # (torch args, torch kwargs, ref args, ref kwargs); as torch's _compare_ref only the input goes to
        # NumPy, the reduction wrappers of op.ref translate dim/keepdim/mask/identity themselves
        calls = [(a, dict(k, **kw), a, dict(k, **kw)) for kw in extra for a, k in op.generate_args_kwargs(t, **kw)]
        if key(op) not in _REF_DEFAULTS_DIFFER and not op.name.startswith("masked."):
            # the sample's own dim=/keepdim=/dtype= arguments too (torch dtypes given as NumPy's);
            # masked reductions need the identity/mask plumbing of torch's TestMasked, so they do not
            _, ref_args, ref_kwargs = numpy_sample(Sample(None, s.args, s.kwargs))
            calls.append((tuple(s.args), dict(s.kwargs), ref_args, ref_kwargs))
        for args, kwargs, ref_args, ref_kwargs in calls:
            yield (f"{describe_value(t)}, {_kw(kwargs)}", functools.partial(op.op, t, *args, **kwargs),
                   functools.partial(lambda a, k: op.ref(np_in(t), *a, **k), ref_args, ref_kwargs))
        return
    inp, args, kwargs = numpy_sample(s, upcast_floats=upcast_floats, int_to_float=to_float)
    if family == "SpectralFuncInfo":
        kwargs = dict(kwargs)
        if op.name in _FFT_1D:
            if "dim" in kwargs:
                kwargs["axis"] = kwargs.pop("dim")
        else:
            if "dim" in kwargs:
                kwargs["axes"] = kwargs.pop("dim")
            elif op.name.endswith("2") and "s" not in kwargs:
                kwargs["axes"] = (-2, -1)  # the 2-D ops' refs are the n-D NumPy/SciPy functions
            for k in ("axes", "s"):
                if k in kwargs and np.ndim(kwargs[k]) == 0 and kwargs[k] is not None:
                    kwargs[k] = (kwargs[k],)
    yield s.describe(), lambda: s.call(op.op), lambda: op.ref(inp, *args, **kwargs)


def _kw(kwargs: dict) -> str:
    return ", ".join(f"{k}={describe_value(v)}" for k, v in kwargs.items())


def describe_value(x) -> str:
    if is_tensor(x):
        import torch

        if x.layout != torch.strided:
            return f"{dtype_name(x.dtype)}{list(x.shape)}, {str(x.layout).rsplit('.', 1)[-1]}"
        extra = "" if x.is_contiguous() else f", stride={tuple(x.stride())}"
        return f"{dtype_name(x.dtype)}{list(x.shape)}{extra}"
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields") and any(is_tensor(t) for t in x):
        return "[" + ", ".join(describe_value(t) for t in x) + "]"
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------------------------------
# comparing results
# --------------------------------------------------------------------------------------------------

def _float_like(t) -> bool:
    return t.is_floating_point() or t.is_complex()


def round_like(expected, actual):
    """A float64 reference rounded once to the dtype torch returned (models the one final rounding;
    an overflow to inf in that dtype then matches). Non-float references are returned unchanged."""
    import torch

    if is_tensor(actual) and not _float_like(actual) and actual.dtype != torch.bool:
        arr = np.asarray(expected.detach().cpu().numpy() if is_tensor(expected) else expected)
        if arr.dtype.kind in "iu" and arr.shape == tuple(actual.shape):
            # integer results: torch's arithmetic is modular in its dtype, so the exact (int64) reference
            # is wrapped the same way
            return arr.astype(torch.empty((), dtype=actual.dtype).numpy().dtype)
        return expected
    if not is_tensor(actual) or not _float_like(actual):
        return expected
    e = expected
    if not is_tensor(e):
        arr = np.asarray(e)
        if arr.dtype == object:
            return expected
        e = torch.from_numpy(np.array(arr, copy=True))
    e = e.detach().cpu()
    if e.is_complex() and not actual.is_complex():
        return expected
    return e.to(actual.dtype)


def _normwise(op: str, actual, expected) -> dict:
    """rtol/atol for a norm-wise comparison of a multi-term computation: atol grows by rtol times the
    largest expected magnitude. A kernel that accumulates or rounds intermediates at the scale of its
    largest outputs leaves an absolute error of that order on an element that cancels to near zero
    (conv-transpose overlaps, cross products, normalisations), which an element-wise relative
    tolerance would call a bug. Elementwise and exact classes never get this."""
    from harness import tolerances

    from harness.checks import to_numpy

    tol = tolerances.lookup(op, actual.dtype)
    e = to_numpy(expected)
    finite = np.abs(e[np.isfinite(e)]) if e.size else np.zeros(0)
    scale = float(finite.max()) if finite.size else 0.0
    return {"rtol": tol.rtol, "atol": tol.atol + tol.rtol * scale}


def assert_results_close(api: str, actual, expected, *, op: str, args: str, exact_dtype: bool = True,
                         round_expected: bool = False, normwise: bool = False, scale: float = 1.0):
    """Compare two (nested) results leaf by leaf through harness.checks: floating tensors with the
    tolerance of op class ``op`` at the actual dtype (``normwise``: see :func:`_normwise`, only for
    classes other than exact/elementwise; ``scale``: a factor from :data:`TOLERANCE_SCALE`), everything
    else exactly; structure, shapes and (``exact_dtype``) dtypes must match."""
    from harness import tolerances
    from harness.checks import assert_close, assert_equal

    __tracebackhide__ = True
    a_leaves, e_leaves = leaves(actual), leaves(expected)
    assert_equal(api, len(a_leaves), len(e_leaves), args=f"number of results; {args}")
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        where = f"result {i}; {args}" if len(a_leaves) > 1 else args
        if is_tensor(a) and is_tensor(e) and exact_dtype:
            assert_equal(api, a.dtype, e.dtype, args=f"dtype; {where}")
        if round_expected:
            e = round_like(e, a)
        if is_tensor(a) and _float_like(a) and op != "exact":
            e_t = e if is_tensor(e) else np.asarray(e)
            tol = _normwise(op, a, e_t) if normwise and op != "elementwise" else {}
            if scale != 1.0:
                base = tol or tolerances.lookup(op, a.dtype).as_dict()
                tol = {k: v * scale for k, v in base.items()}
            assert_close(api, a, e_t, op=op, args=where + (" (norm-wise)" if normwise and op != "elementwise"
                                                           else ""), **tol)
        elif is_tensor(a) or isinstance(e, np.ndarray) or is_tensor(e):
            assert_equal(api, a, e if (is_tensor(e) or isinstance(e, np.ndarray)) else np.asarray(e), args=where)
        elif isinstance(a, float) or isinstance(e, float):
            assert_close(api, float(a), float(e), op=op if op != "exact" else "elementwise", dtype="float64",
                         args=where) if not (math.isnan(float(a)) and math.isnan(float(e))) else None
        else:
            assert_equal(api, a, e.item() if hasattr(e, "item") else e, args=where)


def api_name(op) -> str:
    """How a check names the API: 'torch.add', 'torch.nn.functional.relu', 'Tensor.__radd__'."""
    name = op.name
    if name.startswith("__"):
        return f"Tensor.{name}"
    if name.startswith("torch."):
        return name
    return f"torch.{name}"


_WS = re.compile(r"\s+")


def short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_WS.sub(' ', str(exc))[:160]}"


# --------------------------------------------------------------------------------------------------
# pytest glue (used by suites/ops/conftest.py and the test modules)
# --------------------------------------------------------------------------------------------------

def law(name: str):
    """Mark a test function as the generated test of law ``name`` (parametrized by the conftest)."""
    if name not in LAWS:
        raise KeyError(f"unknown OpInfo law {name!r}; known: {', '.join(LAWS)}")

    def deco(fn):
        fn.opinfo_law = name
        return fn
    return deco


def parametrization(fn, devices, tier: str) -> list:
    """The ``opinfo_case`` parameters of test function ``fn`` (its law at ``tier``)."""
    import pytest

    name = getattr(fn, "opinfo_law", None)
    if name is None:
        raise TypeError(f"{fn.__name__} takes opinfo_case but has no @_opinfo.law(...)")
    reason = unavailable_reason()
    if reason is not None:
        return [pytest.param(None, id="opinfo-unavailable", marks=pytest.mark.skip(reason=reason))]
    spec = LAWS[name]
    if spec.full_only and tier != "full":
        # one visible placeholder instead of one skipped test per op: the law runs at --tier full
        return [pytest.param(None, id="all-ops", marks=pytest.mark.slow)]
    params = []
    for c in cases(name, devices, tier):
        marks = [pytest.mark.slow] if spec.full_only else []
        exempt = LAW_EXEMPT[name].get(c.op_key) or LAW_EXEMPT[name].get(f"{c.op_key}@{c.dtype}")
        if exempt is not None:
            marks.append(pytest.mark.skip(reason=f"{c.op_key}: {name} law does not apply: {exempt}"))
        params.append(pytest.param(c, id=c.id, marks=marks))
    return params


_LAW_ORDER = {n: i for i, n in enumerate(LAWS)}


def run_order(item):
    params = getattr(getattr(item, "callspec", None), "params", {}) or {}
    case = params.get("opinfo_case")
    device = str(params.get("device"))
    if not isinstance(case, Case):
        return (device, -1, (), -1)
    order = _op_index().get(case.op_key, -1)
    return (device, order, _rank(case.dtype), _LAW_ORDER.get(case.law, -1))


@functools.lru_cache(maxsize=1)
def _op_index() -> dict:
    return {key(op): i for i, op in enumerate(all_ops())}


def n_samples(law_name: str, tier: str) -> int:
    spec = LAWS[law_name]
    return spec.samples_full if tier == "full" else spec.samples_default


def begin(device: str, case, tier: str):
    """The OpInfo of ``case`` on ``device``, or a pytest skip with the reason it cannot run there
    (lane unavailable, excluded on this device, dtype unsupported on this device, torch's own skip)."""
    import pytest

    if case is None:
        pytest.skip(unavailable_reason() or "no case")
    op = get(case.op_key)
    why = excluded_reason(op, device)
    if why is not None:
        pytest.skip(f"{case.op_key} on {device}: {why}")
    if case.dtype not in supported(op, device) and case.law not in ("backward", "gradcheck", "gradgradcheck"):
        pytest.skip(f"{case.op_key}: the OpInfo does not list {case.dtype} for {device}")
    why = torch_skip_reason(op, LAWS[case.law].torch_tests, device, case.dtype)
    if why is not None:
        pytest.skip(why)
    return op


# --------------------------------------------------------------------------------------------------
# law helpers
# --------------------------------------------------------------------------------------------------

# Ops whose outputs are defined only up to a gauge (a sign or phase per eigen/singular vector): two
# correct computations (float32 vs float64) may differ by it, so cross-precision comparisons go through
# the OpInfo's ``output_process_fn_grad`` (which removes the gauge, e.g. abs() of the vectors).
GAUGE_AMBIGUOUS: dict[str, str] = {
    "linalg.eig": "eigenvectors are defined up to a complex phase per column",
    "linalg.eigh": "eigenvectors are defined up to a sign (phase) per column",
    "svd": "singular vectors are defined up to a sign (phase) per pair",
    "linalg.svd": "singular vectors are defined up to a sign (phase) per pair",
}


# Ops whose computation is longer than their class row assumes (each with the reason): the tolerance
# of the class is multiplied by the factor.
TOLERANCE_SCALE: dict[str, tuple[float, str]] = {
    "nn.functional.ctc_loss": (4.0, "a T-step log-space recursion (T = 50 in the samples): rounding grows "
                                    "with T, measured 7.8e-5 relative in the float32 backward"),
}


def scale_of(op) -> float:
    return TOLERANCE_SCALE.get(key(op), (1.0, ""))[0]


# Ops that update some of their arguments in place by contract (running statistics, max_norm
# renormalisation): the gapped law compares those arguments' final state between the two layouts
# instead of requiring them unchanged.
MUTATES_ARGS: dict[str, str] = {
    "nn.functional.batch_norm": "training=True updates running_mean/running_var",
    "native_batch_norm": "training=True updates running_mean/running_var",
    "_native_batch_norm_legit": "training=True updates running_mean/running_var",
    "_batch_norm_with_update": "updates running_mean/running_var",
    "nn.functional.instance_norm": "use_input_stats with running stats updates them",
    "nn.functional.embedding": "max_norm renormalises the looked-up rows of the weight",
    "nn.functional.embedding_bag": "max_norm renormalises the looked-up rows of the weight",
}

# Selection ops whose index results are unspecified among equal values: on inputs that create ties
# (the expanded law's stride-0 rows) only their values are compared.
TIE_INDICES = {"sort", "msort", "topk", "kthvalue", "mode", "median", "nanmedian", "max.reduction_with_dim",
               "min.reduction_with_dim", "cummax", "cummin", "masked.median", "masked.argmax", "masked.argmin",
               "argmax", "argmin", "aminmax", "nn.functional.max_pool1d", "nn.functional.max_pool2d",
               "nn.functional.max_pool3d", "nn.functional.adaptive_max_pool1d", "nn.functional.adaptive_max_pool2d",
               "nn.functional.adaptive_max_pool3d", "unique", "unique_consecutive"}


def float_leaves(obj) -> list:
    """The floating/complex tensors of a result (values, not indices)."""
    return [t for t in leaves(obj) if is_tensor(t) and _float_like(t)]


# Ops whose result dtype does not follow the input dtype by design (precision law skips that check).
FIXED_OUTPUT_DTYPE: dict[str, str] = {
    "double": "converts to float64 whatever the input dtype",
    "cdouble": "converts to complex128 whatever the input dtype",
    "float_power": "computes in float64 / complex128 by definition",
}


def assert_dtypes_follow(api: str, actual, expected, low: str, high: str, *, sample: Sample,
                         args: str) -> None:
    """Each result of the ``low`` sample has the dtype of the ``high`` twin's result with ``high`` mapped
    back to ``low`` (float64 -> float32 ...); integer and bool results keep their dtype, and so does a
    result whose dtype was asked for with a dtype argument. Samples that mix ``low`` with other floating
    dtypes (type promotion decides) are not checked."""
    import torch
    from harness.checks import assert_equal

    __tracebackhide__ = True
    floats = {dtype_name(t.dtype) for t in tensors_of((sample.input, sample.args, sample.kwargs))
              if t.is_floating_point() or t.is_complex()}
    if floats - {low}:
        return
    asked = {dtype_name(v) for v in leaves((sample.args, sample.kwargs)) if isinstance(v, torch.dtype)} - {low}
    for i, (a, e) in enumerate(zip(leaves(actual), leaves(expected))):
        if not (is_tensor(a) and is_tensor(e)):
            continue
        want = dtype_name(e.dtype)
        if want in asked:
            pass
        elif want == high:
            want = low
        elif want == "complex128" and low in ("float32", "complex64", "float16"):
            want = "complex32" if low == "float16" else "complex64"
        elif want == "float64" and low == "complex64":
            want = "float32"
        assert_equal(api, dtype_name(a.dtype), want, args=f"result {i} dtype; {args}")


def zero_sized_input(s: Sample):
    first = s.input[0] if isinstance(s.input, (list, tuple)) and s.input and is_tensor(s.input[0]) else s.input
    if not is_tensor(first) or first.dim() == 0 or first.shape[0] == 0:
        return None
    return first


def zero_sized(s: Sample) -> Sample | None:
    """The sample with its input, and every tensor of the input's exact shape (the partners of an
    elementwise op), emptied along dim 0 (``t[:0]``); None when the input has no leading dim to empty.
    Weights, indices and other differently shaped arguments are left alone."""
    first = zero_sized_input(s)
    if first is None:
        return None
    shape = first.shape

    def cut(t):
        return t[:0] if t.shape == shape else t
    return s.map(cut)


def out_like(t, layout: str):
    """An ``out=`` tensor for result ``t``: same shape and dtype, filled with :func:`sentinel`;
    ``gapped``: with real gaps in the last dim (0-d and empty results stay contiguous)."""
    import torch

    fill = sentinel(t.dtype)
    if layout == "gapped" and t.dim() > 0 and t.numel() > 0:
        buf = torch.full((*t.shape[:-1], 2 * t.shape[-1]), fill, dtype=t.dtype, device=t.device)
        return buf[..., ::2]
    return torch.full(t.shape, fill, dtype=t.dtype, device=t.device)


def expanded_variants(s: Sample) -> list:
    """[(dim, sample whose input is expanded with stride 0 along ``dim``, the same sample with that input
    materialised)] for the first and the last dim of size >= 2 of a floating input; [] otherwise."""
    x = s.input
    if not is_tensor(x) or not _float_like(x) or x.numel() == 0:
        return []
    dims = [d for d in range(x.dim()) if x.shape[d] >= 2]
    out = []
    for d in dict.fromkeys((dims[:1] + dims[-1:])):
        exp = x.detach().narrow(d, 0, 1).expand(x.shape)
        # separate copies of the other arguments: ops that update them in place (running stats)
        # must start both calls from the same state
        out.append((d, copy_sample(s).with_input(exp), copy_sample(s).with_input(exp.contiguous())))
    return out


def vmap_batch(s: Sample):
    """(x, x reversed, both stacked on a new dim 0) for the sample's input (a tensor or a list of
    tensors; reversing the flattened order keeps symmetric / positive-definite matrices so), or None."""
    import torch

    x = s.input
    tensors = [x] if is_tensor(x) else list(x) if isinstance(x, (list, tuple)) else []
    if not tensors or not all(is_tensor(t) for t in tensors):
        return None

    def rev(t):
        return t.detach().reshape(-1).flip(0).reshape(t.shape).clone() if t.numel() else t.detach().clone()
    first = tree_map(lambda t: t.detach().clone(), x)
    second = tree_map(rev, x)
    stacked = tree_map(lambda t: torch.stack([t.detach(), rev(t)]), x)
    return first, second, stacked


def stack_results(r0, r1) -> list:
    import torch

    return [torch.stack([a, b]) for a, b in zip(leaves(r0), leaves(r1))]


# --------------------------------------------------------------------------------------------------
# autograd
# --------------------------------------------------------------------------------------------------

def differentiable(op, s: Sample):
    """(fn, inputs): the sample as a function of its tensors that require grad, returning the
    differentiable floating outputs (after the OpInfo's gradcheck_wrapper and output_process_fn_grad,
    which remove gauge freedoms such as eigenvector signs), and those tensors."""
    inputs = [t for t in tensors_of((s.input, s.args, s.kwargs)) if t.requires_grad]

    def fn(*ts):
        it = iter(ts)
        rebuilt = s.map(lambda t: next(it) if t.requires_grad else t)
        out = rebuilt.call(lambda *a, **k: op.gradcheck_wrapper(op.op, *a, **k))
        out = s.output_process_fn_grad(out)
        return tuple(t for t in leaves(out) if is_tensor(t) and _float_like(t) and t.requires_grad)
    return fn, inputs


def case_samples(op, device: str, case: Case, tier: str, *, where=None, requires_grad: bool = False) -> list:
    """The samples a law's test runs for ``case`` at ``tier`` (see :func:`samples`)."""
    return samples(op, device, case.dtype, n_samples(case.law, tier), requires_grad=requires_grad, tier=tier,
                   where=where)


def excluded_parametrization(devices) -> list:
    """One ``opinfo_excluded`` parameter per op that does not run on some selected device (the
    EXCLUDED table, device restrictions, no dtypes), so every such op is visible as a skipped test."""
    import pytest

    reason = unavailable_reason()
    if reason is not None:
        return [pytest.param(None, id="opinfo-unavailable", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(key(op), id=key(op)) for op in all_ops()
            if any(excluded_reason(op, d) is not None for d in devices)]
