"""Shared fixtures. Tests that read ../shared/data skip, saying why, where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CTLS_SHARED_DATA", REPO.parent / "shared" / "data"))
MEDSEG = SHARED_DATA / "medseg-ct100"


@pytest.fixture(scope="session")
def medseg_dir() -> Path:
    if not (MEDSEG / "images").is_dir():
        pytest.skip(f"shared data not found at {MEDSEG} (CI has it; a user's clone may not)")
    return MEDSEG


def phantom(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A chest-like phantom: (image in [-1, 1], label map 0..3). Two dark lungs inside a bright
    body ring on black air, one GGO and one consolidation patch."""
    yy, xx = np.mgrid[:size, :size] / size
    body = ((xx - 0.5) / 0.45) ** 2 + ((yy - 0.5) / 0.38) ** 2 < 1
    left = ((xx - 0.3) / 0.14) ** 2 + ((yy - 0.5) / 0.25) ** 2 < 1
    right = ((xx - 0.7) / 0.14) ** 2 + ((yy - 0.5) / 0.25) ** 2 < 1
    labels = np.zeros((size, size), np.uint8)
    labels[left | right] = 1
    labels[left & (yy > 0.55)] = 2
    labels[right & (yy > 0.6) & (xx > 0.72)] = 3
    image = np.full((size, size), -1.0, np.float32)
    image[body] = 0.7
    image[labels == 1] = -0.8
    image[labels == 2] = -0.2
    image[labels == 3] = 0.6
    return image, labels


def make_seg(source, mask: np.ndarray, labels: list[str]):
    """A highdicom DICOM SEG of ``source`` (a pydicom dataset): ``mask`` (1, H, W, S) bool, one
    segment per label (segment numbers 1..S, in order), as another program would write one."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=label,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Lung,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, label in enumerate(labels)
    ]
    return hd.seg.Segmentation(
        source_images=[source],
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=2,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
    )


def make_tiny_weights(path: Path, mode: str = "label", seed: int = 0) -> Path:
    """An untrained `tiny` generator of ``mode`` exported to ``path`` (fp32, initialised from
    ``seed``): fast synthesis in tests."""
    import torch

    from gan.checkpoint import export_generator
    from gan.config import get_preset
    from gan.models import GlobalLocalGenerator

    torch.manual_seed(seed)
    cfg = get_preset("tiny").replace_generator(mode=mode)
    export_generator(GlobalLocalGenerator(cfg.generator), cfg, path, half=False)
    return path


def write_phantom_folder(root: Path, n: int = 3, size: int = 64) -> Path:
    """A data folder in the medseg-ct100 layout holding ``n`` phantom slices."""
    from gan.ctio import write_png

    (root / "images").mkdir(parents=True)
    (root / "lesions").mkdir()
    for i in range(n):
        image, labels = phantom(size)
        write_png(root / "images" / f"{i:04d}.png", ((image + 1) * 127.5).astype(np.uint8))
        write_png(
            root / "lesions" / f"{i:04d}.png", np.where(labels >= 2, labels - 1, 0).astype(np.uint8)
        )
    return root
