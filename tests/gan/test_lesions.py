"""Augment operations: each keeps lesions inside the lung and leaves the lung as it was."""

import numpy as np
import pytest

from gan import lesions as L
from gan.labels import CONSOLIDATION, GGO
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
