"""The dock: tool and label buttons, brush and overlay, window presets, the slice of a volume,
editing rules, the augment panel and the measurements."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.widgets.augment_panel import AugmentPanel
from app.widgets.measurements import MeasurementsBox
from gan.ctio import LUNG_WINDOW, MEDIASTINUM_WINDOW
from gan.labels import CLASS_COLOURS, CONSOLIDATION, GGO, LUNG

LABEL_NAMES = {LUNG: "Lung", GGO: "GGO", CONSOLIDATION: "Consolidation"}
PRESETS = {"Lung (L -600 / W 1500)": LUNG_WINDOW, "Mediastinum (L 40 / W 400)": MEDIASTINUM_WINDOW}
FULL_RANGE = "8-bit full range"
TOOL_KEYS = (("brush", "B"), ("eraser", "E"), ("fill", "F"), ("polygon", "P"), ("select", "S"))


class ToolPanel(QWidget):
    """The dock's contents. The window connects the signals and the widgets' own ones."""

    toolChosen = pyqtSignal(str)
    labelChosen = pyqtSignal(int)
    rulesChanged = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)

        tools = QGroupBox("Tool")
        tool_grid = QGridLayout(tools)  # three a row: the dock stays narrow enough for 1024 px
        self.tool_buttons = QButtonGroup(self)
        for i, (name, key) in enumerate(TOOL_KEYS):
            button = QPushButton(f"{name.capitalize()} ({key})")
            button.setCheckable(True)
            button.setObjectName(f"tool_{name}")
            button.clicked.connect(lambda _=False, n=name: self.toolChosen.emit(n))
            self.tool_buttons.addButton(button)
            tool_grid.addWidget(button, i // 3, i % 3)
        layout.addWidget(tools)

        labels = QGroupBox("Label")
        label_row = QHBoxLayout(labels)
        self.label_buttons: dict[int, QPushButton] = {}
        group = QButtonGroup(self)
        for value, name in LABEL_NAMES.items():
            button = QPushButton(f"{value} {name}")
            button.setCheckable(True)
            r, g, b = CLASS_COLOURS[value]
            text = "black" if value == CONSOLIDATION else "white"
            button.setStyleSheet(
                f"QPushButton {{ border: 2px solid rgb({r},{g},{b}); padding: 4px; }}"
                f"QPushButton:checked {{ background: rgb({r},{g},{b}); color: {text}; }}"
            )
            button.clicked.connect(lambda _=False, v=value: self.labelChosen.emit(v))
            group.addButton(button)
            self.label_buttons[value] = button
            label_row.addWidget(button)
        layout.addWidget(labels)

        form = QFormLayout()
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(1, 101)
        self.brush_label = QLabel()
        form.addRow("Brush ([ ])", self.brush_slider)
        form.addRow("", self.brush_label)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        form.addRow("Overlay opacity", self.opacity_slider)
        self.window_combo = QComboBox()
        self.window_combo.addItems([*PRESETS, FULL_RANGE, "Custom (right-drag)"])
        form.addRow("Window", self.window_combo)
        self.slice_slider = QSlider(Qt.Orientation.Horizontal)
        self.slice_slider.setVisible(False)
        self.slice_label = QLabel()
        self.slice_label.setVisible(False)
        form.addRow(self.slice_label, self.slice_slider)
        layout.addLayout(form)

        self.overlay_check = QCheckBox("Show labels (O)")
        self.overlay_check.setChecked(True)
        self.constrain_check = QCheckBox("Lesions stay inside the lung")
        self.constrain_check.setChecked(True)
        self.preserve_check = QCheckBox("Preserve other labels")
        for check in (self.constrain_check, self.preserve_check):
            check.toggled.connect(lambda _=False: self.rulesChanged.emit())
        for widget in (self.overlay_check, self.constrain_check, self.preserve_check):
            layout.addWidget(widget)

        buttons = QHBoxLayout()
        self.auto_lung_button = QPushButton("Auto lung")
        self.auto_lung_button.setToolTip("Derive the lung from the CT (lesions are kept)")
        self.clear_button = QPushButton("Clear lesions")
        buttons.addWidget(self.auto_lung_button)
        buttons.addWidget(self.clear_button)
        layout.addLayout(buttons)

        self.augment = AugmentPanel()
        layout.addWidget(self.augment)
        self.measurements = MeasurementsBox()
        layout.addWidget(self.measurements)
        layout.addStretch(1)
        notice = QLabel("Synthetic images are for research and education only, not for diagnosis.")
        notice.setWordWrap(True)
        palette = notice.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(150, 150, 150))
        notice.setPalette(palette)
        layout.addWidget(notice)

    def show_tool(self, name: str) -> None:
        for button in self.tool_buttons.buttons():
            button.setChecked(button.objectName() == f"tool_{name}")

    def show_label(self, value: int) -> None:
        for v, button in self.label_buttons.items():
            button.setChecked(v == value)

    def show_slices(self, index: int | None, count: int | None) -> None:
        """The slice slider for a volume of ``count`` slices; hidden for a single slice."""
        many = bool(count and count > 1)
        self.slice_slider.setVisible(many)
        self.slice_label.setVisible(many)
        if count:
            self.slice_slider.setRange(0, count - 1)
            self.slice_slider.setValue(index or 0)
            self.slice_label.setText(f"Slice {index}/{count - 1}")
