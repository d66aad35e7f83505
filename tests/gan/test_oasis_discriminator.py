"""The OASIS per-pixel segmentation discriminator (gan/models/oasis.py), its class-balanced losses
(gan/losses.py) and its branch of gan.training.train_step."""

import dataclasses

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gan import training
from gan.config import DiscriminatorConfig, ModelConfig, get_preset
from gan.labels import GGO, NUM_CLASSES, one_hot_torch
from gan.losses import (
    oasis_class_weights,
    oasis_cross_entropy,
    oasis_discriminator_loss,
    oasis_generator_loss,
    oasis_target,
)
from gan.models import (
    GlobalLocalGenerator,
    MultiResolutionPatchDiscriminator,
    OasisDiscriminator,
    build_discriminator,
)
from gan.training import make_optimizers, stage_mask, train_step
from tests.conftest import phantom

TINY_OASIS = get_preset("tiny").replace_discriminator(kind="oasis")


@pytest.mark.parametrize("size", [32, 64, 128, 256, 512])
def test_d_labels_every_pixel_with_fake_or_one_of_the_four_classes(size):
    """(B, 1, S, S) -> (B, 5, S, S) logits at every size training uses (the tiny preset's 32^2 and
    64^2, G1's 128^2 / 256^2, 512^2); the decoder features before them widen with ndf."""
    ndf = 4
    d = OasisDiscriminator(DiscriminatorConfig(ndf=ndf, kind="oasis"))
    with torch.no_grad():
        outputs = d(torch.zeros(2, 1, size, size))
    assert outputs[-1].shape == (2, NUM_CLASSES + 1, size, size)
    assert [tuple(f.shape[1:]) for f in outputs[:-1]] == [
        (4 * ndf, size // 8, size // 8),
        (2 * ndf, size // 4, size // 4),
        (ndf, size // 2, size // 2),
        (ndf, size, size),
    ]


def test_d_sees_the_image_alone_through_spectrally_normalised_convs_and_refuses_odd_sides():
    d = OasisDiscriminator(DiscriminatorConfig(ndf=4, kind="oasis"))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].in_channels == 1  # no label map: D must segment the image itself
    assert all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._NormBase) for m in d.modules())
    with pytest.raises(ValueError, match="multiples of 16"):
        d(torch.zeros(1, 1, 40, 40))


def test_the_config_kind_picks_the_discriminator_and_old_configs_load_as_patch():
    assert isinstance(build_discriminator(TINY_OASIS.discriminator), OasisDiscriminator)
    assert isinstance(
        build_discriminator(get_preset("tiny").discriminator), MultiResolutionPatchDiscriminator
    )
    assert all(get_preset(name).discriminator.kind == "patch" for name in ("paper", "lite"))
    old = get_preset("lite").to_dict()
    del old["discriminator"]["kind"]  # a checkpoint or export written before the field existed
    assert ModelConfig.from_dict(old) == get_preset("lite")
    assert ModelConfig.from_dict(TINY_OASIS.to_dict()) == TINY_OASIS
    bad = TINY_OASIS.to_dict()
    bad["discriminator"]["kind"] = "stylegan"
    with pytest.raises(ValueError, match="discriminator kind"):
        ModelConfig.from_dict(bad)


def _known_map():
    """Two 4x4 maps: 20 background, 8 lung, 4 GGO, no consolidation pixels in all."""
    maps = torch.zeros(2, 4, 4, dtype=torch.long)
    maps[0, :2] = 1  # 8 lung
    maps[1, 0] = 2  # 4 GGO
    return maps


def test_class_weights_balance_the_classes_present_in_the_batch():
    """w_c = H W / (N_present count_c) over the batch (32 pixels, 3 classes present); the absent
    consolidation weighs 0, and every present class weighs n / N_present in all."""
    one_hot = one_hot_torch(_known_map())
    weights = oasis_class_weights(one_hot)
    expected = torch.tensor([32 / (3 * 20), 32 / (3 * 8), 32 / (3 * 4), 0.0])
    torch.testing.assert_close(weights, expected)
    counts = one_hot.sum(dim=(0, 2, 3))
    torch.testing.assert_close(weights * counts, torch.tensor([32 / 3] * 3 + [0.0]))


