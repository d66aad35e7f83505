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


# --------------------------------------------------------------------------------------- OASIS
# The per-pixel losses of OASIS (Schönfeld et al., ICLR 2021, eq. 2-3) for gan.models.oasis. A
# target is a (B, N + 1, H, W) map of class shares per pixel: channel 0 "fake", channel c the
# label map's class c - 1. Shares are one-hot at full resolution and class fractions where G1's
# half-resolution label map averages 2x2 blocks; a pixel whose shares are all 0 is not scored
# (DiffAugment's cut-out and the frame a translation uncovers: the same pixels in real and
# synthetic images, which no target could tell apart).


def oasis_class_weights(labels: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) class shares (zero where not scored) -> (N,) balancing weights.

    w_c = n / (N_present * count_c), counted over the whole batch, n the pixels scored: every class
    present in the batch then weighs n / N_present in all, so a small lesion class counts as much as
    the background; a class absent from the batch weighs 0.
    """
    counts = labels.detach().float().sum(dim=(0, 2, 3))
    present = counts > 0
    n_present = present.sum().clamp(min=1)
    return torch.where(present, counts.sum() / (n_present * counts.clamp(min=1e-12)), 0.0)


def oasis_target(labels: torch.Tensor, fake: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N, H, W) class shares and, for a synthetic image, (B, 1, H, W) the share of each pixel
    that is G's (1 everywhere in the label mode; the mask in the inpaint mode, whose synthetic image
    is real outside it) -> the (B, N + 1, H, W) target: "fake" where G drew, the class elsewhere.
    Without ``fake``: a real image's target, every pixel its class."""
    labels = labels.float()
    if fake is None:
        return torch.cat([torch.zeros_like(labels[:, :1]), labels], dim=1)
    fake = fake.float()
    scored = labels.sum(dim=1, keepdim=True)  # 1, or 0 where not scored
    return torch.cat([fake * scored, labels * (1 - fake)], dim=1)


def oasis_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor
) -> torch.Tensor:
    """Class-balanced cross-entropy: -sum_pixels sum_c w_c t_c log softmax(logits)_c over the
    pixels scored, divided by their number; w_0 ("fake") = 1, w_c = ``class_weights[c - 1]``."""
    weights = torch.cat([class_weights.new_ones(1), class_weights]).to(logits.device)
    log_p = F.log_softmax(logits.float(), dim=1)
    target = target.float()
    scored = target.sum().clamp(min=1.0)
    return -(weights[None, :, None, None] * target * log_p).sum() / scored


def oasis_discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    real_labels: torch.Tensor,
    fake_labels: torch.Tensor,
    fake_region: torch.Tensor,
) -> torch.Tensor:
    """OASIS eq. (2) for D: real pixels -> their class (balanced), synthetic pixels -> "fake" where
    G drew them (``fake_region``), their class where the synthetic image is real (inpaint). The
    class weights of each term come from that term's label map."""
    real = oasis_cross_entropy(
        real_logits, oasis_target(real_labels), oasis_class_weights(real_labels)
    )
    fake = oasis_cross_entropy(
        fake_logits, oasis_target(fake_labels, fake_region), oasis_class_weights(fake_labels)
    )
    return real + fake


def oasis_generator_loss(fake_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """OASIS eq. (3) for G: every synthetic pixel should be read as its true class (balanced)."""
    return oasis_cross_entropy(fake_logits, oasis_target(labels), oasis_class_weights(labels))
