"""MaskDocument: edits, paint rules, diff-based undo/redo. No Qt."""

import numpy as np
import pytest

from app.document import MaskDocument
from app.tools import disc_stroke_mask, flood_region, polygon_mask
from gan.labels import BACKGROUND, CONSOLIDATION, GGO, LUNG
from tests.conftest import phantom


@pytest.fixture()
def doc():
    _, labels = phantom(64)
    return MaskDocument(labels)


def test_undo_redo_restore_exactly_and_a_stroke_is_one_step(doc):
    original = np.array(doc.labels)
    doc.begin_stroke()
    doc.paint(disc_stroke_mask(doc.shape, (30, 20), (30, 20), 7), LUNG)
    doc.paint(disc_stroke_mask(doc.shape, (30, 20), (34, 44), 7), LUNG)
    doc.end_stroke()
    painted = np.array(doc.labels)
    assert (painted != original).sum() > 0
    assert doc.undo() and np.array_equal(doc.labels, original)
    assert not doc.can_undo and doc.redo() and np.array_equal(doc.labels, painted)
    doc.clear_lesions()
    doc.undo()
    assert np.array_equal(doc.labels, painted)


def test_history_keeps_many_steps_as_small_diffs(doc):
    """Each step is a diff of the pixels it changed, and every one of them undoes exactly."""
    doc.rules.constrain_to_lung = False
    states = [np.array(doc.labels)]
    for i in range(150):
        row = 10 + i % 40
        label = GGO if i % 2 else CONSOLIDATION
        assert doc.paint(disc_stroke_mask(doc.shape, (row, 10), (row, 12), 3), label) > 0
        states.append(np.array(doc.labels))
    assert len(doc._undo) == 150
    # diffs, not snapshots: far less than 100 copies of the 64x64 map
    assert doc.history_bytes() < 100 * 64 * 64
    for expected in reversed(states[:-1]):
        assert doc.undo() and np.array_equal(doc.labels, expected)
    assert not doc.can_undo


def test_history_is_capped_at_200_steps_and_drops_the_oldest():
    labels = np.full((8, 300), LUNG, np.uint8)
    doc = MaskDocument(labels)
    for col in range(250):  # one pixel per step, each a different pixel
        hit = np.zeros(doc.shape, bool)
        hit[0, col] = True
        doc.paint(hit, GGO)
    undone = 0
    while doc.undo():
        undone += 1
    assert undone == 200
    # the 50 oldest steps are gone: their pixels stay painted, the 200 newest are undone
    assert (doc.labels[0, :50] == GGO).all() and (doc.labels[0, 50:250] == LUNG).all()


def test_a_new_edit_after_undo_clears_redo(doc):
    doc.paint(disc_stroke_mask(doc.shape, (20, 20), (20, 20), 5), CONSOLIDATION)
    assert doc.undo() and doc.can_redo
    doc.paint(disc_stroke_mask(doc.shape, (40, 40), (40, 40), 5), CONSOLIDATION)
    assert not doc.can_redo and not doc.redo()


def test_undo_during_an_open_stroke_keeps_the_history_exact(doc):
    """Ctrl+Z with the mouse button still down: the stroke so far is undone as its own step, the
    rest of the drag is a new step, and undoing everything gives back the original map."""
    original = np.array(doc.labels)
    spot = disc_stroke_mask(doc.shape, (30, 20), (30, 20), 5)
    assert (original[spot] == LUNG).all()
    doc.paint(spot, GGO)  # step 1: lung -> GGO
    after_first = np.array(doc.labels)
    doc.begin_stroke()
    doc.paint(spot, CONSOLIDATION)  # open stroke: GGO -> consolidation
    assert doc.undo()  # undoes the open stroke so far, not step 1 under it
    assert np.array_equal(doc.labels, after_first)
    doc.paint(disc_stroke_mask(doc.shape, (30, 44), (30, 44), 3), CONSOLIDATION)  # drag goes on
    doc.end_stroke()
    while doc.undo():
        pass
    assert np.array_equal(doc.labels, original)


def test_redo_during_an_open_stroke_keeps_the_history_exact(doc):
    original = np.array(doc.labels)
    spot = disc_stroke_mask(doc.shape, (30, 20), (30, 20), 5)
    doc.paint(spot, GGO)
    doc.undo()
    doc.begin_stroke()
    assert doc.redo()  # nothing painted in the stroke yet: the GGO step comes back
    assert (doc.labels[spot] == GGO).all()
    doc.paint(spot, CONSOLIDATION)
    doc.end_stroke()
    while doc.undo():
        pass
    assert np.array_equal(doc.labels, original)


def test_eraser_returns_lesions_to_lung_and_lung_to_background(doc):
    everything = np.ones(doc.shape, bool)
    doc.erase(everything, GGO)
    assert GGO not in doc.labels and (doc.labels == LUNG).sum() > 0
    doc.erase(everything, LUNG)
    assert set(np.unique(doc.labels)) == {BACKGROUND, CONSOLIDATION}


def test_lesion_painting_outside_the_lung_is_blocked_unless_unconstrained(doc):
    outside = np.zeros(doc.shape, bool)
    outside[0:4, 0:4] = True  # air
    assert doc.paint(outside, GGO) == 0
    doc.rules.constrain_to_lung = False
    assert doc.paint(outside, GGO) == 16


def test_preserve_other_labels(doc):
    everything = np.ones(doc.shape, bool)
    before = np.array(doc.labels)
    doc.rules.preserve_labels = True
    doc.paint(everything, CONSOLIDATION)
    after = np.array(doc.labels)
    assert np.array_equal(after[before == GGO], before[before == GGO])  # GGO kept
    assert (after[before == LUNG] == CONSOLIDATION).all()


def test_fill_and_polygon_masks(doc):
    labels = np.array(doc.labels)
    region = flood_region(labels, 20, 19)  # inside the left lung (label 1)
    assert region[20, 19] and not region[0, 0] and (labels[region] == LUNG).all()
    square = polygon_mask(doc.shape, [(10, 10), (10, 20), (20, 20), (20, 10)])
    assert square[15, 15] and not square[25, 25] and 100 <= square.sum() <= 121


def test_events_report_the_changed_region(doc):
    seen = []
    doc.subscribe(seen.append)
    mask = np.zeros(doc.shape, bool)
    mask[20:23, 30:35] = True
    doc.rules.constrain_to_lung = False
    doc.paint(mask, GGO)
    assert seen[-1] == (20, 23, 30, 35)


@pytest.mark.parametrize("bad", [[[256, 1]], [[0.5, 1.0]], [[-1, 1]]])
def test_a_label_map_out_of_range_is_refused_not_wrapped(bad):
    from gan.labels import LabelFormatError

    with pytest.raises(LabelFormatError):
        MaskDocument(np.array(bad))


def test_the_document_keeps_its_own_copy():
    source = np.ones((4, 4), np.uint8)
    doc = MaskDocument(source)
    source[:] = 3
    assert (doc.labels == 1).all()
