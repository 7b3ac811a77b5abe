"""Reports: one model of the results (:mod:`harness.report.model`), three renderers (HTML, Markdown,
JUnit XML). :func:`render_all` returns the three documents; the CLI writes them.

The renderers are imported when used, so :mod:`harness.report.model` (and with it the section table
of ``torchconform summary``) works where Jinja2 or matplotlib are not installed.
"""
from __future__ import annotations

FILENAMES = {"html": "index.html", "markdown": "summary.md", "junit": "junit.xml"}


def render_all(rec: dict, *, comparison: dict | None = None, history: list[dict] | None = None,
               plots: bool = True, changes: dict | None = None) -> dict[str, str]:
    """``{"html": text, "markdown": text, "junit": text}`` for ``rec`` (see :func:`model.build`)."""
    from harness.report import html, junit, markdown, model

    m = model.build(rec, comparison, history, plots=plots, changes=changes)
    return {"html": html.render(m), "markdown": markdown.render(m), "junit": junit.render(m)}
