"""The compose path, pinned where mutation testing (``make mutation``) found it loose: exact paste
and feather values, float32 results whatever the inputs, masks of any truthy dtype, shape checks,
the caching Compositor and Synthesizer.inpaint passing its stage and size on."""

import warnings

import numpy as np
import pytest
import torch

from gan.compose import Compositor, composite_into_nonlung, feather_weights
from gan.config import get_preset
from gan.inpaint import paste
from gan.synthesizer import Synthesizer
from tests.conftest import make_tiny_weights, phantom


def half_plane(shape=(6, 8), cols=4):
    """A lung filling the left ``cols`` columns: a straight vertical boundary."""
    lung = np.zeros(shape, bool)
    lung[:, :cols] = True
    return lung


def test_paste_numpy_takes_generated_inside_and_real_outside_as_float32():
    generated = np.full((2, 3), 0.5)  # float64 in: float32 out
    real = np.full((2, 3), -0.25)
    mask = np.array([[1, 0, 1], [0, 0, 1]], bool)
    out = paste(generated, real, mask)
    assert out.dtype == np.float32
    assert out.tolist() == [[0.5, -0.25, 0.5], [-0.25, -0.25, 0.5]]


def test_paste_torch_takes_generated_inside_and_real_outside():
    generated = torch.full((1, 1, 2, 2), 0.5)
    real = torch.full((1, 1, 2, 2), -0.25)
    mask = torch.tensor([[[[True, False], [False, True]]]])
    out = paste(generated, real, mask)
    assert out.dtype == torch.float32
    assert out.flatten().tolist() == [0.5, -0.25, -0.25, 0.5]


def test_feather_ramp_values_are_symmetric_about_the_boundary():
    """Pixel centres lie 0.5 px either side of the boundary: over a 2-px ramp the first pixel
    inside weighs 0.75 and the first outside 0.25."""
    w = feather_weights(half_plane(), 2)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w[0], [1, 1, 1, 0.75, 0.25, 0, 0, 0])
    w4 = feather_weights(half_plane(), 4)
    np.testing.assert_allclose(w4[0, 2:6], [0.875, 0.625, 0.375, 0.125])


def test_the_hard_paste_is_cheap_float32_and_takes_a_0_255_mask():
    lung = np.where(half_plane(), 255, 0).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero ramp width
        w = feather_weights(lung, 0)
    assert w.dtype == np.float32 and w[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    everything = feather_weights(np.full((3, 3), 255, np.uint8), 5)
    assert everything.dtype == np.float32 and everything.tolist() == [[1.0] * 3] * 3


def test_a_ramp_of_a_pixel_or_less_is_the_hard_paste():
    hard = feather_weights(half_plane(), 0)
    for px in (0.5, 1.0):
        np.testing.assert_array_equal(feather_weights(half_plane(), px), hard)


def test_composite_defaults_to_the_hard_paste_in_float32():
    lung = half_plane()
    synthetic = np.ones(lung.shape)  # float64 in: float32 out
    real = np.zeros(lung.shape)
    for out in (composite_into_nonlung(synthetic, real, lung), Compositor()(synthetic, real, lung)):
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, lung.astype(np.float32))


def test_composite_refuses_any_one_shape_that_differs():
    a = np.zeros((4, 4), np.float32)
    lung = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match=r"^shapes differ: synthetic \(4, 4\), real \(4, 4\), "):
        composite_into_nonlung(a, a, lung[:2])
    with pytest.raises(ValueError, match=r"synthetic \(2, 4\), real \(4, 4\), mask \(4, 4\)$"):
        composite_into_nonlung(a[:2], a, lung)


def test_compositor_takes_a_float_mask_like_the_plain_composite():
    rng = np.random.default_rng(1)
    synthetic, real = rng.random((2, 6, 8)).astype(np.float32)
    lung = half_plane().astype(np.float32)
    np.testing.assert_allclose(
        Compositor()(synthetic, real, lung, 2), composite_into_nonlung(synthetic, real, lung, 2)
    )


@pytest.fixture(scope="module")
def inpainter(tmp_path_factory):
    path = make_tiny_weights(tmp_path_factory.mktemp("w") / "inpaint.safetensors", "inpaint")
    return Synthesizer(path, device="cpu", cpu_bf16=False)


def test_inpaint_passes_stage_and_size_on_and_pastes_with_a_0_255_mask(inpainter):
    image, labels = phantom(64)
    region = np.zeros((64, 64), bool)
    region[20:40, 10:30] = True
    mask = np.where(region, 255, 0).astype(np.uint8)  # a region read from a PNG
    for stage, size in (("global", None), (None, 32)):
        out = inpainter.inpaint(labels, image, mask, stage=stage, size=size)
        generated = inpainter.synthesize(labels, stage, size, image, mask)
        np.testing.assert_array_equal(out[~region], image[~region])
        np.testing.assert_allclose(out[region], generated[region], atol=1e-6)


def test_inpaint_passes_its_seed_on_and_defaults_to_seed_0(tmp_path):
    from gan.checkpoint import export_generator
    from gan.models import GlobalLocalGenerator
    from gan.models.generator import NoiseInjection

    torch.manual_seed(0)
    cfg = get_preset("tiny").replace_generator(mode="inpaint", noise=True)
    generator = GlobalLocalGenerator(cfg.generator)
    with torch.no_grad():
        for m in generator.modules():
            if isinstance(m, NoiseInjection):
                m.scale.fill_(0.3)  # trained scales: the seed shows in the output
    path = tmp_path / "noisy-inpaint.safetensors"
    export_generator(generator, cfg, path, half=False)
    synth = Synthesizer(path, device="cpu", cpu_bf16=False)
    image, labels = phantom(64)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 10:30] = True
    seeded = synth.inpaint(labels, image, mask, seed=5)
    np.testing.assert_allclose(
        seeded[mask], synth.synthesize(labels, image=image, mask=mask, seed=5)[mask], atol=1e-6
    )
    np.testing.assert_array_equal(
        synth.inpaint(labels, image, mask), synth.inpaint(labels, image, mask, seed=0)
    )
    assert not np.allclose(seeded[mask], synth.inpaint(labels, image, mask)[mask])
