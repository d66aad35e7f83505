"""Live synthesis in the editor: the models, the synthesis settings, and the two read-only panes.

:class:`LiveSynthesis` posts the open session's requests to the synthesis thread
(:mod:`app.worker`), hands results to the session (which drops stale ones), and draws the
synthetic and composite panes. It knows models only by the :class:`~app.synthesis.ModelInfo` the
thread reports; it never touches the thread's objects.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QObject
from PyQt6.QtWidgets import QFileDialog, QInputDialog

from app.synthesis import ModelInfo, Result
from app.widgets.panes import PreviewView, difference_rgb
from app.widgets.status import ElidedLabel
from app.worker import SynthesisController

WEIGHTS_FILTER = "Weights (*.safetensors *.pt);;All files (*)"
NO_EDITS = (
    "No edits yet: paint or change labels and only that region (plus a margin) is regenerated. "
    "The composite is the real slice.\n\nSynthesis > Regenerate whole lung (Ctrl+L) synthesizes "
    "the whole lung instead."
)


class LiveSynthesis(QObject):
    """Owned by the main window (``window``); its thread stops when the window goes."""

    def __init__(self, window, synth_view: PreviewView, composite_view: PreviewView) -> None:
        super().__init__(window)
        self.window = window
        self.settings = window.settings
        self.synth_view, self.composite_view = synth_view, composite_view
        self.status = ElidedLabel("Synthesis: loading model…")
        self.feather_px = float(self.settings.value("feather_px", 4.0))
        #: regenerate only the edited region (inpaint model) unless the user asks for the whole lung
        self.whole_lung = self.settings.value("whole_lung", False, type=bool)
        self.margin_mm = float(self.settings.value("inpaint_margin_mm", 5.0))
        self.preview_mode = str(self.settings.value("preview", "auto"))
        self.show_difference = False
        self.model: ModelInfo | None = None
        self.inpaint_model: ModelInfo | None = None
        self.inpaint_error = ""  # why no inpaint model loaded, as the synthesis thread said
        self.variant_count = 6
        self.variants_dialog = None
        self.controller = SynthesisController(window)
        self.controller.resultReady.connect(self._show_result)
        self.controller.failed.connect(self._failed)
        self.controller.modelLoaded.connect(self._model_loaded)
        self.controller.inpainterLoaded.connect(self._inpainter_loaded)
        self.controller.inpainterFailed.connect(self._inpainter_failed)
        self.controller.variantsReady.connect(self._show_variants)
        self.load_weights(str(self.settings.value("weights", "default")))
        self.load_inpaint_weights(str(self.settings.value("inpaint_weights", "default")))

    @property
    def session(self):
        return self.window.session

    @property
    def device(self) -> str:
        return str(self.settings.value("device", "auto"))

    # ------------------------------------------------------------------ models
    def load_weights(self, weights: str) -> None:
        self.settings.setValue("weights", weights)
        self.model = None
        self.status.setText("Synthesis: loading model…")
        self.controller.load(weights, self.device)

    def load_inpaint_weights(self, weights: str) -> None:
        self.settings.setValue("inpaint_weights", weights)
        self.inpaint_model = None
        self.controller.load_inpainter(weights, self.device)

    def choose_weights_dialog(self, inpaint: bool = False) -> None:
        title = "Inpainting weights" if inpaint else "Generator weights"
        path, _ = QFileDialog.getOpenFileName(self.window, title, "", WEIGHTS_FILTER)
        if path:
            (self.load_inpaint_weights if inpaint else self.load_weights)(path)

    def set_device(self, device: str) -> None:
        self.settings.setValue("device", device)
        self.load_weights(str(self.settings.value("weights", "default")))
        self.load_inpaint_weights(str(self.settings.value("inpaint_weights", "default")))

    def _model_loaded(self, info: ModelInfo) -> None:
        self.model = info
        self.status.setText(f"Synthesis: {info.description}")
        self.request(full=True)

    def _inpainter_loaded(self, info: ModelInfo) -> None:
        self.inpaint_model, self.inpaint_error = info, ""
        self.update_titles()
        self.request(full=True)

    def _inpainter_failed(self, message: str) -> None:
        self.inpaint_model, self.inpaint_error = None, message
        self.window.statusBar().showMessage(
            f"{message[:1].upper()}{message[1:]}; regenerating the whole lung instead", 15_000
        )
        self.update_titles()
        self.request(full=True)

    def _failed(self, message: str) -> None:
        if self.session is not None:
            self.session.result = None  # nothing shown or exported comes from a model that failed
        self.status.setText("Synthesis unavailable (see Synthesis menu)")
        self.window.statusBar().showMessage(message, 15_000)
        note = "\n\nThe editor works without it; choose weights in the Synthesis menu."
        for view in (self.synth_view, self.composite_view):
            view.show_message(message + note)

    # ------------------------------------------------------------------ settings
    @property
    def inpainting(self) -> bool:
        """True where edits regenerate only their region (an inpaint model is loaded, a real slice
        is open and the user has not asked for the whole lung)."""
        return self.inpaint_model is not None and not self.whole_lung and self.session is not None

    def set_whole_lung(self, on: bool) -> None:
        self.whole_lung = bool(on)
        self.settings.setValue("whole_lung", self.whole_lung)
        self.update_titles()
        self.request(full=True)

    def update_titles(self) -> None:
        if self.inpainting:
            titles = ("Regenerated region", "Composite: the real slice, edited region regenerated")
        else:
            titles = ("Synthetic", "Composite: synthetic lung in the real slice")
        for header, title in zip(self.window.pane_headers[1:], titles, strict=True):
            header.setText(title)

    def _ask_width(self, title: str, prompt: str, value: float) -> float | None:
        """A width from 0 to 50 (one decimal) from the user; None if cancelled."""
        value, ok = QInputDialog.getDouble(self.window, title, prompt, value, 0.0, 50.0, 1)
        return value if ok else None

    def margin_dialog(self) -> None:
        prompt = "Margin around each edit that is regenerated too (mm):"
        value = self._ask_width("Inpainting margin", prompt, self.margin_mm)
        if value is not None:
            self.margin_mm = value
            self.settings.setValue("inpaint_margin_mm", value)
            self.request(full=True)

    def feather_dialog(self) -> None:
        prompt = "Composite edge ramp (pixels; 0 = hard paste):"
        value = self._ask_width("Feather width", prompt, self.feather_px)
        if value is not None:
            self.feather_px = value
            self.settings.setValue("feather_px", value)
            self.render()

    def set_preview(self, mode: str) -> None:
        """How the stroke preview runs: "auto", "256" or "128" (app.synthesis.PREVIEW_MODES)."""
        self.settings.setValue("preview", mode)
        self.preview_mode = mode

    def set_difference(self, on: bool) -> None:
        self.show_difference = bool(on)
        self.render()

    # ------------------------------------------------------------------ requests and results
    def request(self, full: bool = False) -> None:
        """Post the current labels: a G1-only preview while a stroke is in progress, else the
        full model."""
        session = self.session
        if session is None:
            return
        stage = None if full or not self.window.canvas.painting else "global"
        request = session.synthesis_request(
            stage, self.inpainting, self.margin_mm, self.preview_mode
        )
        if request is None:  # no lung to synthesize from: say so in the panes
            for view in (self.synth_view, self.composite_view):
                view.show_message(session.lung_problem_line() + ".")
            return
        self.controller.request(request)

    def _show_result(self, result: Result) -> None:
        if self.session is None or not self.session.accept(result):
            return  # a result for an image that is no longer open
        which = f"preview (G1 at {result.input_size // 2}²)" if result.stage == "global" else "full"
        if result.mask is not None:
            n = int(result.mask.sum())
            which = f"inpainting {n:,} px, {which}" if n else "no edits: the real slice"
        self.status.setText(
            f"Synthesis: {result.model.description} · {which} {result.milliseconds:.0f} ms"
        )
        self.render()

    def composed(self):
        """The shown result composed into the slice (app.session.EditSession.composed)."""
        return self.session.composed(self.feather_px) if self.session is not None else None

    def render(self) -> None:
        session, composed = self.session, self.composed()
        if composed is None:
            return
        window = self.window.canvas.window
        mask = session.result.mask
        if mask is not None and not mask.any():
            self.synth_view.show_message(NO_EDITS)
        elif mask is not None:  # the regenerated region, on black
            low = np.float32(window.low)
            self.synth_view.show_values(np.where(mask, composed.synthetic, low), window)
        else:
            self.synth_view.show_values(composed.synthetic, window)
        if self.show_difference:
            rgb = difference_rgb(composed.composite, session.ct.pixels, window.width / 2)
            self.composite_view.show_rgb(rgb)
        else:
            self.composite_view.show_values(composed.composite, window)
        self.sync()

    def sync(self) -> None:
        for view in (self.synth_view, self.composite_view):
            view.follow(self.window.canvas)

    # ------------------------------------------------------------------ variants
    def make_variants(self) -> None:
        """N seeded augmentations of the current lesions, synthesized in the synthesis thread."""
        if self.session is None:
            return
        base = self.window.tools.augment.take_seed(self.variant_count)
        maps, contexts, seeds = self.session.variant_requests(
            base, self.variant_count, self.inpainting, self.margin_mm
        )
        self.window.statusBar().showMessage(f"Synthesizing {len(maps)} variants…", 5000)
        self.controller.request_variants(maps, contexts, seeds)

    def _show_variants(self, triples: list, _model: ModelInfo) -> None:
        from app.dialogs.variants import VariantsDialog

        session = self.session
        if session is None or not triples or triples[0][0].shape != session.ct.shape:
            return
        composites = [
            session.compose(image, labels, mask, self.feather_px).composite
            for labels, image, mask in triples
        ]
        pairs = [(labels, image) for labels, image, _mask in triples]
        self.close_variants()
        self.variants_dialog = VariantsDialog(
            pairs, composites, self.window.canvas.window, self.window
        )
        self.variants_dialog.chosen.connect(self.window.apply_variant)
        self.variants_dialog.show()

    def close_variants(self) -> None:
        if self.variants_dialog is not None:
            self.variants_dialog.close()
            self.variants_dialog = None
