"""Crop-window inpainting (``Synthesizer.inpaint_region``, ``gan.inpaint.inpaint_window``): the
window's geometry, the pixels it leaves alone, the fallback to the whole slice, noise seeds, and
that a window normalised by the slice's statistics is the generator's answer on that window."""

import copy

import numpy as np
import pytest
import torch

from gan.inpaint import Window, inpaint_condition, inpaint_window
from gan.labels import one_hot_torch
from gan.synthesizer import Synthesizer
from tests.conftest import make_tiny_weights, phantom


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("w") / "inpaint.safetensors", "inpaint")


@pytest.fixture
def synthesizer(weights):
    # fp32: the comparisons within float tolerance are not about bf16's rounding
    return Synthesizer(weights, device="cpu", mode="inpaint", cpu_bf16=False)


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _box(mask):
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def test_the_window_is_the_box_plus_margin_on_the_accepted_grid_clipped_to_the_slice():
    mask = np.zeros((256, 192), bool)
    mask[100:120, 40:61] = True
    # rows 100-10 = 90 -> 80 on the 16 grid; 120+10 = 130 -> 144. cols 30 -> 16; 71 -> 80
    assert inpaint_window(mask, 10, 16, 1.0) == Window(80, 16, 64, 64)
    for margin in (0, 7, 33):
        w = inpaint_window(mask, margin, 16, 1.0)
        r0, r1, c0, c1 = _box(mask)
        assert w.top % 16 == 0 and w.left % 16 == 0 and w.height % 16 == 0 and w.width % 16 == 0
        # it holds the box plus the margin, and is the smallest such window on the grid
        assert w.top <= r0 - margin < w.top + 16 and w.left <= c0 - margin < w.left + 16
        assert w.top + w.height - 16 < r1 + margin <= w.top + w.height
        assert w.left + w.width - 16 < c1 + margin <= w.left + w.width
    edge = np.zeros((256, 192), bool)
    edge[250:256, 0:3] = True  # the bottom-left corner: the margin is cut by the slice's edges
    assert inpaint_window(edge, 20, 16, 1.0) == Window(224, 0, 32, 32)
    assert inpaint_window(np.ones((256, 192), bool), 0, 16, 1.0) == Window(0, 0, 256, 192)
    assert inpaint_window(np.zeros((64, 64), bool), 8, 8, 1.0) is None
    # the fallback: more than max_fraction of the slice
    assert inpaint_window(mask, 10, 16, 64 * 64 / (256 * 192)) == Window(80, 16, 64, 64)
    assert inpaint_window(mask, 10, 16, 64 * 64 / (256 * 192) - 1e-6) is None


def test_outside_the_mask_is_the_input_bit_for_bit_and_the_window_is_the_one_reported(
    synthesizer,
):
    image, labels = phantom(64)
    mask = _disc(labels.shape, (30, 20), 4)
    synthesizer.prepare_region(labels, image)
    out = synthesizer.inpaint_region(labels, image, mask, margin_px=6, max_fraction=1.0)
    assert synthesizer.window_multiple == 8  # tiny: 2 x 2^n_downsample, n_downsample = 2
    expected = inpaint_window(mask, 6, 8, 1.0)
    assert synthesizer.last_window == expected and expected.height < 64 > expected.width
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert np.abs(out[mask] - image[mask]).min() > 0  # every region pixel regenerated


def test_a_large_region_falls_back_to_the_whole_slice_exactly(synthesizer):
    image, labels = phantom(64)
    mask = labels > 0  # both lungs: a window of most of the slice
    assert inpaint_window(mask, 8, 8, 0.5) is None
    out = synthesizer.inpaint_region(labels, image, mask, margin_px=8, max_fraction=0.5)
    assert synthesizer.last_window is None
    np.testing.assert_array_equal(out, synthesizer.inpaint(labels, image, mask))


