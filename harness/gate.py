"""The gate: the one place where a comparison plus a policy becomes PASS or FAIL, its reasons and an
exit status. ``torchconform compare``, ``gate`` and ``bench pair`` all decide here.

* :func:`judge_benchmarks`: whether each benchmark row may block (``gating``): its verdict is
  statistically detectable at the rule's threshold (for a wall-time row of two sequential records:
  with between-run evidence, see :func:`no_between_run_evidence`), the rule is ``gating``, and (if
  the policy asks) both runs used the same hardware; otherwise ``advisory_reason`` says why it only
  advises.
* :func:`decide`: the blocking reasons, the warnings and the one-line summary (``GATE PASS: ...`` /
  ``GATE FAIL: ...``) under the policy's ``[gate]``, ``[sections]`` and ``[precision]`` settings.
* :func:`evaluate`: :func:`harness.compare.compare` followed by both: the full comparison, ``gate`` included.
* :func:`exit_status`: ``gate`` (and ``compare --gate``) exit 1 on FAIL; plain ``compare`` exits 1 when
  the candidate regressed at all (:func:`regressed`), whatever the policy says blocks; both exit
  :data:`EXIT_NOTHING_COMPARED` (3) when nothing was compared: an empty record (no tests, no measured
  benchmark) on either side, or two records with no test and no benchmark in common. An empty record
  never passes.

A benchmark row is decided by its ``signal`` (:mod:`harness.bench.significance`): an instruction-count
change beyond its noise margin is exact and may gate; a wall-time verdict may gate only where it is
``detectable`` (between-run evidence says the threshold is above its minimum detectable effect).
"""
from __future__ import annotations

from harness import numfmt
from harness.compare import BENCH_ORDER, compare
from harness.policy import Policy, default as default_policy
from harness.record import CHANGE_ORDER, COUNTERS, FAILING

EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_NOTHING_COMPARED = 0, 1, 2, 3

def pct(x) -> str:
    """A time ratio as a signed change for verdict lines ('n/a' when unknown)."""
    return numfmt.pct(x, missing="n/a")


def describe_bench(row: dict) -> str:
    ins = row.get("instructions") or {}
    if row.get("signal") == "instructions" and ins.get("ratio") is not None:
        return f"{row['name']} instructions {numfmt.pct(ins['ratio'], missing='n/a')} (margin {ins['margin']:.1%})"
    s = f"{row['name']} {pct(row.get('ratio'))}"
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        s += f" [CI {pct(row['ci_low'])}, {pct(row['ci_high'])}]"
    return s


NO_EVIDENCE = "no between-run evidence"


def no_between_run_evidence(row: dict) -> bool:
    """A wall-time row of two sequential records with nothing that shows how much the machine moves
    between runs (no rounds, history or noise file): its within-run statistics are not enough to gate."""
    br = row.get("between_run")
    return row.get("signal") == "wall" and isinstance(br, dict) and br.get("sigma_log") is None


def judge_benchmarks(cmp: dict, policy: Policy) -> list[dict]:
    """Fill in each benchmark row's ``gating`` and ``advisory_reason``; rows in report order
    (regressions first, blocking ones before advisory ones, the largest change first)."""
    hw_diff = cmp["hardware_differences"] if policy.require_same_hardware else []
    for row in cmp["benchmarks"]:
        if no_between_run_evidence(row):
            row["detectable"] = False
            row["undetectable"] = NO_EVIDENCE
        detectable = row["detectable"]
        rule_gates = row["mode"] == "gating"
        row["gating"] = detectable and rule_gates and not hw_diff
        row["advisory_reason"] = None
        if detectable and not rule_gates:
            row["advisory_reason"] = f"advisory rule {row['rule']}"
        elif detectable and hw_diff:
            row["advisory_reason"] = f"machines differ ({', '.join(hw_diff)})"
        elif not detectable and row.get("verdict") not in ("missing_in_baseline", "missing_in_candidate"):
            row["advisory_reason"] = row.get("undetectable") or "too noisy to gate at this threshold"
    cmp["benchmarks"].sort(key=lambda r: (BENCH_ORDER.get(r.get("verdict"), 9), not r["gating"],
                                          -(r.get("ratio") or 0), r["name"]))
    return cmp["benchmarks"]


def _deciding_ratio(row: dict) -> float:
    """The ratio of the signal that decided the row (instructions or wall time)."""
    ins = row.get("instructions") or {}
    if row.get("signal") == "instructions" and ins.get("ratio") is not None:
        return ins["ratio"]
    return row.get("ratio") or 0


