"""Reports: one model of the results (:mod:`harness.report.model`), three renderers (HTML,
Markdown, JUnit XML). :func:`write_all` writes the three files into a folder, plus
``comparison.json`` (the machine-readable comparison and gate decision) when there is a baseline."""
from __future__ import annotations

import json
from pathlib import Path

from harness.record import _sanitize
from harness.report import html, junit, markdown
from harness.report.model import build


def write_all(rec: dict, out_dir: str | Path, *, baseline: dict | None = None, policy=None,
              comparison: dict | None = None, history: list[dict] | None = None, plots: bool = True) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = build(rec, baseline=baseline, policy=policy, comparison=comparison, history=history, plots=plots)
    paths = {"html": out / "index.html", "markdown": out / "summary.md", "junit": out / "junit.xml"}
    paths["html"].write_text(html.render(model), encoding="utf-8")
    paths["markdown"].write_text(markdown.render(model), encoding="utf-8")
    paths["junit"].write_text(junit.render(model), encoding="utf-8")
    if model.get("comparison") is not None:
        paths["comparison"] = out / "comparison.json"
        paths["comparison"].write_text(json.dumps(_sanitize(model["comparison"]), indent=1, default=str) + "\n",
                                       encoding="utf-8")
    return paths
