"""MaskDocument behaviour that mutation testing (``make mutation``) found unpinned: strokes that
change a pixel twice, reopening a stroke after undo, compact diffs, the revision counter, the
regions undo and redo report, paint rules under a partial mask, replace and set_lung. No Qt."""

import numpy as np
import pytest

from app.document import MaskDocument
from gan.labels import BACKGROUND, CONSOLIDATION, GGO, LUNG, LabelFormatError
from tests.conftest import phantom


@pytest.fixture()
def doc():
    _, labels = phantom(64)
    return MaskDocument(labels)


def box(shape, r0, r1, c0, c1):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def lung_box(doc):
    """A 4x4 box of pure lung in the phantom's left lung."""
    mask = box(doc.shape, 28, 32, 17, 21)
    assert (doc.labels[mask] == LUNG).all()
    return mask


def test_the_document_keeps_its_own_copy_and_hands_out_a_read_only_view():
    _, labels = phantom(32)
    original = labels.copy()
    doc = MaskDocument(labels)
    doc.rules.constrain_to_lung = False
    doc.paint(np.ones(doc.shape, bool), GGO)
    assert np.array_equal(labels, original)  # the caller's array is untouched
    with pytest.raises(ValueError):
        doc.labels[0, 0] = LUNG


def test_a_stroke_that_changes_pixels_twice_is_one_step_back_to_the_first_values(doc):
    """Every part of a stroke changes pixels, some twice (lung -> GGO -> consolidation): one undo
    restores each pixel's value from before the stroke, over a region large enough that only a
    stable sort of the parts keeps the first old value per pixel."""
    original = np.array(doc.labels)
    doc.rules.constrain_to_lung = False
    doc.begin_stroke()
    assert doc.paint(box(doc.shape, 0, 64, 0, 40), GGO) > 0
    assert doc.paint(box(doc.shape, 0, 64, 20, 64), CONSOLIDATION) > 0
    doc.end_stroke()
    painted = np.array(doc.labels)
    assert len(doc._undo) == 1
    assert doc.undo() and np.array_equal(doc.labels, original)
    assert not doc.can_undo
    assert doc.redo() and np.array_equal(doc.labels, painted)


def test_a_stroke_that_ends_where_it_began_leaves_no_step(doc):
    spot = lung_box(doc)
    doc.begin_stroke()
    doc.paint(spot, GGO)
    doc.erase(spot, GGO)  # back to lung within the same stroke
    doc.end_stroke()
    assert not doc.can_undo


def test_after_undo_mid_stroke_the_rest_of_the_drag_is_still_one_step(doc):
    original = np.array(doc.labels)
    doc.rules.constrain_to_lung = False
    doc.begin_stroke()
    doc.paint(box(doc.shape, 0, 4, 0, 4), GGO)
    assert doc.undo() and np.array_equal(doc.labels, original)
    doc.paint(box(doc.shape, 10, 14, 0, 4), GGO)  # the drag goes on: a new stroke was opened
    doc.paint(box(doc.shape, 20, 24, 0, 4), GGO)
    doc.end_stroke()
    assert doc.undo() and np.array_equal(doc.labels, original)  # both parts in one step
    assert not doc.can_undo


def test_after_redo_mid_stroke_the_rest_of_the_drag_is_still_one_step(doc):
    doc.rules.constrain_to_lung = False
    doc.paint(box(doc.shape, 0, 4, 0, 4), GGO)
    after_first = np.array(doc.labels)
    doc.undo()
    doc.begin_stroke()
    assert doc.redo() and np.array_equal(doc.labels, after_first)
    doc.paint(box(doc.shape, 10, 14, 0, 4), GGO)
    doc.paint(box(doc.shape, 20, 24, 0, 4), GGO)
    doc.end_stroke()
    assert doc.undo() and np.array_equal(doc.labels, after_first)
    assert doc.undo() and not doc.can_undo


def test_redo_after_painting_mid_stroke_finds_nothing_to_redo(doc):
    """The stroke painted since the undo is recorded first, which clears the redo stack: the undone
    step does not come back over the new paint."""
    doc.rules.constrain_to_lung = False
    first = box(doc.shape, 0, 4, 0, 4)
    doc.paint(first, GGO)
    doc.undo()
    before = np.array(doc.labels)
    doc.begin_stroke()
    doc.paint(box(doc.shape, 10, 14, 0, 4), CONSOLIDATION)
    assert not doc.redo()
    assert np.array_equal(doc.labels[first], before[first])  # the undone GGO stays undone
    doc.end_stroke()
    assert doc.undo() and np.array_equal(doc.labels, before)


def test_a_diff_costs_six_bytes_per_changed_pixel_wherever_it_is_on_the_stack(doc):
    """int32 index + uint8 old + uint8 new, for painted values given as a Python int too; an
    undone step still counts (it is on the redo stack)."""
    doc.rules.constrain_to_lung = False
    changed = doc.paint(box(doc.shape, 0, 5, 0, 5), GGO)
    assert changed == 25
    assert doc.history_bytes() == 6 * 25
    step = doc._undo[-1]
    assert (step.indices.dtype, step.old.dtype, step.new.dtype) == (np.int32, np.uint8, np.uint8)
    doc.undo()
    assert doc.history_bytes() == 6 * 25
    doc.replace(np.zeros(doc.shape, np.uint8), "clear all")
    assert doc._undo[-1].new.dtype == np.uint8


