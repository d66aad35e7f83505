"""The synthesis worker: one long-lived thread owns the generator; only the newest request runs.

The UI calls :meth:`SynthesisController.request` as often as it likes (every mouse move, say); the
request replaces any pending one, so a fast brush never builds a backlog. Results come back by
signal, with the inference time, on the GUI thread.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot


@dataclasses.dataclass
class SynthesisResult:
    request_id: int
    image: np.ndarray  # (H, W) float32 in [-1, 1]
    stage: str
    milliseconds: float
    device: str
    input_size: int = 512  # the label map's size at the network input (G1 runs at half of it)


class SynthesisWorker(QObject):
    """Lives in its own QThread. Holds at most one pending request."""

    resultReady = pyqtSignal(object)  # SynthesisResult
    variantsReady = pyqtSignal(object)  # list of (label map, image) pairs
    failed = pyqtSignal(str)
    modelLoaded = pyqtSignal(str)  # a one-line description
    _wake = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: tuple[int, np.ndarray, str | None] | None = None
        self._scheduled = False
        self.synthesizer = None
        self.runs = 0  # how many requests were actually synthesized (tests read it)
        #: "auto", "256" (G1 at 256^2, what it was trained at) or "128" (G1 at 128^2, fastest)
        self.preview_mode = "auto"
        self._wake.connect(self._process)

    def submit(self, request_id: int, labels: np.ndarray, stage: str | None) -> None:
        """Thread-safe: replace the pending request; wake the worker if it is idle."""
        with self._lock:
            self._pending = (request_id, np.array(labels, np.uint8, copy=True), stage)
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            self._wake.emit()  # queued across threads: runs _process in the worker thread

    @pyqtSlot(object)
    def variants(self, label_maps: list) -> None:
        """Synthesize several label maps (the variants dialog) in this thread."""
        if self.synthesizer is None:
            self.failed.emit("Synthesis unavailable: no model loaded")
            return
        try:
            images = self.synthesizer.synthesize_batch(np.stack(label_maps))
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(
                f"Synthesis failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            )
            return
        self.variantsReady.emit(list(zip(label_maps, images, strict=True)))

    @pyqtSlot(str, str)
    def load(self, weights: str, device: str) -> None:
        from gan.synthesizer import Synthesizer

        try:
            self.synthesizer = Synthesizer(weights, device=None if device == "auto" else device)
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
        request_id, labels, stage = pending
        start = time.perf_counter()
        try:
            size = self.preview_size() if stage == "global" else None
            image = self.synthesizer.synthesize(labels, stage=stage, size=size)
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
                stage or self.synthesizer.stage,
                ms,
                self.synthesizer.device.type,
                size or self.synthesizer.size,
            )
        )


class SynthesisController(QObject):
    """Owns the worker thread; the GUI-side API."""

    resultReady = pyqtSignal(object)
    variantsReady = pyqtSignal(object)
    failed = pyqtSignal(str)
    modelLoaded = pyqtSignal(str)
    _load = pyqtSignal(str, str)
    _variants = pyqtSignal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("synthesis")
        self.worker = SynthesisWorker()
        self.worker.moveToThread(self.thread)
        self.worker.resultReady.connect(self._deliver)
        self.worker.failed.connect(self.failed)
        self.worker.modelLoaded.connect(self.modelLoaded)
        self._load.connect(self.worker.load)
        self._variants.connect(self.worker.variants)
        self.worker.variantsReady.connect(self.variantsReady)
        self.thread.start()
        self._next_id = 0
        self.latest_id = -1

    def load(self, weights: str, device: str = "auto") -> None:
        self._load.emit(str(weights), device)

    def request(self, labels: np.ndarray, stage: str | None = None) -> int:
        self._next_id += 1
        self.latest_id = self._next_id
        self.worker.submit(self._next_id, labels, stage)
        return self._next_id

    def request_variants(self, label_maps: list) -> None:
        self._variants.emit(label_maps)

    def _deliver(self, result: SynthesisResult) -> None:
        self.resultReady.emit(result)

    def shutdown(self) -> None:
        self.thread.quit()
        # the thread finishes the synthesis it is running (seconds at most); a QThread destroyed
        # while running aborts the process, so wait for it rather than give up after a while
        self.thread.wait()
