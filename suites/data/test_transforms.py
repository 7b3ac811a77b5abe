"""§ 5.3 Data augmentation: the document's torchvision pipeline (RandomResizedCrop, RandomHorizontalFlip,
ToTensor, Normalize with the ImageNet mean/std), when torchvision imports."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.checks import assert_close, assert_equal, assert_true

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def transforms():
    """torchvision.transforms. Skipped when torchvision is not installed or its metadata pins another torch
    (a pairing it does not claim); installed for this torch, it must import: an import error (a binary
    mismatch) fails the tests instead of hiding behind a skip."""
    import importlib.metadata
    import importlib.util

    from packaging.requirements import Requirement
    from packaging.version import Version

    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    try:
        pins = [Requirement(r).specifier for r in importlib.metadata.requires("torchvision") or []
                if Requirement(r).name == "torch"]
    except importlib.metadata.PackageNotFoundError:
        pins = []
    if pins and pins[0] and not pins[0].contains(Version(torch.__version__), prereleases=True):
        pytest.skip(f"the installed torchvision requires torch{pins[0]}; the running torch is {torch.__version__}")
    from torchvision import transforms as T

    return T


def test_to_tensor_and_normalize(transforms):
    """ToTensor maps an HxWxC uint8 array to CxHxW float in [0, 1] (divided by 255); Normalize computes
    (x - mean) / std per channel with the ImageNet constants."""
    T = transforms
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    t = T.ToTensor()(img)
    ref = img.transpose(2, 0, 1).astype(np.float64) / 255.0
    assert_close("transforms.ToTensor", t, ref)
    n = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)(t)
    ref_n = (ref - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(IMAGENET_STD)[:, None, None]
    assert_close("transforms.Normalize", n, ref_n, args="ImageNet mean/std")


def test_random_horizontal_flip(transforms):
    """RandomHorizontalFlip(p=1) mirrors the last dimension; p=0 leaves the image unchanged."""
    x = torch.arange(24.0).reshape(2, 3, 4)
    assert_equal("transforms.RandomHorizontalFlip", transforms.RandomHorizontalFlip(p=1.0)(x), x.numpy()[..., ::-1], args="p=1")
    assert_equal("transforms.RandomHorizontalFlip", transforms.RandomHorizontalFlip(p=0.0)(x), x.numpy(), args="p=0")


def test_document_pipeline(transforms):
    """The document's training pipeline yields 3x224x224 float tensors whose per-channel values stay within
    the normalised range of [0, 1] inputs."""
    T = transforms
    pipe = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    from PIL import Image

    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, size=(300, 260, 3), dtype=np.uint8))
    out = pipe(img)
    assert_equal("transforms.Compose", tuple(out.shape), (3, 224, 224))
    assert_equal("transforms.Compose", out.dtype, torch.float32)
    lo = (0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    hi = (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    x = out.numpy().reshape(3, -1)
    assert_true("transforms.Compose", (x.min(1) >= lo - 1e-5).all() and (x.max(1) <= hi + 1e-5).all(),
                "normalised values outside the range of [0, 1] inputs")
