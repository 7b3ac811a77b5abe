"""Exact benchmark signals: instruction counts (the deterministic lane) and counters. No statistics.

* :func:`instructions`: where both records counted a case's instructions
  (:mod:`harness.bench.callgrind`), its relative change against the case's noise margin:
  ``margin = max(MIN_MARGIN, SPREAD_FACTOR * spread)``, ``spread`` the larger relative range of the
  repeated counts of either side. A change above the margin is a regression (or an improvement),
  whatever the threshold: instruction counts do not depend on the machine's load, so a 2% increase
  of executed work is a 2% increase, measured. The floor covers what repeats within one process
  cannot show (another process's address-space layout, allocator state); it was chosen from A/A runs
  in separate processes (docs/policy.md).
* :func:`counters`: each counter of :data:`harness.record.COUNTERS` both records hold, with its change;
  ``changed`` lists those that differ, ``ops`` the aten overloads whose call counts differ.
"""
from __future__ import annotations

from harness.record import COUNTERS

MIN_MARGIN = 0.01
SPREAD_FACTOR = 3.0
MAX_OPS = 8


def _counted(entry: dict | None) -> dict | None:
    ins = (entry or {}).get("instructions") or {}
    ok = ins.get("status") == "ok" and isinstance(ins.get("per_call"), (int, float)) and ins["per_call"] > 0
    return ins if ok else None


def instructions(base: dict | None, cand: dict | None) -> dict | None:
    """The instruction-count comparison of one case, or None when neither record counted it:
    ``{"baseline", "candidate", "ratio", "margin", "verdict", "reason"}`` (verdict None when only one
    side has counts)."""
    b, c = _counted(base), _counted(cand)
    if b is None and c is None:
        return None
    if b is None or c is None:
        side = "candidate" if b is None else "baseline"
        return {"baseline": (b or {}).get("per_call"), "candidate": (c or {}).get("per_call"), "ratio": None,
                "margin": None, "verdict": None, "reason": f"instructions counted only in the {side}"}
    ratio = c["per_call"] / b["per_call"]
    spread = max(float(b.get("spread") or 0.0), float(c.get("spread") or 0.0))
    margin = max(MIN_MARGIN, SPREAD_FACTOR * spread)
    if ratio > 1.0 + margin:
        verdict = "regression"
    elif ratio < 1.0 / (1.0 + margin):
        verdict = "improvement"
    else:
        verdict = "unchanged"
    reason = (f"instructions {(ratio - 1) * 100:+.2f}% ({b['per_call']:.6g} -> {c['per_call']:.6g} per call; "
              f"margin {margin:.2%})")
    return {"baseline": b["per_call"], "candidate": c["per_call"], "ratio": ratio, "margin": margin,
            "verdict": verdict, "reason": reason}


def counters(base: dict | None, cand: dict | None) -> dict | None:
    """Counter values of both sides and what changed, or None when the records share no counter."""
    cb, cc = (base or {}).get("counters") or {}, (cand or {}).get("counters") or {}
    values = {k.key: {"baseline": cb[k.key], "candidate": cc[k.key]} for k in COUNTERS
              if isinstance(cb.get(k.key), int) and isinstance(cc.get(k.key), int)}
    if not values:
        return None
    changed = [k for k, v in values.items() if v["baseline"] != v["candidate"]]
    ob, oc = cb.get("ops") or {}, cc.get("ops") or {}
    ops = sorted(({"op": op, "baseline": ob.get(op, 0), "candidate": oc.get(op, 0)}
                  for op in set(ob) | set(oc) if ob.get(op, 0) != oc.get(op, 0)),
                 key=lambda r: (-abs(r["candidate"] - r["baseline"]), r["op"]))
    return {"values": values, "changed": changed, "ops": ops[:MAX_OPS]}


def describe_counters(cnt: dict | None) -> str:
    """'dispatcher calls 4 -> 5, bytes allocated 4194304 -> 8388608' for what changed."""
    if not cnt or not cnt["changed"]:
        return ""
    titles = {k.key: k.title for k in COUNTERS}
    return ", ".join(f"{titles[k]} {cnt['values'][k]['baseline']} -> {cnt['values'][k]['candidate']}"
                     for k in cnt["changed"])
