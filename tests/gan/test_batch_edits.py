"""The lesion edits of inpaint and procedural batch export (gan.batch.edit_label_map): seeded,
each operation does what it is named, the lung stays the patient's, and (row, column) spacing is
honoured per axis, in the edits and in the whole-lung augmentation alike."""

import numpy as np
import pytest

from gan.batch import EDIT_OPERATIONS, EditOptions, augment_label_map, edit_label_map
from gan.labels import GGO, LUNG
from gan.lesions import default_lesion_bank
from tests.conftest import phantom


@pytest.fixture(scope="module")
def labels():
    return phantom(128)[1]


def one(op: str, **kwargs) -> EditOptions:
    return EditOptions(operations=(op,), max_operations=1, **kwargs)


def lesion_px(m) -> int:
    return int((np.asarray(m) >= GGO).sum())


def test_edits_are_seeded_and_recorded_and_keep_the_lung(labels):
    bank = default_lesion_bank()
    seen = set()
    for seed in range(12):
        a, ops = edit_label_map(labels, seed, None, EditOptions(), bank)
        b, again = edit_label_map(labels, seed, None, EditOptions(), bank)
        assert np.array_equal(a, b) and ops == again
        assert not np.array_equal(a, labels) and ops
        assert np.array_equal(a > 0, labels > 0)  # the lung is the patient's
        assert not ((a >= GGO) & (labels == 0)).any()
        for op in ops:
            assert op["op"] in EDIT_OPERATIONS and op["changed_px"] > 0
        seen |= {op["op"] for op in ops}
    assert len(seen) >= 5  # the draws cover the editor's operations
    assert not np.array_equal(edit_label_map(labels, 0)[0], edit_label_map(labels, 1)[0])


def test_each_operation_does_what_it_is_named(labels):
    base = lesion_px(labels)
    grown, ops = edit_label_map(labels, 0, None, one("grow"))
    assert lesion_px(grown) > base and ops[0]["op"] == "grow"
    assert 1.0 <= ops[0]["margin_mm"] <= 4.0
    shrunk, _ = edit_label_map(labels, 0, None, one("shrink"))
    assert lesion_px(shrunk) < base
    removed, ops = edit_label_map(labels, 0, None, one("remove"))
    gone = (labels >= GGO) & (removed < GGO)
    assert gone.sum() == ops[0]["lesion_px"] and (removed[gone] == LUNG).all()
    added, ops = edit_label_map(labels, 0, None, one("add", add_involvement=(0.4, 0.4)))
    lung = int((labels > 0).sum())
    assert lesion_px(added) > base and ops[0]["target_involvement"] == pytest.approx(0.4)
    assert lesion_px(added) / lung == pytest.approx(0.4, abs=0.12)
    moved, ops = edit_label_map(labels, 3, None, one("move"))
    assert np.hypot(*ops[0]["shift_mm"]) <= 15.0 + 1e-6 and not np.array_equal(moved, labels)
    mirrored, ops = edit_label_map(labels, 0, None, one("mirror"))
    _, cols = np.nonzero(mirrored != labels)
    side = np.sign(ops[0]["lesion_centre"][1] - ops[0]["midline_col"])
    assert cols.size and (np.sign(cols - ops[0]["midline_col"]) == -side).all()  # the other lung
    for op in ("rotate", "deform"):
        edited, ops = edit_label_map(labels, 5, None, one(op))
        assert ops[0]["op"] == op and not np.array_equal(edited, labels)
    with pytest.raises(ValueError, match="unknown edit operation"):
        EditOptions(operations=("explode",))


def test_a_map_without_lesions_gets_lesions_added(labels):
    healthy = np.where(labels >= GGO, LUNG, labels).astype(np.uint8)
    edited, ops = edit_label_map(healthy, 4, None, one("shrink"))
    assert [op["op"] for op in ops] == ["add"] and lesion_px(edited) > 0


def test_row_and_column_spacing_are_used_per_axis(labels):
    """A grow by the same mm reaches further along the axis with the smaller pixels: (row, col)
    spacing matters, in the edits and in the whole-lung augmentation."""
    fine_rows, _ = edit_label_map(labels, 0, (0.5, 2.0), one("grow", resize_mm=(3.0, 3.0)))
    fine_cols, ops = edit_label_map(labels, 0, (2.0, 0.5), one("grow", resize_mm=(3.0, 3.0)))
    assert ops[0]["spacing_mm"] == [2.0, 0.5]

    def thickness(m, axis):
        """The most grown pixels on one line along ``axis`` (0: down a column, 1: along a row)."""
        return int(((m >= GGO) & (labels < GGO)).sum(axis=axis).max())

    assert thickness(fine_rows, 0) > thickness(fine_cols, 0)
    assert thickness(fine_cols, 1) > thickness(fine_rows, 1)
    seed = next(
        s for s in range(50) if augment_label_map(labels, s)[1].get("lesion_edit") == "grow"
    )
    a, params = augment_label_map(labels, seed, (0.5, 2.0))
    b, _ = augment_label_map(labels, seed, (2.0, 0.5))
    assert params["spacing_mm"] == [0.5, 2.0] and not np.array_equal(a, b)
