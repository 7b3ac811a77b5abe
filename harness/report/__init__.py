"""Reports: one model of the results (:mod:`harness.report.model`), three renderers (HTML,
Markdown, JUnit XML). :func:`write_all` writes the three files into a folder."""
from __future__ import annotations

from pathlib import Path

from harness.report import html, junit, markdown
from harness.report.model import build


def write_all(rec: dict, out_dir: str | Path, *, baseline: dict | None = None) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = build(rec, baseline=baseline)
    paths = {"html": out / "index.html", "markdown": out / "summary.md", "junit": out / "junit.xml"}
    paths["html"].write_text(html.render(model), encoding="utf-8")
    paths["markdown"].write_text(markdown.render(model), encoding="utf-8")
    paths["junit"].write_text(junit.render(model), encoding="utf-8")
    return paths
