"""Differentiable augmentation of everything the discriminator sees (Zhao et al., NeurIPS 2020).

With 64 training slices D memorises them; augmenting real and synthetic inputs alike, with
transforms G's gradient passes through, keeps it from doing so without teaching G the transforms
(they are applied to D's inputs only, never to what G learns to draw). Each batch element gets its
own draw; the label channels and the image move together (translation, cutout), and only the image
changes intensity (brightness, contrast).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

POLICIES = ("translation", "cutout", "color")
TRANSLATION = 1 / 8  # largest shift, as a share of the side
CUTOUT = 1 / 2  # side of the cut-out square, as a share of the side
BRIGHTNESS = 0.2  # added to the image in [-1, 1], at most
CONTRAST = 0.2  # scale about the image's mean, 1 +- this at most


def parse_policy(text: str) -> tuple[str, ...]:
    """``"translation,cutout,color"`` -> its parts; an empty string is no augmentation."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown DiffAugment part {unknown[0]!r}; choose from {', '.join(POLICIES)}"
        )
    return parts


def diff_augment(
    cond: torch.Tensor,
    image: torch.Tensor,
    policy: tuple[str, ...],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) condition (one-hot labels, maybe more) and (B, 1, H, W) image in [-1, 1] ->
    both augmented, differentiably. ``generator`` (CPU) draws the parameters: the same seed and
    batch size give the same transforms, so real and synthetic can be judged under one draw."""
    if not policy:
        return cond, image
    b, _, h, w = image.shape
    if "color" in policy:
        shift = (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * BRIGHTNESS
        scale = 1 + (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * CONTRAST
        shift, scale = shift.to(image), scale.to(image)
        mean = image.mean(dim=(1, 2, 3), keepdim=True)
        image = (image - mean) * scale + mean + shift
    if "translation" in policy:
        dy = torch.randint(
            -int(h * TRANSLATION), int(h * TRANSLATION) + 1, (b,), generator=generator
        )
        dx = torch.randint(
            -int(w * TRANSLATION), int(w * TRANSLATION) + 1, (b,), generator=generator
        )
        cond = _translate(cond, dy, dx, fill=_background(cond))
        image = _translate(image, dy, dx, fill=-1.0)
    if "cutout" in policy:
        size_h, size_w = int(h * CUTOUT), int(w * CUTOUT)
        top = torch.randint(0, h - size_h + 1, (b,), generator=generator)
        left = torch.randint(0, w - size_w + 1, (b,), generator=generator)
        rows = torch.arange(h)[None, :, None]
        cols = torch.arange(w)[None, None, :]
        hole = (
            (rows >= top[:, None, None])
            & (rows < (top + size_h)[:, None, None])
            & (cols >= left[:, None, None])
            & (cols < (left + size_w)[:, None, None])
        )[:, None].to(image.device)
        keep = (~hole).to(image.dtype)
        image = image * keep
        cond = cond * keep.to(cond.dtype)
    return cond, image


def _background(cond: torch.Tensor) -> torch.Tensor:
    """Fill for the condition where a translation uncovers pixels: background (channel 0) only."""
    fill = torch.zeros(cond.shape[1], dtype=cond.dtype, device=cond.device)
    fill[0] = 1
    return fill


def _translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, fill) -> torch.Tensor:
    """Shift each batch element by (dy, dx) pixels; uncovered pixels get ``fill`` (a number, or one
    value per channel)."""
    b, c, h, w = x.shape
    pad = int(max(dy.abs().max(), dx.abs().max()))
    if pad == 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad))
    border = torch.ones((1, 1, h, w), dtype=x.dtype, device=x.device)
    border = F.pad(border, (pad, pad, pad, pad))  # 1 inside the original frame, 0 in the pad
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    padded = padded + (1 - border) * fill_t
    out = []
    for i in range(b):
        top, left = pad - int(dy[i]), pad - int(dx[i])
        out.append(padded[i : i + 1, :, top : top + h, left : left + w])
    return torch.cat(out)
