"""Painting tools: each turns mouse positions (image row, column) into document edits."""

from __future__ import annotations

import numpy as np

from app.document import MaskDocument

TOOL_KEYS = {"brush": "B", "eraser": "E", "fill": "F", "polygon": "P"}


def disc_stroke_mask(
    shape, start: tuple[float, float], end: tuple[float, float], diameter: int
) -> np.ndarray:
    """Pixels covered by a round brush of ``diameter`` moved from ``start`` to ``end`` (row, col)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    p0 = (round(start[1]), round(start[0]))
    p1 = (round(end[1]), round(end[0]))
    if diameter <= 1:
        cv2.line(mask, p0, p1, 1, 1)
    else:
        cv2.line(mask, p0, p1, 1, thickness=int(diameter), lineType=cv2.LINE_8)
        cv2.circle(mask, p0, int(diameter) // 2, 1, -1)
        cv2.circle(mask, p1, int(diameter) // 2, 1, -1)
    return mask.astype(bool)


def flood_region(labels: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 4-connected region of pixels with the clicked pixel's label."""
    from skimage.segmentation import flood

    return flood(labels, (row, col), connectivity=1)


def polygon_mask(shape, vertices: list[tuple[float, float]]) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    if len(vertices) >= 3:
        points = np.array([[round(c), round(r)] for r, c in vertices], np.int32)
        cv2.fillPoly(mask, [points], 1)
    return mask.astype(bool)


class Tool:
    name = "tool"

    def __init__(self, document: MaskDocument) -> None:
        self.document = document

    def press(self, pos, label: int, size: int) -> None: ...
    def move(self, pos, label: int, size: int) -> None: ...
    def release(self, pos, label: int, size: int) -> None: ...


class BrushTool(Tool):
    name = "brush"
    erase = False

    def __init__(self, document: MaskDocument) -> None:
        super().__init__(document)
        self._last = None

    def _apply(self, start, end, label, size) -> None:
        mask = disc_stroke_mask(self.document.shape, start, end, size)
        if self.erase:
            self.document.erase(mask, label)
        else:
            self.document.paint(mask, label)

    def press(self, pos, label, size) -> None:
        self.document.begin_stroke()
        self._last = pos
        self._apply(pos, pos, label, size)

    def move(self, pos, label, size) -> None:
        if self._last is None:
            return
        self._apply(self._last, pos, label, size)
        self._last = pos

    def release(self, pos, label, size) -> None:
        if self._last is None:
            return
        self._last = None
        self.document.end_stroke("erase" if self.erase else "paint")


class EraserTool(BrushTool):
    name = "eraser"
    erase = True


class FillTool(Tool):
    name = "fill"

    def press(self, pos, label, size) -> None:
        row, col = round(pos[0]), round(pos[1])  # pos is pixel-centred: round, not truncate
        h, w = self.document.shape
        if 0 <= row < h and 0 <= col < w:
            self.document.paint(
                flood_region(np.asarray(self.document.labels), row, col), label, "fill"
            )


class PolygonTool(Tool):
    """Click vertices; double-click (or ``finish``) fills the polygon; ``cancel`` drops it."""

    name = "polygon"

    def __init__(self, document: MaskDocument) -> None:
        super().__init__(document)
        self.vertices: list[tuple[float, float]] = []

    def press(self, pos, label, size) -> None:
        self.vertices.append((float(pos[0]), float(pos[1])))

    def finish(self, label: int) -> int:
        vertices, self.vertices = self.vertices, []
        if len(vertices) < 3:
            return 0
        return self.document.paint(polygon_mask(self.document.shape, vertices), label, "polygon")

    def cancel(self) -> None:
        self.vertices = []


TOOLS = {cls.name: cls for cls in (BrushTool, EraserTool, FillTool, PolygonTool)}