def _plural(n, word, plural=None):
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _sections(rows, limit=4):
    secs = sorted({r["section"] for r in rows})
    return ", ".join(secs[:limit]) + (f", +{len(secs) - limit} more" if len(secs) > limit else "")


def nothing_compared(cmp: dict) -> str | None:
    """Why the two records cannot be compared at all (an empty side, nothing in common), or None."""
    got = cmp.get("compared")
    if not got:
        return None
    for side in ("candidate", "baseline"):
        if not got[side]["tests"] and not got[side]["benchmarks"]:
            return f"nothing was compared: the {side} record is empty (no tests, no measured benchmark)"
    if not got["tests"] and not got["benchmarks"]:
        return "nothing was compared: no test or benchmark is in both records"
    return None


def _bench_warnings(rows: list[dict], warnings: list) -> None:
    changed = [r for r in rows if (r.get("counters") or {}).get("changed")]
    if changed:
        titles = {k.key: k.title for k in COUNTERS}
        r = changed[0]
        k = r["counters"]["changed"][0]
        v = r["counters"]["values"][k]
        warnings.append(f"{_plural(len(changed), 'benchmark')} changed exact counters (e.g. {r['name']}: "
                        f"{titles[k]} {v['baseline']} → {v['candidate']})")
    blind = [r for r in rows if r.get("undetectable") == NO_EVIDENCE]
    if blind:
        warnings.append(f"{_plural(len(blind), 'benchmark')} only advise: no between-run evidence (run bench "
                        "with --rounds >= 3, or pass --history / --noise)")


def decide(cmp: dict, policy: Policy) -> dict:
    """``{"verdict": "PASS"|"FAIL", "reasons": [...], "warnings": [...], "line": "GATE ...: ...",
    "nothing_compared": bool}``."""
    tests = cmp["tests"]
    by = {k: [r for r in tests if r["change"] == k] for k in CHANGE_ORDER}
    reasons, warnings = [], []
    new_block = [r for r in by["new_failure"] if r["mode"] == "blocking"]
    new_adv = [r for r in by["new_failure"] if r["mode"] != "blocking"]
    if new_block:
        reasons.append(f"{_plural(len(new_block), 'new failure')} in blocking sections ({_sections(new_block)})")
    if new_adv:
        warnings.append(f"{_plural(len(new_adv), 'new failure')} in advisory sections ({_sections(new_adv)})")
    if by["improved"]:
        msg = (f"{_plural(len(by['improved']), 'unexpected pass', 'unexpected passes')} of expected failures "
               f"(update the manifest: {by['improved'][0]['nodeid']}"
               + (f" and {len(by['improved']) - 1} more" if len(by["improved"]) > 1 else "") + ")")
        (reasons if policy.fail_on_improved else warnings).append(msg)
    still = by["still_failing"]
    still_block = [r for r in still if r["mode"] == "blocking"]
    if still_block and policy.persistent_failures == "block":
        reasons.append(f"{_plural(len(still_block), 'failure')} also failing in the baseline, not in the manifest "
                       f"({_sections(still_block)})")
    elif still:
        warnings.append(f"{_plural(len(still), 'test')} failing in both runs and not in the manifest")
    regs = [r for r in cmp["benchmarks"] if r.get("verdict") == "regression"]
    gating_regs = [r for r in regs if r["gating"]]
    if gating_regs:
        worst = max(gating_regs, key=_deciding_ratio)
        more = f" (worst of {len(gating_regs)})" if len(gating_regs) > 1 else ""
        by_ins = sum(r.get("signal") == "instructions" for r in gating_regs)
        how = f" ({by_ins} by instruction count)" if by_ins and by_ins < len(gating_regs) else ""
        reasons.append(f"{_plural(len(gating_regs), 'regression')}{how}: {describe_bench(worst)}{more}")
    adv_regs = [r for r in regs if not r["gating"]]
    if adv_regs:
        warnings.append(f"{_plural(len(adv_regs), 'advisory regression')} "
                        f"(e.g. {describe_bench(max(adv_regs, key=_deciding_ratio))})")
    _bench_warnings(cmp["benchmarks"], warnings)
    missing = [r for r in cmp["benchmarks"] if r.get("verdict") == "missing_in_candidate"]
    if missing:
        warnings.append(f"{_plural(len(missing), 'benchmark')} of the baseline not run by the candidate")
    cand = cmp["candidate"]
    if not cand["complete"]:
        msg = "candidate run is incomplete (interrupted or crashed)"
        (reasons if policy.fail_on_incomplete else warnings).append(msg)
    _lost_tests(cmp["baseline"]["tests"], by, policy, reasons, warnings)
    drift = [r for r in cmp["drift"] if not r["failing"] and r["status"] not in FAILING]
    if drift:
        msg = (f"{_plural(len(drift), 'passing test')} lost precision headroom "
               f"(error/allowance grew ≥{policy.drift_factor:g}×, e.g. {drift[0]['nodeid']} "
               f"{drift[0]['baseline_ratio']:.3g} → {drift[0]['candidate_ratio']:.3g})")
        (reasons if policy.drift_blocks else warnings).append(msg)
    man = cmp["manifest"]
    stale = man["stale"]
    if stale:
        warnings.append(f"{_plural(len(stale), 'stale manifest entry', 'stale manifest entries')} "
                        f"(applies to this build, matches no test of the run: {stale[0]['description']}"
                        + (f" and {len(stale) - 1} more" if len(stale) > 1 else "") + ")")
    if man.get("policy_differs"):
        warnings.append(f"the run applied the expectation manifest of {man['source']}; this policy's "
                        f"({policy.source}) differs and was not applied again")
    if cmp["hardware_differences"]:
        warnings.append(f"runs used different hardware ({', '.join(cmp['hardware_differences'])}): "
                        "benchmark ratios are advisory")
    empty = nothing_compared(cmp)
    if empty:  # last, so that the line leads with what the candidate itself shows
        reasons.append(empty)
    verdict = "FAIL" if reasons else "PASS"
    if reasons:
        line = "GATE FAIL: " + "; ".join(reasons)
    else:
        nb = len(cmp["benchmarks"])
        line = (f"GATE PASS: {cand['tests']} tests, 0 new failures in blocking sections"
                + (f", {len(by['expected'])} expected" if by["expected"] else "")
                + (f"; {nb} benchmarks, 0 gating regressions" if nb else "")
                + (f"; {_plural(len(warnings), 'warning')}" if warnings else ""))
    return {"verdict": verdict, "reasons": reasons, "warnings": warnings, "line": line.replace("\n", " "),
            "nothing_compared": bool(empty)}


