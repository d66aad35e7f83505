"""A per-pixel segmentation discriminator in the manner of OASIS (Schönfeld et al., "You Only Need
Adversarial Supervision for Semantic Image Synthesis", ICLR 2021), written from the paper.

D sees the image alone (no label map) and labels every pixel with one of N + 1 classes: class 0
"fake", classes 1..N the label map's classes (background, lung, GGO, consolidation). Its loss is a
class-balanced cross-entropy (gan.losses.oasis_cross_entropy): real pixels -> their class,
synthetic ones -> "fake"; G is trained to have its pixels read as their true class. Each pixel is
thus judged against its own label, not a 70x70 patch against a label crop, which is the paper's
answer to few-data, label-conditioned synthesis.

The network is a U-Net: four residual down blocks (widths ndf, 2ndf, 4ndf, 8ndf; 1/2 .. 1/16 of
the side), four residual up blocks back to full resolution, each up block fed the matching
encoder output (concatenated), and a 1x1 conv to the N + 1 logits. Every conv is spectrally
normalised; there is no other normalisation. Sizes must be multiples of 16.

Not here: LabelMix (the paper's consistency regulariser) and OASIS's 3D noise in G.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from gan.config import DiscriminatorConfig
from gan.labels import NUM_CLASSES

#: how many times the side is halved (the input side must be a multiple of 2 ** DEPTH)
DEPTH = 4
FAKE = 0  # the "fake" class; class c of the label map is class c + 1


def _conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    return spectral_norm(nn.Conv2d(cin, cout, kernel, padding=kernel // 2))


class DownBlock(nn.Module):
    """Residual block that halves the side: [act] -> 3x3 conv -> 2x2 average -> act -> 3x3 conv,
    plus a shortcut 2x2 average -> 1x1 conv. The second conv runs at the halved side (a quarter
    of the cost of running both at the input's). ``first``: no activation on the raw image."""

    def __init__(self, cin: int, cout: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = _conv(cin, cout, 3)
        self.conv2 = _conv(cout, cout, 3)
        self.shortcut = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.leaky_relu(x, 0.2)
        h = F.avg_pool2d(self.conv1(h), 2)
        h = self.conv2(F.leaky_relu(h, 0.2))
        return h + self.shortcut(F.avg_pool2d(x, 2))


class UpBlock(nn.Module):
    """Residual block that doubles the side, the mirror of :class:`DownBlock`: act -> 3x3 conv ->
    nearest x2 -> act -> 3x3 conv, plus a shortcut 1x1 conv -> nearest x2. The first conv runs at
    the input's side (the wide input is then convolved at a quarter of the cost)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _conv(cin, cout, 3)
        self.conv2 = _conv(cout, cout, 3)
        self.shortcut = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.conv1(F.leaky_relu(x, 0.2)), scale_factor=2, mode="nearest")
        h = self.conv2(F.leaky_relu(h, 0.2))
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class OasisDiscriminator(nn.Module):
    """U-Net segmentation discriminator: (B, 1, H, W) image in [-1, 1] -> per-pixel logits.

    ``forward`` returns the list of the four up blocks' outputs (1/8, 1/4, 1/2, 1 of the side;
    they feed the feature-matching loss) followed by the (B, N + 1, H, W) logits, the list shape
    one D_i of the patch discriminator returns.
    """

    def __init__(
        self, cfg: DiscriminatorConfig, num_classes: int = NUM_CLASSES, image_channels: int = 1
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        widths = [cfg.ndf * 2**i for i in range(DEPTH)]  # ndf, 2ndf, 4ndf, 8ndf
        ins = [image_channels, *widths[:-1]]
        self.down = nn.ModuleList(
            DownBlock(cin, cout, first=i == 0)
            for i, (cin, cout) in enumerate(zip(ins, widths, strict=True))
        )
        # up block k takes the previous up block's output (the deepest encoder output for the
        # first) and, after the first, the encoder output of the same side concatenated to it
        ups = []
        cin = widths[-1]
        for i in reversed(range(DEPTH)):
            cout = widths[max(i - 1, 0)]
            ups.append(UpBlock(cin, cout))
            cin = cout + widths[i - 1] if i > 0 else cout
        self.up = nn.ModuleList(ups)
        self.head = _conv(widths[0], num_classes + 1, 1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        h, w = image.shape[-2:]
        step = 2**DEPTH
        if h % step or w % step:
            raise ValueError(
                f"the OASIS discriminator needs sides that are multiples of {step}, not {h}x{w}"
            )
        skips = []
        x = image
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the deepest output is the decoder's input, not a skip
        features = []
        for block in self.up:
            x = block(x)
            features.append(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        features.append(self.head(F.leaky_relu(x, 0.2)))
        return features
