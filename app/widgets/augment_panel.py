"""The dock's augment panel: operations on the selected lesion, random lesions, augment all."""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
)

MOVES = (("←", (0, -1)), ("→", (0, 1)), ("↑", (-1, 0)), ("↓", (1, 0)))


class AugmentPanel(QGroupBox):
    """Buttons and their parameters; the window applies them to the open session."""

    operation = pyqtSignal(str, object)  # op (app.session.SELECTION_OPS), move direction
    randomLesions = pyqtSignal()
    augmentAll = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__("Augment (select a lesion with S, then)", parent)
        grid = QGridLayout(self)
        self.margin_spin = QDoubleSpinBox(
            suffix=" mm", minimum=0.5, maximum=30.0, value=2.0, singleStep=0.5
        )
        self.angle_spin = QDoubleSpinBox(suffix="°", minimum=-180, maximum=180, value=15)
        self.scale_spin = QDoubleSpinBox(
            prefix="×", minimum=0.2, maximum=5.0, value=1.2, singleStep=0.1
        )
        grid.addWidget(self.margin_spin, 0, 0)
        grid.addWidget(self.angle_spin, 1, 0)
        grid.addWidget(self.scale_spin, 2, 0)
        for op, row, col, tip in (
            ("grow", 0, 1, ""),
            ("shrink", 0, 2, ""),
            ("rotate", 1, 1, ""),
            ("mirror", 1, 2, "Copy the lesion across the midline into the other lung"),
            ("scale", 2, 1, ""),
            ("deform", 2, 2, ""),
        ):
            button = QPushButton(op.capitalize())
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, o=op: self.operation.emit(o, (0, 0)))
            grid.addWidget(button, row, col)
        moves = QHBoxLayout()
        for text, shift in MOVES:
            button = QPushButton(text)
            button.setToolTip("Move the lesion by the margin")
            button.clicked.connect(lambda _=False, d=shift: self.operation.emit("move", d))
            moves.addWidget(button)
        grid.addLayout(moves, 3, 0, 1, 3)

        self.count_spin = QSpinBox(minimum=1, maximum=30, value=4, prefix="n ")
        self.ggo_spin = QSpinBox(minimum=0, maximum=100, value=70, suffix=" % GGO")
        self.target_spin = QSpinBox(minimum=1, maximum=90, value=20, suffix=" % lung")
        self.seed_spin = QSpinBox(minimum=0, maximum=999_999, value=0, prefix="seed ")
        self.shape_combo = QComboBox()
        self.shape_combo.addItems(["Procedural shapes", "Real lesion shapes"])
        generate = QPushButton("Random lesions")
        generate.clicked.connect(self.randomLesions)
        augment = QPushButton("Augment all")
        augment.setToolTip(
            "The paper's test-time augmentation of the lesions: rotation, scale, elastic"
        )
        augment.clicked.connect(self.augmentAll)
        grid.addWidget(self.count_spin, 4, 0)
        grid.addWidget(self.ggo_spin, 4, 1)
        grid.addWidget(self.target_spin, 4, 2)
        grid.addWidget(self.shape_combo, 5, 0, 1, 2)
        grid.addWidget(self.seed_spin, 5, 2)
        grid.addWidget(generate, 6, 0, 1, 2)
        grid.addWidget(augment, 6, 2)

    def take_seed(self, advance: int = 1) -> int:
        """The seed shown, then advanced by ``advance``: each random action draws anew."""
        seed = self.seed_spin.value()
        self.seed_spin.setValue(seed + advance)
        return seed

    def selection_args(self, op: str) -> dict:
        """The panel's parameters for :meth:`app.session.EditSession.edit_selection`; a deform
        draws a new seed."""
        return {
            "margin_mm": self.margin_spin.value(),
            "angle_deg": self.angle_spin.value(),
            "scale": self.scale_spin.value(),
            "seed": self.take_seed() + 1 if op == "deform" else 0,
        }

    def random_args(self) -> dict:
        """The parameters for :meth:`app.session.EditSession.add_random_lesions` (a new seed)."""
        return {
            "count": self.count_spin.value(),
            "ggo_fraction": self.ggo_spin.value() / 100,
            "target_fraction": self.target_spin.value() / 100,
            "seed": self.take_seed(),
            "real_shapes": self.shape_combo.currentIndex() == 1,
        }