def test_the_balanced_cross_entropy_is_torchs_weighted_cross_entropy_on_hard_labels():
    """On a full-resolution map the loss is F.cross_entropy with weight (1, w_1..w_4) and targets
    map + 1 (its weighted mean divides by the same total weight, the pixel count)."""
    torch.manual_seed(0)
    maps = _known_map()
    one_hot = one_hot_torch(maps)
    logits = torch.randn(2, 5, 4, 4)
    weights = oasis_class_weights(one_hot)
    ours = oasis_cross_entropy(logits, oasis_target(one_hot), weights)
    reference = F.cross_entropy(logits, maps + 1, weight=torch.cat([torch.ones(1), weights]))
    torch.testing.assert_close(ours, reference)
    # synthetic: every pixel "fake", unweighted
    fake = oasis_cross_entropy(logits, oasis_target(one_hot, torch.ones(2, 1, 4, 4)), weights)
    torch.testing.assert_close(fake, F.cross_entropy(logits, torch.zeros_like(maps)))
    # D's loss is the two terms, G's the real-style term on its image
    d_loss = oasis_discriminator_loss(logits, logits, one_hot, one_hot, torch.ones(2, 1, 4, 4))
    torch.testing.assert_close(d_loss, ours + fake)
    torch.testing.assert_close(oasis_generator_loss(logits, one_hot), ours)


def test_the_inpaint_target_is_fake_inside_the_mask_and_the_class_outside():
    one_hot = one_hot_torch(_known_map())
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 1
    target = oasis_target(one_hot, mask)
    assert torch.equal(target[:, :1], mask)
    assert torch.equal(target[:, 1:], one_hot * (1 - mask))
    assert torch.equal(target.sum(dim=1), torch.ones(2, 4, 4))  # one share per pixel
    # a pixel no label covers (DiffAugment's cut-out) is not scored, not even as "fake"
    one_hot[0, :, 0, 0] = 0
    assert oasis_target(one_hot, torch.ones(2, 1, 4, 4))[0, :, 0, 0].sum() == 0


def _batch(n=2):
    image, labels = phantom(64)
    one_hot = one_hot_torch(torch.from_numpy(labels.astype(np.int64))[None]).repeat(n, 1, 1, 1)
    return one_hot, torch.from_numpy(image)[None, None].repeat(n, 1, 1, 1), labels


def _spy(monkeypatch, name):
    """Record the arguments train_step passes to gan.training's ``name`` (and still call it)."""
    calls = []
    real = getattr(training, name)

    def spy(*args):
        calls.append([a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args])
        return real(*args)

    monkeypatch.setattr(training, name, spy)
    return calls


def _models(cfg, seed=0):
    torch.manual_seed(seed)
    g = GlobalLocalGenerator(cfg.generator)
    d = build_discriminator(cfg.discriminator)
    return g, d, *make_optimizers(g, d)


@pytest.mark.parametrize("stage", ["global", "joint"])
def test_an_inpaint_step_targets_fake_only_inside_the_mask(monkeypatch, stage):
    """D's synthetic image is the real one with G's output pasted in the mask, so D is told
    "fake" there (the mask at the stage's resolution) and the true class everywhere else."""
    calls = _spy(monkeypatch, "oasis_discriminator_loss")
    cfg = TINY_OASIS.replace_generator(mode="inpaint")
    g, d, opt_g, opt_d = _models(cfg)
    one_hot, real, _ = _batch()
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 20:40, 10:30] = 1
    train_step(g, d, opt_g, opt_d, one_hot, real, stage, cfg.loss, 1, mask=mask)
    ((_, _, real_labels, fake_labels, region),) = calls
    expected = stage_mask(mask, stage)
    assert torch.equal(region, expected)
    target = oasis_target(fake_labels, region)
    assert torch.equal(target[:, :1], expected)  # "fake" inside the mask, nowhere else
    torch.testing.assert_close(target[:, 1:], fake_labels * (1 - expected))
    torch.testing.assert_close(real_labels, training.stage_targets(one_hot, real, stage)[0])


