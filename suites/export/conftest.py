"""§ 9.1 export: fixtures shared by this section's modules.

Exporting is the cost (the dynamo ONNX exporter takes seconds per model), so every artefact is
exported once per session per (model, lane, device) into a pytest temporary folder and shared by
the modules that check it; nothing is written inside the repository.
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory):
    """Exported artefacts (:class:`suites.export._lanes.Artifact`), built on first use."""
    from suites.export._lanes import ArtifactCache

    return ArtifactCache(tmp_path_factory.mktemp("export-artefacts"))
