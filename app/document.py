"""The label map being edited: plain numpy data with diff-based undo/redo. No Qt.

Every edit is a *diff*: the flat indices it changed, their old values and their new values. Undo
applies old values, redo new ones. A stroke (press, drags, release) is one undo step. Observers
subscribe to change events and receive the bounding box that changed (or None for "everything").
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable

import numpy as np

from gan.labels import BACKGROUND, CONSOLIDATION, GGO, LUNG, NUM_CLASSES, validate_label_map

Region = tuple[int, int, int, int] | None  # (row0, row1, col0, col1), end-exclusive


@dataclasses.dataclass
class Diff:
    indices: np.ndarray  # int32 flat indices
    old: np.ndarray  # uint8
    new: np.ndarray  # uint8
    description: str = ""

    @property
    def nbytes(self) -> int:
        return self.indices.nbytes + self.old.nbytes + self.new.nbytes


@dataclasses.dataclass
class PaintRules:
    """How painting treats existing labels (Slicer's editable-area masking and overwrite options).

    constrain_to_lung : lesion labels only land on pixels already inside the lung.
    preserve_labels : painting never overwrites another non-background label.
    """

    constrain_to_lung: bool = True
    preserve_labels: bool = False


class MaskDocument:
    """A (H, W) uint8 label map (0 background, 1 lung, 2 GGO, 3 consolidation) and its history."""

    def __init__(self, label_map: np.ndarray, history: int = 200) -> None:
        # validated before any cast: 256 or 0.5 must be refused, not wrapped to 0
        self._labels = validate_label_map(np.asarray(label_map)).copy()
        self._undo: deque[Diff] = deque(maxlen=history)
        self._redo: list[Diff] = []
        self._stroke: list[Diff] | None = None
        self._listeners: list[Callable[[Region], None]] = []
        self.rules = PaintRules()
        self.revision = 0  # bumps on every change; a saved revision tells whether work is unsaved

    # ------------------------------------------------------------------ observation
    @property
    def labels(self) -> np.ndarray:
        view = self._labels.view()
        view.flags.writeable = False
        return view

    @property
    def shape(self) -> tuple[int, int]:
        return self._labels.shape  # type: ignore[return-value]

    def subscribe(self, callback: Callable[[Region], None]) -> None:
        self._listeners.append(callback)

    def _emit(self, indices: np.ndarray | None) -> None:
        self.revision += 1
        region: Region = None
        if indices is not None and indices.size:
            rows, cols = np.divmod(indices, self.shape[1])
            region = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
        for callback in list(self._listeners):
            callback(region)

    # ------------------------------------------------------------------ history
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def history_bytes(self) -> int:
        return sum(d.nbytes for d in self._undo) + sum(d.nbytes for d in self._redo)

    def begin_stroke(self) -> None:
        self._stroke = []

    def end_stroke(self, description: str = "stroke") -> None:
        parts, self._stroke = self._stroke, None
        if not parts:
            return
        indices = np.concatenate([p.indices for p in parts])
        old = np.concatenate([p.old for p in parts])
        # first old value per pixel, current value as new
        order = np.argsort(indices, kind="stable")
        uniq, first = np.unique(indices[order], return_index=True)
        diff = Diff(
            uniq.astype(np.int32), old[order][first], self._labels.ravel()[uniq].copy(), description
        )
        changed = diff.old != diff.new
        if changed.any():
            self._push(
                Diff(diff.indices[changed], diff.old[changed], diff.new[changed], description)
            )

    def _push(self, diff: Diff) -> None:
        self._undo.append(diff)
        self._redo.clear()

    def _close_open_stroke(self) -> bool:
        """Undo or redo pressed mid-stroke: record the stroke so far as its own step first, so the
        history never holds a stroke whose old values predate the undo; a new stroke then takes the
        rest of the drag. True if a stroke was open."""
        if self._stroke is None:
            return False
        self.end_stroke()
        return True

    def undo(self) -> bool:
        """Revert the newest step (mid-stroke: the stroke so far). False if there is none."""
        return self._outside_stroke(lambda: self._move_step(self._undo, self._redo, "old"))

    def redo(self) -> bool:
        """Re-apply the newest undone step. False if there is none (a stroke painted mid-way since
        the undo has cleared the redo stack)."""
        return self._outside_stroke(lambda: self._move_step(self._redo, self._undo, "new"))

    def _outside_stroke(self, step: Callable[[], bool]) -> bool:
        """Run a history ``step`` with no stroke open; a stroke open before goes on after it."""
        reopen = self._close_open_stroke()
        try:
            return step()
        finally:
            if reopen:
                self.begin_stroke()

    def _move_step(self, source, target, values: str) -> bool:
        """Pop the newest diff of ``source``, write its ``values`` ("old" or "new"), push it onto
        ``target``."""
        if not source:
            return False
        diff = source.pop()
        self._labels.ravel()[diff.indices] = getattr(diff, values)
        target.append(diff)
        self._emit(diff.indices)
        return True

    # ------------------------------------------------------------------ edits
    def _apply(self, indices: np.ndarray, values: np.ndarray | int, description: str) -> int:
        """Set flat ``indices`` to ``values``; records a diff (into the open stroke, if any)."""
        flat = self._labels.ravel()
        values = np.broadcast_to(np.asarray(values, np.uint8), indices.shape)
        keep = flat[indices] != values
        indices, values = indices[keep].astype(np.int32), values[keep]
        if indices.size == 0:
            return 0
        diff = Diff(indices, flat[indices].copy(), values.copy(), description)
        flat[indices] = values
        if self._stroke is not None:
            self._stroke.append(diff)
        else:
            self._push(diff)
        self._emit(indices)
        return int(indices.size)

    def paintable(self, mask: np.ndarray, label: int) -> np.ndarray:
        """Where painting ``label`` over ``mask`` may change pixels, under the current rules."""
        current = self._labels
        allowed = np.asarray(mask, bool) & (current != label)
        if label in (GGO, CONSOLIDATION) and self.rules.constrain_to_lung:
            allowed &= current != BACKGROUND
        if self.rules.preserve_labels:
            # only background, or lung under a lesion label, may change
            allowed &= (current == BACKGROUND) | ((current == LUNG) & (label != LUNG))
        return allowed

    def paint(self, mask: np.ndarray, label: int, description: str = "paint") -> int:
        """Paint ``label`` where ``mask`` is true (brush, polygon, fill), following the rules."""
        if not 1 <= label < NUM_CLASSES:
            raise ValueError(f"paint label must be 1..{NUM_CLASSES - 1}, got {label}")
        return self._apply(np.flatnonzero(self.paintable(mask, label)), label, description)

    def erase(self, mask: np.ndarray, label: int, description: str = "erase") -> int:
        """Remove ``label`` where ``mask`` is true: a lesion returns to lung, lung to background."""
        hit = np.flatnonzero(np.asarray(mask, bool) & (self._labels == label))
        return self._apply(hit, LUNG if label in (GGO, CONSOLIDATION) else BACKGROUND, description)

    def replace(self, new_labels: np.ndarray, description: str) -> int:
        """Replace the whole map (auto lung, import, augmentation) as one undoable step."""
        new_labels = validate_label_map(np.asarray(new_labels), what="new label map")
        if new_labels.shape != self.shape:
            raise ValueError(f"label map {new_labels.shape} does not match the image {self.shape}")
        changed = np.flatnonzero(new_labels.ravel() != self._labels.ravel())
        return self._apply(changed, new_labels.ravel()[changed], description)

    def clear_lesions(self) -> int:
        """GGO and consolidation back to lung."""
        lesion = np.flatnonzero(self._labels.ravel() >= GGO)
        return self._apply(lesion, LUNG, "clear lesions")

    def set_lung(self, lung_mask: np.ndarray, description: str = "auto lung") -> int:
        """Make ``lung_mask`` the lung; lesions stay (they are lung by definition)."""
        lung_mask = np.asarray(lung_mask, bool)
        new = np.where(
            self._labels >= GGO, self._labels, np.where(lung_mask, LUNG, BACKGROUND)
        ).astype(np.uint8)
        return self.replace(new, description)
