"""§ 9.1 parity table: max abs error and error/allowed ratio of every (model, lane) against the
float64 eager reference, without pytest.

    python -m suites.export.parity_table [device]

Same artefacts and reference as test_parity.py; the allowance is the ``export`` tolerance at
float32 (``atol + rtol * |reference|`` per element). Shapes: the example's and, for the dynamic
lanes, the other batch sizes / sequence lengths of test_dynamic_shape_parity.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def measure(device: str = "cpu") -> list[dict]:
    import torch

    from harness import tolerances
    from suites.export._lanes import (DYNAMIC_LANES, LANES, MAX_BATCH, ArtifactCache, full_fp32, lane_available,
                                      reference)
    from suites.export._zoo import EXAMPLE_SEQ, ZOO

    tol = tolerances.lookup("export", torch.float32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="torchconform-parity-") as tmp, full_fp32():
        cache = ArtifactCache(Path(tmp))
        for name, entry in ZOO.items():
            for lane in LANES:
                row = {"model": name, "lane": lane, "max_abs_err": None, "ratio": None,
                       "expected_failure": entry.unsupported.get(lane) or entry.unsupported_dynamic.get(lane)}
                why = lane_available(lane)
                if why:
                    rows.append(dict(row, status=f"skipped: {why}"))
                    continue
                try:
                    art = cache.get(name, lane, device)
                except Exception as exc:  # noqa: BLE001 - reported as data
                    rows.append(dict(row, status=f"export failed: {type(exc).__name__}"))
                    continue
                shapes = [(None, None)]
                if lane in DYNAMIC_LANES:
                    shapes += [(1, EXAMPLE_SEQ), (3, EXAMPLE_SEQ), (MAX_BATCH // 4, EXAMPLE_SEQ)]
                    if entry.has_seq:
                        shapes += [(2, 3), (5, 11)]
                err, ratio, status = 0.0, 0.0, "ok"
                for case in entry.cases:
                    for batch, seq in shapes:
                        kw = {} if batch is None else {"batch": batch, "seq": seq}
                        inputs = entry.inputs(case=case, device=device, **kw)
                        try:
                            got = art.run(*inputs).detach().cpu().double().numpy()
                        except Exception as exc:  # noqa: BLE001
                            status = f"run failed at batch={batch}, seq={seq}: {type(exc).__name__}"
                            continue
                        ref = reference(entry, inputs, device).cpu().numpy()
                        if got.shape != ref.shape:
                            status = f"shape {got.shape} != {ref.shape}"
                            continue
                        diff = np.abs(got - ref)
                        err = max(err, float(diff.max()))
                        ratio = max(ratio, float((diff / (tol.atol + tol.rtol * np.abs(ref))).max()))
                if status == "ok" and ratio > 1:
                    status = "OUT OF TOLERANCE"
                rows.append(dict(row, max_abs_err=err, ratio=ratio, status=status))
    return rows


def format_table(rows: list[dict]) -> str:
    out = ["| model | lane | max abs err | err/allowed | status |", "|---|---|---|---|---|"]
    for r in rows:
        err = "-" if r["max_abs_err"] is None else f"{r['max_abs_err']:.2e}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.4f}"
        status = r["status"] + (" (expected: xfail)" if r["expected_failure"] else "")
        out.append(f"| {r['model']} | {r['lane']} | {err} | {ratio} | {status} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(format_table(measure(sys.argv[1] if len(sys.argv) > 1 else "cpu")))
