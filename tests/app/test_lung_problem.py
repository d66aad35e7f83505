"""The editor on a slice whose derived lung is implausible (issue 20): one line in the status bar
and on the panes, no whole-lung synthesis of no lung, and the canvas stays editable."""

import numpy as np

from gan.ctio import write_png
from gan.labels import LUNG
from tests.app.conftest import wait_for_latest
from tests.conftest import phantom


def test_a_slice_without_lung_waits_for_painted_lung(window, qtbot, dialogs, tmp_path):
    assert window.session.lung_problem is None  # the sample slice's lung is plausible
    window.live.set_whole_lung(True)  # every request would be a whole-lung synthesis
    wait_for_latest(window, qtbot)
    image, labels = phantom(128)
    body_only = np.where(image > -1, np.float32(0.7), image)
    write_png(tmp_path / "no_lung.png", ((body_only + 1) * 127.5).astype(np.uint8))
    posted = window.live.controller.latest_id

    assert window.files.open_path(tmp_path / "no_lung.png")
    assert window.session.lung_problem == "no lung found"
    line = window.statusBar().currentMessage()
    assert "no lung found" in line and "paint the lung" in line and "\n" not in line
    assert not dialogs  # a note, not an error box
    assert window.live.controller.latest_id == posted  # nothing was sent to the model
    assert window.session.result is None
    assert all(
        "no lung found" in v.message for v in (window.live.synth_view, window.live.composite_view)
    )
    assert not (np.asarray(window.session.document.labels) == LUNG).any()

    window.auto_lung()  # deriving again finds nothing either, and changes nothing
    assert "Auto lung not applied" in window.statusBar().currentMessage()
    assert not window.session.document.labels.any() and window.live.controller.latest_id == posted

    window.session.document.paint(labels == 1, LUNG)  # the user paints the lung
    result = wait_for_latest(window, qtbot)
    assert window.live.controller.latest_id > posted and result.mask is None  # the whole lung
    assert result.image.shape == (128, 128) and window.session.lung_problem is None
