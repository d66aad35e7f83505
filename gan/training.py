"""One optimisation step of the cGAN (eq. 1), shared by the training CLI and the tests.

``train_step`` does a discriminator update (real vs synthetic, eq. 2) and then a generator update
(adversarial + lambda_FM x feature matching, eq. 3). For ``stage="global"`` (G1 alone) everything
runs at half resolution: the real image and the label map are downsampled to G1's output size.

With an edit ``mask`` (the ``inpaint`` mode) G sees the label map ⊕ the image blanked inside the
mask ⊕ the mask, D judges the label map ⊕ the real image with G's output pasted inside the mask (on
patches centred in the mask), and ``lambda_l1`` adds an L1 term inside the mask. In the label mode
``lambda_l1`` adds the L1 term over the lung (every non-background pixel of the label map): the part
of the image the composite takes from G.

With the OASIS discriminator (``DiscriminatorConfig.kind == "oasis"``) D sees the image alone and
segments it: the adversarial terms are OASIS's per-pixel, class-balanced cross-entropies
(gan.losses.oasis_*), where the synthetic image's "fake" pixels are G's (all of them, or the mask's
in the inpaint mode); feature matching reads D's decoder features. See :func:`_oasis_train_step`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable

import torch
from torch.nn import functional as F

from gan.config import LossConfig
from gan.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    oasis_discriminator_loss,
    oasis_generator_loss,
)
from gan.models import GlobalLocalGenerator, MultiResolutionPatchDiscriminator, OasisDiscriminator
from gan.models.generator import Stage, downsample_labels


@dataclasses.dataclass
class StepLosses:
    d_real_fake: float
    g_adv: float
    g_fm: float
    g_total: float
    g_l1: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def stage_targets(
    labels: torch.Tensor, image: torch.Tensor, stage: Stage
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (labels, image) pair D judges at this stage's output resolution."""
    if stage == "global":
        return downsample_labels(labels), F.avg_pool2d(image, 2)
    return labels, image


def stage_mask(mask: torch.Tensor, stage: Stage) -> torch.Tensor:
    """The edit mask at this stage's output resolution (a half-covered pixel counts as masked)."""
    return F.max_pool2d(mask, 2) if stage == "global" else mask


def is_oasis(discriminator: torch.nn.Module) -> bool:
    """Whether this D (maybe inside DDP and/or torch.compile) is the OASIS discriminator."""
    inner = getattr(discriminator, "module", discriminator)
    return isinstance(getattr(inner, "_orig_mod", inner), OasisDiscriminator)


def composite_l1(
    raw: torch.Tensor, real: torch.Tensor, focus: torch.Tensor | None, cond: torch.Tensor
) -> torch.Tensor:
    """Mean |G - real| over the pixels the composite takes from G: the region in the inpaint mode
    (``focus``), the lung (every non-background pixel of ``cond``) in the label mode."""
    weight = focus.float() if focus is not None else 1.0 - cond[:, :1].float()
    return ((raw.float() - real.float()).abs() * weight).sum() / weight.sum().clamp(min=1.0)


def generator_loss(g_adv, g_fm, raw, real, focus, cond, loss_cfg: LossConfig):
    """(G's total loss, its L1 term): adversarial + lambda_FM x feature matching (eq. 3), plus
    lambda_L1 x :func:`composite_l1` when that weight is positive."""
    g_loss = g_adv + loss_cfg.lambda_fm * g_fm
    g_l1 = torch.zeros((), device=g_loss.device)
    if loss_cfg.lambda_l1 > 0:
        g_l1 = composite_l1(raw, real, focus, cond)
        g_loss = g_loss + loss_cfg.lambda_l1 * g_l1
    return g_loss, g_l1


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@contextlib.contextmanager
def _frozen(module: torch.nn.Module):
    """``module``'s parameters take no gradient inside (G's step through D), and do again after."""
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in module.parameters():
            p.requires_grad_(True)


