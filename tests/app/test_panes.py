"""The three panes show the same part of the slice: all of it by default, at any window size, and
the same rectangle when the user zooms and pans; the overlay redraws only a change's box."""

import numpy as np
import pytest
from PyQt6.QtCore import QRectF

from tests.app.conftest import wait_for_latest

pytestmark = pytest.mark.gui


def visible(view) -> QRectF:
    return view.mapToScene(view.viewport().rect()).boundingRect()


def panes(window):
    return (window.canvas, window.live.synth_view, window.live.composite_view)


def shows_whole_slice(view, width, height) -> bool:
    """The whole slice is in view, and fitted: it fills the view along one axis (within the few
    screen pixels of margin that QGraphicsView.fitInView leaves)."""
    rect = visible(view)
    slack = 1.0  # a pixel of rounding at the edges
    inside = (
        rect.left() <= slack
        and rect.top() <= slack
        and rect.right() >= width - slack
        and rect.bottom() >= height - slack
    )
    margin = 8 / view.transform().m11()  # fitInView's margin, in slice pixels
    fitted = min(rect.width() - width, rect.height() - height) <= margin
    return inside and fitted


@pytest.mark.parametrize("size", [(1600, 900), (1024, 700)])
def test_every_pane_fits_the_whole_slice_at_any_window_size(window, qtbot, size):
    wait_for_latest(window, qtbot)
    height, width = window.session.ct.shape
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() <= size[0] + 1, timeout=5000)
    qtbot.waitUntil(
        lambda: all(shows_whole_slice(v, width, height) for v in panes(window)), timeout=5000
    )


def test_zoom_and_pan_stay_in_step(window, qtbot):
    wait_for_latest(window, qtbot)
    canvas = window.canvas
    canvas.zoom(3.0)
    canvas.horizontalScrollBar().setValue(canvas.horizontalScrollBar().value() + 40)

    def in_step() -> bool:
        master = visible(canvas)
        for view in panes(window)[1:]:
            rect = visible(view)
            same_centre = (rect.center() - master.center()).manhattanLength() <= 2
            if not (same_centre and rect.adjusted(-1, -1, 1, 1).contains(master)):
                return False
        return True

    qtbot.waitUntil(in_step, timeout=5000)
    assert visible(canvas).width() < window.session.ct.shape[1] / 2  # really zoomed in
    canvas.fit()
    height, width = window.session.ct.shape
    qtbot.waitUntil(
        lambda: all(shows_whole_slice(v, width, height) for v in panes(window)), timeout=5000
    )


def test_a_brush_dab_redraws_only_its_bounding_box(window, monkeypatch):
    import app.widgets.canvas as canvas_module

    shapes = []
    real = canvas_module.overlay_rgba
    monkeypatch.setattr(
        canvas_module,
        "overlay_rgba",
        lambda labels, o: shapes.append(labels.shape) or real(labels, o),
    )
    lung = window.session.labels == 1
    rows, cols = np.nonzero(lung)
    r, c = int(rows[len(rows) // 2]), int(cols[len(cols) // 2])
    dab = np.zeros_like(lung)
    dab[r - 2 : r + 3, c - 3 : c + 4] = True
    window.session.document.paint(dab, 3)
    assert shapes == [(5, 7)]
    pixmap = window.canvas._overlay_item.pixmap().toImage()
    colour = pixmap.pixelColor(c, r)
    assert (colour.red(), colour.green(), colour.blue()) == (0, 255, 0)  # consolidation green


def test_an_export_before_the_new_models_result_names_the_old_model(window, qtbot, tmp_path):
    """Weights switched, the new model loaded, its first result not yet shown: the export is
    stamped with the model of the image it contains."""
    import json

    from tests.conftest import make_tiny_weights

    window.live.set_whole_lung(True)
    shown = wait_for_latest(window, qtbot)
    old = shown.model.sha256
    window.live.controller.resultReady.disconnect(window.live._show_result)  # hold results back
    new_path = make_tiny_weights(tmp_path / "new.safetensors", seed=3)
    with qtbot.waitSignal(window.live.controller.modelLoaded, timeout=30000) as loaded:
        window.live.load_weights(str(new_path))
    assert loaded.args[0].sha256 != old and window.session.result is shown
    files = {f.name: f for f in window.files.export_slice(tmp_path / "before")}
    assert json.loads(files["medseg-0085_export.json"].read_text())["model_sha256"] == old
    window.live.controller.resultReady.connect(window.live._show_result)
    window.live.request(full=True)
    result = wait_for_latest(window, qtbot)
    assert result.model.sha256 == loaded.args[0].sha256
    files = {f.name: f for f in window.files.export_slice(tmp_path / "after")}
    assert json.loads(files["medseg-0085_export.json"].read_text())["model_sha256"] != old
