"""Import labels: pick the file's convention, see the mapped result, then apply (or cancel)."""

from __future__ import annotations

import numpy as np
import qimage2ndarray
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout

from gan.ctio import CTSlice
from gan.label_import import CONVENTIONS, LabelFile, build_label_map
from gan.labels import CONSOLIDATION, GGO, LUNG, LabelFormatError, overlay

PREVIEW_PX = 360


class ImportLabelsDialog(QDialog):
    """Shows the values found, the convention (guessed, changeable), and a preview of the result."""

    def __init__(self, file: LabelFile, ct: CTSlice, current: np.ndarray, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Import labels: {file.path.name}")
        self.file, self.ct, self.current = file, ct, current
        self.result_labels: np.ndarray | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        found = ", ".join(map(str, file.found)) if file.found else "DICOM segments"
        form.addRow("Values found", QLabel(found))
        self.convention = QComboBox()
        for key, text in CONVENTIONS.items():
            self.convention.addItem(text, key)
        self.convention.setCurrentIndex(list(CONVENTIONS).index(file.convention))
        self.convention.currentIndexChanged.connect(self.update_preview)
        form.addRow("Read as", self.convention)
        self.binary_class = QComboBox()
        for value, name in ((GGO, "GGO"), (CONSOLIDATION, "Consolidation"), (LUNG, "Lung")):
            self.binary_class.addItem(name, value)
        self.binary_class.currentIndexChanged.connect(self.update_preview)
        form.addRow("Binary mask class", self.binary_class)
        layout.addLayout(form)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(PREVIEW_PX, PREVIEW_PX)
        layout.addWidget(self.preview)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Apply")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.update_preview()

    def select_convention(self, key: str) -> None:
        self.convention.setCurrentIndex(list(CONVENTIONS).index(key))

    def select_binary_class(self, value: int) -> None:
        self.binary_class.setCurrentIndex(
            [self.binary_class.itemData(i) for i in range(self.binary_class.count())].index(value)
        )

    def update_preview(self) -> None:
        key = self.convention.currentData()
        self.binary_class.setEnabled(key == "binary")
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            labels = build_label_map(
                self.file, key, self.ct, self.current, self.binary_class.currentData()
            )
        except LabelFormatError as exc:
            self.result_labels = None
            self.summary.setText(f"<b>Cannot read it this way:</b> {exc}")
            self.preview.clear()
            ok.setEnabled(False)
            return
        self.result_labels = labels
        counts = np.bincount(labels.ravel(), minlength=4)
        self.summary.setText(
            f"Result: lung {counts[1]:,} px, GGO {counts[2]:,} px, consolidation {counts[3]:,} px. "
            "Apply replaces the current labels (undo restores them)."
        )
        rgb = overlay(self.ct.to_uint8(), labels, 0.5)
        pixmap = QPixmap.fromImage(qimage2ndarray.array2qimage(np.ascontiguousarray(rgb)))
        self.preview.setPixmap(
            pixmap.scaled(
                PREVIEW_PX,
                PREVIEW_PX,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        ok.setEnabled(True)
