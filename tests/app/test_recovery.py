"""Nothing the user made is lost: autosave (timer, write errors), recovery (restore, decline, a
restore that fails), damaged or newer project files, the unsaved-changes prompts, and exports that
name the model which made them."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from PyQt6.QtCore import QSettings

from app.project import Project
from tests.app.conftest import wait_for_latest

pytestmark = pytest.mark.gui


def _second_window(qtbot, window, tmp_path, answer: bool):
    """A new editor after a crash: same recovery folder, the tiny models the fixture pinned."""
    from app.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings2.ini"), QSettings.Format.IniFormat)
    settings.setValue("weights", window.settings.value("weights"))
    settings.setValue("inpaint_weights", window.settings.value("inpaint_weights"))
    second = MainWindow(
        settings=settings, recovery_dir=window.files.recovery_dir, ask=lambda *_: answer
    )
    qtbot.addWidget(second)
    return second


def _edit(window) -> np.ndarray:
    """An unsaved edit (a consolidation square in the lung); the labels after it."""
    lung = np.array(window.session.document.labels) == 1
    rows, cols = np.nonzero(lung)
    square = np.zeros_like(lung)
    row, col = rows[len(rows) // 2], cols[len(cols) // 2]
    square[row - 3 : row + 4, col - 3 : col + 4] = True
    assert window.session.document.paint(square, 3) > 0
    assert window.session.has_unsaved_work
    return np.array(window.session.document.labels)


def test_a_failed_restore_keeps_the_autosaved_labels(window, qtbot, tmp_path, dialogs):
    """The image moved away after the crash: restoring fails, and the recovery file is kept under
    a name the next autosave will not overwrite, which the message names."""
    from gan.paths import sample_slice_path

    moved = tmp_path / "moved" / sample_slice_path().name
    moved.parent.mkdir()
    shutil.copy(sample_slice_path(), moved)
    assert window.files.open_path(moved)
    labels = _edit(window)
    assert window.files.autosave()
    moved.unlink()  # the crash; then the image is gone
    second = _second_window(qtbot, window, tmp_path, answer=True)
    try:
        assert not second.files.offer_recovery()
        assert not second.files.recovery_path.exists()
        kept = list(window.files.recovery_dir.glob("unrestored-*.ctlsproj"))
        assert len(kept) == 1
        assert str(kept[0]) in dialogs[-1][1] and "\n" not in dialogs[-1][1]
        np.testing.assert_array_equal(Project.load(kept[0]).labels, labels)
        # a second failure keeps both
        shutil.copy(kept[0], second.files.recovery_path)
        assert not second.files.offer_recovery()
        assert len(list(window.files.recovery_dir.glob("unrestored-*.ctlsproj"))) == 2
    finally:
        second.live.controller.shutdown()


def test_declining_a_restore_discards_the_recovery_file(window, qtbot, tmp_path):
    _edit(window)
    assert window.files.autosave()
    second = _second_window(qtbot, window, tmp_path, answer=False)
    try:
        assert not second.files.offer_recovery()
        assert not second.files.recovery_path.exists() and second.session is None
        assert not list(window.files.recovery_dir.glob("unrestored-*"))
    finally:
        second.live.controller.shutdown()


def test_the_autosave_timer_writes_the_recovery_file(window, qtbot):
    window.files.autosave_timer.setInterval(20)
    assert not window.files.recovery_path.exists()
    labels = _edit(window)
    qtbot.waitUntil(window.files.recovery_path.exists, timeout=5000)
    np.testing.assert_array_equal(Project.load(window.files.recovery_path).labels, labels)
    assert "Autosaved" in window.statusBar().currentMessage()
    # nothing new since: the timer does not rewrite it
    window.files.recovery_path.unlink()
    qtbot.wait(100)
    assert not window.files.recovery_path.exists()


def test_an_autosave_write_error_is_reported_and_retried(window, tmp_path):
    labels = _edit(window)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the recovery folder should be")
    good = window.files.recovery_dir
    window.files.recovery_dir = blocked
    assert not window.files.autosave()
    assert window.statusBar().currentMessage().startswith("Autosave failed")
    window.files.recovery_dir = good
    assert window.files.autosave()  # the failed write did not count as saved
    np.testing.assert_array_equal(Project.load(window.files.recovery_path).labels, labels)


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (lambda data: {**data, "version": 99}, "newer than this program"),
        (lambda data: {**data, "labels_png": "bm90IGEgcG5n"}, "damaged label data"),
        (lambda data: {**data, "format": "something-else"}, "not a CT Lesion Studio project"),
        (lambda data: "{ cut short", "not a readable project file"),
    ],
)
def test_a_damaged_or_newer_project_is_refused_in_one_line_and_the_work_stays(
    window, tmp_path, dialogs, mutate, says
):
    good = tmp_path / "good.ctlsproj"
    assert window.files.write_project(good)
    labels = _edit(window)
    data = mutate(json.loads(good.read_text()))
    bad = tmp_path / "bad.ctlsproj"
    bad.write_text(data if isinstance(data, str) else json.dumps(data))
    assert not window.files.open_project(bad)
    title, message = dialogs[-1]
    assert title == "Cannot open project" and says in message and "\n" not in message
    np.testing.assert_array_equal(window.session.document.labels, labels)
    assert window.session.has_unsaved_work and window.session.project_path == good


def test_closing_with_unsaved_work_asks_and_no_keeps_the_window_and_the_recovery_file(
    window, qtbot
):
    from PyQt6.QtGui import QCloseEvent

    _edit(window)
    assert window.files.autosave()
    questions = []
    window.ask = lambda title, text: questions.append(title) or False
    event = QCloseEvent()
    window.closeEvent(event)
    assert questions == ["Unsaved changes"] and not event.isAccepted()
    assert window.files.recovery_path.exists() and window.live.controller.thread.isRunning()
    window.ask = lambda *_: True
    event = QCloseEvent()
    window.closeEvent(event)
    assert event.isAccepted() and not window.files.recovery_path.exists()
    assert not window.live.controller.thread.isRunning()


def test_opening_another_image_with_unsaved_work_asks_first(window, tmp_path):
    labels = _edit(window)
    questions = []
    window.ask = lambda title, text: questions.append(title) or False
    assert not window.files.confirm_discard()
    assert questions == ["Unsaved changes"]
    np.testing.assert_array_equal(window.session.document.labels, labels)
    assert window.files.write_project(tmp_path / "saved.ctlsproj")
    assert window.files.confirm_discard() and questions == ["Unsaved changes"]  # saved: no question


def test_an_export_names_the_model_that_made_the_shown_result(window, qtbot, tmp_path):
    """The SHA-256 in every exported file is that of the weights file behind the result shown:
    the inpainting model's after an edit, the label model's for the whole lung."""
    import pydicom

    from gan.ctio import read_png_text

    def file_sha(setting: str) -> str:
        return hashlib.sha256(open(window.settings.value(setting), "rb").read()).hexdigest()

    label_sha, inpaint_sha = file_sha("weights"), file_sha("inpaint_weights")
    assert label_sha != inpaint_sha
    lung = np.array(window.session.document.labels) == 1
    spot = np.zeros_like(lung)
    rows, cols = np.nonzero(lung)
    spot[rows[len(rows) // 2], cols[len(cols) // 2]] = True
    window.session.document.paint(spot, 3)
    for whole_lung, expected in ((False, inpaint_sha), (True, label_sha)):
        window.live.set_whole_lung(whole_lung)
        result = wait_for_latest(window, qtbot)
        assert (result.mask is None) == whole_lung
        files = {f.name: f for f in window.files.export_slice(tmp_path / str(whole_lung))}
        record = json.loads(files["medseg-0085_export.json"].read_text())
        assert record["model_sha256"] == expected
        for what in ("synthetic", "composite"):
            assert read_png_text(files[f"medseg-0085_{what}.png"])["ModelSHA256"] == expected
            ds = pydicom.dcmread(files[f"medseg-0085_{what}.dcm"])
            assert expected in ds.ImageComments