def _lost_tests(n_base: int, by: dict, policy: Policy, reasons: list, warnings: list) -> None:
    """Baseline tests the candidate no longer runs: vanished, or newly skipped. ``vanished_or_skipped
    = "block"`` (the default) fails the gate on any; ``"advise"`` warns, except when more than
    ``max_vanished_fraction`` of the baseline vanished (a shard that never reported)."""
    block = policy.vanished_or_skipped == "block"
    vanished, skipped = by["vanished"], by["newly_skipped"]
    if vanished:
        frac = len(vanished) / max(n_base, 1)
        msg = f"{len(vanished)} of {n_base} baseline tests vanished ({frac:.1%})"
        if frac > policy.max_vanished_fraction:
            reasons.append(msg + f" > {policy.max_vanished_fraction:.0%} allowed: a shard or module missing?")
        elif block:
            reasons.append(msg + f" ({_sections(vanished)})")
        else:
            warnings.append(msg)
    if skipped:
        if block:
            reasons.append(f"{_plural(len(skipped), 'test')} newly skipped ({_sections(skipped)})")
        else:
            warnings.append(f"{_plural(len(skipped), 'test')} newly skipped")


def evaluate(baseline: dict, candidate: dict, policy: Policy | None = None, *, noise: dict | None = None,
             history: list[dict] | None = None) -> dict:
    """The comparison of ``candidate`` against ``baseline`` with the gate's decision (``gate``)."""
    policy = policy or default_policy()
    cmp = compare(baseline, candidate, policy, noise=noise, history=history)
    judge_benchmarks(cmp, policy)
    cmp["gate"] = decide(cmp, policy)
    return cmp


def regressed(cmp: dict) -> bool:
    """``compare``'s own exit rule (without --gate): the candidate regressed at all, i.e. a benchmark
    judged a regression or a test that newly fails, whatever the policy says blocks."""
    return (any(r.get("verdict") == "regression" for r in cmp["benchmarks"])
            or cmp["counts"].get("new_failure", 0) > 0)


def exit_status(cmp: dict, *, gate: bool) -> int:
    """0 or 1: the gate's verdict (``gate``), or whether the candidate regressed (plain ``compare``);
    3 when nothing was compared (either way)."""
    if cmp["gate"].get("nothing_compared"):
        return EXIT_NOTHING_COMPARED
    if gate:
        return EXIT_PASS if cmp["gate"]["verdict"] == "PASS" else EXIT_FAIL
    return EXIT_FAIL if regressed(cmp) else EXIT_PASS
