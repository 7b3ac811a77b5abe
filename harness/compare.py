"""Compare a candidate run record with a baseline, apply the gate policy, decide.

:func:`compare` returns one plain, JSON-ready dict (the *comparison*) that the report model
shows and the gate decides on:

* ``tests``: every test whose outcome is worth a line, with its change: ``new_failure``
  (passing or absent before, failing now), ``fixed``, ``still_failing``, ``newly_skipped``,
  ``unskipped``, ``appeared``, ``vanished``, ``expected`` / ``improved`` (expectation manifest);
* ``drift``: tests whose worst error/allowance ratio grew markedly although they may still pass;
* ``benchmarks``: rows of :func:`harness.bench.compare.compare_benchmarks`, each with the policy
  rule that set its threshold and whether it gates;
* ``environment``: both fingerprints side by side, differences marked;
* ``gate``: verdict (PASS/FAIL), blocking reasons, warnings, and the one-line summary.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness import numfmt
from harness.manifest import EXPECTED, IMPROVED, SKIPPED, evaluate
from harness.policy import Policy, default as default_policy

FAILING = ("failed", "error", "xpassed")
PASSING = ("passed",)
NOT_RUN = ("skipped", "xfailed")

DEFAULT_COMPARE_OUT = Path("reports") / "compare"
CHANGE_ORDER = ("new_failure", "improved", "fixed", "still_failing", "newly_skipped", "expected",
                "appeared", "vanished", "unskipped", "expected_skipped")


def _num(x):
    """A ratio as a float ('inf'/'nan' strings as floats); None stays None."""
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def classify(b: str | None, c: str | None) -> str | None:
    """The change between a baseline status ``b`` and candidate status ``c`` (None: absent)."""
    if c is None:
        return "vanished"
    if b is None:
        return "appeared"
    if c in FAILING:
        return "still_failing" if b in FAILING else "new_failure"
    if b in FAILING:
        return "fixed" if c in PASSING else "newly_skipped"
    if b in PASSING and c in NOT_RUN:
        return "newly_skipped"
    if b in NOT_RUN and c in PASSING:
        return "unskipped"
    return None


def test_changes(baseline: dict, candidate: dict, policy: Policy, manifest) -> list[dict]:
    base = {t["nodeid"]: t for t in baseline.get("tests", [])}
    cand = {t["nodeid"]: t for t in candidate.get("tests", [])}
    rows = []
    for nodeid in list(cand) + [n for n in base if n not in cand]:
        b, c = base.get(nodeid), cand.get(nodeid)
        t = c or b
        bs, cs = (b or {}).get("status"), (c or {}).get("status")
        change = classify(bs, cs)
        exp = manifest.of(nodeid) if c is not None else None
        expectation = None
        if exp is not None:
            kind, entry = exp
            expectation = {"reason": entry.reason, "entry": entry.describe(), "issue": entry.issue}
            change = {EXPECTED: "expected", IMPROVED: "improved", SKIPPED: "expected_skipped"}[kind]
        new_test = b is None
        if change == "appeared" and cs in FAILING:
            change = "new_failure"  # a new test that fails: the candidate fails it, whatever the baseline
        if change is None:
            continue
        message = (c or {}).get("message") if c else None
        rows.append({"nodeid": nodeid, "section": t.get("section") or "-", "device": t.get("device"),
                     "dtype": t.get("dtype"), "baseline": bs, "candidate": cs, "change": change,
                     "new_test": new_test, "mode": policy.section_mode(t.get("section")),
                     "message": (message or "")[:2000], "expectation": expectation})
    rows.sort(key=lambda r: (CHANGE_ORDER.index(r["change"]), r["section"], r["nodeid"]))
    return rows


def precision_drift(baseline: dict, candidate: dict, policy: Policy) -> list[dict]:
    """Tests whose recorded worst error/allowance ratio grew by ``growth_factor`` or more and is
    above ``min_ratio`` now: the headroom shrank even if the test still passes."""
    base = {t["nodeid"]: t for t in baseline.get("tests", [])}
    rows = []
    for t in candidate.get("tests", []):
        b = base.get(t["nodeid"])
        if b is None:
            continue
        rc = _num((t.get("checks") or {}).get("worst_ratio"))
        rb = _num((b.get("checks") or {}).get("worst_ratio"))
        if rc is None or rb is None or rc != rc:
            continue
        growth = float("inf") if rb <= 0 or rb != rb else rc / rb
        flagged = rc > policy.drift_min_ratio and growth >= policy.drift_factor * (1 - 1e-9)  # 0.3/0.1 < 3.0
        if flagged:
            rows.append({"nodeid": t["nodeid"], "section": t.get("section") or "-", "device": t.get("device"),
                         "dtype": t.get("dtype"), "baseline_ratio": rb, "candidate_ratio": rc,
                         "growth": growth, "status": t["status"], "failing": rc > 1})
    # still-passing tests first: their drift is the news (failing ones are reported as failures)
    rows.sort(key=lambda r: (r["failing"] or r["status"] in FAILING, -r["candidate_ratio"], r["nodeid"]))
    return rows


# --------------------------------------------------------------------------------------------
# benchmarks
# --------------------------------------------------------------------------------------------

def _median(xs):
    s = sorted(xs)
    n = len(s)
    return None if n == 0 else (s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2]))


def fallback_compare(baseline: dict, candidate: dict, *, alpha=0.01, threshold=0.05, noise=None) -> list[dict]:
    """A deliberately simple stand-in for :func:`harness.bench.compare.compare_benchmarks`
    (used only when that module is absent): ratio of medians with a bootstrap percentile
    interval; a regression when the whole interval lies beyond 1 + threshold. No p-values."""
    import random

    def idx(rec):
        return {b["name"]: b for b in rec.get("benchmarks", [])}

    bi, ci = idx(baseline), idx(candidate)
    rng = random.Random(20240611)
    rows = []
    for name in list(ci) + [n for n in bi if n not in ci]:
        b, c = bi.get(name), ci.get(name)
        ref = c or b
        row = {"name": name, "group": ref.get("group"), "section": ref.get("section"), "device": ref.get("device"),
               "n_baseline": len(b["samples"]) if b else 0, "n_candidate": len(c["samples"]) if c else 0,
               "median_baseline": _median(b["samples"]) if b else None,
               "median_candidate": _median(c["samples"]) if c else None,
               "ratio": None, "ci_low": None, "ci_high": None, "p_value": None, "q_value": None,
               "gating": True, "mde": None, "roofline_fraction_baseline": None,
               "roofline_fraction_candidate": None, "reason": "fallback statistics (harness.bench.compare missing)"}
        if b is None or not b["samples"]:
            row["verdict"], row["gating"] = "missing_in_baseline", False
        elif c is None or not c["samples"]:
            row["verdict"], row["gating"] = "missing_in_candidate", False
        else:
            row["ratio"] = row["median_candidate"] / row["median_baseline"]
            bs, cs = b["samples"], c["samples"]
            if len(bs) < 3 or len(cs) < 3:
                row["verdict"], row["gating"] = "noisy", False
            else:
                boots = sorted(_median(rng.choices(cs, k=len(cs))) / _median(rng.choices(bs, k=len(bs)))
                               for _ in range(400))
                lo, hi = boots[int(0.5 * alpha * 400)], boots[min(399, int((1 - 0.5 * alpha) * 400))]
                row["ci_low"], row["ci_high"] = lo, hi
                if lo > 1 + threshold:
                    row["verdict"] = "regression"
                elif hi < 1 / (1 + threshold):
                    row["verdict"] = "improvement"
                elif hi - lo > 4 * threshold:
                    row["verdict"] = "noisy"
                else:
                    row["verdict"] = "unchanged"
        rows.append(row)
    return rows


def load_noise(path) -> dict:
    """A benchmark noise document (``torchconform bench --calibrate`` output)."""
    try:
        from harness.bench.compare import load_noise as _load
    except ImportError:
        from harness.errors import HarnessError

        raise HarnessError(f"{path}: reading a noise file needs harness.bench.compare, which is missing") from None
    return _load(path)


def _compare_impl():
    try:
        from harness.bench.compare import compare_benchmarks
    except ImportError:
        return fallback_compare, "fallback"
    return compare_benchmarks, "harness.bench.compare"


HARDWARE_KEYS = ("cpu_model", "gpus")


def mark_mixed(merged: dict, records: list[dict]) -> list[str]:
    """After ``merge --allow-mixed``: record in the merged fingerprint (``mixed``: key -> the
    distinct values) which comparability keys differed between the merged records, so a later
    comparison knows its benchmarks came from several machines. Returns the differing keys."""
    from harness.fingerprint import comparability_key

    keys = [comparability_key(r.get("fingerprint") or {}) for r in records]
    mixed = {}
    for k in keys[0] if keys else {}:
        values = []
        for kk in keys:
            if kk[k] not in values:
                values.append(kk[k])
        if len(values) > 1:
            mixed[k] = values
    if mixed:
        merged["fingerprint"] = dict(merged.get("fingerprint") or {}, mixed=mixed)
    return list(mixed)


def hardware_differences(baseline: dict, candidate: dict) -> list[str]:
    """Hardware keys (CPU model, GPUs) that differ between the runs, or within a run merged from
    several machines; benchmark ratios across them are advisory."""
    from harness.fingerprint import comparability_key

    fb, fc = baseline.get("fingerprint") or {}, candidate.get("fingerprint") or {}
    kb, kc = comparability_key(fb), comparability_key(fc)
    out = [k for k in HARDWARE_KEYS if kb.get(k) != kc.get(k)]
    for side, fp in (("baseline", fb), ("candidate", fc)):
        out += [f"{k} within the {side}" for k in HARDWARE_KEYS if k in (fp.get("mixed") or {})]
    return out


def benchmark_rows(baseline: dict, candidate: dict, policy: Policy, *, noise: dict | None = None) -> tuple[list[dict], str]:
    """One row per benchmark. Each policy rule's benchmarks are decided with the rule's threshold
    and alpha; the statistics always see every benchmark, so the false-discovery correction
    (q-values) runs across the whole suite. A regression blocks only when the statistics say the
    benchmark can gate (its noise allows detecting ``threshold``), its rule is 'gating', and (if
    the policy asks) both runs used the same hardware. ``row['gating']`` is that combined answer."""
    if not baseline.get("benchmarks") and not candidate.get("benchmarks"):
        return [], "none"
    fn, impl = _compare_impl()
    rules = [*policy.bench_rules, policy.bench_default]
    members: dict[int, set] = {}
    for rec in (candidate, baseline):
        for b in rec.get("benchmarks", []):
            if any(b["name"] in m for m in members.values()):
                continue
            members.setdefault(rules.index(policy.bench_rule(b)), set()).add(b["name"])
    hw_diff = hardware_differences(baseline, candidate) if policy.require_same_hardware else []
    rows = []
    for i, names in sorted(members.items()):
        rule = rules[i]
        kw = {"alpha": rule.alpha, "threshold": rule.threshold}
        if noise is not None:
            kw["noise"] = noise
        for row in fn(baseline, candidate, **kw):
            if row["name"] not in names:
                continue
            row = dict(row)
            row.update(rule=rule.pattern, threshold=rule.threshold, alpha=rule.alpha, mode=rule.mode)
            stat_gating = bool(row.get("gating"))
            row["gating"] = stat_gating and rule.gating and not hw_diff
            row["advisory_reason"] = None
            if stat_gating and not rule.gating:
                row["advisory_reason"] = f"advisory rule {rule.pattern}"
            elif stat_gating and hw_diff:
                row["advisory_reason"] = f"machines differ ({', '.join(hw_diff)})"
            elif not stat_gating and row.get("verdict") not in ("missing_in_baseline", "missing_in_candidate"):
                row["advisory_reason"] = "too noisy to gate at this threshold"
            rows.append(row)
    order = {"regression": 0, "missing_in_candidate": 1, "noisy": 2, "improvement": 3, "missing_in_baseline": 4,
             "unchanged": 5}
    rows.sort(key=lambda r: (order.get(r.get("verdict"), 9), not r["gating"], -(r.get("ratio") or 0), r["name"]))
    return rows, impl


def pct(x) -> str:
    """A time ratio as a signed change for verdict lines ('n/a' when unknown)."""
    return numfmt.pct(x, missing="n/a")


def describe_bench(row: dict) -> str:
    s = f"{row['name']} {pct(row.get('ratio'))}"
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        s += f" [CI {pct(row['ci_low'])}, {pct(row['ci_high'])}]"
    return s


# --------------------------------------------------------------------------------------------
# the decision
# --------------------------------------------------------------------------------------------

def _plural(n, word, plural=None):
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _sections(rows, limit=4):
    secs = sorted({r["section"] for r in rows})
    return ", ".join(secs[:limit]) + (f", +{len(secs) - limit} more" if len(secs) > limit else "")


def decide(cmp: dict, policy: Policy) -> dict:
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
        worst = max(gating_regs, key=lambda r: r.get("ratio") or 0)
        more = f" (worst of {len(gating_regs)})" if len(gating_regs) > 1 else ""
        reasons.append(f"{_plural(len(gating_regs), 'regression')}: {describe_bench(worst)}{more}")
    adv_regs = [r for r in regs if not r["gating"]]
    if adv_regs:
        warnings.append(f"{_plural(len(adv_regs), 'advisory regression')} "
                        f"(e.g. {describe_bench(max(adv_regs, key=lambda r: r.get('ratio') or 0))})")
    missing = [r for r in cmp["benchmarks"] if r.get("verdict") == "missing_in_candidate"]
    if missing:
        warnings.append(f"{_plural(len(missing), 'benchmark')} of the baseline not run by the candidate")
    cand = cmp["candidate"]
    if not cand["complete"]:
        msg = "candidate run is incomplete (interrupted or crashed)"
        (reasons if policy.fail_on_incomplete else warnings).append(msg)
    n_base = cmp["baseline"]["tests"]
    vanished = by["vanished"]
    if vanished:
        frac = len(vanished) / max(n_base, 1)
        msg = f"{len(vanished)} of {n_base} baseline tests vanished ({frac:.1%})"
        if frac > policy.max_vanished_fraction:
            reasons.append(msg + f" > {policy.max_vanished_fraction:.0%} allowed: a shard or module missing?")
        else:
            warnings.append(msg)
    if by["newly_skipped"]:
        warnings.append(f"{_plural(len(by['newly_skipped']), 'test')} newly skipped")
    drift = [r for r in cmp["drift"] if not r["failing"] and r["status"] not in FAILING]
    if drift:
        msg = (f"{_plural(len(drift), 'passing test')} lost precision headroom "
               f"(error/allowance grew ≥{policy.drift_factor:g}×, e.g. {drift[0]['nodeid']} "
               f"{drift[0]['baseline_ratio']:.3g} → {drift[0]['candidate_ratio']:.3g})")
        (reasons if policy.drift_blocks else warnings).append(msg)
    stale = cmp["manifest"]["stale"]
    if stale:
        warnings.append(f"{_plural(len(stale), 'stale manifest entry', 'stale manifest entries')} "
                        f"(applies to this build, matches no test of the run: {stale[0]['description']}"
                        + (f" and {len(stale) - 1} more" if len(stale) > 1 else "") + ")")
    if cmp["hardware_differences"]:
        warnings.append(f"runs used different hardware ({', '.join(cmp['hardware_differences'])}): "
                        "benchmark ratios are advisory")
    verdict = "FAIL" if reasons else "PASS"
    if reasons:
        line = "GATE FAIL: " + "; ".join(reasons)
    else:
        nb = len(cmp["benchmarks"])
        line = (f"GATE PASS: {cand['tests']} tests, 0 new failures in blocking sections"
                + (f", {len(by['expected'])} expected" if by["expected"] else "")
                + (f"; {nb} benchmarks, 0 gating regressions" if nb else "")
                + (f"; {_plural(len(warnings), 'warning')}" if warnings else ""))
    return {"verdict": verdict, "reasons": reasons, "warnings": warnings, "line": line.replace("\n", " ")}


def _side(rec: dict) -> dict:
    fp = rec.get("fingerprint") or {}
    return {"run_id": rec.get("run_id"), "label": rec.get("label"), "created": rec.get("created"),
            "complete": bool(rec.get("complete")), "tier": rec.get("tier"), "devices": rec.get("devices") or [],
            "torch": (fp.get("torch") or {}).get("version"), "hostname": fp.get("hostname"),
            "tests": len(rec.get("tests", [])), "benchmarks": len(rec.get("benchmarks", []))}


def compare(baseline: dict, candidate: dict, policy: Policy | None = None, *, noise: dict | None = None) -> dict:
    """The comparison of ``candidate`` against ``baseline`` under ``policy`` (see module doc)."""
    from harness.report.model import environment_rows

    policy = policy or default_policy()
    manifest = evaluate(policy.expectations, candidate)
    cmp = {
        "baseline": _side(baseline),
        "candidate": _side(candidate),
        "policy": policy.as_dict(),
        "manifest": manifest.as_dict(),
        "tests": test_changes(baseline, candidate, policy, manifest),
        "drift": precision_drift(baseline, candidate, policy),
        "hardware_differences": hardware_differences(baseline, candidate),
        "environment": environment_rows(candidate.get("fingerprint") or {}, baseline.get("fingerprint") or {}),
    }
    if noise is None and policy.bench_noise:
        noise = load_noise(policy.bench_noise)
    cmp["benchmarks"], cmp["bench_stats"] = benchmark_rows(baseline, candidate, policy, noise=noise)
    cmp["counts"] = dict(Counter(r["change"] for r in cmp["tests"]))
    cmp["gate"] = decide(cmp, policy)
    return cmp


# --------------------------------------------------------------------------------------------
# command-line glue (``torchconform compare`` / ``gate`` / ``report``)
# --------------------------------------------------------------------------------------------

def load_history(folder) -> list[dict]:
    """Every valid run record under ``folder`` (``*.json`` and ``*/record.json``, recursively),
    oldest first; files that are not run records are skipped with a note on stderr."""
    import sys

    from harness import record
    from harness.errors import HarnessError, RecordError

    root = Path(folder)
    if not root.is_dir():
        raise HarnessError(f"{root}: --history needs a folder of run records")
    recs, seen = [], set()
    for path in sorted(root.rglob("*.json")):
        try:
            rec = record.load(path)
        except RecordError as exc:
            print(f"torchconform: note: skipping {exc}", file=sys.stderr)
            continue
        if rec["run_id"] not in seen:
            seen.add(rec["run_id"])
            recs.append(rec)
    return sorted(recs, key=lambda r: r.get("created") or "")


def run_command(args, *, gate: bool) -> int:
    """``compare`` (reports; with ``--gate`` also the exit status) and ``gate`` (one line on
    stdout, exit 0 pass / 1 fail; reports only with ``--out``)."""
    import sys

    from harness import policy as _policy, record

    base = record.load(args.baseline)
    cand = record.load(args.candidate)
    pol = _policy.load(args.policy, manifests=args.manifest or ())
    noise = load_noise(args.noise) if getattr(args, "noise", None) else None
    cmp = compare(base, cand, pol, noise=noise)
    history = load_history(args.history) if getattr(args, "history", None) else None
    if history is not None:
        ids = {r["run_id"] for r in history}
        history = history + [r for r in (base, cand) if r["run_id"] not in ids]
    out = getattr(args, "out", None)
    if out:
        from harness import report

        paths = report.write_all(cand, out, baseline=base, policy=pol, comparison=cmp, history=history,
                                 plots=not getattr(args, "no_plots", False))
        stream = sys.stderr if gate else sys.stdout
        for kind, p in paths.items():
            print(f"torchconform: {kind} report {p}", file=stream)
    print(cmp["gate"]["line"], flush=True)
    if gate or getattr(args, "gate", False):
        return 0 if cmp["gate"]["verdict"] == "PASS" else 1
    return 1 if regressed(cmp) else 0


def regressed(cmp: dict) -> bool:
    """``compare``'s own exit rule (without --gate): 1 when the candidate regressed at all, i.e. a
    benchmark judged a regression or a test that newly fails, whatever the policy says blocks."""
    return (any(r.get("verdict") == "regression" for r in cmp["benchmarks"])
            or cmp["counts"].get("new_failure", 0) > 0)


def add_arguments(parser, *, gate: bool) -> None:
    parser.add_argument("baseline", metavar="BASELINE", help="the baseline run record (record.json or its folder)")
    parser.add_argument("candidate", metavar="CANDIDATE", help="the candidate run record")
    parser.add_argument("--policy", default=None, metavar="FILE",
                        help="gate policy (TOML, see docs/policy.md; default $TORCHCONFORM_POLICY, else the "
                             "checkout's policy/torchconform-policy.toml, else built-in defaults)")
    parser.add_argument("--manifest", action="append", metavar="FILE",
                        help="extra expectation manifest ([[expected_failure]] tables); repeatable")
    parser.add_argument("--noise", default=None, metavar="FILE",
                        help="benchmark noise file from `torchconform bench --calibrate` (overrides the policy's)")
    if gate:
        parser.add_argument("--out", default=None, metavar="DIR",
                            help="also write index.html, summary.md, junit.xml and comparison.json here")
    else:
        parser.add_argument("--out", default=str(DEFAULT_COMPARE_OUT), metavar="DIR",
                            help="report folder (default reports/compare)")
        parser.add_argument("--history", default=None, metavar="DIR",
                            help="folder of earlier run records: adds per-benchmark history plots")
        parser.add_argument("--gate", action="store_true",
                            help="exit 1 when the gate fails (as `torchconform gate` does)")
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots (faster)")
