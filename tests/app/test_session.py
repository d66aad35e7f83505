"""The open case without Qt (app.session.EditSession) and the synthesis engine it feeds
(app.synthesis.SynthesisEngine): the editor's checks that need no widget."""

import json
import subprocess
import sys

import numpy as np
import pytest

from app.session import EditSession, ExportError, OpenError
from app.synthesis import SynthesisEngine
from gan.labels import CONSOLIDATION, GGO, LUNG
from gan.lesions import measure_areas
from gan.paths import sample_slice_path
from tests.conftest import make_tiny_weights


@pytest.fixture()
def session():
    s = EditSession.open(sample_slice_path())
    assert s is not None
    return s


@pytest.fixture()
def engine(tmp_path):
    e = SynthesisEngine()
    e.load(str(make_tiny_weights(tmp_path / "label.safetensors")), "cpu")
    e.load(str(make_tiny_weights(tmp_path / "inpaint.safetensors", "inpaint")), "cpu", "inpaint")
    return e


def lung_disc(session, radius=6):
    """A disc of healthy lung pixels, well inside the lung."""
    from scipy import ndimage as ndi

    lung = session.labels == LUNG
    depth = ndi.distance_transform_edt(lung)
    r, c = np.unravel_index(np.argmax(depth), lung.shape)
    rows, cols = np.ogrid[: lung.shape[0], : lung.shape[1]]
    return (rows - r) ** 2 + (cols - c) ** 2 <= radius**2


def test_the_session_modules_import_without_qt():
    code = "import sys, app.session, app.synthesis; print(any(m.startswith('PyQt') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_sample_opens_with_its_lung_and_lesions_and_no_edits(session):
    assert {LUNG, GGO, CONSOLIDATION} <= set(np.unique(session.labels))
    np.testing.assert_array_equal(session.labels, session.baseline_labels)
    assert not session.edit_region(5.0).any() and not session.has_unsaved_work
    assert session.lung_problem is None


