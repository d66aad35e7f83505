"""Parameter counts (checked against the arithmetic of the paper's layer widths), output shapes,
and the overfit test: a few dozen G/D steps on one batch bring G(m) towards x."""

import numpy as np
import pytest
import torch

from gan.config import PRESETS, get_preset
from gan.labels import one_hot_torch
from gan.models import GlobalLocalGenerator, MultiResolutionPatchDiscriminator
from gan.models.discriminator import sample_patches
from gan.training import make_optimizers, stage_targets, train_step
from tests.conftest import phantom


def count(module):
    return sum(p.numel() for p in module.parameters())


def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out  # weights + bias; instance norm has no parameters


def expected_g1(ngf=64, n_down=3, n_blocks=9, c_in=4):
    widths = [ngf * 2**i for i in range(n_down + 1)]  # 64, 128, 256, 512
    total = conv(c_in, ngf, 7)
    total += sum(conv(a, b, 3) for a, b in zip(widths, widths[1:], strict=False))  # downsampling
    total += n_blocks * 2 * conv(widths[-1], widths[-1], 3)  # residual blocks at 32x32
    total += sum(conv(b, a, 3) for a, b in zip(widths, widths[1:], strict=False))  # upsampling
    return total + conv(ngf, 1, 7)  # image head


def expected_g2(ngf_local=32, n_blocks=3, c_in=4):
    w = 2 * ngf_local
    return (
        conv(c_in, ngf_local, 7)
        + conv(ngf_local, w, 3)
        + n_blocks * 2 * conv(w, w, 3)
        + conv(w, ngf_local, 3)
        + conv(ngf_local, 1, 7)
    )


def expected_d(ndf=64, c_in=5):
    return (
        conv(c_in, ndf, 4)
        + conv(ndf, 2 * ndf, 4)
        + conv(2 * ndf, 4 * ndf, 4)
        + conv(4 * ndf, 8 * ndf, 4)
        + conv(8 * ndf, 1, 4)
    )


def test_paper_preset_parameter_counts_follow_the_arithmetic():
    cfg = get_preset("paper")
    g = GlobalLocalGenerator(cfg.generator)
    d = MultiResolutionPatchDiscriminator(cfg.discriminator, label_channels=4)
    assert count(g.global_generator) == expected_g1() == 45_590_209
    assert count(g.local_enhancer) == expected_g2() == 266_401
    assert count(d.discriminators[0]) == count(d.discriminators[1]) == expected_d() == 2_766_785
    assert 45e6 < count(g) < 47e6  # "about 46 M"


def test_lite_preset_is_half_width():
    cfg = get_preset("lite")
    g = GlobalLocalGenerator(cfg.generator)
    assert count(g.global_generator) == expected_g1(ngf=32)
    assert count(g.local_enhancer) == expected_g2(ngf_local=16)
    assert 11e6 < count(g) < 12e6  # "about 11.5 M"


@pytest.mark.slow
def test_paper_preset_output_shapes_at_512():
    cfg = get_preset("paper")
    g = GlobalLocalGenerator(cfg.generator).eval()
    d = MultiResolutionPatchDiscriminator(cfg.discriminator, label_channels=4)
    labels = one_hot_torch(torch.zeros(1, 512, 512, dtype=torch.long))
    with torch.no_grad():
        assert g.global_generator.forward_features(labels[:, :, ::2, ::2]).shape == (
            1,
            64,
            256,
            256,
        )
        assert g(labels, "global").shape == (1, 1, 256, 256)
        assert g(labels, "local").shape == (1, 1, 512, 512)
        out = g(labels, "joint")
        assert out.shape == (1, 1, 512, 512) and out.abs().max() <= 1
        decisions = d(labels, out)
    assert len(decisions) == 2  # D1 (full) and D2 (half resolution)
    for per_d in decisions:
        # 8 random 70x70 patches -> 64, 128, 256, 512 feature maps and a 1-channel decision map
        assert [t.shape[1] for t in per_d] == [64, 128, 256, 512, 1]
        assert per_d[0].shape[0] == 8 and per_d[-1].shape[-2:] == (12, 12)


def test_patches_come_from_the_input_and_are_reproducible():
    x = torch.arange(2 * 3 * 20 * 20, dtype=torch.float32).reshape(2, 3, 20, 20)
    a = sample_patches(x, 7, 4, torch.Generator().manual_seed(1))
    b = sample_patches(x, 7, 4, torch.Generator().manual_seed(1))
    assert a.shape == (8, 3, 7, 7) and torch.equal(a, b)
    # every patch is a contiguous window of its own batch element
    for i, patch in enumerate(a):
        src = x[i // 4]
        r, c = divmod(int((patch[0, 0, 0] - src[0, 0, 0]).item()), 20)
        assert torch.equal(patch, src[:, r : r + 7, c : c + 7])


def test_all_presets_build_and_tiny_runs_every_stage():
    for name in PRESETS:
        PRESETS[name].generator.validate()
    cfg = get_preset("tiny")
    g = GlobalLocalGenerator(cfg.generator)
    labels = one_hot_torch(torch.zeros(2, 64, 64, dtype=torch.long))
    assert g(labels, "global").shape == (2, 1, 32, 32)
    assert g(labels, "joint").shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match="unknown stage"):
        g(labels, "both")


