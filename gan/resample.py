"""Resampling of label maps (nearest neighbour, never blended) and images (bilinear), in torch."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def resize_labels(label_map: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(B, H, W) integer labels -> (B, size, size), nearest neighbour (labels never blend)."""
    if isinstance(size, int):
        size = (size, size)
    if tuple(label_map.shape[-2:]) == tuple(size):
        return label_map
    resized = F.interpolate(label_map[:, None].float(), size=size, mode="nearest-exact")
    return resized[:, 0].round().to(label_map.dtype)


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, *size), bilinear (antialiased when shrinking)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    return F.interpolate(
        image, size=size, mode="bilinear", align_corners=False, antialias=shrinking
    )


def resize_label_map_np(label_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 label map -> ``size``, nearest neighbour."""
    tensor = torch.from_numpy(np.ascontiguousarray(label_map, dtype=np.uint8).astype(np.int64))[
        None
    ]
    return resize_labels(tensor, size)[0].numpy().astype(np.uint8)


def resize_image_np(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float image -> ``size``, bilinear (antialiased when shrinking)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    return resize_image(tensor, size)[0, 0].numpy()
