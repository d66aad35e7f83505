"""Losses of eq. (1)-(3): the cGAN loss (BCE, or hinge as an option) and feature matching.

Discriminator outputs are lists (one per discriminator D_i) of lists of block outputs, the last of
which is the patch decision map (logits).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

DiscOutputs = list[list[torch.Tensor]]


def discriminator_loss(real: DiscOutputs, fake: DiscOutputs, kind: str = "bce") -> torch.Tensor:
    """Eq. (2) for D: real patches -> 1, synthetic -> 0, averaged over D1 and D2."""
    total = torch.zeros((), device=real[0][-1].device)
    for real_i, fake_i in zip(real, fake, strict=True):
        r, f = real_i[-1].float(), fake_i[-1].float()
        if kind == "bce":
            total = total + F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
            total = total + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        elif kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            raise ValueError(f"unknown GAN loss {kind!r}")
    return 0.5 * total / len(real)


def generator_adversarial_loss(fake: DiscOutputs, kind: str = "bce") -> torch.Tensor:
    """Eq. (2) for G, non-saturating: synthetic patches should be judged real."""
    total = torch.zeros((), device=fake[0][-1].device)
    for fake_i in fake:
        f = fake_i[-1].float()
        if kind == "bce":
            total = total + F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
        elif kind == "hinge":
            total = total - f.mean()
        else:
            raise ValueError(f"unknown GAN loss {kind!r}")
    return total / len(fake)


def feature_matching_loss(real: DiscOutputs, fake: DiscOutputs) -> torch.Tensor:
    """Eq. (3): mean L1 distance (1/N_i ||.||_1) between D's intermediate features on real and
    synthetic inputs, over every intermediate block of D1 and D2, averaged over the D_i.

    The real features are detached: feature matching trains G only.
    """
    total = torch.zeros((), device=fake[0][-1].device)
    for real_i, fake_i in zip(real, fake, strict=True):
        for r, f in zip(real_i[:-1], fake_i[:-1], strict=True):
            total = total + F.l1_loss(f.float(), r.detach().float())
    return total / len(fake)