def train_step(
    generator: GlobalLocalGenerator,
    discriminator: MultiResolutionPatchDiscriminator | OasisDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    labels: torch.Tensor,
    image: torch.Tensor,
    stage: Stage,
    loss_cfg: LossConfig,
    patch_seed: int,
    autocast=None,
    mask: torch.Tensor | None = None,
    diffaugment: tuple[str, ...] = (),
) -> StepLosses:
    """One D step and one G step.

    labels : (B, 4, S, S) one-hot; image : (B, 1, S, S) in [-1, 1].
    patch_seed : seeds the discriminator's patch positions (the same patches for real and synthetic).
    autocast : a context-manager factory (bf16 on CUDA) or None.
    mask : (B, 1, S, S) in {0, 1} for the inpaint mode, else None.
    diffaugment : parts of gan.diffaugment.POLICIES applied to everything D sees (real and
    synthetic alike; in the G step real and synthetic under the same draw, so that feature matching
    compares like with like). G's noise inputs, if any, are seeded from ``patch_seed`` too.
    """
    from gan.diffaugment import diff_augment
    from gan.inpaint import inpaint_condition, paste

    if is_oasis(discriminator):
        return _oasis_train_step(
            generator, discriminator, opt_g, opt_d, labels, image, stage, loss_cfg, patch_seed,
            autocast, mask, diffaugment,
        )  # fmt: skip
    autocast = autocast or contextlib.nullcontext
    cond, real = stage_targets(labels, image, stage)
    plain_d = getattr(discriminator, "module", discriminator)  # DDP's inner module, if wrapped
    focus = None if mask is None else stage_mask(mask, stage)
    g_input = labels if mask is None else inpaint_condition(labels, image, mask)

    def augmented(c, img, f, seed):
        """D's inputs under DiffAugment (``f``, the focus, moves with the labels)."""
        if not diffaugment:
            return c, img, f
        draw = torch.Generator().manual_seed(seed)
        if f is None:
            c, img = diff_augment(c, img, diffaugment, draw)
            return c, img, None
        both, img = diff_augment(torch.cat([c, f.to(c.dtype)], 1), img, diffaugment, draw)
        return both[:, :-1], img, both[:, -1:]

    def judge(img: torch.Tensor):
        # the same seeded patch positions (and augmentation) for real and synthetic: feature
        # matching compares them
        c, img, f = augmented(cond, img, focus, patch_seed + 3)
        return plain_d(c, img, generator=torch.Generator().manual_seed(patch_seed), focus=f)

    noise_seeds = [patch_seed * 4096 + i for i in range(labels.shape[0])]
    # Discriminator: eq. (2), real -> 1, synthetic -> 0. One forward of the (possibly DDP-wrapped)
    # D over real and synthetic together, so DDP sees exactly one forward per backward.
    with autocast():
        raw = generator(g_input, stage=stage, noise_seeds=noise_seeds)
        fake = raw if focus is None else paste(raw, real, focus)  # only the region is G's
        d_cond, d_image, d_focus = augmented(
            torch.cat([cond, cond]),
            torch.cat([real, fake.detach()]),
            None if focus is None else torch.cat([focus, focus]),
            patch_seed + 2,
        )
        both = discriminator(
            d_cond,
            d_image,
            generator=torch.Generator().manual_seed(patch_seed + 1),
            focus=d_focus,
        )
        # patches are batch-major, so each output's first half is the real images'
        d_real = [[t[: t.shape[0] // 2] for t in outs] for outs in both]
        d_fake = [[t[t.shape[0] // 2 :] for t in outs] for outs in both]
        d_loss = discriminator_loss(d_real, d_fake, loss_cfg.gan_loss)
    _update(opt_d, d_loss)

    # Generator: adversarial + lambda_FM * feature matching (eq. 1, 3), through the plain D.
    with _frozen(plain_d):
        with autocast():
            fake_out = judge(fake)
            with torch.no_grad():
                real_out = judge(real)
            g_adv = generator_adversarial_loss(fake_out, loss_cfg.gan_loss)
            g_fm = feature_matching_loss(real_out, fake_out)
            g_loss, g_l1 = generator_loss(g_adv, g_fm, raw, real, focus, cond, loss_cfg)
        _update(opt_g, g_loss)
    return StepLosses(*(float(t.detach()) for t in (d_loss, g_adv, g_fm, g_loss, g_l1)))


def _oasis_train_step(
    generator: GlobalLocalGenerator,
    discriminator: OasisDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    labels: torch.Tensor,
    image: torch.Tensor,
    stage: Stage,
    loss_cfg: LossConfig,
    patch_seed: int,
    autocast=None,
    mask: torch.Tensor | None = None,
    diffaugment: tuple[str, ...] = (),
) -> StepLosses:
    """:func:`train_step` with the OASIS discriminator (the same arguments, seeds and DDP rules).

    D: real pixels -> their class, synthetic pixels -> "fake" inside G's region (everything in the
    label mode, the mask in the inpaint mode, whose synthetic image is real outside it) and their
    class outside it. G: its image's pixels -> their true class, + lambda_FM x feature matching on
    D's decoder features (skipped at lambda_FM = 0) + the L1 term as in the patch path.
    DiffAugment moves the label map (and the region, and a "scored" channel that the cut-out and
    the translation's uncovered frame zero) with the image, so every target stays on its pixel.
    """
    from gan.diffaugment import diff_augment
    from gan.inpaint import inpaint_condition, paste

    autocast = autocast or contextlib.nullcontext
    cond, real = stage_targets(labels, image, stage)
    plain_d = getattr(discriminator, "module", discriminator)  # DDP's inner module, if wrapped
    focus = None if mask is None else stage_mask(mask, stage)
    g_input = labels if mask is None else inpaint_condition(labels, image, mask)
    n_classes = cond.shape[1]

    def augmented(c, img, region, seed):
        """D's input and its label map (zero where not scored) and G's region, augmented alike."""
        if not diffaugment:
            return img, c, region
        scored = torch.ones_like(c[:, :1])
        parts = [c, scored] if region is None else [c, region.to(c.dtype), scored]
        both, img = diff_augment(
            torch.cat(parts, 1), img, diffaugment, torch.Generator().manual_seed(seed)
        )
        scored = both[:, -1:]
        c = both[:, :n_classes] * scored
        return img, c, None if region is None else both[:, n_classes : n_classes + 1] * scored

    noise_seeds = [patch_seed * 4096 + i for i in range(labels.shape[0])]
    b = labels.shape[0]
    # Discriminator: one forward over real and synthetic together (DDP: one forward per backward)
    with autocast():
        raw = generator(g_input, stage=stage, noise_seeds=noise_seeds)
        fake = raw if focus is None else paste(raw, real, focus)  # only the region is G's
        region = torch.ones_like(real) if focus is None else focus.to(real.dtype)
        d_image, d_labels, d_region = augmented(
            torch.cat([cond, cond]),
            torch.cat([real, fake.detach()]),
            torch.cat([torch.zeros_like(region), region]),
            patch_seed + 2,
        )
        logits = discriminator(d_image)[-1]
        d_loss = oasis_discriminator_loss(
            logits[:b], logits[b:], d_labels[:b], d_labels[b:], d_region[b:]
        )
    _update(opt_d, d_loss)

    # Generator: every synthetic pixel read as its class, + lambda_FM * feature matching
    with _frozen(plain_d):
        with autocast():
            # real and synthetic under one draw, so that feature matching compares like with like
            g_image, g_labels, _ = augmented(cond, fake, None, patch_seed + 3)
            fake_out = plain_d(g_image)
            g_adv = oasis_generator_loss(fake_out[-1], g_labels)
            g_fm = torch.zeros((), device=g_adv.device)
            if loss_cfg.lambda_fm > 0:
                with torch.no_grad():
                    real_out = plain_d(augmented(cond, real, None, patch_seed + 3)[0])
                g_fm = feature_matching_loss([real_out], [fake_out])
            g_loss, g_l1 = generator_loss(g_adv, g_fm, raw, real, focus, cond, loss_cfg)
        _update(opt_g, g_loss)
    return StepLosses(*(float(t.detach()) for t in (d_loss, g_adv, g_fm, g_loss, g_l1)))


#: the paper's Adam settings (§IV-A): make_optimizers' defaults, and train's --lr/--beta1/--beta2
PAPER_LR = 2e-4
PAPER_BETAS = (0.5, 0.999)


def make_optimizers(
    generator: torch.nn.Module | Iterable[torch.nn.Parameter],
    discriminator: torch.nn.Module | Iterable[torch.nn.Parameter],
    lr: float = PAPER_LR,
    betas: tuple[float, float] = PAPER_BETAS,
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and D (by default the paper's lr 2e-4, betas 0.5 / 0.999): the one place the
    cGAN's optimizers are built, for the training CLI, the benchmarks and the tests.

    Each argument is a module (all its parameters) or the parameters to train, in order: the
    training CLI passes one stage's share of G (``training_cli.train.trainable_parameters``; G1
    alone in the global stage). Each optimizer has one parameter group in that order, which is the
    order a checkpoint's optimizer state is matched to the parameters by.
    """

    def params(x):
        return x.parameters() if isinstance(x, torch.nn.Module) else x

    return (
        torch.optim.Adam(params(generator), lr=lr, betas=betas),
        torch.optim.Adam(params(discriminator), lr=lr, betas=betas),
    )
