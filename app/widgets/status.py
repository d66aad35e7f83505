"""Status-bar labels that elide instead of widening the window: a long model description or
cursor readout must not set the window's minimum width (nor push the message area off)."""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QPainter
from PyQt6.QtWidgets import QLabel


class ElidedLabel(QLabel):
    """A one-line label that asks for its text's width up to ``max_width`` and shows the text
    elided ("…") when given less; the whole text is its tooltip."""

    def __init__(self, text: str = "", max_width: int = 420, parent=None) -> None:
        super().__init__(text, parent)
        self.max_width = max_width

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setToolTip(text)

    def sizeHint(self) -> QSize:  # noqa: N802
        hint = super().sizeHint()
        return QSize(min(hint.width(), self.max_width), hint.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(min(super().minimumSizeHint().width(), 60), super().minimumSizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(
            rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), text
        )