def test_the_revision_counts_every_change_undo_and_redo(doc):
    """The editor compares it with the revision it saved to tell unsaved work."""
    assert doc.revision == 0
    doc.paint(lung_box(doc), GGO)
    assert doc.revision == 1
    doc.undo()
    assert doc.revision == 2
    doc.redo()
    assert doc.revision == 3
    doc.paint(np.zeros(doc.shape, bool), GGO)  # nothing changes: no new revision
    assert doc.revision == 3


def test_undo_and_redo_report_the_region_they_changed(doc):
    seen = []
    doc.subscribe(seen.append)
    doc.rules.constrain_to_lung = False
    doc.paint(box(doc.shape, 5, 8, 40, 44), GGO)
    doc.undo()
    doc.redo()
    assert seen == [(5, 8, 40, 44)] * 3


def test_clear_lesions_turns_both_lesion_labels_back_to_lung(doc):
    before = np.array(doc.labels)
    assert {GGO, CONSOLIDATION} <= set(np.unique(before).tolist())
    assert doc.clear_lesions() == int((before >= GGO).sum())
    assert set(np.unique(doc.labels).tolist()) == {BACKGROUND, LUNG}
    assert (doc.labels[before >= GGO] == LUNG).all()


@pytest.mark.parametrize("lesion", [GGO, CONSOLIDATION])
def test_erasing_a_lesion_turns_exactly_its_pixels_back_to_lung(doc, lesion):
    before = np.array(doc.labels)
    doc.erase(np.ones(doc.shape, bool), lesion)
    after = np.array(doc.labels)
    assert (after[before == lesion] == LUNG).all()
    assert np.array_equal(after[before != lesion], before[before != lesion])


def test_masks_of_any_truthy_dtype_paint_and_erase_like_bool_ones(doc):
    """A mask read from an image or resampled is 0/255 uint8 or 0/1 float, not bool."""
    spot = lung_box(doc)
    assert doc.paint(spot.astype(np.float32), GGO) == 16
    assert (doc.labels[spot] == GGO).all()
    assert doc.erase(spot.astype(np.float32), GGO) == 16
    assert doc.paint(spot.astype(np.uint8) * 2, CONSOLIDATION) == 16
    assert doc.erase(spot.astype(np.uint8) * 2, CONSOLIDATION) == 16
    assert (doc.labels[spot] == LUNG).all()


@pytest.mark.parametrize("label", [BACKGROUND, 4, -1])
def test_paint_refuses_labels_outside_1_to_3(doc, label):
    before = np.array(doc.labels)
    with pytest.raises(ValueError, match=rf"paint label must be 1\.\.3, got {label}"):
        doc.paint(np.ones(doc.shape, bool), label)
    assert np.array_equal(doc.labels, before)


def test_preserving_labels_still_paints_only_inside_the_mask_and_the_lung(doc):
    before = np.array(doc.labels)
    doc.rules.preserve_labels = True
    spot = lung_box(doc)
    assert doc.paint(spot, GGO) == 16
    after = np.array(doc.labels)
    assert (after[spot] == GGO).all()
    assert np.array_equal(after[~spot], before[~spot])
    # lung painting may claim background only: lesions stay
    assert doc.paint(np.ones(doc.shape, bool), LUNG) == int((before == BACKGROUND).sum())
    assert (doc.labels[before >= GGO] == before[before >= GGO]).all()


def test_replace_is_one_undoable_step_that_counts_what_changed(doc):
    original = np.array(doc.labels)
    new = original.copy()
    new[:, :10] = BACKGROUND
    new[0, 0] = GGO
    changed = int((new != original).sum())
    assert doc.replace(new, "import") == changed
    assert np.array_equal(doc.labels, new)
    assert len(doc._undo) == 1
    assert doc.undo() and np.array_equal(doc.labels, original)
    assert doc.replace(original, "same again") == 0  # nothing differs: no step
    assert not doc.can_undo


def test_replace_refuses_invalid_values_and_other_shapes(doc):
    bad = np.array(doc.labels)
    bad[0, 0] = 7
    with pytest.raises(LabelFormatError, match="^new label map holds values"):
        doc.replace(bad, "import")
    with pytest.raises(ValueError, match=r"\(32, 32\) does not match the image \(64, 64\)"):
        doc.replace(np.zeros((32, 32), np.uint8), "import")
    assert not doc.can_undo


def test_set_lung_makes_the_mask_the_lung_and_keeps_the_lesions(doc):
    before = np.array(doc.labels)
    lung = box(doc.shape, 0, 64, 0, 32)  # the left half, whatever was there
    doc.set_lung(lung)
    after = np.array(doc.labels)
    lesions = before >= GGO
    assert np.array_equal(after[lesions], before[lesions])
    assert (after[lung & ~lesions] == LUNG).all()
    assert (after[~lung & ~lesions] == BACKGROUND).all()
    assert doc.undo() and np.array_equal(doc.labels, before)  # one step
    assert not doc.can_undo


def test_set_lung_accepts_a_0_255_mask(doc):
    before = np.array(doc.labels)
    doc.set_lung(np.where(box(doc.shape, 0, 64, 0, 32), 255, 0).astype(np.uint8))
    assert (doc.labels[:, 32:][before[:, 32:] < GGO] == BACKGROUND).all()
    assert (doc.labels[:, :32][before[:, :32] < GGO] == LUNG).all()
