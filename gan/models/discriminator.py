"""Multi-resolution patch discriminator (paper §III-B, Fig. 5)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gan.config import DiscriminatorConfig


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs, one stride-1 conv, a 1-channel decision map.

    With ``n_layers=3`` each output element sees a 70x70 input patch. Returns the list of every
    block's output; the last is the decision map, the others feed the feature-matching loss.
    """

    def __init__(self, in_channels: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        width = ndf
        for i in range(1, n_layers + 1):
            prev, width = width, min(ndf * 2**i, 512 * ndf // 64)
            stride = 2 if i < n_layers else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(prev, width, 4, stride, 2),
                    nn.InstanceNorm2d(width),
                    nn.LeakyReLU(0.2, True),
                )
            )
        blocks.append(nn.Sequential(nn.Conv2d(width, 1, 4, 1, 2)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs


def sample_patches(
    x: torch.Tensor,
    size: int,
    per_image: int,
    generator: torch.Generator | None,
    focus: torch.Tensor | None = None,
) -> torch.Tensor:
    """Random ``size`` x ``size`` crops, ``per_image`` from each batch element.

    (B, C, H, W) -> (B * per_image, C, size, size). Differentiable (plain indexing).
    Where the image is smaller than ``size`` it is used whole. ``focus`` (B, 1, H, W), if given,
    centres each crop on a pixel drawn from it (the inpainted region: patches that are all real
    pixels teach D nothing); an image whose focus is empty gets uniform crops.
    """
    b, _, h, w = x.shape
    if h <= size and w <= size:
        return x
    size_h, size_w = min(size, h), min(size, w)
    n = b * per_image
    device = x.device
    if focus is None:
        top = torch.randint(0, h - size_h + 1, (n,), generator=generator).to(device)
        left = torch.randint(0, w - size_w + 1, (n,), generator=generator).to(device)
    else:
        weights = focus.detach().float().reshape(b, h * w).cpu().clamp(min=0) + 1e-8
        centre = torch.multinomial(weights, per_image, replacement=True, generator=generator)
        centre = centre.reshape(n)
        top = (centre // w - size_h // 2).clamp(0, h - size_h).to(device)
        left = (centre % w - size_w // 2).clamp(0, w - size_w).to(device)
    batch = torch.arange(b, device=device).repeat_interleave(per_image)
    rows = top[:, None] + torch.arange(size_h, device=device)  # (N, size)
    cols = left[:, None] + torch.arange(size_w, device=device)
    # (N, size, size, C) -> (N, C, size, size)
    return x[batch[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class MultiResolutionPatchDiscriminator(nn.Module):
    """D1 on full-resolution patches, D2 on patches of the half-resolution input.

    ``forward(labels, image, generator)`` draws patch positions from ``generator``; pass generators
    seeded alike for the real and the synthetic image so that both are judged on the same patches.
    """

    def __init__(
        self, cfg: DiscriminatorConfig, label_channels: int, image_channels: int = 1
    ) -> None:
        super().__init__()
        self.cfg = cfg
        in_channels = label_channels + image_channels
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, cfg.ndf, cfg.n_layers) for _ in range(cfg.num_d)
        )

    def forward(
        self,
        labels: torch.Tensor,
        image: torch.Tensor,
        generator: torch.Generator | None = None,
        focus: torch.Tensor | None = None,
    ) -> list[list[torch.Tensor]]:
        """``focus`` (B, 1, S, S): where to centre the patches (see :func:`sample_patches`)."""
        # (B, C_label, S, S) ⊕ (B, 1, S, S) -> (B, C_label + 1, S, S)
        x = torch.cat([labels, image], dim=1)
        results = []
        for i, discriminator in enumerate(self.discriminators):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
                if focus is not None:
                    focus = F.max_pool2d(focus, 3, stride=2, padding=1)
            patches = sample_patches(
                x, self.cfg.patch_size, self.cfg.patches_per_image, generator, focus
            )
            results.append(discriminator(patches))
        return results
