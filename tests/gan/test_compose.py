"""The pipeline's single homes: composing a result into its slice (gan/compose.py), the slice's
units and back (CTSlice.to_model_range / from_model_range) and the lung-plus-lesions label map
(gan.lung.labels_for_slice), and the callers that must agree with them."""

import numpy as np
import pytest

from gan.compose import Compositor, compose, feather_weights
from gan.ctio import LUNG_WINDOW, CTSlice, Window
from gan.labels import lung_region
from gan.lung import derive_lung_mask, labels_for_slice
from tests.conftest import phantom, write_phantom_folder


def hu_case(size: int = 48, seed: int = 0):
    """An HU slice whose pixels mostly lie beyond the lung window [-1350, 150] (bone, metal,
    padding), the phantom's label map, and a generator output in [-1, 1]."""
    rng = np.random.default_rng(seed)
    _, labels = phantom(size)
    pixels = rng.uniform(-3000.0, 3000.0, (size, size)).astype(np.float32)
    output = rng.uniform(-1.0, 1.0, (size, size)).astype(np.float32)
    return CTSlice(pixels, "hu"), labels, output


def test_label_mode_is_synthetic_in_the_lung_and_the_slice_itself_outside():
    """Hard paste: the composite is the synthetic image (in HU) inside the lung and, outside it,
    the slice's own HU bit for bit, also where they lie beyond the lung window (no clipping)."""
    ct, labels, output = hu_case()
    lung = lung_region(labels)
    composed = compose(ct, output, labels)
    assert composed.mode == "label"
    np.testing.assert_array_equal(composed.synthetic, ct.from_model_range(output))
    np.testing.assert_array_equal(composed.composite[lung], composed.synthetic[lung])
    outside = composed.composite[~lung]
    assert outside.tobytes() == ct.pixels[~lung].tobytes()
    beyond = (ct.pixels < LUNG_WINDOW.low) | (ct.pixels > LUNG_WINDOW.high)
    assert (beyond & ~lung).sum() > 100  # the case does test values beyond the window
    np.testing.assert_array_equal(composed.region, lung)
    assert composed.composite.dtype == np.float32


def test_feathered_label_mode_region_is_where_the_feather_weight_is_above_zero():
    ct, labels, output = hu_case()
    lung = lung_region(labels)
    composed = Compositor().compose(ct, output, labels, feather_px=4.0)
    alpha = feather_weights(lung, 4.0)
    np.testing.assert_array_equal(composed.region, alpha > 0)
    assert (composed.region & ~lung).any()  # the ramp reaches past the lung boundary
    full, none = alpha == 1, alpha == 0
    np.testing.assert_array_equal(composed.composite[full], composed.synthetic[full])
    assert composed.composite[none].tobytes() == ct.pixels[none].tobytes()
    ramp = ~full & ~none
    expected = alpha * composed.synthetic + (1 - alpha) * ct.pixels
    np.testing.assert_allclose(composed.composite[ramp], expected[ramp], rtol=1e-6, atol=1e-3)


def test_inpaint_mode_keeps_every_pixel_outside_the_mask():
    """Outside the mask, the slice's pixels bit for bit (the feather has no say there); inside,
    the synthetic image; the region is the mask."""
    ct, labels, output = hu_case()
    mask = np.zeros(ct.shape, bool)
    mask[10:30, 5:25] = True
    composed = Compositor().compose(ct, output, labels, mask=mask.astype(np.uint8), feather_px=3)
    assert composed.mode == "inpaint"
    np.testing.assert_array_equal(composed.region, mask)
    assert composed.composite[~mask].tobytes() == ct.pixels[~mask].tobytes()
    np.testing.assert_array_equal(composed.composite[mask], ct.from_model_range(output)[mask])


def test_compose_arrays_is_the_same_per_mode_logic_in_the_model_range():
    """evaluate and figure compose [-1, 1] training arrays with it: the result in the model
    range is the slice-unit result mapped back (label and inpaint mode)."""
    ct, labels, output = hu_case()
    real = np.clip(np.random.default_rng(1).uniform(-1, 1, ct.shape), -1, 1).astype(np.float32)
    compositor = Compositor()
    label = compositor.compose_arrays(output, real, labels)
    np.testing.assert_array_equal(label.composite, np.where(labels > 0, output, real))
    mask = labels >= 2
    inpaint = compositor.compose_arrays(output, real, labels, mask)
    np.testing.assert_array_equal(inpaint.composite, np.where(mask, output, real))
    np.testing.assert_array_equal(inpaint.region, mask)


@pytest.mark.parametrize("wrong", ["output", "labels", "mask"])
def test_a_shape_mismatch_is_a_value_error(wrong):
    ct, labels, output = hu_case()
    mask = np.zeros(ct.shape, bool)
    args = {"output": output, "labels": labels, "mask": mask}
    args[wrong] = args[wrong][:-1]
    with pytest.raises(ValueError):
        compose(ct, args["output"], args["labels"], mask=args["mask"])
    with pytest.raises(ValueError):
        Compositor().compose_arrays(args["output"], ct.pixels, args["labels"], args["mask"])


