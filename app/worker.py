"""The synthesis worker: one long-lived thread owns the generator; only the newest request runs.

The UI calls :meth:`SynthesisController.request` as often as it likes (every mouse move, say); the
request replaces any pending one, so a fast brush never builds a backlog. Results come back by
signal, with the inference time, on the GUI thread.

Two generators live here: the label-mode one (the paper: the whole lung from the label map) and,
where it loads, the inpaint-mode one (only the edited region of the real slice is regenerated). A
request with an :class:`InpaintContext` goes to the second.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot


@dataclasses.dataclass
class InpaintContext:
    """What an inpaint request needs besides the labels: the real slice in [-1, 1] and the region."""

    image: np.ndarray  # (H, W) float32 in [-1, 1]
    mask: np.ndarray  # (H, W) bool: the pixels to regenerate


@dataclasses.dataclass
class SynthesisResult:
    request_id: int
    image: np.ndarray  # (H, W) float32 in [-1, 1]
    stage: str
    milliseconds: float
    device: str
    input_size: int = 512  # the label map's size at the network input (G1 runs at half of it)
    #: inpainting: the regenerated region (only it is synthetic); None: the whole lung (label mode)
    mask: np.ndarray | None = None


class SynthesisWorker(QObject):
    """Lives in its own QThread. Holds at most one pending request."""

    resultReady = pyqtSignal(object)  # SynthesisResult
    variantsReady = pyqtSignal(object)  # list of (label map, image, mask or None) triples
    failed = pyqtSignal(str)
    modelLoaded = pyqtSignal(str)  # a one-line description
    inpainterLoaded = pyqtSignal(str)  # a description, or "" where no inpaint model loaded
    _wake = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: tuple[int, np.ndarray, str | None, InpaintContext | None] | None = None
        self._scheduled = False
        self.synthesizer = None
        self.inpainter = None  # the inpaint-mode Synthesizer, where one loaded
        self.inpainter_error = ""
        self.runs = 0  # how many requests were actually synthesized (tests read it)
        #: "auto", "256" (G1 at 256^2, what it was trained at) or "128" (G1 at 128^2, fastest)
        self.preview_mode = "auto"
        self._wake.connect(self._process)

    def submit(
        self,
        request_id: int,
        labels: np.ndarray,
        stage: str | None,
        context: InpaintContext | None = None,
    ) -> None:
        """Thread-safe: replace the pending request; wake the worker if it is idle."""
        with self._lock:
            self._pending = (request_id, np.array(labels, np.uint8, copy=True), stage, context)
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            self._wake.emit()  # queued across threads: runs _process in the worker thread

    @pyqtSlot(object, object, object)
    def variants(self, label_maps: list, contexts: list | None, seeds: list | None = None) -> None:
        """Synthesize several label maps (the variants dialog) in this thread; with ``contexts``
        (one :class:`InpaintContext` per map) by inpainting each map's region. ``seeds`` (one per
        map) pick the texture of a model with noise inputs, so variants differ in texture too."""
        if self.synthesizer is None:
            self.failed.emit("Synthesis unavailable: no model loaded")
            return
        try:
            if contexts is not None and self.inpainter is not None:
                images = self.inpainter.synthesize_batch(
                    np.stack(label_maps),
                    images=np.stack([c.image for c in contexts]),
                    masks=np.stack([c.mask for c in contexts]),
                    seeds=seeds,
                )
                masks = [c.mask for c in contexts]
            else:
                images = self.synthesizer.synthesize_batch(np.stack(label_maps), seeds=seeds)
                masks = [None] * len(label_maps)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(
                f"Synthesis failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            )
            return
        self.variantsReady.emit(list(zip(label_maps, images, masks, strict=True)))

    @pyqtSlot(str, str)
    def load_inpainter(self, weights: str, device: str) -> None:
        """Load the inpaint-mode generator; a failure leaves whole-lung synthesis working."""
        from gan.synthesizer import Synthesizer

        try:
            self.inpainter = Synthesizer(
                weights, device=None if device == "auto" else device, mode="inpaint"
            )
        except Exception as exc:  # noqa: BLE001 - reported; the label model still works
            self.inpainter = None
            self.inpainter_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.inpainterLoaded.emit("")
            return
        self.inpainter_error = ""
        s = self.inpainter
        self.inpainterLoaded.emit(
            f"inpaint {s.config.preset} ({s.stage}) on {s.device.type.upper()}, "
            f"sha256 {s.sha256[:12]}"
        )

    @pyqtSlot(str, str)
    def load(self, weights: str, device: str) -> None:
        from gan.synthesizer import Synthesizer

        try:
            self.synthesizer = Synthesizer(
                weights, device=None if device == "auto" else device, mode="label"
            )
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, the editor keeps working
            self.synthesizer = None
            self.failed.emit(
                f"Synthesis unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            )
            return
        s = self.synthesizer
        self.modelLoaded.emit(
            f"{s.config.preset} ({s.stage}) on {s.device.type.upper()}, sha256 {s.sha256[:12]}"
        )

    def preview_size(self) -> int | None:
        """Input size for the stroke preview: ``None`` runs G1 at 256^2 (half of 512^2); 256 runs
        it at 128^2, a quarter of the work. ``auto`` takes the fast one where inference runs on a
        CPU without native bf16 (there G1 at 256^2 takes about 180 ms on two cores)."""
        s = self.synthesizer
        mode = self.preview_mode
        if mode == "auto":
            mode = "128" if s is not None and s.device.type == "cpu" and not s.cpu_bf16 else "256"
        return s.size // 2 if mode == "128" and s is not None else None

    @pyqtSlot()
    def _process(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            self._scheduled = False
        if pending is None or self.synthesizer is None:
            return
        request_id, labels, stage, context = pending
        start = time.perf_counter()
        synthesizer = self.synthesizer if context is None else self.inpainter
        try:
            size = self.preview_size() if stage == "global" else None
            if synthesizer is None:
                raise RuntimeError("no inpainting model loaded")
            if context is not None and not context.mask.any():
                image = context.image  # nothing edited: the real slice, no network run
            elif context is not None:
                image = synthesizer.synthesize(
                    labels, stage=stage, size=size, image=context.image, mask=context.mask
                )
            else:
                image = synthesizer.synthesize(labels, stage=stage, size=size)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(
                f"Synthesis failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            )
            return
        self.runs += 1
        ms = (time.perf_counter() - start) * 1000
        self.resultReady.emit(
            SynthesisResult(
                request_id,
                image,
                stage or synthesizer.stage,
                ms,
                synthesizer.device.type,
                size or synthesizer.size,
                None if context is None else context.mask,
            )
        )


class SynthesisController(QObject):
    """Owns the worker thread; the GUI-side API."""

    resultReady = pyqtSignal(object)
    variantsReady = pyqtSignal(object)
    failed = pyqtSignal(str)
    modelLoaded = pyqtSignal(str)
    inpainterLoaded = pyqtSignal(str)
    _load = pyqtSignal(str, str)
    _load_inpainter = pyqtSignal(str, str)
    _variants = pyqtSignal(object, object, object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("synthesis")
        self.worker = SynthesisWorker()
        self.worker.moveToThread(self.thread)
        self.worker.resultReady.connect(self._deliver)
        self.worker.failed.connect(self.failed)
        self.worker.modelLoaded.connect(self.modelLoaded)
        self.worker.inpainterLoaded.connect(self.inpainterLoaded)
        self._load.connect(self.worker.load)
        self._load_inpainter.connect(self.worker.load_inpainter)
        self._variants.connect(self.worker.variants)
        self.worker.variantsReady.connect(self.variantsReady)
        self.thread.start()
        self._next_id = 0
        self.latest_id = -1

    def load(self, weights: str, device: str = "auto") -> None:
        self._load.emit(str(weights), device)

    def load_inpainter(self, weights: str, device: str = "auto") -> None:
        self._load_inpainter.emit(str(weights), device)

    def request(
        self,
        labels: np.ndarray,
        stage: str | None = None,
        context: InpaintContext | None = None,
    ) -> int:
        self._next_id += 1
        self.latest_id = self._next_id
        self.worker.submit(self._next_id, labels, stage, context)
        return self._next_id

    def request_variants(
        self, label_maps: list, contexts: list | None = None, seeds: list | None = None
    ) -> None:
        self._variants.emit(label_maps, contexts, seeds)

    def _deliver(self, result: SynthesisResult) -> None:
        self.resultReady.emit(result)

    def shutdown(self) -> None:
        self.thread.quit()
        # the thread finishes the synthesis it is running (seconds at most); a QThread destroyed
        # while running aborts the process, so wait for it rather than give up after a while
        self.thread.wait()
