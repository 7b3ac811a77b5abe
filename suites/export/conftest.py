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


@pytest.fixture(autouse=True)
def _export_full_fp32():
    """Parity here is measured in full float32 on CUDA (TF32 off), see _lanes.full_fp32."""
    from suites.export._lanes import full_fp32

    with full_fp32():
        yield