def test_a_label_mode_step_calls_every_synthetic_pixel_fake_and_g_aims_for_the_true_class(
    monkeypatch,
):
    d_calls = _spy(monkeypatch, "oasis_discriminator_loss")
    g_calls = _spy(monkeypatch, "oasis_generator_loss")
    g, d, opt_g, opt_d = _models(TINY_OASIS)
    one_hot, real, _ = _batch()
    train_step(g, d, opt_g, opt_d, one_hot, real, "global", TINY_OASIS.loss, 1)
    ((_, _, _, fake_labels, region),) = d_calls
    assert torch.equal(region, torch.ones(2, 1, 32, 32))
    ((logits, labels),) = g_calls
    assert logits.shape == (2, 5, 32, 32)
    torch.testing.assert_close(labels, F.avg_pool2d(one_hot, 2))  # G1's half-resolution map
    torch.testing.assert_close(fake_labels, labels)


def test_diffaugment_moves_the_targets_with_the_image(monkeypatch):
    """With translation and cut-out, the mask is the GGO region: after augmenting, the "fake"
    region D is told of is still exactly the augmented map's GGO pixels, and pixels the cut-out
    or the translation's uncovered frame blank are scored in no class (so not at all)."""
    calls = _spy(monkeypatch, "oasis_discriminator_loss")
    seen = []
    cfg = TINY_OASIS.replace_generator(mode="inpaint")
    g, d, opt_g, opt_d = _models(cfg)
    d.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach().clone()))
    one_hot, real, labels = _batch()
    mask = torch.from_numpy(labels == GGO).float()[None, None].repeat(2, 1, 1, 1)
    policy = ("translation", "cutout")
    train_step(
        g, d, opt_g, opt_d, one_hot, real, "local", cfg.loss, 5, mask=mask, diffaugment=policy
    )
    ((_, _, real_labels, fake_labels, region),) = calls
    assert torch.equal(region, fake_labels[:, GGO : GGO + 1])
    assert region.sum() > 0
    for augmented_labels in (real_labels, fake_labels):
        scored = augmented_labels.sum(dim=1)
        assert not torch.equal(augmented_labels, one_hot)  # the augmentation ran
        assert (scored == 0).any() and ((scored == 0) | (scored == 1)).all()
    # the real half D saw is the real image moved as its labels were: the phantom's lung pixels
    # (and only they) read -0.8 where the augmented map says lung
    real_seen = seen[0][:2]
    lung = real_labels[:, 1:2] == 1
    torch.testing.assert_close(real_seen[lung], torch.full_like(real_seen[lung], -0.8))


def test_feature_matching_reads_ds_decoder_and_lambda_fm_0_turns_it_off():
    one_hot, real, _ = _batch()
    losses = {}
    for fm in (10.0, 0.0):
        cfg = dataclasses.replace(
            TINY_OASIS, loss=dataclasses.replace(TINY_OASIS.loss, lambda_fm=fm)
        )
        g, d, opt_g, opt_d = _models(cfg)
        losses[fm] = train_step(g, d, opt_g, opt_d, one_hot, real, "global", cfg.loss, 3)
    on, off = losses[10.0], losses[0.0]
    assert on.g_fm > 0 and on.g_total == pytest.approx(on.g_adv + 10 * on.g_fm, rel=1e-5)
    assert off.g_fm == 0 and off.g_total == pytest.approx(off.g_adv, rel=1e-6)
    assert on.d_real_fake == pytest.approx(off.d_real_fake)  # the D step is the same either way