@pytest.mark.parametrize("stage", ["global", "local", "joint"])
def test_overfit_one_batch_brings_g_towards_x(stage):
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    image, label_map = phantom(64)
    labels = one_hot_torch(torch.from_numpy(label_map).long()[None].repeat(2, 1, 1))
    x = torch.from_numpy(image)[None, None].repeat(2, 1, 1, 1)
    g = GlobalLocalGenerator(cfg.generator)
    d = MultiResolutionPatchDiscriminator(cfg.discriminator, label_channels=4)
    opt_g, opt_d = make_optimizers(g, d)
    target = stage_targets(labels, x, stage)[1]

    def l1():
        with torch.no_grad():
            return (g(labels, stage) - target).abs().mean().item()

    before = l1()
    for step in range(60):
        losses = train_step(g, d, opt_g, opt_d, labels, x, stage, cfg.loss, patch_seed=step)
    after = l1()
    assert after < 0.85 * before, (
        before,
        after,
    )  # measured: 0.23-0.30 global, 0.71-0.76 local, 0.48-0.55 joint
    assert all(v == v for v in losses.as_dict().values())  # no NaN


def _tiny_generator(seed=0):
    torch.manual_seed(seed)
    return GlobalLocalGenerator(get_preset("tiny").generator).eval()


def test_joint_stage_adds_g1_features_before_g2s_upsampling():
    """The joint output is G2's head(up(down(m) + G1.features(m averaged 2x2))), composed here by
    hand; the 2x2 average is the plain mean of each 2x2 block."""
    g = _tiny_generator()
    _, label_map = phantom(64)
    labels = one_hot_torch(torch.from_numpy(label_map).long()[None])
    half = labels.reshape(1, 4, 32, 2, 32, 2).mean(dim=(3, 5))
    with torch.no_grad():
        g1 = g.global_generator.features(half)
        g2 = g.local_enhancer
        by_hand = g2.head(g2.up(g2.down(labels) + g1))
        np.testing.assert_allclose(g(labels, "joint"), by_hand, atol=1e-6)
        np.testing.assert_allclose(g(labels, "global"), g.global_generator.head(g1), atol=1e-6)
        np.testing.assert_allclose(g(labels, "local"), g2.head(g2.up(g2.down(labels))), atol=1e-6)


def test_g1_weights_reach_the_joint_output_only():
    """Perturbing G1's feature weights changes the joint output (G1's features are used there)
    but not the local one; G1's own image head is not part of the joint path."""
    g = _tiny_generator()
    _, label_map = phantom(64)
    labels = one_hot_torch(torch.from_numpy(label_map).long()[None])
    with torch.no_grad():
        before = {stage: g(labels, stage) for stage in ("joint", "local")}
        g.global_generator.head[1].weight.mul_(-3.0)
        assert torch.equal(g(labels, "joint"), before["joint"])  # the head is G1-alone only
        g.global_generator.features[1].weight.add_(
            0.5 * torch.randn(g.global_generator.features[1].weight.shape)
        )
        after = {stage: g(labels, stage) for stage in ("joint", "local")}
    assert (after["joint"] - before["joint"]).abs().mean() > 0.01
    assert torch.equal(after["local"], before["local"])


@pytest.mark.parametrize("stage", ["global", "local", "joint"])
def test_changing_a_label_region_changes_the_output_there(stage):
    """Painting consolidation into one corner of the lung changes every stage's output, most of
    all in and near that corner: the generator reads its labels, at their place."""
    g = _tiny_generator()
    base = torch.ones(1, 64, 64, dtype=torch.long)
    edit = base.clone()
    edit[0, 4:16, 4:16] = 3
    with torch.no_grad():
        diff = (g(one_hot_torch(edit), stage) - g(one_hot_torch(base), stage)).abs()[0, 0]
    scale = diff.shape[-1] / 64  # G1 alone answers at half resolution
    near = diff[: int(24 * scale), : int(24 * scale)].mean()
    far = diff[int(40 * scale) :, int(40 * scale) :].mean()
    assert near > 0.05, near
    # untrained instance norm spreads a little everywhere; measured several times less far away
    assert near > 2.5 * far, (near, far)
