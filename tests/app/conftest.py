"""Fixtures for the editor's GUI tests: an editor window on the sample slice with tiny models."""

import pytest
from PyQt6.QtCore import QSettings

from tests.conftest import make_tiny_weights


@pytest.fixture()
def dialogs(monkeypatch):
    """Error dialogs shown (title, message), instead of blocking modal boxes."""
    from PyQt6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(
        QMessageBox, "critical", lambda parent, title, text, *a: shown.append((title, text))
    )
    return shown


@pytest.fixture()
def window(qtbot, tmp_path, dialogs):
    from app.main_window import MainWindow
    from gan.paths import sample_slice_path

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    # a tiny model: synthesis in milliseconds, whatever default the repository ships
    settings.setValue("weights", str(make_tiny_weights(tmp_path / "tiny-default.safetensors")))
    settings.setValue(
        "inpaint_weights", str(make_tiny_weights(tmp_path / "tiny-inpaint.safetensors", "inpaint"))
    )
    w = MainWindow(
        settings=settings,
        recovery_dir=tmp_path / "recovery",
        ask=lambda *_: True,
        choose_index=lambda *_: 0,
    )
    qtbot.addWidget(w)
    w.resize(1800, 1000)
    w.show()
    qtbot.waitExposed(w)
    assert w.files.open_path(sample_slice_path())
    w.canvas.fit()
    # both models loaded and their first result on screen, so no test races the start-up signals
    qtbot.waitUntil(lambda: bool(w.live.model) and w.live.inpaint_model is not None, timeout=30000)
    wait_for_latest(w, qtbot)
    return w


def wait_for_latest(window, qtbot):
    """The result of the newest request, once it is the one on screen."""
    qtbot.waitUntil(
        lambda: (
            window.session.result is not None
            and window.session.result.request_id == window.live.controller.latest_id
        ),
        timeout=30000,
    )
    return window.session.result
