"""Benchmark noise documents: each benchmark's run-to-run spread and minimum detectable effect,
computed from K runs of one installation (``torchconform bench calibrate K``), saved, and loaded by
``compare``/``gate`` (``--noise``, or the policy's ``[benchmarks] noise``) and ``bench pair``. Runs
measured in rounds beside ceiling probes also give ``sigma_log_normalised``, the spread of the
normalised figure sequential comparisons use (:mod:`harness.bench.drift`).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from harness import stats
from harness.bench.drift import normaliser
from harness.bench.significance import samples_by_name
from harness.errors import HarnessError

NOISE_KIND = "torchconform.bench-noise"


def noise_from_records(records: list[dict], *, alpha: float = 0.01, power: float = 0.9,
                       threshold: float = 0.05) -> dict:
    """A noise document from repeated runs of ONE installation: for every benchmark, the run-to-run
    standard deviation of the log median (``sigma_log``), the minimum detectable effect of a
    two-run comparison at ``alpha`` and ``power`` (``mde``), and whether a ``threshold`` change is
    detectable at all (``detectable``: ``mde <= threshold``)."""
    if len(records) < 2:
        raise HarnessError("noise calibration needs at least 2 runs of the same installation (3 or more advised)")
    per: dict[str, list[float]] = {}
    norm: dict[str, list[float]] = {}
    within: dict[str, list[float]] = {}
    for rec in records:
        for name, e in samples_by_name(rec).items():
            per.setdefault(name, []).append(stats.median(e["samples"]))
            within.setdefault(name, []).append(stats.sigma_log_within(e["samples"]))
            n = normaliser(e)
            if n is not None:
                norm.setdefault(name, []).append(stats.median(np.asarray(e["samples"], dtype=np.float64) * n[1]))
    out = {}
    for name, meds in sorted(per.items()):
        if len(meds) < 2:
            continue
        s_run = stats.sigma_log_from_runs(meds)
        s_in = float(np.nanmean(within[name])) if within[name] else float("nan")
        # small K underestimates the spread; never trust less than the within-run error
        sigma = max(s_run, s_in) if math.isfinite(s_in) else s_run
        mde = stats.mde_from_sigma(sigma, alpha=alpha, power=power)
        out[name] = {"sigma_log": sigma, "sigma_log_runs": s_run, "sigma_log_within": s_in, "runs": len(meds),
                     "medians": meds, "mde": mde, "detectable": bool(mde <= threshold)}
        if len(norm.get(name, [])) == len(meds):  # every run normalisable: the figure sequential compares use
            s_norm = stats.sigma_log_from_runs(norm[name])
            out[name]["sigma_log_normalised"] = max(s_norm, s_in) if math.isfinite(s_in) else s_norm
    return {"kind": NOISE_KIND, "version": 1, "alpha": alpha, "power": power, "threshold": threshold,
            "runs": len(records), "fingerprint": (records[0].get("fingerprint") or {}).get("torch"),
            "benchmarks": out}


def save_noise(noise: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(noise, indent=1, default=float), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_noise(path) -> dict:
    """A noise document from ``path`` (or ``path/noise.json``); HarnessError (one line) otherwise."""
    p = Path(path)
    if p.is_dir():
        p = p / "noise.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{p}: no such noise file") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{p}: not a noise file ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != NOISE_KIND:
        raise HarnessError(f"{p}: not a torchconform noise file (kind {NOISE_KIND!r})")
    return data
