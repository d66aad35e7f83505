"""Regenerate docs/editor.png: the editor on the sample slice with a painted GGO lesion, inpainted
by the default inpainting model (the app's default mode). Needs a display (Xvfb is fine):

    xvfb-run -a -s "-screen 0 1700x1000x24" .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(out: Path = REPO / "docs" / "editor.png") -> int:
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.selftest import lesion_disc
    from gan.labels import GGO
    from gan.paths import sample_slice_path

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, recovery_dir=Path(tmp) / "r", ask=lambda *_: False)
        window.resize(1660, 900)
        window.show()
        live = window.live
        deadline = time.monotonic() + 120
        while not (live.inpaint_model or live.inpaint_error) or not live.model:
            if time.monotonic() > deadline:
                print("models did not load", file=sys.stderr)
                return 1
            app.processEvents()
            time.sleep(0.02)
        window.files.open_path(sample_slice_path())
        labels = np.asarray(window.session.document.labels)
        window.session.document.begin_stroke()
        window.session.document.paint(lesion_disc(labels, radius=18), GGO, "lesion")
        window.session.document.end_stroke("lesion")
        results = []
        window.live.controller.resultReady.connect(results.append)
        window.live.request(full=True)  # inpainting where its model loaded
        request = window.live.controller.latest_id
        deadline = time.monotonic() + 120
        while not any(r.request_id >= request for r in results):
            if time.monotonic() > deadline:
                print("no synthesis result (is a default model shipped?)", file=sys.stderr)
                return 1
            app.processEvents()
            time.sleep(0.02)
        for _ in range(50):
            app.processEvents()
            time.sleep(0.02)
        window.grab().save(str(out))
        window.live.controller.shutdown()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*(Path(a) for a in sys.argv[1:])))
