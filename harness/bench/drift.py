"""Between-run noise and machine-state drift: the unit of the sequential flow.

CI compares a baseline record made earlier with a candidate made now. Samples within one run do not
see the machine's state change between runs (a copy bandwidth of 137 GB/s in one run and 67 GB/s in
the next), so a bootstrap over them is overconfident. This module supplies, per benchmark:

* :func:`figure`: the samples a sequential comparison uses. A case measured in rounds with the
  machine's ceilings probed beside it (:mod:`harness.bench.rounds`) is *normalised*: each sample
  times the ceiling of its round (copy GB/s for a memory-bound case, matmul GFLOP/s for a
  compute-bound one), so a machine that is 2x slower for everyone leaves the figure unchanged. Both
  records must have it, else the raw seconds are compared. The raw figure stays in the row
  (``raw_ratio``).
* :func:`evidence`: the run-to-run standard deviation of one run's log median (``sigma_log``) from
  every source there is, and the largest of them (small samples underestimate):
  - ``rounds``: the spread of the per-round medians of both records (>= :data:`MIN_ROUNDS` rounds
    each): a round is measured minutes apart from the next, so its median moves as a run's would;
  - ``history``: earlier records of the same hardware (``--history``): the robust spread of
    consecutive differences of their log medians (a step in the history does not inflate it);
  - ``noise``: a calibration document (``bench calibrate``, ``--noise``).
  No source: no evidence, and the benchmark can only advise (:mod:`harness.bench.significance`).
"""
from __future__ import annotations

import math

import numpy as np

from harness import stats
from harness.fingerprint import hardware_differences

MIN_ROUNDS = 3        # per-round medians needed on each side to estimate the spread
MIN_HISTORY = 4       # earlier records needed for a history estimate
_MAD_TO_SD = 1.4826   # a normal distribution's standard deviation per median absolute deviation


def _samples(entry: dict) -> np.ndarray:
    return np.asarray([float(x) for x in entry.get("samples") or [] if isinstance(x, (int, float))], dtype=np.float64)


def _round_index(entry: dict) -> np.ndarray | None:
    r = entry.get("rounds") or {}
    counts = r.get("samples") or []
    if not counts or sum(counts) != len(entry.get("samples") or []):
        return None
    return np.repeat(np.arange(len(counts)), counts)


def normaliser(entry: dict) -> tuple[str, np.ndarray] | None:
    """(ceiling kind, per-sample ceiling) for an entry measured in rounds beside probes, else None."""
    r = entry.get("rounds") or {}
    kind, ceil, idx = r.get("ceiling_kind"), r.get("ceiling") or [], _round_index(entry)
    if kind is None or idx is None or len(ceil) != len(r["samples"]):
        return None
    if not all(isinstance(c, (int, float)) and math.isfinite(c) and c > 0 for c in ceil):
        return None
    return kind, np.asarray(ceil, dtype=np.float64)[idx]


def figure(base: dict, cand: dict) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(baseline, candidate, normalised_by): normalised samples when both entries can be normalised by
    the same kind of ceiling, else the raw seconds (normalised_by None)."""
    bs, cs = _samples(base), _samples(cand)
    nb, nc = normaliser(base), normaliser(cand)
    if nb is None or nc is None or nb[0] != nc[0]:
        return bs, cs, None
    return bs * nb[1], cs * nc[1], nb[0]


def round_sigma(entry: dict, values: np.ndarray) -> float | None:
    """Standard deviation of the log per-round medians of ``values`` (the entry's samples, maybe
    normalised); None with fewer than :data:`MIN_ROUNDS` rounds."""
    idx = _round_index(entry)
    if idx is None or idx.size != values.size:
        return None
    meds = [float(np.median(values[idx == i])) for i in np.unique(idx)]
    meds = [m for m in meds if m > 0]
    if len(meds) < MIN_ROUNDS:
        return None
    return float(np.std(np.log(meds), ddof=1))


def history_series(history: list[dict], name: str, reference_fp: dict | None, normalised: bool) -> list[float]:
    """The benchmark's median figure in each history record of the same hardware as ``reference_fp``."""
    out = []
    for rec in history or []:
        if reference_fp is not None and hardware_differences(rec.get("fingerprint") or {}, reference_fp):
            continue
        for e in rec.get("benchmarks") or []:
            if e.get("name") == name and e.get("samples"):
                v = _samples(e)
                n = normaliser(e) if normalised else None
                if normalised and n is None:
                    break
                m = float(np.median(v * n[1] if n is not None else v))
                if m > 0:
                    out.append(m)
                break
    return out


def history_sigma(values: list[float]) -> float | None:
    """Robust run-to-run sigma of log medians in time order: MAD of consecutive differences / sqrt(2)."""
    if len(values) < MIN_HISTORY:
        return None
    d = np.diff(np.log(np.asarray(values, dtype=np.float64)))
    mad = float(np.median(np.abs(d - np.median(d))))
    return _MAD_TO_SD * mad / math.sqrt(2.0)


def evidence(base: dict, cand: dict, bs: np.ndarray, cs: np.ndarray, *, normalised: bool, noise: dict | None = None,
             history: list[dict] | None = None, reference_fp: dict | None = None) -> dict:
    """``{"sigma_log": s or None, "sources": {source: sigma}, "mde": calibrated mde or None}``: the
    between-run spread of one run's log median, the largest over the sources found (module docstring)."""
    sources: dict[str, float] = {}
    sb, sc = round_sigma(base, bs), round_sigma(cand, cs)
    if sb is not None and sc is not None:
        sources["rounds"] = math.sqrt((sb * sb + sc * sc) / 2.0)
    hs = history_sigma(history_series(history, base.get("name"), reference_fp, normalised))
    if hs is not None:
        sources["history"] = hs
    nz = noise or {}
    key = "sigma_log_normalised" if normalised and isinstance(nz.get("sigma_log_normalised"), (int, float)) \
        else "sigma_log"
    if isinstance(nz.get(key), (int, float)) and math.isfinite(nz[key]):
        sources["noise"] = float(nz[key])
    sigma = max(sources.values()) if sources else None
    mde = float(nz["mde"]) if sources.get("noise") == sigma and isinstance(nz.get("mde"), (int, float)) else None
    return {"sigma_log": sigma, "sources": sources, "mde": mde}


def describe(ev: dict) -> str:
    """'rounds 1.2%, history 2.0%' for a reason line."""
    return ", ".join(f"{k} {v:.1%}" for k, v in ev["sources"].items()) or "none"


def mde(ev: dict, *, alpha: float, power: float) -> float | None:
    if ev["sigma_log"] is None:
        return None
    return ev["mde"] if ev["mde"] is not None else stats.mde_from_sigma(ev["sigma_log"], alpha=alpha, power=power)
