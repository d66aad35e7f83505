"""Augment operations: each keeps lesions inside the lung and leaves the lung as it was."""

import numpy as np
import pytest

from gan import lesions as L
from gan.labels import CONSOLIDATION, GGO, LUNG
from tests.conftest import phantom


@pytest.fixture()
def labels():
    return phantom(128)[1]


def check_invariants(before, after):
    assert set(np.unique(after)) <= {0, 1, 2, 3}
    assert np.array_equal(after > 0, before > 0), "the lung region must not change"
    assert not ((after >= GGO) & (before == 0)).any(), "lesions must stay inside the lung"


def test_select_lesion_and_measure(labels):
    selection = L.lesion_at(labels, 80, 40)
    assert selection.any() and (labels[selection] >= GGO).all()
    assert not L.lesion_at(labels, 2, 2).any()
    areas = L.measure_areas(labels, (0.5, 0.5))
    assert areas.ggo_px == int((labels == GGO).sum())
    assert areas.mm2(areas.ggo_px) == pytest.approx(areas.ggo_px * 0.25)
    assert 0 < areas.involvement < 1
    assert L.measure_areas(labels, None).mm2(10) is None


def test_grow_and_shrink_by_millimetres(labels):
    selection = L.lesion_at(labels, 80, 40)
    grown = L.resize_lesion(labels, selection, 2.0, spacing_mm=0.5)  # 4 px
    check_invariants(labels, grown)
    assert (grown >= GGO).sum() > (labels >= GGO).sum()
    shrunk = L.resize_lesion(labels, selection, -2.0, spacing_mm=0.5)
    check_invariants(labels, shrunk)
    remaining = L.lesion_at(shrunk, 80, 40)
    assert remaining.sum() < selection.sum()
    assert (shrunk[selection & ~remaining] == 1).all()  # shrunk pixels return to lung


@pytest.mark.parametrize(
    "op", ["move", "rotate", "scale", "mirror", "deform", "random", "bank", "augment"]
)
def test_each_operation_keeps_lesions_in_the_lung(labels, op):
    selection = L.lesion_at(labels, 80, 40)
    if op == "move":
        out = L.transform_lesion(labels, selection, shift=(-30, 20))
    elif op == "rotate":
        out = L.transform_lesion(labels, selection, angle_deg=45)
    elif op == "scale":
        out = L.transform_lesion(labels, selection, scale=2.0)
    elif op == "mirror":
        out = L.mirror_lesion(labels, selection)
    elif op == "deform":
        out = L.deform_lesion(labels, selection, magnitude_px=8, seed=3)
    elif op == "random":
        out = L.random_lesions(labels, count=5, ggo_fraction=0.5, target_involvement=0.4, seed=1)
    elif op == "bank":
        bank = L.default_lesion_bank()
        assert bank is not None and len(bank.shapes) >= 100
        out = L.random_lesions(
            labels, count=5, ggo_fraction=0.5, target_involvement=0.4, seed=1, bank=bank
        )
    else:
        out = L.augment_lesions(labels, seed=4)
    check_invariants(labels, out)
    assert not np.array_equal(out, labels)


def test_mirror_lands_in_the_other_lung(labels):
    selection = L.lesion_at(labels, 80, 40)  # left-hand lung of the image
    out = L.mirror_lesion(labels, selection)
    right = np.zeros_like(selection)
    right[:, 64:] = True
    assert ((out >= GGO) & right & (labels == 1)).sum() > 0.5 * selection.sum()


def test_random_lesions_reach_the_target_roughly_and_are_seeded(labels):
    clean = np.where(labels >= GGO, 1, labels).astype(np.uint8)
    out = L.random_lesions(clean, count=4, ggo_fraction=1.0, target_involvement=0.2, seed=7)
    involvement = L.measure_areas(out, None).involvement
    assert 0.08 < involvement < 0.3
    assert not (out == CONSOLIDATION).any()  # ggo_fraction 1
    assert np.array_equal(
        out, L.random_lesions(clean, count=4, ggo_fraction=1.0, target_involvement=0.2, seed=7)
    )


# ------------------------------------------------------------------ exact geometry of the edits
# A non-square map whose lung fills most of it, with one lesion off the diagonal: a horizontal
# GGO bar with a consolidation block at its right-hand end (so its direction is visible).
SHAPE = (128, 160)
BAR = (slice(60, 64), slice(70, 91))  # rows 60..63, columns 70..90 (GGO)
TIP = (slice(60, 64), slice(91, 96))  # rows 60..63, columns 91..95 (consolidation)


@pytest.fixture()
def bar_labels():
    labels = np.zeros(SHAPE, np.uint8)
    labels[8:120, 8:152] = 1
    labels[BAR] = GGO
    labels[TIP] = CONSOLIDATION
    return labels


def _centre(mask):
    rows, cols = np.nonzero(mask)
    return np.array([rows.mean(), cols.mean()])


