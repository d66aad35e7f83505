import pytest
import torch

from gan.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss


def outs(value, feat):
    return [[torch.full((2, 3, 4, 4), feat), torch.full((2, 1, 4, 4), value)] for _ in range(2)]


def test_bce_losses_reward_the_right_side():
    confident = discriminator_loss(outs(10.0, 0), outs(-10.0, 0))
    fooled = discriminator_loss(outs(-10.0, 0), outs(10.0, 0))
    assert confident < 1e-3 < fooled
    assert generator_adversarial_loss(outs(10.0, 0)) < generator_adversarial_loss(outs(-10.0, 0))


def test_hinge_option():
    assert discriminator_loss(outs(1.0, 0), outs(-1.0, 0), "hinge") == 0
    assert generator_adversarial_loss(outs(2.0, 0), "hinge") == -2
    with pytest.raises(ValueError):
        discriminator_loss(outs(1.0, 0), outs(-1.0, 0), "wgan")


def test_feature_matching_is_mean_l1_over_intermediate_features_only():
    real, fake = outs(5.0, 1.0), outs(-5.0, 3.0)
    # the decision maps differ by 10, but FM reads only intermediate layers: |1 - 3| = 2
    assert feature_matching_loss(real, fake).item() == pytest.approx(2.0)
    fake[0][0].requires_grad_(True)
    real[0][0].requires_grad_(True)
    feature_matching_loss(real, fake).backward()
    assert real[0][0].grad is None  # real features are detached


@pytest.mark.parametrize("stage", ["global", "joint"])
def test_label_mode_l1_covers_the_lung_only(stage):
    """--lambda-l1 in the label mode: L1 over the lung (what the composite keeps), not the body."""
    import numpy as np
    from torch.nn import functional as F

    from gan.config import LossConfig, get_preset
    from gan.labels import one_hot_torch
    from gan.models import GlobalLocalGenerator, MultiResolutionPatchDiscriminator
    from gan.training import make_optimizers, train_step
    from tests.conftest import phantom

    image, labels = phantom(64)
    one_hot = one_hot_torch(torch.from_numpy(labels.astype(np.int64))[None])
    real = torch.from_numpy(image)[None, None]
    lung = torch.from_numpy(labels > 0).float()[None, None]
    # outside the lung even at G1's half resolution (whole 2x2 blocks of background)
    outside = F.interpolate(F.max_pool2d(lung, 2), scale_factor=2) == 0

    def g_l1(target):
        torch.manual_seed(0)
        cfg = get_preset("tiny")
        g = GlobalLocalGenerator(cfg.generator)
        d = MultiResolutionPatchDiscriminator(cfg.discriminator, label_channels=4)
        opt_g, opt_d = make_optimizers(g, d)
        losses = train_step(
            g, d, opt_g, opt_d, one_hot, target, stage, LossConfig(lambda_l1=10.0), 1
        )
        assert losses.g_total == pytest.approx(
            losses.g_adv + 10 * losses.g_fm + 10 * losses.g_l1, rel=1e-4
        )
        return losses.g_l1

    base = g_l1(real)
    assert base > 0
    assert g_l1(torch.where(outside, -real, real)) == pytest.approx(base, rel=1e-5)  # body ignored
    assert g_l1(torch.where(outside, real, real + 0.5)) != pytest.approx(
        base, rel=1e-3
    )  # lung counts
