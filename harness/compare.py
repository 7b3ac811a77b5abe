"""What changed between a baseline and a candidate run record: tests, precision drift, benchmarks.

:func:`compare` returns one plain, JSON-ready dict (the *comparison*) that :mod:`harness.gate` decides
on and the reports show:

* ``tests``: every test whose outcome is worth a line, with its change (:data:`harness.record.CHANGE_KINDS`):
  ``new_failure`` (passing or absent before, failing now), ``fixed``, ``still_failing``,
  ``newly_skipped``, ``unskipped``, ``appeared``, ``vanished``, ``expected`` / ``improved`` /
  ``expected_skipped`` (expectation manifest);
* ``manifest``: the expectations behind those, as the run applied them (its record's ``manifest``) or,
  for a record that carries none, as the policy's entries match it;
* ``drift``: tests whose worst error/allowance ratio grew markedly although they may still pass;
* ``benchmarks``: one row per benchmark from :func:`harness.bench.significance.compare_benchmarks`,
  judged with the threshold and alpha of the policy rule it falls under (both signals: instruction
  counts where both records have them, wall time with its between-run evidence, from ``history`` too;
  exact counters); ``gating`` and ``advisory_reason`` are filled in by the gate;
* ``compared``: how many tests and benchmarks both records hold, and whether either record is empty
  (the gate refuses to pass when nothing was compared);
* ``environment``: both fingerprints side by side, differences marked; ``hardware_differences``;
* ``sections``: per-section outcome counts of the baseline, beside the candidate's.
* ``coverage`` (only when the candidate record carries a coverage ledger, ``torchconform run --coverage``):
  :func:`harness.coverage.diff` of the baseline's ledger (None where it has none) and the candidate's:
  per kind the candidate's ``untested`` (in the candidate torch, used by no checked test) and, with a
  baseline ledger, ``new_untested`` (of those, new in the candidate torch), ``lost``, ``gained``,
  ``removed``. It is advisory: :mod:`harness.gate` never reads it and no policy key makes it block.

Nothing here decides PASS or FAIL: that is :mod:`harness.gate`.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from harness import coverage, record
from harness.bench import significance
from harness.fingerprint import hardware_differences
from harness.manifest import EXPECTED, IMPROVED, SKIPPED, evaluate, from_record
from harness.policy import Policy, default as default_policy
from harness.record import CHANGE_ORDER, FAILING, NOT_RUN, PASSING

STATISTICS = significance.__name__
BENCH_ORDER = {"regression": 0, "missing_in_candidate": 1, "noisy": 2, "improvement": 3, "missing_in_baseline": 4,
               "unchanged": 5}


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
        # a flaky expectation's test that passed (recorded as xpassed): an ordinary pass
        change = classify(bs, "passed" if nodeid in manifest.flaky_passes else cs)
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


def benchmark_rows(baseline: dict, candidate: dict, policy: Policy, *, noise: dict | None = None,
                   history: list[dict] | None = None) -> tuple[list[dict], str]:
    """One row per benchmark. Each policy rule's benchmarks are judged with the rule's threshold and
    alpha; the statistics always see every benchmark, so the false-discovery correction (q-values)
    runs across the whole suite. ``detectable`` is the statistics' answer (the benchmark's noise allows
    detecting ``threshold``); ``gating`` and ``advisory_reason`` are left for the gate (None)."""
    if not baseline.get("benchmarks") and not candidate.get("benchmarks"):
        return [], "none"
    rules = [*policy.bench_rules, policy.bench_default]
    members: dict[int, set] = {}
    for rec in (candidate, baseline):
        for b in rec.get("benchmarks", []):
            if any(b["name"] in m for m in members.values()):
                continue
            members.setdefault(rules.index(policy.bench_rule(b)), set()).add(b["name"])
    rows = []
    for i, names in sorted(members.items()):
        rule = rules[i]
        for srow in significance.compare_benchmarks(baseline, candidate, alpha=rule.alpha, threshold=rule.threshold,
                                                    noise=noise, **({"history": history} if history else {})):
            if srow["name"] not in names:
                continue
            row = {("gating" if k == "detectable" else k): (None if k == "detectable" else v) for k, v in srow.items()}
            row.update(rule=rule.pattern, threshold=rule.threshold, alpha=rule.alpha, mode=rule.mode,
                       detectable=bool(srow["detectable"]), advisory_reason=None)
            rows.append(row)
    rows.sort(key=lambda r: (BENCH_ORDER.get(r.get("verdict"), 9), -(r.get("ratio") or 0), r["name"]))
    return rows, STATISTICS


def _side(rec: dict) -> dict:
    fp = rec.get("fingerprint") or {}
    return {"run_id": rec.get("run_id"), "label": rec.get("label"), "created": rec.get("created"),
            "complete": bool(rec.get("complete")), "tier": rec.get("tier"), "devices": rec.get("devices") or [],
            "torch": (fp.get("torch") or {}).get("version"), "hostname": fp.get("hostname"),
            "tests": len(rec.get("tests", [])), "benchmarks": len(rec.get("benchmarks", []))}


def _section_counts(tests: list[dict]) -> dict:
    out: dict[str, Counter] = defaultdict(Counter)
    for t in tests:
        out[t.get("section") or "-"][t["status"]] += 1
    return {s: {**{k: c.get(k, 0) for k in record.STATUSES}, "total": sum(c.values())} for s, c in sorted(out.items())}


def _manifest(candidate: dict, policy: Policy):
    """The expectations of the candidate: those its run applied, else the policy's matched now."""
    applied = from_record(candidate)
    if applied is None:
        return evaluate(policy.expectations, candidate), None
    def key(e):
        return {k: v for k, v in e.as_dict().items() if k != "source"}
    mine = evaluate(policy.expectations, {"fingerprint": candidate.get("fingerprint"), "tests": []}).active
    return applied, [key(e) for e in mine] != [key(e) for e in applied.active]


