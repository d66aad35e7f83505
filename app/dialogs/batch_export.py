"""Batch export for curators: the dialog around ``gan.batch.run_batch``, with progress and cancel.

The work runs in its own thread with its own Synthesizer; cancel stops between samples, and since
each sample's files are written atomically before its manifest row, nothing is left half-written.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


class BatchJob(QObject):
    progressed = pyqtSignal(int)
    finished = pyqtSignal(dict)
    failed = pyqtSignal(str)

    def __init__(
        self,
        weights: str,
        data: str,
        ids: str | None,
        out: str,
        per_input: int,
        layout: str,
        seed: int,
    ) -> None:
        super().__init__()
        self.args = (weights, data, ids, out, per_input, layout, seed)
        self.cancel_event = threading.Event()
        self.done = 0

    @pyqtSlot()
    def run(self) -> None:
        from gan.batch import folder_inputs, run_batch
        from gan.data import read_split_file
        from gan.synthesizer import Synthesizer

        weights, data, ids, out, per_input, layout, seed = self.args
        try:
            synthesizer = Synthesizer(weights, mode="label")
            inputs = folder_inputs(Path(data), read_split_file(ids) if ids else None)

            def step(n: int) -> None:
                self.done += n
                self.progressed.emit(self.done)

            result = run_batch(
                inputs,
                synthesizer,
                Path(out),
                per_input,
                seed,
                layout,
                cancelled=self.cancel_event.is_set,
                progress=step,
            )
        except Exception as exc:  # noqa: BLE001 - reported in the dialog as one line
            self.failed.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.finished.emit(result)


class BatchExportDialog(QDialog):
    def __init__(self, weights: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch export synthetic training data")
        self.weights = weights
        self.thread: QThread | None = None
        self.job: BatchJob | None = None
        self.result: dict | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.data_edit, self.ids_edit, self.out_edit = QLineEdit(), QLineEdit(), QLineEdit()
        form.addRow(
            "Input folder (images/ + lesions/)", self._with_browse(self.data_edit, folder=True)
        )
        form.addRow(
            "Split file (optional: training ids)", self._with_browse(self.ids_edit, folder=False)
        )
        form.addRow("Output folder", self._with_browse(self.out_edit, folder=True))
        self.per_input = QSpinBox(minimum=1, maximum=200, value=4)
        form.addRow("Samples per input slice", self.per_input)
        self.seed = QSpinBox(minimum=0, maximum=999_999, value=0)
        form.addRow("Seed", self.seed)
        self.layout_combo = QComboBox()
        self.layout_combo.addItem("images/ + labels/", "flat")
        self.layout_combo.addItem("nnU-Net (imagesTr/, labelsTr/, dataset.json)", "nnunet")
        form.addRow("Layout", self.layout_combo)
        layout.addLayout(form)
        self.progress = QProgressBar()
        self.status = QLabel(
            "Each sample: the paper's augmentation of the lesions (and an edit of one lesion for half), "
            "synthesized and composited into the real slice. A rerun resumes."
        )
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        layout.addWidget(self.buttons)

    def _with_browse(self, edit: QLineEdit, folder: bool) -> QWidget:
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit)
        button = QPushButton("…")

        def browse() -> None:
            path = (
                QFileDialog.getExistingDirectory(self)
                if folder
                else QFileDialog.getOpenFileName(self)[0]
            )
            if path:
                edit.setText(path)

        button.clicked.connect(browse)
        h.addWidget(button)
        return row

    def start(self) -> None:
        from gan.data import folder_ids, read_split_file

        data, out = self.data_edit.text().strip(), self.out_edit.text().strip()
        ids = self.ids_edit.text().strip() or None
        try:
            count = len(read_split_file(ids) if ids else folder_ids(data))
        except (ValueError, OSError) as exc:
            self.status.setText(f"<b>Cannot start:</b> {exc}")
            return
        if not out:
            self.status.setText("<b>Cannot start:</b> choose an output folder")
            return
        self.progress.setRange(0, count * self.per_input.value())
        self.progress.setValue(0)
        self.job = BatchJob(
            self.weights,
            data,
            ids,
            out,
            self.per_input.value(),
            self.layout_combo.currentData(),
            self.seed.value(),
        )
        self.thread = QThread()
        self.job.moveToThread(self.thread)
        self.thread.started.connect(self.job.run)
        self.job.progressed.connect(self.progress.setValue)
        self.job.finished.connect(self._finished)
        self.job.failed.connect(self._failed)
        self.start_button.setEnabled(False)
        self.status.setText("Working…")
        self.thread.start()

    def cancel(self) -> None:
        if self.job is not None and self.thread is not None and self.thread.isRunning():
            self.job.cancel_event.set()
            self.status.setText("Cancelling after the current sample…")
            return
        self.reject()

    def _finished(self, result: dict) -> None:
        self.result = result
        verb = "Cancelled" if result["cancelled"] else "Done"
        self.status.setText(
            f"{verb}: {result['written']} written, {result['skipped']} already there."
        )
        self._stop_thread()

    def _failed(self, message: str) -> None:
        self.result = {"error": message}
        self.status.setText(f"<b>Failed:</b> {message}")
        self._stop_thread()

    def _stop_thread(self) -> None:
        self.start_button.setEnabled(True)
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait(5000)
