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
