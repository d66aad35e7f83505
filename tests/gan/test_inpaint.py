"""The inpaint mode: edit-shaped masks, the generator input, pasting, the seam score, the mode in
configs and checkpoints, warm-starting from a label model, and one training step."""

import numpy as np
import pytest
import torch

from gan.inpaint import (
    MASK_KINDS,
    changed_region,
    dilate,
    erode,
    inpaint_condition,
    lesion_region,
    paste,
    random_edit_mask,
    seam_score,
)
from tests.conftest import make_tiny_weights, phantom


def test_dilation_is_close_to_a_disc_and_erosion_undoes_it_on_a_blob():
    point = np.zeros((81, 81), bool)
    point[40, 40] = True
    disc = dilate(point, 20)
    assert abs(disc.sum() / (np.pi * 20.5**2) - 1) < 0.15  # an octagon within 15 % of the disc
    assert disc[40, 20] and disc[40, 60] and not disc[40, 19] and not disc[40, 61]
    assert not disc[40 - 17, 40 - 17]  # the corner of the square is cut off
    blob = dilate(point, 10)
    np.testing.assert_array_equal(erode(dilate(blob, 3), 3), blob)
    np.testing.assert_array_equal(dilate(point, 0), point)


@pytest.mark.parametrize("kind", list(MASK_KINDS))
def test_each_mask_kind_is_seeded_and_shaped_like_its_edit(kind):
    _, labels = phantom(128)
    a = random_edit_mask(labels, np.random.default_rng(3), kind)
    b = random_edit_mask(labels, np.random.default_rng(3), kind)
    np.testing.assert_array_equal(a, b)
    assert a.shape == labels.shape and a.dtype == bool and a.any()
    lung = labels > 0
    if kind == "lesions":
        assert a[labels >= 2].all() and a.sum() > (labels >= 2).sum()
    if kind == "lung":
        assert a[lung].all()
    if kind == "lobe":  # part of one lung, not all of it, not both
        assert 0 < (a & lung).sum() < 0.5 * lung.sum()
        assert not (a[:, :64] & lung[:, :64]).any() or not (a[:, 64:] & lung[:, 64:]).any()
    if kind == "blob":
        assert a.sum() < 0.6 * a.size


def test_drawn_masks_cover_every_kind_and_fall_back_to_blobs_without_lesions():
    _, labels = phantom(128)
    rng = np.random.default_rng(0)
    sizes = {random_edit_mask(labels, rng).sum() for _ in range(30)}
    assert len(sizes) > 10  # varied
    no_lesions = np.where(labels >= 2, 1, labels).astype(np.uint8)
    mask = random_edit_mask(no_lesions, np.random.default_rng(1), "lesions")
    assert mask.any() and not mask[no_lesions > 0].all()
    with pytest.raises(ValueError, match="unknown mask kind"):
        random_edit_mask(labels, rng, "square")


def test_condition_blanks_the_masked_image_and_paste_keeps_the_outside():
    image, labels = phantom(32)
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels.astype(np.int64)), 4)
    one_hot = one_hot.permute(2, 0, 1)[None].float()
    x = inpaint_condition(
        one_hot, torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None]
    )
    assert x.shape == (1, 6, 32, 32)
    assert (x[0, 4][torch.from_numpy(mask)] == 0).all()
    np.testing.assert_array_equal(x[0, 4].numpy()[~mask], image[~mask])
    np.testing.assert_array_equal(x[0, 5].numpy(), mask.astype(np.float32))
    pasted = paste(np.ones_like(image), image, mask)
    np.testing.assert_array_equal(pasted[~mask], image[~mask])
    assert (pasted[mask] == 1).all()


def test_seam_score_is_one_for_the_real_slice_and_high_for_a_flat_paste():
    rng = np.random.default_rng(0)
    real = np.clip(rng.normal(0.5, 0.02, (64, 64)), 0, 1)
    mask = np.zeros((64, 64), bool)
    mask[20:44, 20:44] = True
    assert seam_score(real, real, mask) == pytest.approx(1.0)
    seamed = paste(np.full_like(real, 0.9), real, mask)
    assert seam_score(seamed, real, mask) > 3
    assert np.isnan(seam_score(real, real, np.zeros_like(mask)))


def test_changed_and_lesion_regions_are_dilated_edits():
    _, labels = phantom(64)
    edited = labels.copy()
    edited[30:33, 20:23] = 3
    region = changed_region(labels, edited, 2)
    changed = labels != edited
    assert region[changed].all() and region.sum() > changed.sum()
    assert not changed_region(labels, labels, 5).any()
    lesions = lesion_region(labels, 3)
    assert lesions[labels >= 2].all()


