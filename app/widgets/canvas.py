"""The painting surface: the CT slice with the label overlay, zoom / pan / window-level, tools."""

from __future__ import annotations

import numpy as np
import qimage2ndarray
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap
from PyQt6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
)

from app.document import MaskDocument, Region
from app.tools import TOOLS, PolygonTool, Tool
from gan.ctio import Window, window_to_unit
from gan.labels import CLASS_COLOURS, NUM_CLASSES


def overlay_rgba(labels: np.ndarray, opacity: float) -> np.ndarray:
    """(H, W) labels -> (H, W, 4) uint8 RGBA in the paper's colours, background transparent."""
    lut = np.zeros((NUM_CLASSES, 4), np.uint8)
    for label, rgb in CLASS_COLOURS.items():
        lut[label] = (*rgb, round(255 * opacity))
    return lut[labels]


class CanvasView(QGraphicsView):
    """Shows one slice and its labels; turns mouse input into tool actions.

    Left button: the active tool. Wheel: zoom about the cursor. Middle button or Space + left:
    pan. Right-drag: window (horizontal) / level (vertical).
    """

    cursorMoved = pyqtSignal(int, int)  # row, column (image pixels)
    windowChanged = pyqtSignal(float, float)  # level, width
    strokeFinished = pyqtSignal()
    pixelClicked = pyqtSignal(int, int)  # row, column, with the select tool
    viewChanged = pyqtSignal()  # zoom, pan or resize: panes that follow the canvas re-sync

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QColor(24, 24, 24))
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image_item = QGraphicsPixmapItem()
        self._overlay_item = QGraphicsPixmapItem()
        self._cursor_item = QGraphicsEllipseItem()
        self._cursor_item.setPen(QPen(QColor(255, 255, 0), 0))
        self._selection_item = QGraphicsPixmapItem()
        self._polygon_item = QGraphicsPathItem()
        self._polygon_item.setPen(QPen(QColor(255, 255, 0), 0, Qt.PenStyle.DashLine))
        for item in (
            self._image_item,
            self._overlay_item,
            self._selection_item,
            self._polygon_item,
            self._cursor_item,
        ):
            self.scene().addItem(item)
        self.pixels: np.ndarray | None = None
        self.document: MaskDocument | None = None
        self.window = Window(127.5, 255.0)
        self.opacity = 0.45
        self.overlay_visible = True
        self.label = 2
        self.brush_size = 9
        self.tool_name = "brush"
        self._tools: dict[str, Tool] = {}
        self._panning = None
        self._windowing = None
        self._space_down = False
        self._painting = False
        self._overlay_pixmap: QPixmap | None = None
        self.fitted = True  # the whole slice shown: kept so on resize (fit); zoom or pan ends it

    # ------------------------------------------------------------------ content
    def set_content(self, pixels: np.ndarray, document: MaskDocument, window: Window) -> None:
        self.pixels = pixels
        self.document = document
        self.window = window
        self._tools = {name: cls(document) for name, cls in TOOLS.items()}
        document.subscribe(self.refresh_overlay)
        self.refresh_image()
        self._overlay_pixmap = None
        self.refresh_overlay()
        self.scene().setSceneRect(QRectF(0, 0, pixels.shape[1], pixels.shape[0]))
        self.fit()

    def set_window(self, level: float, width: float) -> None:
        self.window = Window(float(level), max(float(width), 1e-3))
        self.refresh_image()
        self.windowChanged.emit(self.window.level, self.window.width)

    def refresh_image(self) -> None:
        if self.pixels is None:
            return
        gray = np.round((window_to_unit(self.pixels, self.window) + 1) * 127.5).astype(np.uint8)
        self._image_item.setPixmap(QPixmap.fromImage(qimage2ndarray.gray2qimage(gray)))

    def refresh_overlay(self, region: Region = None) -> None:
        """Redraw the label overlay; only the ``region`` bounding box of a change (a brush dab
        touches a few hundred pixels of a 512² slice), or all of it where ``region`` is None."""
        if self.document is None:
            return
        labels = np.asarray(self.document.labels)
        opacity = self.opacity if self.overlay_visible else 0.0
        if region is None or self._overlay_pixmap is None:
            rgba = overlay_rgba(labels, opacity)
            self._overlay_pixmap = QPixmap.fromImage(qimage2ndarray.array2qimage(rgba))
        else:
            r0, r1, c0, c1 = region
            patch = overlay_rgba(labels[r0:r1, c0:c1], opacity)
            painter = QPainter(self._overlay_pixmap)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            painter.drawImage(c0, r0, qimage2ndarray.array2qimage(np.ascontiguousarray(patch)))
            painter.end()
        self._overlay_item.setPixmap(self._overlay_pixmap)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(opacity)
        self.refresh_overlay()

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_visible = bool(visible)
        self.refresh_overlay()

    def set_selection(self, mask: np.ndarray | None) -> None:
        """Outline the selected lesion (yellow), or clear the outline."""
        if mask is None or not mask.any():
            self._selection_item.setPixmap(QPixmap())
            return
        from scipy import ndimage as ndi

        edge = mask & ~ndi.binary_erosion(mask)
        rgba = np.zeros((*mask.shape, 4), np.uint8)
        rgba[mask] = (255, 255, 0, 40)
        rgba[edge] = (255, 255, 0, 255)
        self._selection_item.setPixmap(QPixmap.fromImage(qimage2ndarray.array2qimage(rgba)))

    def set_tool(self, name: str) -> None:
        if self._painting:  # a key pressed mid-stroke: close the stroke with the tool that began it
            self._painting = False
            self._tools[self.tool_name].release(None, self.label, self.brush_size)
            self.strokeFinished.emit()
        if name == "select":
            self.cancel_polygon()
            self.tool_name = name
            self._update_cursor_item(None)
            return
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name}")
        self.cancel_polygon()
        self.tool_name = name
        self._update_cursor_item(None)

    def fit(self) -> None:
        """Show the whole slice; it stays fitted as the window resizes until the user zooms or
        pans."""
        self.fitted = True
        if self.pixels is not None:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self.viewChanged.emit()

    def zoom(self, factor: float) -> None:
        self.fitted = False
        self.scale(factor, factor)
        self.viewChanged.emit()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.viewChanged.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.fitted:
            self.fit()
        else:
            self.viewChanged.emit()

    @property
    def painting(self) -> bool:
        return self._painting

    # ------------------------------------------------------------------ polygon
    def finish_polygon(self) -> None:
        tool = self._tools.get("polygon")
        if isinstance(tool, PolygonTool) and tool.vertices:
            tool.finish(self.label)
            self._polygon_item.setPath(QPainterPath())
            self.strokeFinished.emit()

    def cancel_polygon(self) -> None:
        tool = self._tools.get("polygon")
        if isinstance(tool, PolygonTool):
            tool.cancel()
        self._polygon_item.setPath(QPainterPath())

    def _draw_polygon(self, hover: QPointF | None = None) -> None:
        tool = self._tools.get("polygon")
        if not isinstance(tool, PolygonTool) or not tool.vertices:
            return
        path = QPainterPath(QPointF(tool.vertices[0][1] + 0.5, tool.vertices[0][0] + 0.5))
        for r, c in tool.vertices[1:]:
            path.lineTo(c + 0.5, r + 0.5)
        if hover is not None:
            path.lineTo(hover)
        self._polygon_item.setPath(path)

    # ------------------------------------------------------------------ mouse
    def image_pos(self, event) -> tuple[float, float]:
        point = self.mapToScene(event.position().toPoint())
        return point.y() - 0.5, point.x() - 0.5

    def _update_cursor_item(self, pos) -> None:
        if pos is None or self.tool_name not in ("brush", "eraser"):
            self._cursor_item.setVisible(False)
            return
        r = self.brush_size / 2
        self._cursor_item.setRect(QRectF(pos[1] + 0.5 - r, pos[0] + 0.5 - r, 2 * r, 2 * r))
        self._cursor_item.setVisible(True)

    def mousePressEvent(self, event) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._panning = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if button == Qt.MouseButton.RightButton:
            self._windowing = (event.position(), self.window)
            return
        if (
            button == Qt.MouseButton.LeftButton
            and self.document is not None
            and self.tool_name == "select"
        ):
            row, col = (int(np.floor(v + 0.5)) for v in self.image_pos(event))
            self.pixelClicked.emit(row, col)
            return
        if button == Qt.MouseButton.LeftButton and self.document is not None:
            pos = self.image_pos(event)
            tool = self._tools[self.tool_name]
            tool.press(pos, self.label, self.brush_size)
            if self.tool_name == "polygon":
                self._draw_polygon()
            elif self.tool_name == "fill":
                self.strokeFinished.emit()
            else:
                self._painting = True
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        pos = self.image_pos(event)
        self.cursorMoved.emit(int(np.floor(pos[0] + 0.5)), int(np.floor(pos[1] + 0.5)))
        self._update_cursor_item(pos)
        if self._panning is not None:
            delta = event.position() - self._panning
            self._panning = event.position()
            self.fitted = False
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if self._windowing is not None:
            start, window = self._windowing
            delta = event.position() - start
            scale = window.width / 256.0
            self.set_window(window.level + delta.y() * scale, window.width + delta.x() * scale)
            return
        if self._painting:
            self._tools[self.tool_name].move(pos, self.label, self.brush_size)
            return
        if self.tool_name == "polygon":
            self._draw_polygon(QPointF(pos[1] + 0.5, pos[0] + 0.5))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._panning is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._panning = None
            self.unsetCursor()
            return
        if self._windowing is not None and event.button() == Qt.MouseButton.RightButton:
            self._windowing = None
            return
        if self._painting and event.button() == Qt.MouseButton.LeftButton:
            self._painting = False
            self._tools[self.tool_name].release(self.image_pos(event), self.label, self.brush_size)
            self.strokeFinished.emit()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if self.tool_name == "polygon" and event.button() == Qt.MouseButton.LeftButton:
            self.finish_polygon()
            return
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom(1.15**steps)

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            return
        if self.tool_name == "polygon" and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish_polygon()
            return
        if self.tool_name == "polygon" and key == Qt.Key.Key_Escape:
            self.cancel_polygon()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            return
        super().keyReleaseEvent(event)
