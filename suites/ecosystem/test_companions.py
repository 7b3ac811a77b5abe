"""§ 9.4 Ecosystem: companion libraries (torchvision, torchaudio, torchtext, torchrl). Each is optional:
not installed, or installed with metadata that pins another torch release, the test is skipped with
that reason. Installed and claiming this torch, the companion must import and work: an import error
there (the binary mismatch of a companion built against another torch) fails the test. Each test runs a
smoke check of one documented behaviour against an independent oracle.

Each test names the broken torch (or broken pairing of torch and companion) it would catch.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_true


def _torch_pin(dist: str):
    """(companion version, the torch specifier its metadata requires) or (version, None) without one."""
    from packaging.requirements import Requirement

    for line in importlib.metadata.requires(dist) or []:
        req = Requirement(line)
        if req.name == "torch" and (req.marker is None or req.marker.evaluate({"extra": ""})):
            return importlib.metadata.version(dist), req.specifier
    return importlib.metadata.version(dist), None


def _import_or_skip(name: str, dist: str | None = None):
    """Import companion ``name``. Skips only on facts about the installation: not installed, or its
    metadata pins a torch this is not (a pairing the companion does not claim). Otherwise the import
    must succeed; its error (a binary mismatch) fails the test, which is what this module checks."""
    from packaging.version import Version

    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    try:
        version, pin = _torch_pin(dist or name)
    except importlib.metadata.PackageNotFoundError:
        version, pin = "?", None  # importable without distribution metadata (a source checkout): no pin
    if pin is not None and pin and not pin.contains(Version(torch.__version__), prereleases=True):
        pytest.skip(f"{name} {version} requires torch{pin}; the running torch is {torch.__version__}")
    return importlib.import_module(name)


@pytest.mark.smoke
def test_torchvision_hflip_and_nms(device):
    """torchvision.transforms.functional.hflip equals flipping the last dim (NumPy), and torchvision.ops.nms
    keeps the expected boxes on a hand-made case (IoU computed by hand); catches a torchvision built against
    another torch (its custom ops fail) or a broken flip."""
    _import_or_skip("torchvision")
    import torchvision.transforms.functional as TF
    from torchvision.ops import nms

    img = torch.arange(2 * 3 * 4, dtype=torch.float32, device=device).reshape(2, 3, 4)
    assert_equal("torchvision.transforms.functional.hflip", TF.hflip(img), np.arange(24.0).reshape(2, 3, 4)[..., ::-1].copy())
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=torch.float32, device=device)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95], device=device)
    # by hand: IoU(3,0) = 90/100 = 0.9, IoU(3,1) = 72/118 = 0.61, IoU(0,1) = 81/119 = 0.68; box 2 overlaps nothing.
    # Score order 3, 0, 1, 2: at 0.5 box 3 suppresses 0 and 1; at 0.95 nothing is suppressed.
    keep = nms(boxes, scores, iou_threshold=0.5)
    assert_equal("torchvision.ops.nms", keep.cpu(), np.array([3, 2]), args="iou_threshold=0.5")
    keep = nms(boxes, scores, iou_threshold=0.95)
    assert_equal("torchvision.ops.nms", keep.cpu(), np.array([3, 0, 1, 2]), args="iou_threshold=0.95")


def test_torchaudio_amplitude_to_db(device):
    """torchaudio.functional.amplitude_to_DB(x, multiplier=10, amin, db_multiplier=0) equals
    10*log10(max(x, amin)) (NumPy); catches a torchaudio that imports but computes wrongly against this torch."""
    _import_or_skip("torchaudio")
    import torchaudio.functional as AF

    x = torch.tensor([[1e-12, 1e-3, 1.0, 100.0]], dtype=torch.float64, device=device)
    got = AF.amplitude_to_DB(x, multiplier=10.0, amin=1e-10, db_multiplier=0.0)
    assert_close("torchaudio.functional.amplitude_to_DB", got, 10 * np.log10(np.maximum(x.cpu().numpy(), 1e-10)), op="elementwise")


def test_torchtext_vocab():
    """torchtext.vocab.build_vocab_from_iterator maps tokens to indices by frequency with specials first;
    catches a torchtext whose compiled extension does not load beside this torch."""
    _import_or_skip("torchtext")
    from torchtext.vocab import build_vocab_from_iterator
    v = build_vocab_from_iterator([["b", "a", "a"], ["c", "a", "b"]], specials=["<unk>"])
    assert_equal("torchtext.vocab.Vocab", v.get_itos(), ["<unk>", "a", "b", "c"], args="frequency order, specials first")
    assert_equal("torchtext.vocab.Vocab", v(["c", "a"]), [3, 1])


def test_torchrl_tensordict_env_free():
    """torchrl imports and its TensorDict-based replay buffer stores and samples what it was given."""
    _import_or_skip("torchrl")
    _import_or_skip("tensordict")
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, ReplayBuffer
    rb = ReplayBuffer(storage=LazyTensorStorage(10))
    rb.extend(TensorDict({"obs": torch.arange(6.0).reshape(3, 2)}, batch_size=[3]))
    assert_equal("torchrl.data.ReplayBuffer", len(rb), 3)
    s = rb.sample(5)
    obs = s["obs"]
    assert_true("torchrl.data.ReplayBuffer.sample", set(obs[:, 0].tolist()) <= {0.0, 2.0, 4.0}, f"sampled unknown rows {obs}")
    assert_close("torchrl.data.ReplayBuffer.sample", obs[:, 1] - obs[:, 0], np.ones(5), op="exact", args="rows kept whole")
