"""Parameter counts (checked against the arithmetic of the paper's layer widths), output shapes,
and the overfit test: a few dozen G/D steps on one batch bring G(m) towards x."""

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
