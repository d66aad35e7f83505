"""The editor window: a shell that builds the parts and wires them.

The open case lives in an :class:`~app.session.EditSession` (``window.session``; a new slice is a
new session); files, projects, autosave and export in :class:`~app.files.Files`; live synthesis and
the two read-only panes in :class:`~app.live.LiveSynthesis`; menus in :mod:`app.actions`; the dock
in :mod:`app.widgets.tool_panel`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import (
    QDockWidget,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.actions import build_actions
from app.dialogs.questions import ask_yes_no, choose_slice
from app.files import Files
from app.live import LiveSynthesis
from app.session import EditSession
from app.widgets.canvas import CanvasView
from app.widgets.panes import PreviewView
from app.widgets.status import ElidedLabel
from app.widgets.tool_panel import FULL_RANGE, PRESETS, ToolPanel
from gan.labels import GGO
from gan.lesions import ASSUMED_SPACING_MM

APP_NAME = "CT Lesion Studio"
PANE_TITLES = (
    "Original (editing)",
    "Synthetic",
    "Composite: synthetic lung in the real slice",
)


class MainWindow(QMainWindow):
    """The editor. ``ask`` and ``choose_index`` replace modal questions in tests."""

    def __init__(
        self,
        settings: QSettings | None = None,
        recovery_dir: Path | None = None,
        ask: Callable[[str, str], bool] | None = None,
        choose_index: Callable[[str, int, int], int | None] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or QSettings(APP_NAME, APP_NAME)
        self.ask = ask or (lambda title, text: ask_yes_no(self, title, text))
        self.choose_index = choose_index or (lambda *question: choose_slice(self, *question))
        self.session: EditSession | None = None
        self.errors: list[str] = []  # every error shown, newest last (tests and the log read it)
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 860)
        self.setAcceptDrops(True)

        self.canvas = CanvasView(self)
        synth_view, composite_view = PreviewView("Synthetic"), PreviewView("Composite")
        for view in (synth_view, composite_view):
            view.master = self.canvas
        self.setCentralWidget(self._build_panes((self.canvas, synth_view, composite_view)))
        self.tools = ToolPanel()
        self._build_dock()
        self.files = Files(self, recovery_dir)
        self.live = LiveSynthesis(self, synth_view, composite_view)
        self.actions = build_actions(self)
        self._build_status()
        self._wire()
        self.tools.brush_slider.setValue(int(self.settings.value("brush_size", 9)))
        self.tools.opacity_slider.setValue(int(self.settings.value("opacity", 45)))
        self.set_tool("brush")
        self.set_label(GGO)
        self.actions.update(None)

    # ------------------------------------------------------------------ building
    def _build_panes(self, views) -> QWidget:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.pane_headers = []
        for title, view in zip(PANE_TITLES, views, strict=True):
            column = QWidget()
            layout = QVBoxLayout(column)
            layout.setContentsMargins(2, 2, 2, 2)
            header = QLabel(title)
            header.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.pane_headers.append(header)
            layout.addWidget(header)
            layout.addWidget(view, 1)
            splitter.addWidget(column)
        splitter.setSizes([600, 400, 400])
        for i, stretch in enumerate(
            (3, 2, 2)
        ):  # the canvas keeps the most room as the window shrinks
            splitter.setStretchFactor(i, stretch)
        return splitter

    def _build_dock(self) -> None:
        dock = QDockWidget("Labels", self)
        dock.setObjectName("labels_dock")
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.tools)
        scroll.setMinimumWidth(self.tools.sizeHint().width() + 24)
        dock.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    def _build_status(self) -> None:
        self.cursor_label, self.window_label, self.spacing_label = ElidedLabel(), QLabel(), QLabel()
        for widget in (self.cursor_label, self.window_label, self.spacing_label, self.live.status):
            self.statusBar().addPermanentWidget(widget)

    def _wire(self) -> None:
        canvas, tools, augment = self.canvas, self.tools, self.tools.augment
        canvas.cursorMoved.connect(self._show_cursor_value)
        canvas.windowChanged.connect(self._show_window)
        canvas.windowChanged.connect(lambda *_: self.live.render())
        canvas.strokeFinished.connect(lambda: self.live.request(full=True))
        canvas.strokeFinished.connect(self.update_actions)
        canvas.pixelClicked.connect(self.select_lesion_at)
        canvas.viewChanged.connect(self.live.sync)
        tools.toolChosen.connect(self.set_tool)
        tools.labelChosen.connect(self.set_label)
        tools.rulesChanged.connect(self._rules_changed)
        tools.brush_slider.valueChanged.connect(self.set_brush_size)
        tools.opacity_slider.valueChanged.connect(self._opacity_changed)
        tools.window_combo.textActivated.connect(self.apply_window_preset)
        tools.slice_slider.sliderReleased.connect(self._slice_chosen)
        tools.overlay_check.toggled.connect(canvas.set_overlay_visible)
        tools.auto_lung_button.clicked.connect(self.auto_lung)
        tools.clear_button.clicked.connect(self.clear_lesions)
        augment.operation.connect(self.edit_selection)
        augment.randomLesions.connect(self.add_random_lesions)
        augment.augmentAll.connect(self.augment_all)

    # ------------------------------------------------------------------ the open case
    def show_session(self, session: EditSession, view: dict | None = None) -> None:
        """Show ``session`` (a newly opened slice or project) in place of the current one."""
        self.session = session
        self.live.close_variants()
        ct = session.ct
        for pane in (self.live.synth_view, self.live.composite_view):
            pane.set_scene_size(ct.shape[1], ct.shape[0])
        self.canvas.set_selection(None)
        self._rules_changed()
        window = ct.default_window()
        self.canvas.set_content(ct.pixels, session.document, window)
        session.document.subscribe(self._document_changed)
        self.tools.window_combo.setCurrentText(next(iter(PRESETS)) if ct.is_hu else FULL_RANGE)
        self.tools.show_slices(ct.slice_index, ct.metadata.get("n_slices"))
        self._show_window(window.level, window.width)
        self._show_spacing()
        self.set_brush_size(self.tools.brush_slider.value())
        self.apply_view(view or {})
        self.live.update_titles()
        self._document_changed()
        for note in session.notes:
            self.statusBar().showMessage(note, 10_000)
        if session.lung_problem:
            self.statusBar().showMessage(session.lung_problem_line(), 30_000)

    def view_state(self) -> dict:
        return {
            "level": self.canvas.window.level,
            "width": self.canvas.window.width,
            "opacity": self.canvas.opacity,
            "overlay_visible": self.canvas.overlay_visible,
        }

    def apply_view(self, view: dict) -> None:
        if "level" in view and "width" in view:
            self.canvas.set_window(view["level"], view["width"])
        if "opacity" in view:
            self.tools.opacity_slider.setValue(round(100 * float(view["opacity"])))
        if "overlay_visible" in view:
            self.tools.overlay_check.setChecked(bool(view["overlay_visible"]))

    def _document_changed(self, _region=None) -> None:
        self.update_actions()
        if self.session is None:
            return
        self.live.request(full=not self.canvas.painting)
        self.tools.measurements.show_areas(self.session.areas())
        self.refresh_title()

    def refresh_title(self) -> None:
        session = self.session
        if session is None:
            self.setWindowTitle(APP_NAME)
            return
        star = " *" if session.has_unsaved_work else ""
        self.setWindowTitle(f"{session.name} - {APP_NAME}{star}")

    def update_actions(self) -> None:
        self.actions.update(self.session)

    def _slice_chosen(self) -> None:
        session, slider = self.session, self.tools.slice_slider
        if session is None or slider.value() == session.ct.slice_index:
            return
        question = "Open another slice and drop this slice's labels?"
        if not self.files.confirm_discard(question):
            slider.setValue(session.ct.slice_index or 0)
            return
        self.files.open_path(session.ct.source, slider.value())

    # ------------------------------------------------------------------ editing
    def undo(self) -> None:
        if self.session is not None:
            self.session.document.undo()
            self.update_actions()

    def redo(self) -> None:
        if self.session is not None:
            self.session.document.redo()
            self.update_actions()

    def auto_lung(self) -> None:
        if self.session is None:
            return
        problem = self.session.auto_lung()
        if problem:  # the labels stay as they are
            self.statusBar().showMessage(
                f"Auto lung not applied ({problem}); paint the lung (label 1)", 15_000
            )

    def clear_lesions(self) -> None:
        if self.session is not None:
            self.session.document.clear_lesions()

    def apply_variant(self, labels: np.ndarray) -> None:
        if self.session is not None:
            self.session.document.replace(labels, "variant")

    def set_tool(self, name: str) -> None:
        self.canvas.set_tool(name)
        self.tools.show_tool(name)

    def set_label(self, value: int) -> None:
        self.canvas.label = value
        self.tools.show_label(value)

    def set_brush_size(self, size: int) -> None:
        self.canvas.brush_size = int(size)
        self.settings.setValue("brush_size", int(size))
        spacing = self.session.spacing if self.session is not None else None
        mm = f"{size * spacing[1]:.1f} mm" if spacing else "spacing unknown"
        self.tools.brush_label.setText(f"{size} px ({mm})")

    def _opacity_changed(self, value: int) -> None:
        self.canvas.set_opacity(value / 100)
        self.settings.setValue("opacity", int(value))

    def _rules_changed(self) -> None:
        if self.session is not None:
            rules = self.session.document.rules
            rules.constrain_to_lung = self.tools.constrain_check.isChecked()
            rules.preserve_labels = self.tools.preserve_check.isChecked()

    def select_lesion_at(self, row: int, col: int) -> None:
        if self.session is None:
            return
        n = self.session.select_at(row, col)
        self.canvas.set_selection(self.session.selection)
        self.statusBar().showMessage(
            f"Selected a lesion of {n:,} px" if n else "No lesion there", 4000
        )

    def edit_selection(self, op: str, direction: tuple[int, int] = (0, 0)) -> bool:
        """Apply one augment operation to the selected lesion, as one undoable step."""
        session, augment = self.session, self.tools.augment
        if session is None or session.selection is None:
            self.statusBar().showMessage("Select a lesion first (Select tool, S)", 5000)
            return False
        session.edit_selection(op, direction=tuple(direction), **augment.selection_args(op))
        if session.spacing is None and op in ("grow", "shrink", "move"):
            self.statusBar().showMessage(
                f"Pixel spacing unknown: {ASSUMED_SPACING_MM} mm assumed (Image > Set pixel spacing)",
                8000,
            )
        self.canvas.set_selection(session.selection)
        return True

    def add_random_lesions(self) -> None:
        if self.session is not None:
            self.session.add_random_lesions(**self.tools.augment.random_args())

    def augment_all(self) -> None:
        if self.session is None:
            return
        self.session.augment_all(self.tools.augment.take_seed())
        self.canvas.set_selection(None)

    # ------------------------------------------------------------------ view
    def apply_window_preset(self, name: str) -> None:
        if self.session is None:
            return
        ct = self.session.ct
        if name in PRESETS:
            if not ct.is_hu:
                self.statusBar().showMessage(
                    "HU presets need an image in HU (DICOM or NIfTI); this one is 8-bit", 8000
                )
                return
            window = PRESETS[name]
        elif name == FULL_RANGE:
            window = ct.default_window()
        else:
            return
        self.canvas.set_window(window.level, window.width)
        self.tools.window_combo.setCurrentText(name)

    def _show_window(self, level: float, width: float) -> None:
        units = "HU" if self.session is not None and self.session.ct.is_hu else ""
        self.window_label.setText(f"L {level:.0f} / W {width:.0f} {units}".strip())

    def _show_spacing(self) -> None:
        spacing = self.session.spacing if self.session is not None else None
        self.spacing_label.setText(
            f"{spacing[0]:.3f} × {spacing[1]:.3f} mm" if spacing else "spacing unknown"
        )

    def _show_cursor_value(self, row: int, col: int) -> None:
        self.cursor_label.setText(self.session.cursor_text(row, col) if self.session else "")

    def spacing_dialog(self) -> None:
        if self.session is None:
            return
        current = self.session.spacing[0] if self.session.spacing else 0.7
        value, ok = QInputDialog.getDouble(
            self, "Pixel spacing", "Pixel spacing (mm, square pixels):", current, 0.01, 10.0, 3
        )
        if ok:
            self.set_spacing((value, value))

    def set_spacing(self, spacing: tuple[float, float]) -> None:
        if self.session is None:
            return
        self.session.spacing_override = (float(spacing[0]), float(spacing[1]))
        self._show_spacing()
        self.set_brush_size(self.tools.brush_slider.value())
        self._document_changed()

    # ------------------------------------------------------------------ help
    def show_about(self) -> None:
        from app.dialogs.about import show_about

        model = self.live.model
        show_about(self, model.description if model else "", model.sha256 if model else "")

    def open_model_card(self) -> None:
        from app.dialogs.about import open_model_card

        open_model_card(self)

    # ------------------------------------------------------------------ window events, dialogs
    def show_error(self, title: str, message: str) -> None:
        self.errors.append(message)
        self.statusBar().showMessage(message, 10_000)
        QMessageBox.critical(self, title, message)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.files.open_dropped(
            [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        )

    def closeEvent(self, event) -> None:
        if not self.files.confirm_discard("Quit without saving the labels?"):
            event.ignore()
            return
        self.files.closing()
        self.live.controller.shutdown()
        event.accept()
