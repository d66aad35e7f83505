"""Read-only panes beside the editing canvas: the synthetic slice and the composite, kept in step
with the canvas's zoom, pan and window/level."""

from __future__ import annotations

import numpy as np
import qimage2ndarray
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QPixmap
from PyQt6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from gan.ctio import Window, window_to_unit


def difference_rgb(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """|a - b| as a black-to-yellow heat map, ``scale`` mapping to full brightness."""
    d = np.clip(
        np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)) / max(scale, 1e-6), 0, 1
    )
    rgb = np.zeros((*d.shape, 3), np.uint8)
    rgb[..., 0] = np.round(255 * np.clip(2 * d, 0, 1))
    rgb[..., 1] = np.round(255 * np.clip(2 * d - 0.5, 0, 1))
    rgb[..., 2] = np.round(255 * np.clip(4 * d - 3, 0, 1))
    return rgb


class PreviewView(QGraphicsView):
    """Shows one image in source units with the canvas's window; never edits anything."""

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(24, 24, 24))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setInteractive(False)
        self.title = title
        self.item = QGraphicsPixmapItem()
        self.scene().addItem(self.item)
        self.message = ""
        self.values: np.ndarray | None = None
        self.rgb: np.ndarray | None = None
        self.master: QGraphicsView | None = None  # the view this pane follows (on resize too)

    def show_message(self, text: str) -> None:
        """A note drawn over the pane in screen coordinates (whatever the zoom)."""
        self.item.setPixmap(QPixmap())
        self.values = self.rgb = None
        self.message = text
        self.viewport().update()

    def drawForeground(self, painter, rect) -> None:
        if not self.message:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(210, 210, 210))
        area = self.viewport().rect().adjusted(16, 16, -16, -16)
        painter.drawText(
            area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self.message
        )
        painter.restore()

    def show_values(self, values: np.ndarray, window: Window) -> None:
        self.values, self.rgb = values, None
        self.message = ""
        self.render(window)

    def show_rgb(self, rgb: np.ndarray) -> None:
        self.values, self.rgb = None, rgb
        self.message = ""
        self.item.setPixmap(
            QPixmap.fromImage(qimage2ndarray.array2qimage(np.ascontiguousarray(rgb)))
        )

    def render(self, window: Window) -> None:
        if self.values is None:
            return
        gray = np.round((window_to_unit(self.values, window) + 1) * 127.5).astype(np.uint8)
        self.item.setPixmap(QPixmap.fromImage(qimage2ndarray.gray2qimage(gray)))

    def follow(self, master: QGraphicsView) -> None:
        """Show the part of the slice the master view shows, fitted into this pane (a pane of
        another shape shows a little more around it, never less). With the canvas fitted, every
        pane shows the whole slice as large as it fits; zoom and pan stay in step."""
        slice_rect = master.sceneRect()
        visible = master.mapToScene(master.viewport().rect()).boundingRect()
        shown = visible.intersected(slice_rect)
        if shown.isEmpty():  # panned right off the slice: show the same empty area
            shown = visible
        self.scene().setSceneRect(slice_rect.united(visible))
        self.fitInView(shown, Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.master is not None:
            self.follow(self.master)

    def set_scene_size(self, width: int, height: int) -> None:
        self.scene().setSceneRect(QRectF(0, 0, width, height))