@pytest.mark.parametrize(
    ("kind", "low", "high"), [("hu", -1350.0, 150.0), ("uint8", 0.0, 255.0), ("raw", 0.0, 4095.0)]
)
def test_from_model_range_inverts_to_model_range_within_the_window(kind, low, high):
    rng = np.random.default_rng(2)
    pixels = rng.uniform(low, high, (32, 32)).astype(np.float32)
    pixels[0, :2] = low, high  # the raw window spans the values
    ct = CTSlice(pixels, kind)
    window = ct.default_window()
    inside = (pixels >= window.low) & (pixels <= window.high)
    assert inside.mean() > 0.9
    back = ct.from_model_range(ct.to_model_range())
    assert back.dtype == np.float32
    np.testing.assert_allclose(back[inside], pixels[inside], atol=1e-3 * window.width)
    # beyond the window both directions saturate at its edges
    np.testing.assert_allclose(back, np.clip(pixels, window.low, window.high), atol=0.05)
    other = Window(100.0, 50.0)
    np.testing.assert_allclose(
        ct.from_model_range(ct.to_model_range(other), other)[(pixels > 75) & (pixels < 125)],
        pixels[(pixels > 75) & (pixels < 125)],
        atol=1e-3,
    )


def phantom_ct(size: int = 96) -> tuple[CTSlice, np.ndarray]:
    """The phantom as an 8-bit slice and its MedSeg lesion mask (1 GGO, 2 consolidation)."""
    image, labels = phantom(size)
    ct = CTSlice(np.round((image + 1) * 127.5).astype(np.uint8), "uint8")
    return ct, np.where(labels >= 2, labels - 1, 0).astype(np.uint8)


def test_labels_for_slice_labels_the_lesions_inside_its_lung():
    ct, lesions = phantom_ct()
    lesions[48, 6] = 2  # a consolidation pixel in the body wall, outside any derived lung
    result = labels_for_slice(ct, lesions)
    assert result.lung_problem is None
    label_map = result.label_map
    assert label_map.dtype == np.uint8
    np.testing.assert_array_equal(label_map == 2, lesions == 1)
    np.testing.assert_array_equal(label_map == 3, lesions == 2)
    assert label_map[48, 6] == 3
    lung = derive_lung_mask(ct)
    np.testing.assert_array_equal(label_map > 0, lung | (lesions > 0))
    # without lesions: the derived lung alone, labelled 1
    plain = labels_for_slice(ct).label_map
    np.testing.assert_array_equal(plain, lung.astype(np.uint8))
    # a lung the caller derived already (without lesions) gives the same labels and verdict
    given = labels_for_slice(ct, lesions, lung)
    np.testing.assert_array_equal(given.label_map, label_map)
    assert given.lung_problem == result.lung_problem


def test_a_flat_slice_gives_a_lung_problem_even_with_known_lesions():
    flat = CTSlice(np.full((64, 64), 100, np.uint8), "uint8")
    assert labels_for_slice(flat).lung_problem.startswith("no lung found")
    lesions = np.zeros((64, 64), np.uint8)
    lesions[20:30, 20:30] = 1
    result = labels_for_slice(flat, lesions)
    assert result.lung_problem.startswith("no lung found")
    assert (result.label_map == 2).sum() == 100


def test_a_lesion_mask_of_another_size_is_a_value_error():
    ct, lesions = phantom_ct()
    with pytest.raises(ValueError, match="does not match"):
        labels_for_slice(ct, lesions[:, :-1])


def test_label_import_batch_and_training_data_take_the_label_map_of_labels_for_slice(tmp_path):
    """The callers build no label map of their own: importing a lesion mask, a batch input and a
    training slice (with and without the coverage statistics) all hold labels_for_slice's."""
    from gan.batch import folder_inputs
    from gan.ctio import read_label_image, read_raster
    from gan.data import FolderStats, SliceSet
    from gan.label_import import LabelFile, build_label_map

    folder = write_phantom_folder(tmp_path / "data", n=2, size=64)
    ct = read_raster(folder / "images" / "0000.png")
    lesions = read_label_image(folder / "lesions" / "0000.png")
    expected = labels_for_slice(ct, lesions).label_map
    assert (expected >= 2).any()
    file = LabelFile(tmp_path / "m.png", lesions, [0, 1, 2], "lesion_mask")
    current = np.zeros(ct.shape, np.uint8)
    np.testing.assert_array_equal(build_label_map(file, "lesion_mask", ct, current), expected)
    first = next(folder_inputs(folder))
    np.testing.assert_array_equal(first.label_map, expected)
    assert first.lung_problem is None
    stats = FolderStats()
    for given in (None, stats):
        slices = SliceSet.from_folder(folder, size=64, stats=given)
        np.testing.assert_array_equal(slices.label_maps[0], expected)
    # the coverage counts the lesions inside the lung as derived, before they are forced in
    lung = derive_lung_mask(ct)
    assert stats.ggo_in_lung == 2 * int(((lesions == 1) & lung).sum())
    assert stats.lung_px == 2 * int((expected > 0).sum())
