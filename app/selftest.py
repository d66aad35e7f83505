"""``--self-test``: the whole path a user takes, unattended, to prove an install (or a frozen
bundle) works: open the bundled sample slice, paint a GGO lesion, synthesize it with the shipped
default weights, export the synthetic slice as PNG to a temporary folder and read it back.

Prints one line per step; exit 0 on success, 1 with ``self-test failed at STEP: reason`` otherwise.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TIMEOUT_S = 300.0


class SelfTestError(RuntimeError):
    pass


def lesion_disc(labels: np.ndarray, radius: int = 14) -> np.ndarray:
    """A disc inside the lung (centred on the lung pixel deepest inside it) to paint as GGO."""
    from scipy import ndimage as ndi

    lung = labels == 1
    if not lung.any():
        raise SelfTestError("the sample slice has no lung pixels to paint on")
    depth = ndi.distance_transform_edt(lung)
    row, col = np.unravel_index(int(np.argmax(depth)), lung.shape)
    yy, xx = np.ogrid[: lung.shape[0], : lung.shape[1]]
    return ((yy - row) ** 2 + (xx - col) ** 2 <= radius**2) & lung


def _wait(app, done, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise SelfTestError(f"no {what} within {timeout_s:.0f} s")
        app.processEvents()
        time.sleep(0.01)


def run_self_test(timeout_s: float = TIMEOUT_S, out=print) -> int:
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from app.main_window import APP_NAME, MainWindow
    from app.synthesis import Request
    from gan.ctio import read_png_text
    from gan.labels import GGO
    from gan.paths import sample_slice_path

    step = "start"
    window = None
    with tempfile.TemporaryDirectory(prefix="ctls-self-test-") as tmp:
        tmp = Path(tmp)
        try:
            app = QApplication.instance() or QApplication([sys.argv[0]])
            app.setApplicationName(APP_NAME)
            # a private settings file: the user's chosen weights or device must not decide the test
            settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
            failures: list[str] = []
            results: list = []
            step = "load the default model"
            window = MainWindow(
                settings=settings, recovery_dir=tmp / "recovery", ask=lambda *_: False
            )
            window.live.controller.failed.connect(failures.append)
            window.live.controller.resultReady.connect(results.append)
            _wait(app, lambda: window.live.model or failures, "model", timeout_s)
            if failures:
                raise SelfTestError(failures[-1])
            out(f"ok   model: {window.live.model.description}")
            live = window.live
            _wait(app, lambda: live.inpaint_model or live.inpaint_error, "inpaint model", timeout_s)
            if live.inpaint_model is None:
                raise SelfTestError(live.inpaint_error)
            out(f"ok   inpainting model: sha256 {live.inpaint_model.sha256[:12]}")

            step = "open the sample slice"
            window.files.open_path(sample_slice_path())
            if window.session is None or window.errors:
                raise SelfTestError(window.errors[-1] if window.errors else "nothing opened")
            out(
                f"ok   opened {sample_slice_path().name} {window.session.ct.shape[1]}x{window.session.ct.shape[0]}"
            )

            step = "paint a lesion"
            disc = lesion_disc(np.asarray(window.session.document.labels))
            window.session.document.begin_stroke()
            painted = window.session.document.paint(disc, GGO, "self-test lesion")
            window.session.document.end_stroke("self-test lesion")
            if painted == 0:
                raise SelfTestError("the GGO disc changed no pixel")
            out(f"ok   painted {painted} GGO pixels")

            def synthesize(context, what: str):
                """Request, wait for the result and for it to be on screen; the result."""
                request = window.live.controller.request(
                    Request(window.session.token, expected, None, context)
                )
                _wait(
                    app,
                    lambda: failures or any(r.request_id >= request for r in results),
                    f"{what} result",
                    timeout_s,
                )
                if failures:
                    raise SelfTestError(failures[-1])
                result = next(r for r in results if r.request_id >= request)
                # ours on screen, or already replaced there by a newer one (the editor's own
                # debounced request after the paint can land in the same event-loop pass)
                _wait(
                    app,
                    lambda: (
                        window.session.result is not None
                        and window.session.result.request_id >= result.request_id
                    ),
                    f"{what} result on screen",
                    timeout_s,
                )
                return result

            step = "synthesize"
            expected = np.array(window.session.document.labels, copy=True)
            result = synthesize(None, "synthesis")
            image = np.asarray(result.image)
            if image.shape != window.session.ct.shape or not np.isfinite(image).all():
                raise SelfTestError(f"bad synthetic image {image.shape}")
            lung = expected > 0
            if float(image[lung].std()) < 1e-3:
                raise SelfTestError("the synthetic lung is flat: the weights look untrained")
            out(f"ok   synthesized on {result.device} in {result.milliseconds:.0f} ms")

            step = "inpaint the painted lesion"
            context = window.session.inpaint_context(window.live.margin_mm)
            if not context.mask.any():
                raise SelfTestError("the painted lesion gave no region to regenerate")
            result = synthesize(context, "inpainting")
            composite = window.live.composed().composite
            outside = ~context.mask
            if not np.array_equal(composite[outside], window.session.ct.pixels[outside]):
                raise SelfTestError("inpainting changed pixels outside the edited region")
            out(
                f"ok   inpainted {int(context.mask.sum())} px on {result.device} in "
                f"{result.milliseconds:.0f} ms; the rest of the slice is untouched"
            )

            step = "export"
            window.errors.clear()
            files = window.files.export_slice(tmp / "export")
            if window.errors or not files:
                raise SelfTestError(window.errors[-1] if window.errors else "no files written")
            pngs = [f for f in files if f.suffix == ".png" and "synthetic" in f.name]
            if not pngs:
                raise SelfTestError("no synthetic PNG among the exported files")
            text = read_png_text(pngs[0])
            if "SYNTHETIC" not in " ".join(text.values()).upper():
                raise SelfTestError(f"{pngs[0].name} does not say it is synthetic")
            out(f"ok   exported {len(files)} files, e.g. {pngs[0].name}")
        except Exception as exc:  # noqa: BLE001 - any failure becomes the one-line verdict
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"self-test failed at {step}: {message}", file=sys.stderr)
            return 1
        finally:
            if window is not None:
                window.live.controller.shutdown()
                window.files.autosave_timer.stop()
                window.deleteLater()
    out("self-test passed")
    return 0
