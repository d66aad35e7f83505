"""Variants: thumbnails of several synthesized augmentations of the current lesions; click to use one."""

from __future__ import annotations

import numpy as np
import qimage2ndarray
from PyQt6.QtCore import QSize, pyqtSignal
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import QDialog, QGridLayout, QLabel, QToolButton, QVBoxLayout

from gan.ctio import Window, window_to_unit
from gan.labels import overlay

THUMB = 220


class VariantsDialog(QDialog):
    chosen = pyqtSignal(object)  # the variant's label map

    def __init__(self, pairs: list, composites: list, window: Window, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Variants: click one to use its labels")
        self.pairs = pairs
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Seeded augmentations of the current lesions (composite; labels outlined in colour)."
            )
        )
        grid = QGridLayout()
        self.buttons: list[QToolButton] = []
        for i, ((labels, _image), composite) in enumerate(zip(pairs, composites, strict=True)):
            gray = np.round((window_to_unit(composite, window) + 1) * 127.5).astype(np.uint8)
            rgb = overlay(gray, np.where(_edges(labels), labels, 0).astype(np.uint8), 0.9)
            pixmap = QPixmap.fromImage(qimage2ndarray.array2qimage(np.ascontiguousarray(rgb)))
            button = QToolButton()
            button.setIcon(QIcon(pixmap))
            button.setIconSize(QSize(THUMB, THUMB))
            button.setToolTip(f"Variant {i + 1}")
            button.clicked.connect(lambda _=False, m=labels: self._choose(m))
            grid.addWidget(button, i // 3, i % 3)
            self.buttons.append(button)
        layout.addLayout(grid)

    def _choose(self, labels: np.ndarray) -> None:
        self.chosen.emit(labels)
        self.accept()


def _edges(labels: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    lesion = labels >= 2
    return lesion & ~ndi.binary_erosion(lesion, iterations=2)
