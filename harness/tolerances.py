"""Tolerance tables: data, per op class and dtype.

A comparison passes when, for every element, ``|actual - expected| <= atol + rtol * |expected|``
(the rule of ``torch.testing.assert_close`` and ``numpy.isclose``). The *ratio* of the worst
element's error to its allowance is recorded for every check, so a run whose precision got
worse while still passing is visible in a comparison before anything fails.

Op classes say how much error an operation may accumulate relative to a float64 oracle:

``exact``        integers, bools, shapes, dtypes, indices, aliasing: no error at all.
``elementwise``  one rounding per element (``torch.testing`` defaults).
``reduction``    sums, means, norms, softmax over up to ~10^5 elements.
``matmul``       dot products, matmul, conv (inner dimension up to ~10^3).
``linalg``       decompositions and solves on well-conditioned inputs.
``gradient``     analytic gradients against closed forms or finite differences.
``nn``           a layer's forward against a float64 reference in plain tensor math.
``training``     parameters after several optimiser steps against a reference update rule.
``amp``          a low-precision (autocast) result against the float32 result.
``export``       an exported model (TorchScript, torch.export, ONNX Runtime) against eager.
``device``       an accelerator's result against the CPU result for the same inputs.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def as_dict(self) -> dict:
        return {"rtol": self.rtol, "atol": self.atol}


_T = Tolerance

# (rtol, atol) per dtype name. Complex dtypes use their component float's entry.
TABLE: dict[str, dict[str, Tolerance]] = {
    "exact": {},
    "elementwise": {
        "float16": _T(1e-3, 1e-5),
        "bfloat16": _T(1.6e-2, 1e-5),
        "float32": _T(1.3e-6, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
    "reduction": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        "float32": _T(1e-5, 1e-5),
        "float64": _T(1e-10, 1e-10),
    },
    "matmul": {
        "float16": _T(1e-2, 1e-2),
        "bfloat16": _T(5e-2, 5e-2),
        "float32": _T(1e-4, 1e-4),
        "float64": _T(1e-10, 1e-10),
    },
    "linalg": {
        "float16": _T(2e-2, 2e-2),
        "bfloat16": _T(8e-2, 8e-2),
        "float32": _T(1e-4, 1e-4),
        "float64": _T(1e-9, 1e-9),
    },
    "gradient": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        "float32": _T(1e-5, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
    "nn": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        "float32": _T(1e-4, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
    "training": {
        "float16": _T(2e-2, 2e-3),
        "bfloat16": _T(8e-2, 2e-2),
        "float32": _T(1e-4, 1e-5),
        "float64": _T(1e-7, 1e-9),
    },
    "amp": {
        "float16": _T(1e-2, 1e-2),
        "bfloat16": _T(4e-2, 4e-2),
        "float32": _T(1e-5, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
    "export": {
        "float16": _T(1e-2, 1e-3),
        "bfloat16": _T(5e-2, 1e-2),
        # Measured on CPU (torch 2.13, every lane incl. ONNX Runtime vs the float64 eager reference):
        # worst 2.3e-7 absolute, so this leaves ~10x headroom and still catches a 1e-5 drift.
        "float32": _T(2e-5, 2e-6),
        "float64": _T(1e-7, 1e-7),
    },
    "device": {
        "float16": _T(1e-3, 1e-3),
        "bfloat16": _T(1.6e-2, 1e-2),
        "float32": _T(1e-5, 1e-5),
        "float64": _T(1e-7, 1e-7),
    },
}

OP_CLASSES = tuple(TABLE)

_COMPLEX_PART = {"complex32": "float16", "complex64": "float32", "complex128": "float64"}
EXACT = _T(0.0, 0.0)


def dtype_name(dtype) -> str:
    """'float32' for torch.float32, numpy's float32, or the string itself."""
    name = str(dtype)
    return name.rsplit(".", 1)[-1]


def lookup(op: str, dtype) -> Tolerance:
    """The tolerance for ``op`` at ``dtype``; integer and bool dtypes are always exact."""
    if op not in TABLE:
        raise KeyError(f"unknown op class {op!r}; known: {', '.join(OP_CLASSES)}")
    name = _COMPLEX_PART.get(dtype_name(dtype), dtype_name(dtype))
    if op == "exact":
        return EXACT
    row = TABLE[op]
    if name in row:
        return row[name]
    if name.startswith(("int", "uint", "bool")):
        return EXACT
    raise KeyError(f"no tolerance for op class {op!r} at dtype {name!r}")
