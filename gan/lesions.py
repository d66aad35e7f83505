"""Label-map operations shared by the app and batch export (no Qt): measurements, for now."""

from __future__ import annotations

import dataclasses

import numpy as np

from gan.labels import CONSOLIDATION, GGO, LUNG, validate_label_map


@dataclasses.dataclass(frozen=True)
class Areas:
    """Pixel counts per class; mm^2 where the pixel spacing is known."""

    lung_region_px: int  # lung + GGO + consolidation
    healthy_lung_px: int
    ggo_px: int
    consolidation_px: int
    pixel_area_mm2: float | None

    @property
    def lesion_px(self) -> int:
        return self.ggo_px + self.consolidation_px

    @property
    def involvement(self) -> float | None:
        """Fraction of the lung occupied by lesions (None without a lung)."""
        return self.lesion_px / self.lung_region_px if self.lung_region_px else None

    def mm2(self, pixels: int) -> float | None:
        return None if self.pixel_area_mm2 is None else pixels * self.pixel_area_mm2


def measure_areas(label_map: np.ndarray, spacing: tuple[float, float] | None) -> Areas:
    label_map = validate_label_map(label_map)
    counts = np.bincount(label_map.ravel(), minlength=4)
    return Areas(
        lung_region_px=int(counts[LUNG] + counts[GGO] + counts[CONSOLIDATION]),
        healthy_lung_px=int(counts[LUNG]),
        ggo_px=int(counts[GGO]),
        consolidation_px=int(counts[CONSOLIDATION]),
        pixel_area_mm2=None if spacing is None else float(spacing[0] * spacing[1]),
    )
