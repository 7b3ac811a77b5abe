"""Number formatting shared by the comparison's verdict line and every renderer (plain strings; each
renderer escapes for its own format)."""
from __future__ import annotations


def pct(ratio, missing: str = "–") -> str:
    """A time ratio as a signed change: 1.123 -> '+12.3%'."""
    return missing if ratio is None else f"{(float(ratio) - 1) * 100:+.1f}%"


def num(x, spec: str = ".3g", missing: str = "–") -> str:
    """A number in ``spec``; values that are not numbers (e.g. 'inf' strings are numbers) as text."""
    if x is None:
        return missing
    try:
        return format(float(x), spec)
    except (TypeError, ValueError):
        return str(x)
