"""Per-benchmark statistics of two run records: ratio, confidence interval, rank test, false-discovery
correction, minimum detectable effect, and the verdict they support.

This module says what the numbers show at a given ``alpha`` and ``threshold``; whether a regression
blocks anything is the policy's business (:mod:`harness.compare` picks each benchmark's rule,
:mod:`harness.gate` decides). Used by ``torchconform compare``/``gate`` and ``bench pair`` alike.

Decision rule (one row per benchmark case name):

* ``ratio`` = median(candidate) / median(baseline) of the per-call samples (> 1 = slower).
* ``ci_low``/``ci_high``: percentile-bootstrap interval of the ratio at confidence ``1 - alpha``,
  widened by the calibrated run-to-run spread when a noise file gives one for the benchmark
  (:func:`harness.stats.ratio_ci`).
* ``p_value``: two-sided Mann-Whitney U test of the two sample sets; for interleaved pair-mode
  records (both entries carry the same ``pair_chunk``) a paired analysis instead: per-round log
  ratios of chunk medians, their median as the ratio, a bootstrap over rounds for the interval and
  the Wilcoxon signed-rank test for ``p_value`` (row key ``paired_rounds``); ``q_value``: Benjamini-Hochberg
  across every compared benchmark in the suite, so the expected share of false alarms among the
  flagged benchmarks is at most ``alpha`` (and, when nothing changed, the chance that anything at all
  is flagged is at most ``alpha``).
* ``regression``: ``q_value < alpha`` AND the whole interval is above 1 (``ci_low > 1``) AND the
  estimated slowdown reaches the threshold (``ratio >= 1 + threshold``). Significance alone would flag
  0.5% drifts from thousands of samples; magnitude alone would flag noise.
  ``improvement`` is the mirror image (``ci_high < 1``, ``ratio <= 1 / (1 + threshold)``).
* ``noisy``: too few samples (< 5 a side) to test, or an interval so wide that it contains both a
  ``threshold`` slowdown and a ``threshold`` speed-up: the data cannot say either way.
* otherwise ``unchanged``.
* ``detectable``: False when the benchmark's minimum detectable effect ``mde`` exceeds ``threshold``:
  a change of that size could not be told from noise, so no verdict on it should block.
  - Sequential records (a baseline made earlier, a candidate now: what CI compares): between-run noise
    is the unit (:mod:`harness.bench.drift`). The compared figure is the seconds normalised by the
    machine ceiling probed beside them where both records have it (``ratio``; ``raw_ratio`` keeps the
    raw seconds'), the interval is widened by the between-run spread, and ``mde`` comes from it (rounds
    of the two records, a ``history`` of earlier records, a noise document: the largest), recorded in
    ``between_run``. Without any such evidence (``between_run.sigma_log`` None) ``mde`` is the
    within-run one, and the gate lets the row only advise (:func:`harness.gate.judge_benchmarks`):
    within-run scatter does not see the machine change between runs.
  - Interleaved pair records: drift cancels within a round, so ``mde`` comes from the noise document
    when it has the benchmark, else from the records' own scatter.
* Two exact signals ride along (:mod:`harness.bench.exact`): where both records counted a case's
  instructions, a change beyond the case's noise margin decides the row (``signal: "instructions"``,
  always detectable); otherwise a wall-time regression or improvement decides (it sees memory-bound
  slowdowns, threading and frequency, which instruction counts cannot). Counters (dispatcher calls,
  bytes allocated, graph nodes) are reported, never decide.
* Pair mode (``torchconform bench pair``) re-measures every flagged benchmark; a candidate entry
  carrying a ``confirmation`` whose verdict differs downgrades the row to ``unchanged`` (reason
  says "not confirmed"), so a regression needs two independent measurements to agree.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from harness import stats
from harness.bench import drift, exact
from harness.errors import HarnessError

VERDICTS = ("regression", "improvement", "unchanged", "noisy", "missing_in_baseline", "missing_in_candidate")
MIN_SAMPLES = 5


def samples_by_name(rec: dict) -> dict[str, dict]:
    """Benchmark entries with samples, by name (skipped/errored cases have none and count as missing)."""
    out = {}
    for b in rec.get("benchmarks", []) or []:
        s = [float(x) for x in (b.get("samples") or []) if isinstance(x, (int, float))]
        if s:
            out[b["name"]] = b
    return out


def _fraction(entry: dict | None, rec: dict) -> float | None:
    if entry is None:
        return None
    if entry.get("roofline_fraction") is not None:
        return entry["roofline_fraction"]
    from harness.bench.timer import roofline

    ceil = (rec.get("ceilings") or {}).get(entry.get("device") or "cpu")
    return roofline(entry, ceil, stats.median(entry["samples"]))["roofline_fraction"]


def _samples(entry: dict) -> np.ndarray:
    return np.asarray([float(x) for x in entry["samples"] if isinstance(x, (int, float))], dtype=np.float64)


def verdict_of(base: np.ndarray, cand: np.ndarray, q: float, lo: float, hi: float, ratio: float, *,
           alpha: float, threshold: float) -> tuple[str, str]:
    """The verdict and its reason for one benchmark (see the module docstring)."""
    up, down = 1.0 + threshold, 1.0 / (1.0 + threshold)
    if base.size < MIN_SAMPLES or cand.size < MIN_SAMPLES:
        return "noisy", f"too few samples to test ({base.size} baseline, {cand.size} candidate; need {MIN_SAMPLES})"
    if q < alpha and lo > 1.0 and ratio >= up:
        return "regression", f"{(ratio - 1) * 100:.1f}% slower (CI {lo:.3f}..{hi:.3f}, q={q:.2g})"
    if q < alpha and hi < 1.0 and ratio <= down:
        return "improvement", f"{(1 - ratio) * 100:.1f}% faster (CI {lo:.3f}..{hi:.3f}, q={q:.2g})"
    if lo < down and hi > up:
        return "noisy", f"CI {lo:.3f}..{hi:.3f} spans both a {threshold:.0%} speed-up and slow-down"
    if q < alpha and (lo > 1.0 or hi < 1.0):
        return "unchanged", f"significant but below the {threshold:.0%} threshold (ratio {ratio:.3f})"
    return "unchanged", f"ratio {ratio:.3f} (CI {lo:.3f}..{hi:.3f}, q={q:.2g})"


def compare_benchmarks(baseline: dict, candidate: dict, *, alpha: float = 0.01, threshold: float = 0.05,
                       noise: dict | None = None, n_boot: int = 2000, history: list[dict] | None = None) -> list[dict]:
    """Rows, one per benchmark name present in either record, each with keys:
    name, group, section, device, n_baseline, n_candidate, median_baseline, median_candidate (raw seconds),
    ratio (candidate/baseline median of the compared figure, >1 = slower), ci_low, ci_high (bootstrap CI of
    the ratio), raw_ratio (of the raw seconds), normalised_by (None, 'gbps' or 'gflops'),
    p_value (two-sided rank test, Mann-Whitney U), q_value (Benjamini-Hochberg across the suite),
    verdict in {"regression","improvement","unchanged","noisy","missing_in_baseline","missing_in_candidate"},
    signal ('instructions' or 'wall': what decided the verdict), wall_verdict, instructions and counters
    (:mod:`harness.bench.exact`, None where absent), between_run (sequential records: the evidence of
    :func:`harness.bench.drift.evidence`), detectable (bool: False when the benchmark's minimum detectable
    effect exceeds threshold or, for sequential records, there is no between-run evidence; an instruction
    verdict is always detectable), undetectable (why not, or None; a sequential row without between-run
    evidence is detectable by its within-run scatter, and the gate makes it advisory),
    mde (minimum detectable effect if known), roofline_fraction_baseline, roofline_fraction_candidate, reason (str).

    ``noise`` is a noise document (:mod:`harness.bench.noise`) or None; ``history`` earlier run records
    (between-run evidence for sequential records); ``n_boot`` the number of bootstrap replicates (seeded
    per benchmark name: results are reproducible). Rows come sorted by name."""
    if not (0 < alpha < 1) or threshold < 0:
        raise HarnessError(f"alpha must be in (0, 1) and threshold >= 0 (got alpha={alpha}, threshold={threshold})")
    b_entries, c_entries = samples_by_name(baseline), samples_by_name(candidate)
    noise_b = (noise or {}).get("benchmarks", {}) if noise else {}
    power = float((noise or {}).get("power", 0.9)) if noise else 0.9
    own = {baseline.get("run_id"), candidate.get("run_id")}
    history = [h for h in history or [] if h.get("run_id") not in own]
    names = sorted(set(b_entries) | set(c_entries))
    rows: list[dict] = []
    tested: list[int] = []
    pvals: list[float] = []
    figures: dict[str, tuple] = {}
    for name in names:
        b, c = b_entries.get(name), c_entries.get(name)
        ref = b or c
        row = {"name": name, "group": ref.get("group"), "section": ref.get("section"), "device": ref.get("device"),
               "n_baseline": 0, "n_candidate": 0, "median_baseline": None, "median_candidate": None,
               "ratio": None, "ci_low": None, "ci_high": None, "p_value": None, "q_value": None,
               "verdict": None, "detectable": True, "mde": None,
               "roofline_fraction_baseline": _fraction(b, baseline), "roofline_fraction_candidate": _fraction(c, candidate),
               "reason": "", "signal": None, "wall_verdict": None, "raw_ratio": None, "normalised_by": None,
               "between_run": None, "undetectable": None, "instructions": exact.instructions(b, c),
               "counters": exact.counters(b, c)}
        if b is None or c is None:
            row["verdict"] = "missing_in_baseline" if b is None else "missing_in_candidate"
            side = "baseline" if b is None else "candidate"
            row["reason"] = f"no samples in the {side} record"
            if b is not None:
                row["n_baseline"], row["median_baseline"] = len(b["samples"]), stats.median(b["samples"])
            if c is not None:
                row["n_candidate"], row["median_candidate"] = len(c["samples"]), stats.median(c["samples"])
            row["detectable"] = False
            rows.append(row)
            continue
        p = _wall(row, b, c, noise=noise_b.get(name) or {}, history=history, fp=candidate.get("fingerprint"),
                  alpha=alpha, power=power, threshold=threshold, n_boot=n_boot, figures=figures)
        tested.append(len(rows))
        pvals.append(p)
        rows.append(row)
    qs = stats.benjamini_hochberg(pvals)
    for i, q in zip(tested, qs):
        row = rows[i]
        row["q_value"] = float(q)
        bs, cs = figures[row["name"]]
        verdict, reason = verdict_of(bs, cs, float(q), row["ci_low"], row["ci_high"], row["ratio"], alpha=alpha,
                                     threshold=threshold)
        conf = c_entries[row["name"]].get("confirmation")
        if verdict in ("regression", "improvement") and isinstance(conf, dict) and conf.get("verdict") != verdict:
            reason = (f"first measurement: {reason}; not confirmed on re-measurement "
                      f"(ratio {conf.get('ratio', float('nan')):.3f}, {conf.get('verdict')})")
            verdict = "unchanged"
        elif verdict in ("regression", "improvement") and isinstance(conf, dict):
            reason += f"; confirmed on re-measurement (ratio {conf.get('ratio', float('nan')):.3f})"
        row["verdict"] = row["wall_verdict"] = verdict
        why = row.pop("_undetectable", None)
        row["reason"] = reason + (f"; {why}" if why else "")
        _combine(row)
    for row in rows:
        row.pop("_undetectable", None)
    return rows


def _wall(row, b, c, *, noise, history, fp, alpha, power, threshold, n_boot, figures) -> float:
    """Fill the wall-time statistics of one row (both records have samples); returns the p-value."""
    name = row["name"]
    raw_b, raw_c = _samples(b), _samples(c)
    row.update(n_baseline=int(raw_b.size), n_candidate=int(raw_c.size),
               median_baseline=stats.median(raw_b), median_candidate=stats.median(raw_c))
    row["raw_ratio"] = row["median_candidate"] / row["median_baseline"] if row["median_baseline"] else None
    seed = zlib.crc32(name.encode())
    row["signal"] = "wall"
    chunk = b.get("pair_chunk")
    interleaved = isinstance(chunk, int) and chunk > 0 and chunk == c.get("pair_chunk")
    paired = interleaved and raw_b.size == raw_c.size and raw_b.size // chunk >= MIN_SAMPLES
    if interleaved:  # bench pair: drift cancels within a round; calibrated noise if any
        bs, cs, norm = raw_b, raw_c, None
        sigma = noise.get("sigma_log")
        ev = {"sigma_log": float(sigma) if isinstance(sigma, (int, float)) and math.isfinite(sigma) else None,
              "mde": noise.get("mde") if isinstance(noise.get("mde"), (int, float)) else None}
    else:  # sequential records: between-run evidence, normalised figures where both sides allow
        bs, cs, norm = drift.figure(b, c)
        ev = drift.evidence(b, c, bs, cs, normalised=norm is not None, noise=noise, history=history,
                            reference_fp=fp)
        row["between_run"] = {"sigma_log": ev["sigma_log"], "sources": ev["sources"]}
    row["normalised_by"] = norm
    figures[name] = (bs, cs)
    sigma_run = ev["sigma_log"] or 0.0
    boot_b, boot_c = stats.bootstrap_medians(bs, n_boot, seed), stats.bootstrap_medians(cs, n_boot, seed + 1)
    if paired:
        d = stats.paired_log_ratios(bs, cs, chunk)
        ratio, lo, hi = stats.paired_ratio_ci(d, conf=1 - alpha, n_boot=n_boot, seed=seed, extra_sigma_log=sigma_run)
        _, p = stats.wilcoxon_signed_rank(d)
        row["paired_rounds"] = int(d.size)
    else:
        ratio, lo, hi = stats.ratio_ci(bs, cs, conf=1 - alpha, extra_sigma_log=sigma_run, boot=(boot_b, boot_c))
        _, p = stats.mann_whitney_u(cs, bs)
    row.update(ratio=ratio, ci_low=lo, ci_high=hi, p_value=p)
    s_within = math.hypot(float(np.std(np.log(boot_b), ddof=1)), float(np.std(np.log(boot_c), ddof=1)))
    within = stats.mde_from_sigma(s_within / math.sqrt(2.0), alpha=alpha, power=power) if math.isfinite(s_within) else None
    if interleaved and ev["mde"] is not None:
        row["mde"], src = float(ev["mde"]), f"calibrated from {noise.get('runs', '?')} runs"
    elif interleaved or ev["sigma_log"] is None:
        row["mde"], src = within, "from within-run scatter only (no noise calibration)"
        if not interleaved:
            src = "from within-run scatter only: no between-run evidence"
            row["_undetectable"] = ("no between-run evidence (sequential records need rounds (bench run --rounds "
                                    ">= 3), a --history of earlier records or a --noise file)")
    else:
        row["mde"] = max(drift.mde(ev, alpha=alpha, power=power), within or 0.0)
        src = f"between runs: {drift.describe(ev)}"
    if row["mde"] is not None and row["mde"] > threshold:
        row["detectable"] = False
        row["undetectable"] = f"minimum detectable effect {row['mde']:.1%} > threshold {threshold:.0%}"
        row["_undetectable"] = (f"not detectable: minimum detectable effect {row['mde']:.1%} > threshold "
                                f"{threshold:.0%} ({src})")
    return p


def _combine(row: dict) -> None:
    """The row's verdict from both signals: a change in instructions beyond its margin decides (exact);
    else a wall-time regression or improvement (it sees what instructions cannot); else an instruction
    count within its margin says unchanged; else the wall-time verdict."""
    ins = row["instructions"]
    iv = (ins or {}).get("verdict")
    if iv in ("regression", "improvement") or (iv == "unchanged" and row["wall_verdict"] not in
                                              ("regression", "improvement")):
        row.update(verdict=iv, signal="instructions", detectable=True, undetectable=None,
                   reason=f"{ins['reason']}; wall time: {row['reason']}")


def flagged(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["verdict"] in ("regression", "improvement")]