def test_move_shifts_by_rows_then_columns_exactly(bar_labels):
    """shift=(rows, cols): (+5, -9) moves every lesion pixel 5 rows down and 9 columns left, each
    keeping its class; the place it left returns to lung."""
    selection = L.lesion_at(bar_labels, 61, 75)
    assert selection.sum() == 4 * 26
    out = L.transform_lesion(bar_labels, selection, shift=(5, -9))
    check_invariants(bar_labels, out)
    expected = np.where(bar_labels >= GGO, 1, bar_labels).astype(np.uint8)
    expected[65:69, 61:82] = GGO
    expected[65:69, 82:87] = CONSOLIDATION
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(_centre(out >= GGO) - _centre(selection), [5.0, -9.0])


@pytest.mark.parametrize("angle", [90.0, 30.0])
def test_rotation_is_counter_clockwise_on_screen_about_the_centre(bar_labels, angle):
    """A positive angle turns the lesion counter-clockwise as displayed (row 0 at the top): the
    consolidation tip, right of the centre, swings up; the lesion's centre stays put."""
    selection = L.lesion_at(bar_labels, 61, 75)
    centre = _centre(selection)
    tip = _centre(bar_labels == CONSOLIDATION) - centre  # (row, col) offset, pointing right
    out = L.transform_lesion(bar_labels, selection, angle_deg=angle)
    check_invariants(bar_labels, out)
    t = np.radians(angle)
    # on screen (x = column to the right, y = row downwards) counter-clockwise by t:
    # x' = x cos t + y sin t, y' = -x sin t + y cos t
    expected_tip = [
        -tip[1] * np.sin(t) + tip[0] * np.cos(t),
        tip[1] * np.cos(t) + tip[0] * np.sin(t),
    ]
    np.testing.assert_allclose(_centre(out == CONSOLIDATION) - centre, expected_tip, atol=1.0)
    np.testing.assert_allclose(_centre(out >= GGO), centre, atol=1.0)
    if angle == 90.0:  # a quarter turn maps the pixel grid onto itself: nothing lost or gained
        assert (out >= GGO).sum() == selection.sum()


def test_deform_without_displacement_changes_nothing_and_moves_pixels_only_locally(bar_labels):
    """Magnitude 0 leaves the map exactly as it was (rows and columns of the displacement grid
    in place); a magnitude of 6 px changes the lesion, seeded, and takes no lesion pixel more
    than 6 px (+1 for rounding) from where a lesion pixel was."""
    from scipy import ndimage as ndi

    selection = L.lesion_at(bar_labels, 61, 75)
    np.testing.assert_array_equal(
        L.deform_lesion(bar_labels, selection, magnitude_px=0.0, seed=3), bar_labels
    )
    out = L.deform_lesion(bar_labels, selection, magnitude_px=6.0, seed=3)
    check_invariants(bar_labels, out)
    assert not np.array_equal(out, bar_labels)
    np.testing.assert_array_equal(out, L.deform_lesion(bar_labels, selection, 6.0, seed=3))
    assert not np.array_equal(out, L.deform_lesion(bar_labels, selection, 6.0, seed=4))
    near = ndi.binary_dilation(selection, structure=np.ones((3, 3)), iterations=7)
    assert not ((out >= GGO) & ~near).any()
    np.testing.assert_allclose(_centre(out >= GGO), _centre(selection), atol=6.0)


def test_augment_without_rotation_scale_or_elastic_changes_nothing(bar_labels):
    """The paper's augmentation with every parameter at its neutral value is the identity: the
    warp and the displacement grid keep rows as rows and columns as columns."""
    out = L.augment_lesions(
        bar_labels, seed=1, max_rotation_deg=0.0, scale_range=(1.0, 1.0), elastic_px=0.0
    )
    np.testing.assert_array_equal(out, bar_labels)


def test_grow_measures_millimetres_along_each_axis_of_non_square_pixels():
    """Rows 1 mm apart, columns 0.5 mm: growing by 2 mm adds 2 rows and 4 columns on each side."""
    from gan.lesions import resize_lesion

    labels = np.full((60, 60), LUNG, np.uint8)
    labels[28:32, 28:32] = CONSOLIDATION
    selection = labels == CONSOLIDATION
    grown = resize_lesion(labels, selection, 2.0, (1.0, 0.5)) == CONSOLIDATION
    rows, cols = np.nonzero(grown)
    assert (rows.min(), rows.max()) == (26, 33) and (cols.min(), cols.max()) == (24, 35)
    shrunk = resize_lesion(grown.astype(np.uint8) * 2 + 1, grown, -2.0, (1.0, 0.5))
    np.testing.assert_array_equal(shrunk == CONSOLIDATION, selection)
    # one number is a square pixel
    square = resize_lesion(labels, selection, 2.0, 0.5) == CONSOLIDATION
    rows, cols = np.nonzero(square)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (24, 35, 24, 35)
