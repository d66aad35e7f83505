"""The editor window: canvas in the middle, tools and measurements in a dock, menus, status bar."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PyQt6.QtGui import QAction, QActionGroup, QColor, QKeySequence, QPalette
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.canvas import CanvasView
from app.document import MaskDocument
from app.panes import PreviewView
from app.project import SUFFIX, Project, ProjectError
from app.worker import InpaintContext, SynthesisController
from gan.compose import Compositor
from gan.ctio import (
    LUNG_WINDOW,
    MEDIASTINUM_WINDOW,
    CTReadError,
    CTSlice,
    file_kind,
    list_dicom_series,
)
from gan.labels import CLASS_COLOURS, CONSOLIDATION, GGO, LUNG, LabelFormatError
from gan.lesions import measure_areas

APP_NAME = "CT Lesion Studio"
AUTOSAVE_MS = 30_000
RECOVERY_NAME = "recovery" + SUFFIX
OPEN_FILTER = (
    "CT images (*.dcm *.dicom *.ima *.nii *.nii.gz *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)"
)
LABEL_NAMES = {LUNG: "Lung", GGO: "GGO", CONSOLIDATION: "Consolidation"}
PRESETS = {"Lung (L -600 / W 1500)": LUNG_WINDOW, "Mediastinum (L 40 / W 400)": MEDIASTINUM_WINDOW}
TOOL_KEYS = (("brush", "B"), ("eraser", "E"), ("fill", "F"), ("polygon", "P"), ("select", "S"))


def default_recovery_dir() -> Path:
    return Path(
        QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        or Path.home() / ".ct-lesion-studio"
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
        self.recovery_dir = Path(recovery_dir) if recovery_dir else default_recovery_dir()
        self._ask = ask or self._ask_dialog
        self._choose_index = choose_index or self._choose_index_dialog
        self.ct: CTSlice | None = None
        self.document: MaskDocument | None = None
        #: the labels that describe the real slice as it is (at open): edits are what differs
        self.baseline_labels: np.ndarray | None = None
        self.project_path: Path | None = None
        self.spacing_override: tuple[float, float] | None = None
        self._saved_revision = 0
        self._autosaved_revision = 0
        self.errors: list[str] = []  # every error shown, newest last (tests and the log read it)
        #: why the lung derived at open is implausible (gan.lung.lung_problem); whole-lung
        #: synthesis waits until the user paints lung labels
        self.lung_problem: str | None = None

        self.setWindowTitle(APP_NAME)
        self.resize(1280, 860)
        self.setAcceptDrops(True)
        self.canvas = CanvasView(self)
        self.synth_view = PreviewView("Synthetic")
        self.composite_view = PreviewView("Composite")
        self.feather_px = float(self.settings.value("feather_px", 4.0))
        #: regenerate only the edited region (inpaint model) unless the user asks for the whole lung
        self.whole_lung = self.settings.value("whole_lung", False, type=bool)
        self.inpaint_ready = False
        self.inpainter_description = ""
        self.inpaint_margin_mm = float(self.settings.value("inpaint_margin_mm", 5.0))
        self.show_difference = False
        self.last_result = None
        self.setCentralWidget(self._build_panes())
        self._build_dock()
        self._build_menus()
        self._build_status()
        self.canvas.cursorMoved.connect(self._show_cursor_value)
        self.canvas.windowChanged.connect(self._show_window)
        self.canvas.strokeFinished.connect(self._update_actions)
        self.canvas.pixelClicked.connect(self.select_lesion_at)
        self.selection: np.ndarray | None = None

        self.canvas.viewChanged.connect(self._sync_panes)
        self.canvas.windowChanged.connect(lambda *_: self._render_panes())
        self.canvas.strokeFinished.connect(lambda: self.request_synthesis(full=True))
        self.synthesis = SynthesisController(self)
        self.synthesis.resultReady.connect(self._show_result)
        self.synthesis.failed.connect(self._synthesis_failed)
        self.synthesis.modelLoaded.connect(self._model_loaded)
        self.synthesis.variantsReady.connect(self._show_variants)
        self.synthesis.inpainterLoaded.connect(self._inpainter_loaded)
        self.variant_count = 6
        self.variants_dialog = None
        self.model_description = ""
        self.compositor = Compositor()
        self._first_request_id = 0
        self.synthesis_label = QLabel("Synthesis: loading model…")
        self.statusBar().addPermanentWidget(self.synthesis_label)
        self.synthesis.worker.preview_mode = str(self.settings.value("preview", "auto"))
        self.synthesis.load(
            str(self.settings.value("weights", "default")),
            str(self.settings.value("device", "auto")),
        )
        self.synthesis.load_inpainter(
            str(self.settings.value("inpaint_weights", "default")),
            str(self.settings.value("device", "auto")),
        )

        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start(AUTOSAVE_MS)

    # ================================================================== building
    def _build_panes(self) -> QWidget:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.pane_headers = []
        for title, view in (
            ("Original (editing)", self.canvas),
            ("Synthetic", self.synth_view),
            ("Composite: synthetic lung in the real slice", self.composite_view),
        ):
            column = QWidget()
            column_layout = QVBoxLayout(column)
            column_layout.setContentsMargins(2, 2, 2, 2)
            header = QLabel(title)
            self.pane_headers.append(header)
            header.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column_layout.addWidget(header)
            column_layout.addWidget(view, 1)
            splitter.addWidget(column)
        splitter.setSizes([600, 400, 400])
        return splitter

    def _build_dock(self) -> None:
        panel = QWidget()
        layout = QVBoxLayout(panel)

        tools = QGroupBox("Tool")
        tool_row = QHBoxLayout(tools)
        self.tool_buttons = QButtonGroup(self)
        for name, key in TOOL_KEYS:
            button = QPushButton(f"{name.capitalize()} ({key})")
            button.setCheckable(True)
            button.setObjectName(f"tool_{name}")
            button.clicked.connect(lambda _=False, n=name: self.set_tool(n))
            self.tool_buttons.addButton(button)
            tool_row.addWidget(button)
        layout.addWidget(tools)

        labels = QGroupBox("Label")
        label_row = QHBoxLayout(labels)
        self.label_buttons: dict[int, QPushButton] = {}
        group = QButtonGroup(self)
        for value, name in LABEL_NAMES.items():
            button = QPushButton(f"{value} {name}")
            button.setCheckable(True)
            r, g, b = CLASS_COLOURS[value]
            button.setStyleSheet(
                f"QPushButton {{ border: 2px solid rgb({r},{g},{b}); padding: 4px; }}"
                f"QPushButton:checked {{ background: rgb({r},{g},{b}); color: {'black' if value == CONSOLIDATION else 'white'}; }}"
            )
            button.clicked.connect(lambda _=False, v=value: self.set_label(v))
            group.addButton(button)
            self.label_buttons[value] = button
            label_row.addWidget(button)
        layout.addWidget(labels)

        form = QFormLayout()
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(1, 101)
        self.brush_slider.valueChanged.connect(self.set_brush_size)
        self.brush_label = QLabel()
        form.addRow("Brush ([ ])", self.brush_slider)
        form.addRow("", self.brush_label)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        form.addRow("Overlay opacity", self.opacity_slider)
        self.window_combo = QComboBox()
        self.window_combo.addItems([*PRESETS, "8-bit full range", "Custom (right-drag)"])
        self.window_combo.textActivated.connect(self.apply_window_preset)
        form.addRow("Window", self.window_combo)
        self.slice_slider = QSlider(Qt.Orientation.Horizontal)
        self.slice_slider.setVisible(False)
        self.slice_slider.sliderReleased.connect(self._slice_chosen)
        self.slice_label = QLabel()
        self.slice_label.setVisible(False)
        form.addRow(self.slice_label, self.slice_slider)
        layout.addLayout(form)

        self.overlay_check = QCheckBox("Show labels (O)")
        self.overlay_check.setChecked(True)
        self.overlay_check.toggled.connect(self.canvas.set_overlay_visible)
        self.constrain_check = QCheckBox("Lesions stay inside the lung")
        self.constrain_check.setChecked(True)
        self.constrain_check.toggled.connect(self._rules_changed)
        self.preserve_check = QCheckBox("Preserve other labels")
        self.preserve_check.toggled.connect(self._rules_changed)
        for widget in (self.overlay_check, self.constrain_check, self.preserve_check):
            layout.addWidget(widget)

        buttons = QHBoxLayout()
        self.auto_lung_button = QPushButton("Auto lung")
        self.auto_lung_button.setToolTip("Derive the lung from the CT (lesions are kept)")
        self.auto_lung_button.clicked.connect(self.auto_lung)
        self.clear_button = QPushButton("Clear lesions")
        self.clear_button.clicked.connect(self.clear_lesions)
        buttons.addWidget(self.auto_lung_button)
        buttons.addWidget(self.clear_button)
        layout.addLayout(buttons)

        layout.addWidget(self._build_augment_panel())

        measures = QGroupBox("Measurements")
        measures_layout = QVBoxLayout(measures)
        self.measure_label = QLabel()
        self.measure_label.setTextFormat(Qt.TextFormat.RichText)
        measures_layout.addWidget(self.measure_label)
        layout.addWidget(measures)
        layout.addStretch(1)
        notice = QLabel("Synthetic images are for research and education only, not for diagnosis.")
        notice.setWordWrap(True)
        palette = notice.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(150, 150, 150))
        notice.setPalette(palette)
        layout.addWidget(notice)

        dock = QDockWidget("Labels", self)
        dock.setObjectName("labels_dock")
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        scroll.setMinimumWidth(panel.sizeHint().width() + 24)
        dock.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        self.brush_slider.setValue(int(self.settings.value("brush_size", 9)))
        self.opacity_slider.setValue(int(self.settings.value("opacity", 45)))
        self.set_tool("brush")
        self.set_label(GGO)

    def _build_augment_panel(self) -> QGroupBox:
        box = QGroupBox("Augment (select a lesion with S, then)")
        grid = QGridLayout(box)
        self.margin_spin = QDoubleSpinBox(
            suffix=" mm", minimum=0.5, maximum=30.0, value=2.0, singleStep=0.5
        )
        grow, shrink = QPushButton("Grow"), QPushButton("Shrink")
        grow.clicked.connect(lambda: self.edit_selection("grow"))
        shrink.clicked.connect(lambda: self.edit_selection("shrink"))
        grid.addWidget(self.margin_spin, 0, 0)
        grid.addWidget(grow, 0, 1)
        grid.addWidget(shrink, 0, 2)
        self.angle_spin = QDoubleSpinBox(suffix="°", minimum=-180, maximum=180, value=15)
        self.scale_spin = QDoubleSpinBox(
            prefix="×", minimum=0.2, maximum=5.0, value=1.2, singleStep=0.1
        )
        rotate, scale = QPushButton("Rotate"), QPushButton("Scale")
        rotate.clicked.connect(lambda: self.edit_selection("rotate"))
        scale.clicked.connect(lambda: self.edit_selection("scale"))
        grid.addWidget(self.angle_spin, 1, 0)
        grid.addWidget(rotate, 1, 1)
        grid.addWidget(self.scale_spin, 2, 0)
        grid.addWidget(scale, 2, 1)
        mirror, deform = QPushButton("Mirror"), QPushButton("Deform")
        mirror.setToolTip("Copy the lesion across the midline into the other lung")
        mirror.clicked.connect(lambda: self.edit_selection("mirror"))
        deform.clicked.connect(lambda: self.edit_selection("deform"))
        grid.addWidget(mirror, 1, 2)
        grid.addWidget(deform, 2, 2)
        moves = QHBoxLayout()
        for text, shift in (("←", (0, -1)), ("→", (0, 1)), ("↑", (-1, 0)), ("↓", (1, 0))):
            button = QPushButton(text)
            button.setToolTip("Move the lesion by the margin")
            button.clicked.connect(lambda _=False, d=shift: self.edit_selection("move", d))
            moves.addWidget(button)
        grid.addLayout(moves, 3, 0, 1, 3)

        self.count_spin = QSpinBox(minimum=1, maximum=30, value=4, prefix="n ")
        self.ggo_spin = QSpinBox(minimum=0, maximum=100, value=70, suffix=" % GGO")
        self.target_spin = QSpinBox(minimum=1, maximum=90, value=20, suffix=" % lung")
        self.seed_spin = QSpinBox(minimum=0, maximum=999_999, value=0, prefix="seed ")
        self.shape_combo = QComboBox()
        self.shape_combo.addItems(["Procedural shapes", "Real lesion shapes"])
        generate = QPushButton("Random lesions")
        generate.clicked.connect(self.add_random_lesions)
        augment = QPushButton("Augment all")
        augment.setToolTip(
            "The paper's test-time augmentation of the lesions: rotation, scale, elastic"
        )
        augment.clicked.connect(self.augment_all)
        grid.addWidget(self.count_spin, 4, 0)
        grid.addWidget(self.ggo_spin, 4, 1)
        grid.addWidget(self.target_spin, 4, 2)
        grid.addWidget(self.shape_combo, 5, 0, 1, 2)
        grid.addWidget(self.seed_spin, 5, 2)
        grid.addWidget(generate, 6, 0, 1, 2)
        grid.addWidget(augment, 6, 2)
        return box

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open image…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._refresh_recent()
        file_menu.addSeparator()
        self._action(file_menu, "Open &project…", self.open_project_dialog)
        self._action(file_menu, "&Save project", self.save_project, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save project &as…", self.save_project_as, "Ctrl+Shift+S")
        self._action(file_menu, "&Import labels…", self.import_labels_dialog, "Ctrl+I")
        self._action(file_menu, "Export &labels as PNG…", self.export_labels_dialog)
        self._action(file_menu, "&Export synthetic slice…", self.export_slice_dialog, "Ctrl+E")
        self._action(file_menu, "&Batch export…", self.batch_export_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit = bar.addMenu("&Edit")
        self.undo_action = self._action(edit, "&Undo", self.undo, "Ctrl+Z")
        self.redo_action = self._action(edit, "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        edit.addSeparator()
        self._action(edit, "Auto &lung", self.auto_lung)
        self._action(edit, "&Clear lesions", self.clear_lesions)

        tools = bar.addMenu("&Tools")
        group = QActionGroup(self)
        for name, key in TOOL_KEYS:
            action = self._action(
                tools, name.capitalize(), lambda _=False, n=name: self.set_tool(n), key
            )
            group.addAction(action)
        tools.addSeparator()
        for value, name in LABEL_NAMES.items():
            self._action(
                tools,
                f"Label {value}: {name}",
                lambda _=False, v=value: self.set_label(v),
                str(value),
            )
        self._action(
            tools,
            "Smaller brush",
            lambda: self.brush_slider.setValue(self.brush_slider.value() - 2),
            "[",
        )
        self._action(
            tools,
            "Larger brush",
            lambda: self.brush_slider.setValue(self.brush_slider.value() + 2),
            "]",
        )

        view = bar.addMenu("&View")
        self._action(view, "&Fit to window", self.canvas.fit, "Ctrl+0")
        self._action(
            view, "Zoom &in", lambda: self.canvas.zoom(1.25), QKeySequence.StandardKey.ZoomIn
        )
        self._action(
            view, "Zoom &out", lambda: self.canvas.zoom(0.8), QKeySequence.StandardKey.ZoomOut
        )
        self._action(view, "Toggle &labels", lambda: self.overlay_check.toggle(), "O")
        for name in PRESETS:
            self._action(
                view, f"Window: {name}", lambda _=False, n=name: self.apply_window_preset(n)
            )

        image = bar.addMenu("&Image")
        self._action(image, "Set pixel &spacing…", self.spacing_dialog)

        synthesis = bar.addMenu("&Synthesis")
        self._action(synthesis, "Choose &weights…", self.choose_weights_dialog)
        self._action(synthesis, "Use the &default weights", lambda: self.load_weights("default"))
        devices = synthesis.addMenu("&Device")
        for device in ("auto", "cpu", "cuda", "mps"):
            self._action(devices, device, lambda _=False, d=device: self.set_device(d))
        previews = synthesis.addMenu("&Preview while painting")
        preview_group = QActionGroup(self)
        current = str(self.settings.value("preview", "auto"))
        for mode, text in (
            ("auto", "Auto (fastest on a CPU without bf16)"),
            ("256", "G1 at 256² (as trained)"),
            ("128", "G1 at 128² (fastest, coarser)"),
        ):
            action = self._action(previews, text, lambda _=False, m=mode: self.set_preview(m))
            action.setCheckable(True)
            action.setChecked(mode == current)
            preview_group.addAction(action)
        self.whole_lung_action = self._action(
            synthesis, "Regenerate &whole lung (paper)", self.toggle_whole_lung, "Ctrl+L"
        )
        self.whole_lung_action.setCheckable(True)
        self.whole_lung_action.setChecked(self.whole_lung)
        self.whole_lung_action.setToolTip(
            "Off: only the region you edited (plus a margin) is regenerated by the inpainting "
            "model and the rest stays the real slice. On: the whole lung is synthesized from "
            "the labels (the paper's method)."
        )
        self._action(synthesis, "Inpainting &margin…", self.margin_dialog)
        self._action(synthesis, "Choose &inpainting weights…", self.choose_inpaint_weights_dialog)
        self._action(synthesis, "&Feather width…", self.feather_dialog)
        self.difference_action = self._action(
            synthesis, "Difference &map", self.toggle_difference, "D"
        )
        self.difference_action.setCheckable(True)
        self._action(synthesis, "&Regenerate", lambda: self.request_synthesis(full=True), "Ctrl+R")
        self._action(synthesis, "&Variants…", self.make_variants, "Ctrl+Shift+V")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Model card", self.open_model_card)
        self._action(help_menu, "&About CT Lesion Studio", self.show_about)

    # ================================================================== help
    def show_about(self) -> None:
        from app.about import show_about

        synthesizer = self.synthesis.worker.synthesizer
        show_about(self, self.model_description, synthesizer.sha256 if synthesizer else "")

    def open_model_card(self) -> None:
        from PyQt6.QtCore import QUrl
        from PyQt6.QtGui import QDesktopServices

        from gan.paths import model_card_path

        path = model_card_path()
        if not path.is_file() or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.show_error(
                "Model card", f"{path}: cannot be opened here; read it in any text viewer"
            )

    # ================================================================== synthesis
    def load_weights(self, weights: str) -> None:
        self.settings.setValue("weights", weights)
        self.synthesis_label.setText("Synthesis: loading model…")
        self.synthesis.load(weights, str(self.settings.value("device", "auto")))

    def choose_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Generator weights", "", "Weights (*.safetensors *.pt);;All files (*)"
        )
        if path:
            self.load_weights(path)

    def set_device(self, device: str) -> None:
        self.settings.setValue("device", device)
        self.load_weights(str(self.settings.value("weights", "default")))
        self.load_inpaint_weights(str(self.settings.value("inpaint_weights", "default")))

    def load_inpaint_weights(self, weights: str) -> None:
        self.settings.setValue("inpaint_weights", weights)
        self.inpaint_ready = False
        self.synthesis.load_inpainter(weights, str(self.settings.value("device", "auto")))

    def choose_inpaint_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Inpainting weights", "", "Weights (*.safetensors *.pt);;All files (*)"
        )
        if path:
            self.load_inpaint_weights(path)

    def _inpainter_loaded(self, description: str) -> None:
        self.inpaint_ready = bool(description)
        self.inpainter_description = description
        if not description:
            error = self.synthesis.worker.inpainter_error
            self.statusBar().showMessage(
                f"Inpainting unavailable ({error}); regenerating the whole lung instead", 15_000
            )
        self._update_pane_titles()
        self.request_synthesis(full=True)

    @property
    def inpainting(self) -> bool:
        """True where edits regenerate only their region (an inpaint model is loaded, a real slice
        is open and the user has not asked for the whole lung)."""
        return self.inpaint_ready and not self.whole_lung and self.ct is not None

    def toggle_whole_lung(self) -> None:
        self.whole_lung = self.whole_lung_action.isChecked()
        self.settings.setValue("whole_lung", self.whole_lung)
        self._update_pane_titles()
        self.request_synthesis(full=True)

    def _update_pane_titles(self) -> None:
        if self.inpainting:
            titles = ("Regenerated region", "Composite: the real slice, edited region regenerated")
        else:
            titles = ("Synthetic", "Composite: synthetic lung in the real slice")
        for header, title in zip(self.pane_headers[1:], titles, strict=True):
            header.setText(title)

    def _ask_width(self, title: str, prompt: str, value: float) -> float | None:
        """A width from 0 to 50 (one decimal) from the user; None if cancelled."""
        value, ok = QInputDialog.getDouble(self, title, prompt, value, 0.0, 50.0, 1)
        return value if ok else None

    def margin_dialog(self) -> None:
        value = self._ask_width(
            "Inpainting margin",
            "Margin around each edit that is regenerated too (mm):",
            self.inpaint_margin_mm,
        )
        if value is not None:
            self.inpaint_margin_mm = value
            self.settings.setValue("inpaint_margin_mm", value)
            self.request_synthesis(full=True)

    def edit_region(self, labels: np.ndarray | None = None) -> np.ndarray:
        """The pixels to regenerate: where ``labels`` (default: the current ones) differ from the
        labels of the real slice, dilated by the margin."""
        from gan.inpaint import changed_region, margin_px

        labels = np.asarray(self.document.labels) if labels is None else labels
        return changed_region(
            self.baseline_labels, labels, margin_px(self.spacing, self.inpaint_margin_mm)
        )

    def _inpaint_context(self, labels: np.ndarray | None = None) -> InpaintContext:
        return InpaintContext(self._model_input(), self.edit_region(labels))

    def _model_input(self) -> np.ndarray:
        """The real slice in the generator's [-1, 1] (the window the synthetic image comes back in)."""
        from gan.ctio import window_to_unit

        return window_to_unit(
            self.ct.pixels, LUNG_WINDOW if self.ct.is_hu else self.ct.default_window()
        )

    def set_preview(self, mode: str) -> None:
        """How the stroke preview runs: "auto", "256" or "128" (see SynthesisWorker.preview_size)."""
        self.settings.setValue("preview", mode)
        self.synthesis.worker.preview_mode = mode

    def feather_dialog(self) -> None:
        value = self._ask_width(
            "Feather width", "Composite edge ramp (pixels; 0 = hard paste):", self.feather_px
        )
        if value is not None:
            self.feather_px = value
            self.settings.setValue("feather_px", value)
            self._render_panes()

    def toggle_difference(self) -> None:
        self.show_difference = self.difference_action.isChecked()
        self._render_panes()

    def _model_loaded(self, description: str) -> None:
        self.model_description = description
        self.synthesis_label.setText(f"Synthesis: {description}")
        self.request_synthesis(full=True)

    def _synthesis_failed(self, message: str) -> None:
        self.last_result = None  # nothing shown or exported comes from a model that is gone
        self.synthesis_label.setText("Synthesis unavailable (see Synthesis menu)")
        self.statusBar().showMessage(message, 15_000)
        for view in (self.synth_view, self.composite_view):
            view.show_message(
                message + "\n\nThe editor works without it; choose weights in the Synthesis menu."
            )

    def make_variants(self) -> None:
        """N seeded augmentations of the current lesions, synthesized in the worker thread."""
        from gan.batch import augment_label_map

        if self.document is None:
            return
        base = self.seed_spin.value()
        maps = [
            augment_label_map(np.asarray(self.document.labels), base + i, self._spacing_mm())[0]
            for i in range(self.variant_count)
        ]
        self.seed_spin.setValue(base + self.variant_count)
        self.statusBar().showMessage(f"Synthesizing {len(maps)} variants…", 5000)
        contexts = [self._inpaint_context(m) for m in maps] if self.inpainting else None
        seeds = list(range(base, base + self.variant_count))  # each variant its own texture too
        self.synthesis.request_variants(maps, contexts, seeds)

    def _show_variants(self, pairs: list) -> None:
        from app.variants import VariantsDialog

        if self.ct is None or not pairs or pairs[0][0].shape != self.ct.shape:
            return
        composites = [self._composite(image, labels, mask) for labels, image, mask in pairs]
        pairs = [(labels, image) for labels, image, _mask in pairs]
        self.variants_dialog = VariantsDialog(pairs, composites, self.canvas.window, self)
        self.variants_dialog.chosen.connect(self.apply_variant)
        self.variants_dialog.show()

    def apply_variant(self, labels: np.ndarray) -> None:
        if self.document is not None:
            self.document.replace(labels, "variant")
            self._update_actions()

    def request_synthesis(self, full: bool = False) -> None:
        """Post the current labels: a G1-only preview while a stroke is in progress, else the full model."""
        if self.document is None:
            return
        if self.lung_problem and not self.inpainting:
            if not (np.asarray(self.document.labels) == LUNG).any():
                # a whole lung synthesized from no lung is a grey patch: wait for painted lung
                self.last_result = None
                for view in (self.synth_view, self.composite_view):
                    view.show_message(self._lung_problem_line() + ".")
                return
            self.lung_problem = None  # the user painted the lung
        stage = None if full or not self.canvas.painting else "global"
        context = self._inpaint_context() if self.inpainting else None
        self.synthesis.request(np.asarray(self.document.labels), stage, context)

    def _to_source_units(self, unit: np.ndarray) -> np.ndarray:
        from gan.ctio import unit_to_window

        return unit_to_window(unit, LUNG_WINDOW if self.ct.is_hu else self.ct.default_window())

    def _show_result(self, result) -> None:
        stale = result.request_id < self._first_request_id
        if self.ct is None or stale or result.image.shape != self.ct.shape:
            return  # a result for an image that is no longer open
        self.last_result = result
        which = f"preview (G1 at {result.input_size // 2}²)" if result.stage == "global" else "full"
        model = self.model_description
        if result.mask is not None:
            n = int(result.mask.sum())
            which = f"inpainting {n:,} px, {which}" if n else "no edits: the real slice"
            model = self.inpainter_description
        self.synthesis_label.setText(f"Synthesis: {model} · {which} {result.milliseconds:.0f} ms")
        self._render_panes()

    def composite_values(self) -> np.ndarray | None:
        if self.last_result is None or self.ct is None:
            return None
        r = self.last_result
        return self._composite(r.image, np.asarray(self.document.labels), r.mask)

    def _composite(self, image: np.ndarray, labels: np.ndarray, mask: np.ndarray | None):
        """The slice shown and exported, in its own units: the real slice with the region
        regenerated (inpainting), or the synthetic lung in the real non-lung area (feathered)."""
        from gan.inpaint import paste
        from gan.labels import lung_region

        synthetic = self._to_source_units(image)
        if mask is not None:
            return paste(synthetic, self.ct.pixels, mask)
        # the lung stays the patient's while lesions change: the feather weights are reused
        return self.compositor(synthetic, self.ct.pixels, lung_region(labels), self.feather_px)

    def synthetic_region(self) -> np.ndarray | None:
        """The pixels of the composite that are synthetic (for the export's record)."""
        if self.last_result is None or self.ct is None:
            return None
        if self.last_result.mask is not None:
            return np.asarray(self.last_result.mask, bool)
        from gan.labels import lung_region

        return (
            self.compositor.weights(lung_region(np.asarray(self.document.labels)), self.feather_px)
            > 0
        )

    def _render_panes(self) -> None:
        from app.panes import difference_rgb

        if self.last_result is None or self.ct is None:
            return
        window = self.canvas.window
        synthetic = self._to_source_units(self.last_result.image)
        mask = self.last_result.mask
        if mask is not None and not mask.any():
            self.synth_view.show_message(
                "No edits yet: paint or change labels and only that region (plus a margin) is "
                "regenerated. The composite is the real slice.\n\nSynthesis > Regenerate whole "
                "lung (Ctrl+L) synthesizes the whole lung instead."
            )
        elif mask is not None:  # the regenerated region, on black
            self.synth_view.show_values(np.where(mask, synthetic, np.float32(window.low)), window)
        else:
            self.synth_view.show_values(synthetic, window)
        composite = self.composite_values()
        if self.show_difference:
            self.composite_view.show_rgb(
                difference_rgb(composite, self.ct.pixels, window.width / 2)
            )
        else:
            self.composite_view.show_values(composite, window)
        self._sync_panes()

    def _sync_panes(self) -> None:
        for view in (self.synth_view, self.composite_view):
            view.follow(self.canvas)

    def _build_status(self) -> None:
        self.cursor_label = QLabel()
        self.spacing_label = QLabel()
        self.window_label = QLabel()
        for widget in (self.cursor_label, self.window_label, self.spacing_label):
            self.statusBar().addPermanentWidget(widget)

    # ================================================================== state
    @property
    def spacing(self) -> tuple[float, float] | None:
        if self.spacing_override:
            return self.spacing_override
        return self.ct.spacing if self.ct is not None else None

    @property
    def has_unsaved_work(self) -> bool:
        return self.document is not None and self.document.revision != self._saved_revision

    def set_tool(self, name: str) -> None:
        self.canvas.set_tool(name)
        for button in self.tool_buttons.buttons():
            button.setChecked(button.objectName() == f"tool_{name}")

    # ================================================================== augmentation
    def select_lesion_at(self, row: int, col: int) -> None:
        from gan.lesions import lesion_at

        if self.document is None:
            return
        selection = lesion_at(np.asarray(self.document.labels), row, col)
        self.selection = selection if selection.any() else None
        self.canvas.set_selection(self.selection)
        self.statusBar().showMessage(
            f"Selected a lesion of {int(selection.sum()):,} px"
            if selection.any()
            else "No lesion there",
            4000,
        )

    def _spacing_mm(self) -> float | None:
        return self.spacing[1] if self.spacing else None

    def edit_selection(self, op: str, direction: tuple[int, int] = (0, 0)) -> bool:
        """Apply one augment operation to the selected lesion, as one undoable step."""
        from gan import lesions as L

        if self.document is None or self.selection is None:
            self.statusBar().showMessage("Select a lesion first (Select tool, S)", 5000)
            return False
        labels = np.array(self.document.labels)  # a copy: the document's view changes on replace
        spacing = self._spacing_mm()
        margin = self.margin_spin.value()
        # (row, column) mm per pixel: a move or a margin is the same in mm along either axis
        axes = self.spacing or (L.ASSUMED_SPACING_MM, L.ASSUMED_SPACING_MM)
        if op in ("grow", "shrink"):
            new = L.resize_lesion(labels, self.selection, margin if op == "grow" else -margin, axes)
        elif op == "move":
            new = L.transform_lesion(
                labels,
                self.selection,
                shift=(direction[0] * margin / axes[0], direction[1] * margin / axes[1]),
            )
        elif op == "rotate":
            new = L.transform_lesion(labels, self.selection, angle_deg=self.angle_spin.value())
        elif op == "scale":
            new = L.transform_lesion(labels, self.selection, scale=self.scale_spin.value())
        elif op == "mirror":
            new = L.mirror_lesion(labels, self.selection)
        elif op == "deform":
            self.seed_spin.setValue(self.seed_spin.value() + 1)
            new = L.deform_lesion(labels, self.selection, seed=self.seed_spin.value())
        else:
            raise ValueError(op)
        old_selection = self.selection
        self.document.replace(new, op)
        if spacing is None and op in ("grow", "shrink", "move"):
            self.statusBar().showMessage(
                f"Pixel spacing unknown: {L.ASSUMED_SPACING_MM} mm assumed (Image > Set pixel spacing)",
                8000,
            )
        moved = (new >= GGO) & ((labels < GGO) | old_selection)
        self.selection = moved if moved.any() else None
        self.canvas.set_selection(self.selection)
        self._update_actions()
        return True

    def add_random_lesions(self) -> None:
        from gan.lesions import default_lesion_bank, random_lesions

        if self.document is None:
            return
        bank = default_lesion_bank() if self.shape_combo.currentIndex() == 1 else None
        new = random_lesions(
            np.asarray(self.document.labels),
            self.count_spin.value(),
            self.ggo_spin.value() / 100,
            self.target_spin.value() / 100,
            self.seed_spin.value(),
            bank=bank,
        )
        self.document.replace(new, "random lesions")
        self.seed_spin.setValue(self.seed_spin.value() + 1)
        self._update_actions()

    def augment_all(self) -> None:
        from gan.lesions import augment_lesions

        if self.document is None:
            return
        self.document.replace(
            augment_lesions(np.asarray(self.document.labels), seed=self.seed_spin.value()),
            "augment",
        )
        self.seed_spin.setValue(self.seed_spin.value() + 1)
        self.selection = None
        self.canvas.set_selection(None)
        self._update_actions()

    def import_labels_dialog(self) -> None:
        if self.ct is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import labels",
            str(self.settings.value("last_dir", "")),
            "Labels (*.png *.nii *.nii.gz *.dcm);;All files (*)",
        )
        if path:
            self.import_labels(path)

    def import_labels(
        self,
        path: str | Path,
        convention: str | None = None,
        binary_class: int | None = None,
        confirm: bool = True,
    ) -> bool:
        """Read a label file, preview the mapping (unless ``confirm`` is False), apply it."""
        from app.import_dialog import ImportLabelsDialog
        from gan.label_import import read_for_import

        if self.ct is None or self.document is None:
            return False
        try:
            file = read_for_import(path, self.ct.slice_index)
        except (LabelFormatError, CTReadError, OSError, ValueError) as exc:
            self.show_error("Cannot import labels", str(exc))
            return False
        dialog = ImportLabelsDialog(file, self.ct, np.asarray(self.document.labels), self)
        if convention:
            dialog.select_convention(convention)
        if binary_class:
            dialog.select_binary_class(binary_class)
        if confirm and dialog.exec() != ImportLabelsDialog.DialogCode.Accepted:
            return False
        if dialog.result_labels is None:
            self.show_error(
                "Cannot import labels", dialog.summary.text().replace("<b>", "").replace("</b>", "")
            )
            return False
        self.document.replace(dialog.result_labels, "import labels")
        self._update_actions()
        return True

    def set_label(self, value: int) -> None:
        self.canvas.label = value
        for v, button in self.label_buttons.items():
            button.setChecked(v == value)

    def set_brush_size(self, size: int) -> None:
        self.canvas.brush_size = int(size)
        self.settings.setValue("brush_size", int(size))
        spacing = self.spacing
        mm = f"{size * spacing[1]:.1f} mm" if spacing else "spacing unknown"
        self.brush_label.setText(f"{size} px ({mm})")

    def _opacity_changed(self, value: int) -> None:
        self.canvas.set_opacity(value / 100)
        self.settings.setValue("opacity", int(value))

    def _rules_changed(self) -> None:
        if self.document is not None:
            self.document.rules.constrain_to_lung = self.constrain_check.isChecked()
            self.document.rules.preserve_labels = self.preserve_check.isChecked()

    # ================================================================== opening
    def show_error(self, title: str, message: str) -> None:
        self.errors.append(message)
        self.statusBar().showMessage(message, 10_000)
        QMessageBox.critical(self, title, message)

    def confirm_discard(self) -> bool:
        """True if there is no unsaved work, or the user agrees to drop it."""
        return not self.has_unsaved_work or self._ask(
            "Unsaved changes", "Open another image and drop the unsaved labels?"
        )

    def open_dialog(self) -> None:
        if not self.confirm_discard():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Open CT image", str(self.settings.value("last_dir", "")), OPEN_FILTER
        )
        if path:
            self.open_path(path)

    def open_path(
        self,
        path: str | Path,
        index: int | None = None,
        labels: np.ndarray | None = None,
        baseline: np.ndarray | None = None,
    ) -> bool:
        """Open a slice; on failure show a one-line error and keep the current work as it was."""
        from gan.ctio import read_label_image, read_slice
        from gan.labels import label_map_from_lesions, validate_lesion_mask
        from gan.lung import derive_lung_mask, lung_problem
        from gan.paths import sample_lesions_path, sample_slice_path

        path = Path(path)
        problem = None
        try:
            kind = file_kind(path) if path.exists() else "missing"
            if kind == "dicom-folder" and index is None:
                n = len(list_dicom_series(path))
                index = 0 if n == 1 else self._choose_index(f"{path.name}: {n} slices", n, n // 2)
                if index is None:
                    return False
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ct = read_slice(path, index)
            if labels is None or baseline is None:
                # the labels of the slice as it is: derived lung, plus the sample's own lesions
                lesions = None
                if path.resolve() == sample_slice_path().resolve():
                    lesions = validate_lesion_mask(read_label_image(sample_lesions_path()))
                lung = derive_lung_mask(ct, lesion_mask=lesions)
                problem = lung_problem(ct, lung, lesions)
                if problem:  # not drawn: the user paints the lung, or opens another slice
                    lung = np.zeros(ct.shape, bool) if lesions is None else lesions > 0
                derived = label_map_from_lesions(
                    lesions if lesions is not None else np.zeros(ct.shape, np.uint8), lung
                )
                labels = derived if labels is None else labels
                baseline = derived if baseline is None else baseline
            for what, array in (("labels", labels), ("baseline labels", baseline)):
                if array.shape != ct.shape:
                    raise LabelFormatError(
                        f"{what} {array.shape} do not match the image {ct.shape}"
                    )
        except (CTReadError, LabelFormatError, OSError, ValueError) as exc:
            self.show_error(
                "Cannot open file", str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            )
            return False
        for w in caught:
            self.statusBar().showMessage(f"Note: {w.message}", 10_000)
        self.lung_problem = problem
        self._set_slice(ct, labels, baseline)
        if problem:
            self.statusBar().showMessage(self._lung_problem_line(), 30_000)
        self._remember_recent(path)
        return True

    def _lung_problem_line(self) -> str:
        return (
            f"Derived lung not used ({self.lung_problem}); paint the lung (label 1), "
            "or open another slice"
        )

    def _set_slice(self, ct: CTSlice, labels: np.ndarray, baseline: np.ndarray) -> None:
        self.ct = ct
        self.baseline_labels = np.array(baseline, np.uint8, copy=True)
        self._update_pane_titles()
        self.spacing_override = None
        self.document = MaskDocument(labels)
        self.last_result = None
        self.project_path = (
            None  # open_project sets it again: Save must not overwrite another project
        )
        self._first_request_id = (
            self.synthesis._next_id + 1
        )  # results for the old image are dropped
        if self.variants_dialog is not None:
            self.variants_dialog.close()
            self.variants_dialog = None
        for view in (self.synth_view, self.composite_view):
            view.set_scene_size(ct.shape[1], ct.shape[0])
        self.selection = None
        self.canvas.set_selection(None)
        self._rules_changed()
        self.document.subscribe(lambda _region: self._document_changed())
        self._saved_revision = self._autosaved_revision = self.document.revision
        window = LUNG_WINDOW if ct.is_hu else ct.default_window()
        self.canvas.set_content(ct.pixels, self.document, window)
        self.window_combo.setEnabled(True)
        self.window_combo.setCurrentText(next(iter(PRESETS)) if ct.is_hu else "8-bit full range")
        n_slices = ct.metadata.get("n_slices")
        self.slice_slider.setVisible(bool(n_slices and n_slices > 1))
        self.slice_label.setVisible(self.slice_slider.isVisible())
        if n_slices:
            self.slice_slider.setRange(0, n_slices - 1)
            self.slice_slider.setValue(ct.slice_index or 0)
            self.slice_label.setText(f"Slice {ct.slice_index}/{n_slices - 1}")
        name = ct.source.name if ct.source else "untitled"
        self.setWindowTitle(f"{name} - {APP_NAME}")
        self._show_window(window.level, window.width)
        self._show_spacing()
        self.set_brush_size(self.brush_slider.value())
        self._document_changed()

    def _slice_chosen(self) -> None:
        if self.ct is None or self.slice_slider.value() == self.ct.slice_index:
            return
        if self.has_unsaved_work and not self._ask(
            "Unsaved changes", "Open another slice and drop this slice's labels?"
        ):
            self.slice_slider.setValue(self.ct.slice_index or 0)
            return
        self.open_path(self.ct.source, self.slice_slider.value())

    def _remember_recent(self, path: Path) -> None:
        recent = [str(path.resolve())] + [p for p in self._recent() if p != str(path.resolve())]
        self.settings.setValue("recent", recent[:10])
        self.settings.setValue("last_dir", str(path.resolve().parent))
        self._refresh_recent()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(
                lambda _=False, p=path: self.confirm_discard() and self.open_path(p)
            )
        self.recent_menu.setEnabled(bool(self._recent()))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls and self.confirm_discard():
            if urls[0].endswith(SUFFIX):
                self.open_project(urls[0])
            else:
                self.open_path(urls[0])

    # ================================================================== editing
    def undo(self) -> None:
        if self.document is not None:
            self.document.undo()
            self._update_actions()

    def redo(self) -> None:
        if self.document is not None:
            self.document.redo()
            self._update_actions()

    def auto_lung(self) -> None:
        from gan.lung import derive_lung_mask, lung_problem

        if self.ct is None or self.document is None:
            return
        lesions = np.asarray(self.document.labels) >= GGO
        lung = derive_lung_mask(self.ct, lesion_mask=lesions)
        problem = lung_problem(self.ct, lung, lesions)
        if problem:  # the labels stay as they are
            self.statusBar().showMessage(
                f"Auto lung not applied ({problem}); paint the lung (label 1)", 15_000
            )
            return
        self.document.set_lung(lung)
        self._update_actions()

    def clear_lesions(self) -> None:
        if self.document is not None:
            self.document.clear_lesions()
            self._update_actions()

    def _update_actions(self) -> None:
        has = self.document is not None
        self.undo_action.setEnabled(has and self.document.can_undo)
        self.redo_action.setEnabled(has and self.document.can_redo)

    def _document_changed(self) -> None:
        self._update_actions()
        if self.document is None:
            return
        self.request_synthesis(full=not self.canvas.painting)
        areas = measure_areas(np.asarray(self.document.labels), self.spacing)

        def row(name, px):
            mm2 = areas.mm2(px)
            mm = f"{mm2:,.0f} mm²" if mm2 is not None else "spacing unknown"
            return f"<tr><td>{name}</td><td align=right>{px:,} px</td><td align=right>&nbsp;{mm}</td></tr>"

        involvement = areas.involvement
        pct = f"{100 * involvement:.1f} %" if involvement is not None else "no lung"
        self.measure_label.setText(
            "<table>"
            + row("GGO", areas.ggo_px)
            + row("Consolidation", areas.consolidation_px)
            + row("Lung (all)", areas.lung_region_px)
            + "</table>"
            + f"<p>Lung involved: <b>{pct}</b></p>"
        )
        title = self.windowTitle().removesuffix(" *")
        self.setWindowTitle(title + (" *" if self.has_unsaved_work else ""))

    # ================================================================== view
    def apply_window_preset(self, name: str) -> None:
        if self.ct is None:
            return
        if name in PRESETS:
            if not self.ct.is_hu:
                self.statusBar().showMessage(
                    "HU presets need an image in HU (DICOM or NIfTI); this one is 8-bit", 8000
                )
                return
            window = PRESETS[name]
        elif name == "8-bit full range":
            window = self.ct.default_window()
        else:
            return
        self.canvas.set_window(window.level, window.width)
        self.window_combo.setCurrentText(name)

    def _show_window(self, level: float, width: float) -> None:
        units = "HU" if self.ct is not None and self.ct.is_hu else ""
        self.window_label.setText(f"L {level:.0f} / W {width:.0f} {units}".strip())

    def _show_spacing(self) -> None:
        spacing = self.spacing
        self.spacing_label.setText(
            f"{spacing[0]:.3f} × {spacing[1]:.3f} mm" if spacing else "spacing unknown"
        )

    def _show_cursor_value(self, row: int, col: int) -> None:
        if self.ct is None or not (0 <= row < self.ct.shape[0] and 0 <= col < self.ct.shape[1]):
            self.cursor_label.setText("")
            return
        value = float(self.ct.pixels[row, col])
        if self.ct.is_hu:
            text = f"{value:.0f} HU"
        elif self.ct.value_kind == "uint8":
            text = f"{value:.0f} (8-bit display value, not HU)"
        else:
            text = f"{value:.0f} (raw value)"
        label = int(self.document.labels[row, col]) if self.document is not None else 0
        name = {0: "background", **{k: v for k, v in LABEL_NAMES.items()}}[label]
        self.cursor_label.setText(f"x {col}, y {row}: {text}, {name}")

    def spacing_dialog(self) -> None:
        if self.ct is None:
            return
        current = self.spacing[0] if self.spacing else 0.7
        value, ok = QInputDialog.getDouble(
            self, "Pixel spacing", "Pixel spacing (mm, square pixels):", current, 0.01, 10.0, 3
        )
        if ok:
            self.set_spacing((value, value))

    def set_spacing(self, spacing: tuple[float, float]) -> None:
        self.spacing_override = (float(spacing[0]), float(spacing[1]))
        self._show_spacing()
        self.set_brush_size(self.brush_slider.value())
        self._document_changed()

    # ================================================================== projects, autosave
    def current_project(self) -> Project | None:
        if self.document is None or self.ct is None:
            return None
        return Project(
            image_path=str(self.ct.source.resolve()) if self.ct.source else None,
            image_index=self.ct.slice_index if self.ct.slice_index is not None else self.ct.frame,
            labels=np.asarray(self.document.labels),
            baseline=self.baseline_labels,
            spacing_override=self.spacing_override,
            view={
                "level": self.canvas.window.level,
                "width": self.canvas.window.width,
                "opacity": self.canvas.opacity,
                "overlay_visible": self.canvas.overlay_visible,
            },
        )

    def save_project(self) -> bool:
        if self.project_path is None:
            return self.save_project_as()
        return self._write_project(self.project_path)

    def save_project_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save project", str(self.settings.value("last_dir", "")), f"Projects (*{SUFFIX})"
        )
        if not path:
            return False
        path = Path(path)
        if path.suffix != SUFFIX:
            path = path.with_suffix(SUFFIX)
        return self._write_project(path)

    def _write_project(self, path: Path) -> bool:
        project = self.current_project()
        if project is None:
            return False
        try:
            project.save(path)
        except OSError as exc:
            self.show_error("Cannot save project", f"{path}: {exc}")
            return False
        self.project_path = path
        self._saved_revision = self.document.revision
        self._document_changed()
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def open_project_dialog(self) -> None:
        if not self.confirm_discard():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Open project", str(self.settings.value("last_dir", "")), f"Projects (*{SUFFIX})"
        )
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path, remember: bool = True) -> bool:
        try:
            project = Project.load(path)
        except ProjectError as exc:
            self.show_error("Cannot open project", str(exc))
            return False
        if not project.image_path:
            self.show_error("Cannot open project", f"{path}: the project names no image")
            return False
        if not self.open_path(
            project.image_path,
            project.image_index,
            labels=project.labels,
            baseline=project.baseline,
        ):
            return False
        if project.spacing_override:
            self.set_spacing(project.spacing_override)
        view = project.view or {}
        if "level" in view and "width" in view:
            self.canvas.set_window(view["level"], view["width"])
        if "opacity" in view:
            self.opacity_slider.setValue(round(100 * float(view["opacity"])))
        if "overlay_visible" in view:
            self.overlay_check.setChecked(bool(view["overlay_visible"]))
        if remember:
            self.project_path = Path(path)
        return True

    def export_labels_dialog(self) -> None:
        from gan.ctio import write_png

        if self.document is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export label map", "labels.png", "PNG (*.png)")
        if path:
            try:
                write_png(
                    path,
                    np.asarray(self.document.labels),
                    text={"LabelConvention": "0 background, 1 lung, 2 GGO, 3 consolidation"},
                )
            except (OSError, ValueError) as exc:
                self.show_error("Export failed", f"{path}: {exc}")

    def export_slice_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Export synthetic slice to folder", str(self.settings.value("last_dir", ""))
        )
        if folder:
            self.export_slice(folder)

    def export_slice(self, folder: str | Path) -> list[Path]:
        """Synthetic and composite (PNG, DICOM) and the labels (PNG, NIfTI, DICOM SEG) into ``folder``."""
        from gan.export import export_all

        synthesizer = self.synthesis.worker.synthesizer
        if self.ct is None or self.last_result is None or synthesizer is None:
            self.show_error(
                "Nothing to export",
                "No synthetic image yet: load weights in the Synthesis menu first",
            )
            return []
        try:
            files = export_all(
                folder,
                self.ct,
                np.asarray(self.document.labels),
                self._to_source_units(self.last_result.image),
                self.composite_values(),
                self._result_sha256(),
                synthetic_region=self.synthetic_region(),
                stem=self.ct.source.stem.removesuffix(".nii") if self.ct.source else "slice",
            )
        except Exception as exc:  # noqa: BLE001 - any failure is one line, and the work stays
            self.show_error(
                "Export failed",
                f"{folder}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            )
            return []
        self.statusBar().showMessage(f"Exported {len(files)} files to {folder}", 8000)
        return files

    def _result_sha256(self) -> str:
        """The SHA-256 of the model that made the shown result."""
        worker = self.synthesis.worker
        if self.last_result.mask is not None and worker.inpainter is not None:
            return worker.inpainter.sha256
        return worker.synthesizer.sha256

    def batch_export_dialog(self) -> None:
        from app.batch_dialog import BatchExportDialog

        dialog = BatchExportDialog(str(self.settings.value("weights", "default")), self)
        dialog.exec()

    @property
    def recovery_path(self) -> Path:
        return self.recovery_dir / RECOVERY_NAME

    def autosave(self) -> bool:
        """Write the recovery file when there is unsaved work newer than the last autosave."""
        if (
            self.document is None
            or self.document.revision == self._autosaved_revision
            or not self.has_unsaved_work
        ):
            return False
        project = self.current_project()
        try:
            self.recovery_dir.mkdir(parents=True, exist_ok=True)
            project.save(self.recovery_path)
        except OSError as exc:
            self.statusBar().showMessage(f"Autosave failed: {exc}", 10_000)
            return False
        self._autosaved_revision = self.document.revision
        self.statusBar().showMessage(f"Autosaved {time.strftime('%H:%M:%S')}", 3000)
        return True

    def offer_recovery(self) -> bool:
        """After a crash, offer to restore the recovery file; True if restored.

        Declining discards it. A restore that fails (the image was moved, say) keeps it, renamed
        so the next autosave cannot overwrite it, and says where: the labels are never lost."""
        if not self.recovery_path.exists():
            return False
        if not self._ask(
            "Restore unsaved work?",
            "CT Lesion Studio did not close cleanly. Restore the work it autosaved?\n"
            "(No discards it.)",
        ):
            self.recovery_path.unlink(missing_ok=True)
            return False
        if self.open_project(self.recovery_path, remember=False):
            self._saved_revision = -1  # restored work is unsaved until saved
            self._document_changed()
            return True
        kept = self._keep_unrestored_recovery()
        if kept is not None:
            self.show_error(
                "Autosaved work kept",
                f"The autosaved labels could not be restored and are kept in {kept}; open it "
                "with File > Open project once the problem above is fixed (a moved image, say).",
            )
        return False

    def _keep_unrestored_recovery(self) -> Path | None:
        """Rename the recovery file out of the autosave's way; None (and it stays) if that fails."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = self.recovery_dir / f"unrestored-{stamp}{SUFFIX}"
        n = 1
        while kept.exists():
            n += 1
            kept = self.recovery_dir / f"unrestored-{stamp}-{n}{SUFFIX}"
        try:
            self.recovery_path.rename(kept)
        except OSError as exc:
            self.show_error(
                "Autosaved work kept",
                f"{self.recovery_path} could not be renamed ({exc}); it stays",
            )
            return None
        return kept

    def closeEvent(self, event) -> None:
        if self.has_unsaved_work and not self._ask(
            "Unsaved changes", "Quit without saving the labels?"
        ):
            event.ignore()
            return
        self.recovery_path.unlink(missing_ok=True)
        self.synthesis.shutdown()
        event.accept()

    # ================================================================== dialogs
    def _ask_dialog(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _choose_index_dialog(self, title: str, count: int, default: int) -> int | None:
        value, ok = QInputDialog.getInt(
            self, "Choose slice", f"{title}\nSlice (0–{count - 1}):", default, 0, count - 1
        )
        return value if ok else None