def test_the_first_call_on_a_slice_is_the_whole_slice_later_ones_are_windowed(synthesizer):
    image, labels = phantom(64)
    mask = _disc(labels.shape, (30, 44), 3)
    first = synthesizer.inpaint_region(labels, image, mask, margin_px=4, max_fraction=1.0)
    assert synthesizer.last_window is None  # no slice statistics yet: the whole slice
    np.testing.assert_array_equal(first, synthesizer.inpaint(labels, image, mask))
    synthesizer.inpaint_region(labels, image, mask, margin_px=4, max_fraction=1.0)
    assert synthesizer.last_window is not None
    other = image.copy()
    other[0, 0] += 0.5  # another image: its own statistics, so the whole slice again
    synthesizer.inpaint_region(labels, other, mask, margin_px=4, max_fraction=1.0)
    assert synthesizer.last_window is None


def test_a_region_at_the_image_corner_works(synthesizer):
    image, labels = phantom(64)
    mask = np.zeros(labels.shape, bool)
    mask[58:, 59:] = True
    synthesizer.prepare_region(labels, image)
    for statistics in ("slice", "window"):
        out = synthesizer.inpaint_region(
            labels, image, mask, margin_px=5, max_fraction=1.0, statistics=statistics
        )
        assert synthesizer.last_window == Window(48, 48, 16, 16)
        np.testing.assert_array_equal(out[~mask], image[~mask])
        assert np.isfinite(out).all() and not np.array_equal(out[mask], image[mask])


def test_a_margin_as_large_as_the_slice_equals_whole_slice_inpainting(synthesizer):
    image, labels = phantom(64)
    mask = _disc(labels.shape, (34, 22), 5)
    whole = synthesizer.inpaint(labels, image, mask)
    own = synthesizer.inpaint_region(
        labels, image, mask, margin_px=1000, max_fraction=1.0, statistics="window"
    )
    assert synthesizer.last_window == Window(0, 0, 64, 64)
    np.testing.assert_allclose(own, whole, atol=1e-5)
    # the slice's statistics, kept from this same input's whole-slice pass, replayed on it
    synthesizer.inpaint_region(labels, image, mask, margin_px=1000, max_fraction=1.0)
    replayed = synthesizer.inpaint_region(labels, image, mask, margin_px=1000, max_fraction=1.0)
    assert synthesizer.last_window == Window(0, 0, 64, 64)
    np.testing.assert_allclose(replayed, whole, atol=1e-5)


