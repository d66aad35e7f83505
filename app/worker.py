"""The synthesis thread: one long-lived QThread owns the :class:`~app.synthesis.SynthesisEngine`;
only the newest request runs.

The GUI thread calls :meth:`SynthesisController.request` as often as it likes (every mouse move,
say); the request replaces any pending one, so a fast brush never builds a backlog. Results, model
identities and failures come back by signal on the GUI thread; the GUI never touches the engine.
The thread stops when the controller's owner goes, closed or merely destroyed.
"""

from __future__ import annotations

import threading

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from app.synthesis import Request, SynthesisEngine, failure_line


class SynthesisWorker(QObject):
    """Lives in the synthesis thread. Holds at most one pending request."""

    resultReady = pyqtSignal(object)  # Result
    variantsReady = pyqtSignal(object, object)  # (labels, image, mask or None) triples, ModelInfo
    failed = pyqtSignal(str)
    modelLoaded = pyqtSignal(object)  # ModelInfo
    inpainterLoaded = pyqtSignal(object)  # ModelInfo
    inpainterFailed = pyqtSignal(str)  # why no inpaint model loaded (whole-lung still works)
    _wake = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self.engine = SynthesisEngine()
        self._lock = threading.Lock()
        self._pending: tuple[int, Request] | None = None
        self._scheduled = False
        self._wake.connect(self._process)

    def submit(self, request_id: int, request: Request) -> None:
        """Thread-safe: replace the pending request; wake the worker if it is idle."""
        with self._lock:
            self._pending = (request_id, request)
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            self._wake.emit()  # queued across threads: runs _process in the worker thread

    @pyqtSlot(str, str, str)
    def load(self, weights: str, device: str, mode: str) -> None:
        try:
            info = self.engine.load(weights, device, mode)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported; the editor works
            if mode == "inpaint":
                self.inpainterFailed.emit(failure_line("inpainting unavailable", exc))
            else:
                self.failed.emit(failure_line("Synthesis unavailable", exc))
            return
        (self.inpainterLoaded if mode == "inpaint" else self.modelLoaded).emit(info)

    @pyqtSlot(object, object, object)
    def variants(self, label_maps: list, contexts: list | None, seeds: list | None) -> None:
        """Synthesize several label maps (the variants dialog) in this thread."""
        try:
            triples, model = self.engine.variants(label_maps, contexts, seeds)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(failure_line("Synthesis failed", exc))
            return
        self.variantsReady.emit(triples, model)

    @pyqtSlot()
    def _process(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            self._scheduled = False
        if pending is None or self.engine.synthesizer is None:
            return
        request_id, request = pending
        try:
            result = self.engine.run(request, request_id)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(failure_line("Synthesis failed", exc))
            return
        self.resultReady.emit(result)


class SynthesisController(QObject):
    """Owns the synthesis thread; the GUI-side API. With a ``parent``, the thread stops when the
    parent is destroyed, with or without a close event."""

    resultReady = pyqtSignal(object)
    variantsReady = pyqtSignal(object, object)
    failed = pyqtSignal(str)
    modelLoaded = pyqtSignal(object)
    inpainterLoaded = pyqtSignal(object)
    inpainterFailed = pyqtSignal(str)
    _load = pyqtSignal(str, str, str)
    _variants = pyqtSignal(object, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("synthesis")
        self.worker = SynthesisWorker()
        self.worker.moveToThread(self.thread)
        for signal in (
            "resultReady",
            "variantsReady",
            "failed",
            "modelLoaded",
            "inpainterLoaded",
            "inpainterFailed",
        ):
            getattr(self.worker, signal).connect(getattr(self, signal))
        self._load.connect(self.worker.load)
        self._variants.connect(self.worker.variants)
        self.thread.start()
        self._next_id = 0
        self.latest_id = -1
        if parent is not None:
            thread = self.thread  # not self: the slot must not need the object being destroyed
            parent.destroyed.connect(lambda *_: _stop(thread))

    def load(self, weights: str, device: str = "auto") -> None:
        self._load.emit(str(weights), device, "label")

    def load_inpainter(self, weights: str, device: str = "auto") -> None:
        self._load.emit(str(weights), device, "inpaint")

    def request(self, request: Request) -> int:
        """Post ``request`` (replacing any that has not started); its id."""
        self._next_id += 1
        self.latest_id = self._next_id
        self.worker.submit(self._next_id, request)
        return self._next_id

    def request_variants(
        self, label_maps: list, contexts: list | None = None, seeds: list | None = None
    ) -> None:
        self._variants.emit(label_maps, contexts, seeds)

    def shutdown(self) -> None:
        _stop(self.thread)


def _stop(thread: QThread) -> None:
    from PyQt6 import sip

    if sip.isdeleted(thread):  # at interpreter exit Python may have freed it already
        return
    thread.quit()
    # the thread finishes the synthesis it is running (seconds at most); a QThread destroyed
    # while running aborts the process, so wait for it rather than give up after a while
    thread.wait()