def _measured(rec: dict) -> int:
    return sum(1 for b in rec.get("benchmarks", []) if b.get("samples"))


def compared(baseline: dict, candidate: dict) -> dict:
    """What the two records have in common: tests and measured benchmarks in both, and each side's size."""
    tb = {t["nodeid"] for t in baseline.get("tests", [])}
    mb = {b["name"] for b in baseline.get("benchmarks", []) if b.get("samples")}
    return {"tests": sum(t["nodeid"] in tb for t in candidate.get("tests", [])),
            "benchmarks": sum(b["name"] in mb for b in candidate.get("benchmarks", []) if b.get("samples")),
            "baseline": {"tests": len(tb), "benchmarks": _measured(baseline)},
            "candidate": {"tests": len(candidate.get("tests", [])), "benchmarks": _measured(candidate)}}


def compare(baseline: dict, candidate: dict, policy: Policy | None = None, *, noise: dict | None = None,
            history: list[dict] | None = None) -> dict:
    """The comparison of ``candidate`` against ``baseline`` under ``policy`` (see module doc); the
    gate's verdict is added by :func:`harness.gate.evaluate`. ``history``: earlier run records, the
    between-run evidence of sequential benchmark records."""
    policy = policy or default_policy()
    manifest, policy_differs = _manifest(candidate, policy)
    cmp = {
        "baseline": _side(baseline),
        "candidate": _side(candidate),
        "policy": policy.as_dict(),
        "manifest": manifest.as_dict(),
        "tests": test_changes(baseline, candidate, policy, manifest),
        "drift": precision_drift(baseline, candidate, policy),
        "hardware_differences": hardware_differences(baseline.get("fingerprint"), candidate.get("fingerprint")),
        "environment": record.environment_rows(candidate.get("fingerprint") or {}, baseline.get("fingerprint") or {}),
    }
    if policy_differs is not None:
        cmp["manifest"]["policy_differs"] = policy_differs
    if noise is None and policy.bench_noise:
        from harness.bench.noise import load_noise

        noise = load_noise(policy.bench_noise)
    cmp["benchmarks"], cmp["bench_stats"] = benchmark_rows(baseline, candidate, policy, noise=noise, history=history)
    cmp["compared"] = compared(baseline, candidate)
    cmp["counts"] = dict(Counter(r["change"] for r in cmp["tests"]))
    cmp["sections"] = {"baseline": _section_counts(baseline.get("tests", []))}
    if candidate.get("coverage"):  # advisory (see the module doc); absent without a candidate ledger
        cmp["coverage"] = dict(coverage.diff(baseline.get("coverage") or None, candidate["coverage"]), advisory=True)
    return cmp
