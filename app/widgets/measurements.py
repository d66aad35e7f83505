"""The dock's measurements: GGO, consolidation and lung areas, and the lung involved."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QGroupBox, QLabel, QVBoxLayout

from gan.lesions import Areas


def areas_html(areas: Areas) -> str:
    def row(name: str, px: int) -> str:
        mm2 = areas.mm2(px)
        mm = f"{mm2:,.0f} mm²" if mm2 is not None else "spacing unknown"
        return (
            f"<tr><td>{name}</td><td align=right>{px:,} px</td><td align=right>&nbsp;{mm}</td></tr>"
        )

    involvement = areas.involvement
    pct = f"{100 * involvement:.1f} %" if involvement is not None else "no lung"
    return (
        "<table>"
        + row("GGO", areas.ggo_px)
        + row("Consolidation", areas.consolidation_px)
        + row("Lung (all)", areas.lung_region_px)
        + "</table>"
        + f"<p>Lung involved: <b>{pct}</b></p>"
    )


class MeasurementsBox(QGroupBox):
    def __init__(self, parent=None) -> None:
        super().__init__("Measurements", parent)
        layout = QVBoxLayout(self)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.label)

    def show_areas(self, areas: Areas) -> None:
        self.label.setText(areas_html(areas))