def test_the_mode_is_in_the_config_and_a_wrong_mode_is_refused(tmp_path):
    from gan.checkpoint import CheckpointError
    from gan.config import ModelConfig, get_preset
    from gan.synthesizer import Synthesizer

    cfg = get_preset("tiny").replace_generator(mode="inpaint")
    assert cfg.generator.in_channels == 6 and get_preset("tiny").generator.in_channels == 4
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="generator mode"):
        get_preset("tiny").replace_generator(mode="outpaint").generator.validate()
    inpaint = make_tiny_weights(tmp_path / "inpaint.safetensors", "inpaint")
    label = make_tiny_weights(tmp_path / "label.safetensors")
    with pytest.raises(CheckpointError, match="label-mode generator, but an inpaint-mode one"):
        Synthesizer(label, device="cpu", mode="inpaint")
    with pytest.raises(CheckpointError, match="inpaint-mode generator, but a label-mode one"):
        Synthesizer(inpaint, device="cpu", mode="label")
    synth = Synthesizer(inpaint, device="cpu", mode="inpaint")
    _, labels = phantom(64)
    with pytest.raises(ValueError, match="needs the real image and a region mask"):
        synth.synthesize(labels)


def test_inpainting_changes_only_the_mask_at_any_image_size(tmp_path):
    from gan.synthesizer import Synthesizer

    synth = Synthesizer(make_tiny_weights(tmp_path / "i.safetensors", "inpaint"), device="cpu")
    image, labels = phantom(90)  # not the model's 64: resized in and out
    mask = np.zeros((90, 90), bool)
    mask[30:50, 20:40] = True
    out = synth.inpaint(labels, image, mask)
    assert out.shape == (90, 90)
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert not np.allclose(out[mask], image[mask])


def test_a_label_generator_warm_starts_an_inpaint_one_with_the_same_output():
    from gan.checkpoint import expand_input_channels
    from gan.config import get_preset
    from gan.labels import one_hot_torch
    from gan.models import GlobalLocalGenerator

    torch.manual_seed(0)
    label_g = GlobalLocalGenerator(get_preset("tiny").generator).eval()
    inpaint_g = GlobalLocalGenerator(get_preset("tiny").replace_generator(mode="inpaint").generator)
    inpaint_g.load_state_dict(expand_input_channels(label_g.state_dict(), inpaint_g.state_dict()))
    inpaint_g.eval()
    image, labels = phantom(64)
    one_hot = one_hot_torch(torch.from_numpy(labels.astype(np.int64))[None])
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:30, 10:30] = 1
    with torch.no_grad():
        expected = label_g(one_hot)
        got = inpaint_g(inpaint_condition(one_hot, torch.from_numpy(image)[None, None], mask))
    torch.testing.assert_close(got, expected)


def test_patches_centre_on_the_focus_and_a_masked_step_trains_inside_it():
    from gan.config import LossConfig, get_preset
    from gan.labels import one_hot_torch
    from gan.models import GlobalLocalGenerator, MultiResolutionPatchDiscriminator
    from gan.models.discriminator import sample_patches
    from gan.training import make_optimizers, train_step

    x = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 1, 64, 64)
    focus = torch.zeros(1, 1, 64, 64)
    focus[0, 0, 50, 10] = 1
    patches = sample_patches(x, 16, 5, torch.Generator().manual_seed(0), focus)
    assert patches.shape == (5, 1, 16, 16)
    assert all((p == 50 * 64 + 10).any() for p in patches)  # every patch holds the focus pixel

    torch.manual_seed(0)
    cfg = get_preset("tiny").replace_generator(mode="inpaint")
    g = GlobalLocalGenerator(cfg.generator)
    d = MultiResolutionPatchDiscriminator(cfg.discriminator, label_channels=4)
    opt_g, opt_d = make_optimizers(g, d)
    image, labels = phantom(64)
    one_hot = one_hot_torch(torch.from_numpy(labels.astype(np.int64))[None]).repeat(2, 1, 1, 1)
    real = torch.from_numpy(image)[None, None].repeat(2, 1, 1, 1)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 20:40, 10:30] = 1
    for stage in ("global", "joint"):
        losses = train_step(
            g, d, opt_g, opt_d, one_hot, real, stage, LossConfig(lambda_l1=10.0), 1, mask=mask
        )
        assert losses.g_l1 > 0 and np.isfinite(losses.g_total)
        assert losses.g_total == pytest.approx(
            losses.g_adv + 10 * losses.g_fm + 10 * losses.g_l1, rel=1e-4
        )