def _reference_with_slice_statistics(generator, labels, image, mask, opened, window, stage):
    """The generator on ``window`` with each instance norm swapped for a batch norm holding the
    mean and variance its input had on the whole slice as it ``opened`` (nothing masked)."""
    g = copy.deepcopy(generator)
    norms = [(n, m) for n, m in g.named_modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    seen = {}
    hooks = [
        m.register_forward_hook(
            lambda mod, inp, out, n=n: seen.__setitem__(
                n, (inp[0].mean((0, 2, 3)), inp[0].var((0, 2, 3), unbiased=False))
            )
        )
        for n, m in norms
    ]

    def condition(lab, img, msk):
        lab = torch.from_numpy(lab.astype(np.int64))[None]
        img = torch.from_numpy(img.astype(np.float32))[None, None]
        msk = torch.from_numpy(msk.astype(np.float32))[None, None]
        return inpaint_condition(one_hot_torch(lab), img, msk)

    with torch.no_grad():
        g(condition(opened, image, np.zeros_like(mask)), stage=stage)
        for h in hooks:
            h.remove()
        for name, module in norms:
            parent, _, child = name.rpartition(".")
            bn = torch.nn.BatchNorm2d(module.num_features, eps=module.eps, affine=False).eval()
            bn.running_mean.copy_(seen[name][0])
            bn.running_var.copy_(seen[name][1])
            setattr(g.get_submodule(parent), child, bn)
        rows, cols = window.slices
        crop = condition(labels[rows, cols], image[rows, cols], mask[rows, cols])
        out = g(crop, stage=stage)[0, 0]
    result = image.copy()
    result[rows, cols] = np.where(mask[rows, cols], out.clamp(-1, 1).numpy(), image[rows, cols])
    return result


def test_a_window_is_normalised_by_the_statistics_of_the_slice_as_it_opened(synthesizer):
    image, labels = phantom(64)
    mask = _disc(labels.shape, (28, 45), 4)
    edited = labels.copy()
    edited[mask & (labels > 0)] = 3  # the edit: consolidation painted
    synthesizer.prepare_region(labels, image)
    out = synthesizer.inpaint_region(edited, image, mask, margin_px=6, max_fraction=1.0)
    window = synthesizer.last_window
    assert window is not None and window.height < 64
    expected = _reference_with_slice_statistics(
        synthesizer.generator, edited, image, mask, labels, window, synthesizer.stage
    )
    np.testing.assert_allclose(out, expected, atol=1e-5)
    own = synthesizer.inpaint_region(
        edited, image, mask, margin_px=6, max_fraction=1.0, statistics="window"
    )
    assert np.abs(own - out)[mask].max() > 1e-3  # the window's own statistics differ


def test_a_slice_at_another_size_is_windowed_at_the_model_scale(synthesizer):
    image, labels = phantom(96)  # the model is 64^2: resampled to it, as inpaint does
    mask = _disc(labels.shape, (48, 30), 6)
    whole = synthesizer.inpaint(labels, image, mask)
    out = synthesizer.inpaint_region(
        labels, image, mask, margin_px=1000, max_fraction=1.0, statistics="window"
    )
    np.testing.assert_array_equal(out[~mask], image[~mask])
    np.testing.assert_allclose(out, whole, atol=1e-5)
    synthesizer.prepare_region(labels, image)
    out = synthesizer.inpaint_region(labels, image, mask, margin_px=4, max_fraction=1.0)
    assert synthesizer.last_window.height < 64  # a window of the 64^2 model-scale slice
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert np.abs(out - whole)[mask].max() < 0.5 * np.abs(image - whole)[mask].max()


def _noisy_inpaint_weights(path):
    from gan.checkpoint import export_generator
    from gan.config import get_preset
    from gan.models import GlobalLocalGenerator
    from gan.models.generator import NoiseInjection

    torch.manual_seed(0)
    cfg = get_preset("tiny-texture").replace_generator(mode="inpaint")
    generator = GlobalLocalGenerator(cfg.generator)
    with torch.no_grad():  # the noise scales start at zero: make the noise show
        for module in generator.modules():
            if isinstance(module, NoiseInjection):
                module.scale.fill_(0.5)
    export_generator(generator, cfg, path, half=False)
    return path


def test_seeds_are_honoured_in_a_window(tmp_path):
    synthesizer = Synthesizer(
        _noisy_inpaint_weights(tmp_path / "noisy.safetensors"), device="cpu", cpu_bf16=False
    )
    image, labels = phantom(64)
    mask = _disc(labels.shape, (30, 20), 5)
    synthesizer.prepare_region(labels, image)

    def run(seed):
        out = synthesizer.inpaint_region(
            labels, image, mask, margin_px=6, max_fraction=1.0, seed=seed
        )
        assert synthesizer.last_window is not None
        np.testing.assert_array_equal(out[~mask], image[~mask])
        return out

    np.testing.assert_array_equal(run(3), run(3))
    assert np.abs(run(3) - run(4))[mask].max() > 1e-3


def test_an_empty_mask_returns_the_input_and_a_label_model_is_refused(synthesizer, tmp_path):
    image, labels = phantom(64)
    out = synthesizer.inpaint_region(labels, image, np.zeros(labels.shape, bool))
    np.testing.assert_array_equal(out, image)
    assert synthesizer.last_window is None and synthesizer.last_inference_ms == 0.0  # no G run
    label_model = Synthesizer(make_tiny_weights(tmp_path / "label.safetensors"), device="cpu")
    with pytest.raises(ValueError, match="inpaint-mode"):
        label_model.inpaint_region(labels, image, labels > 1)