def test_a_bad_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\x00" * 300)
    with pytest.raises(OpenError) as info:
        EditSession.open(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_labels_of_another_size_are_refused(tmp_path):
    with pytest.raises(OpenError, match="do not match"):
        EditSession.open(sample_slice_path(), labels=np.zeros((4, 4), np.uint8))


def test_an_edit_is_the_region_to_regenerate_plus_its_margin(session):
    disc = lung_disc(session)
    session.document.paint(disc, GGO)
    assert session.has_unsaved_work
    tight, wide = session.edit_region(0.0), session.edit_region(5.0)
    np.testing.assert_array_equal(tight, disc)
    assert wide[disc].all() and wide.sum() > tight.sum()
    request = session.synthesis_request(None, inpainting=True, margin_mm=5.0)
    np.testing.assert_array_equal(request.context.mask, wide)
    assert request.token == session.token and request.labels[disc].tolist() == [GGO] * disc.sum()
    assert session.synthesis_request(None, inpainting=False, margin_mm=5.0).context is None


def test_results_for_another_session_are_dropped(session, engine):
    other = EditSession.open(sample_slice_path())
    stale = engine.run(other.synthesis_request(None, False, 5.0))
    assert not session.accept(stale) and session.result is None
    fresh = engine.run(session.synthesis_request(None, False, 5.0))
    assert session.accept(fresh) and session.result is fresh


def test_inpainting_keeps_every_pixel_outside_the_region(session, engine):
    session.document.paint(lung_disc(session), CONSOLIDATION)
    result = engine.run(session.synthesis_request(None, True, 3.0))
    assert session.accept(result) and result.model.mode == "inpaint"
    composed = session.composed(feather_px=4.0)
    outside = ~result.mask
    np.testing.assert_array_equal(composed.composite[outside], session.ct.pixels[outside])
    np.testing.assert_array_equal(composed.region, result.mask)


def test_whole_lung_synthesis_waits_for_a_lung_when_none_was_found(tmp_path, engine):
    from gan.ctio import write_png

    flat = tmp_path / "flat.png"
    write_png(flat, np.full((64, 64), 90, np.uint8))
    s = EditSession.open(flat)
    assert s.lung_problem and not (s.labels == LUNG).any()
    assert s.synthesis_request(None, inpainting=False, margin_mm=5.0) is None
    s.document.paint(np.pad(np.ones((20, 20), bool), 22), LUNG)
    assert s.synthesis_request(None, inpainting=False, margin_mm=5.0) is not None
    assert s.lung_problem is None


def test_the_counts_follow_every_change_from_its_bounding_box(session):
    rng = np.random.default_rng(0)
    for step in range(25):
        r, c = rng.integers(0, 500, 2)
        mask = np.zeros(session.ct.shape, bool)
        mask[r : r + rng.integers(1, 12), c : c + rng.integers(1, 12)] = True
        if step % 5 == 4:
            session.document.undo()
        else:
            session.document.paint(mask, int(rng.integers(1, 4)))
        assert session.areas() == measure_areas(session.labels, session.spacing)
    session.document.clear_lesions()  # a whole-map change
    assert session.areas() == measure_areas(session.labels, session.spacing)


@pytest.mark.parametrize("op", ["grow", "shrink", "move", "rotate", "scale", "mirror", "deform"])
def test_each_lesion_operation_is_one_undoable_step(session, op):
    disc = lung_disc(session, 8)
    session.document.paint(disc, GGO)
    before = session.labels.copy()
    rows, cols = np.nonzero(disc)
    assert session.select_at(int(rows[0]), int(cols[0])) > 0
    assert session.edit_selection(op, margin_mm=3.0, direction=(0, 1), seed=3)
    assert not np.array_equal(session.labels, before)
    assert session.selection is not None or op == "shrink"
    session.document.undo()
    np.testing.assert_array_equal(session.labels, before)


def test_no_selection_no_operation(session):
    before = session.labels.copy()
    assert session.select_at(0, 0) == 0 and not session.edit_selection("grow")
    np.testing.assert_array_equal(session.labels, before)


def test_random_lesions_and_augment_all_are_seeded(session):
    a = EditSession.open(sample_slice_path())
    for s in (session, a):
        s.add_random_lesions(3, 0.7, 0.1, seed=5, real_shapes=False)
    np.testing.assert_array_equal(session.labels, a.labels)
    session.augment_all(seed=1)
    assert not np.array_equal(session.labels, a.labels) and session.selection is None


def test_a_project_round_trips_labels_baseline_and_spacing(session, tmp_path):
    disc = lung_disc(session)
    session.document.paint(disc, GGO)
    session.spacing_override = (0.5, 0.5)
    path = tmp_path / "case.ctlsproj"
    session.project({"level": 1.0, "width": 2.0}).save(path)
    again, project = EditSession.from_project(path)
    np.testing.assert_array_equal(again.labels, session.labels)
    np.testing.assert_array_equal(again.baseline_labels, session.baseline_labels)
    assert again.spacing == (0.5, 0.5) and again.project_path == path
    assert project.view == {"level": 1.0, "width": 2.0}
    np.testing.assert_array_equal(again.edit_region(0.0), disc)


def test_an_export_after_a_weights_switch_names_the_model_that_made_the_image(
    session, engine, tmp_path
):
    """The result shown was made by model A; B is loaded before the next result arrives. The
    export must say A, not the model loaded now."""
    from gan.checkpoint import sha256_file
    from gan.ctio import read_png_text

    with pytest.raises(ExportError, match="No synthetic image"):
        session.export(tmp_path / "none", 0.0)
    a = engine.model
    assert session.accept(engine.run(session.synthesis_request(None, False, 5.0)))
    b_path = make_tiny_weights(tmp_path / "b.safetensors", seed=1)
    b = engine.load(str(b_path), "cpu")
    assert b.sha256 == sha256_file(b_path) != a.sha256
    files = {f.name: f for f in session.export(tmp_path / "out", 0.0)}
    assert json.loads(files["medseg-0085_export.json"].read_text())["model_sha256"] == a.sha256
    assert read_png_text(files["medseg-0085_synthetic.png"])["ModelSHA256"] == a.sha256
    assert session.accept(engine.run(session.synthesis_request(None, False, 5.0)))
    files = {f.name: f for f in session.export(tmp_path / "out2", 0.0)}
    assert json.loads(files["medseg-0085_export.json"].read_text())["model_sha256"] == b.sha256


def test_a_failed_load_drops_the_old_model(engine, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    with pytest.raises(Exception):  # noqa: B017 - whatever the reader raises; the old one is gone
        engine.load(str(bad), "cpu")
    assert engine.synthesizer is None and engine.model is None


def test_auto_lung_restores_the_derived_lung_and_keeps_the_lesions(session):
    lesions = session.labels >= GGO
    before = session.labels.copy()
    session.document.replace(np.where(lesions, session.labels, 0).astype(np.uint8), "erase lung")
    assert not (session.labels == LUNG).any()
    assert session.auto_lung() is None
    np.testing.assert_array_equal(session.labels >= GGO, lesions)  # lesions as they were
    np.testing.assert_array_equal(session.labels > 0, before > 0)  # the lung derived at open


def test_variants_augment_with_the_slices_row_and_column_spacing(session, monkeypatch):
    """Grow and shrink margins are in mm along each axis: the variants get both spacings."""
    import gan.batch

    seen = []
    real = gan.batch.augment_label_map
    monkeypatch.setattr(
        gan.batch, "augment_label_map", lambda m, s, sp=None: seen.append(sp) or real(m, s, sp)
    )
    session.spacing_override = (0.5, 0.8)
    maps, contexts, seeds = session.variant_requests(7, 2, inpainting=True, margin_mm=3.0)
    assert seen == [(0.5, 0.8)] * 2 and seeds == [7, 8] and len(contexts) == len(maps) == 2
