"""The one path from a generator's output to what a user sees and exports.

A result is composed into the real slice, in the slice's own units (HU for a HU slice), per mode:

- label mode (the paper, §III-D): the synthetic lung in the real non-lung area, optionally with a
  feathered edge; the synthetic region is where the feather weight is above 0;
- inpaint mode: the real slice with only the regenerated ``mask`` replaced; the region is the mask.

The app, ``training_cli synth``, ``batch``, ``evaluate`` and ``figure`` all compose here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gan.ctio import CTSlice
from gan.labels import lung_region


@dataclasses.dataclass(frozen=True)
class Composed:
    """One result composed into its slice. Images are float32 in the slice's own units."""

    synthetic: np.ndarray  # the generator's whole output
    composite: np.ndarray  # what is shown and exported as the synthetic slice
    region: np.ndarray  # bool: the pixels of ``composite`` that are synthetic
    mode: str  # "label" or "inpaint"


def feather_weights(lung_mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Weight of the synthetic image per pixel: 1 inside the lung, 0 outside, a linear ramp of
    ``feather_px`` pixels centred on the lung boundary between (0 = the paper's hard paste)."""
    lung_mask = np.asarray(lung_mask, bool)
    if feather_px <= 0 or not lung_mask.any() or lung_mask.all():
        return lung_mask.astype(np.float32)  # no boundary to feather
    from scipy import ndimage as ndi

    inside = ndi.distance_transform_edt(lung_mask)
    outside = ndi.distance_transform_edt(~lung_mask)
    signed = np.where(lung_mask, inside - 0.5, 0.5 - outside)  # >0 inside, <0 outside
    return np.clip(0.5 + signed / feather_px, 0.0, 1.0).astype(np.float32)


def composite_into_nonlung(
    synthetic: np.ndarray, real: np.ndarray, lung_mask: np.ndarray, feather_px: float = 0.0
) -> np.ndarray:
    """The synthetic lung placed into the real slice's non-lung area (paper §III-D).

    ``synthetic`` and ``real`` share units (both [-1, 1], say) and shape; ``lung_mask`` is the lung
    region (label map > 0).
    """
    synthetic = np.asarray(synthetic, np.float32)
    real = np.asarray(real, np.float32)
    if synthetic.shape != real.shape or np.shape(lung_mask) != real.shape:
        raise ValueError(
            f"shapes differ: synthetic {synthetic.shape}, real {real.shape}, mask {np.shape(lung_mask)}"
        )
    alpha = feather_weights(lung_mask, feather_px)
    return alpha * synthetic + (1.0 - alpha) * real


class Compositor:
    """:func:`compose` that keeps the last feather weights: while lesions are painted the lung
    region does not change, so the distance transforms (most of the cost) are not redone."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._alpha: np.ndarray | None = None

    def weights(self, lung_mask: np.ndarray, feather_px: float) -> np.ndarray:
        import hashlib

        mask = np.asarray(lung_mask, bool)
        key = (
            mask.shape,
            float(feather_px),
            hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest(),
        )
        if key != self._key:
            self._key, self._alpha = key, feather_weights(mask, feather_px)
        return self._alpha

    def __call__(
        self,
        synthetic: np.ndarray,
        real: np.ndarray,
        lung_mask: np.ndarray,
        feather_px: float = 0.0,
    ) -> np.ndarray:
        alpha = self.weights(lung_mask, feather_px)
        return alpha * np.asarray(synthetic, np.float32) + (1.0 - alpha) * np.asarray(
            real, np.float32
        )

    def compose_arrays(
        self,
        synthetic: np.ndarray,
        real: np.ndarray,
        labels: np.ndarray,
        mask: np.ndarray | None = None,
        feather_px: float = 0.0,
    ) -> Composed:
        """The per-mode composite of two images in the same units and shape (the slice's own, or
        the [-1, 1] of training data): inpaint mode where a region ``mask`` is given (``real``
        outside it, exactly), else label mode with the lung of ``labels`` feathered by
        ``feather_px``. :meth:`compose` is this in the slice's units."""
        from gan.inpaint import paste

        synthetic = np.asarray(synthetic, np.float32)
        real = np.asarray(real, np.float32)
        if synthetic.shape != real.shape or np.shape(labels) != real.shape:
            raise ValueError(
                f"shapes differ: synthetic {synthetic.shape}, real {real.shape}, "
                f"labels {np.shape(labels)}"
            )
        if mask is not None:
            region = np.asarray(mask, bool)
            if region.shape != real.shape:
                raise ValueError(f"mask {region.shape} and image {real.shape} differ in size")
            return Composed(synthetic, paste(synthetic, real, region), region, "inpaint")
        lung = lung_region(labels)
        composite = self(synthetic, real, lung, feather_px)
        return Composed(synthetic, composite, self.weights(lung, feather_px) > 0, "label")

    def compose(
        self,
        ct: CTSlice,
        output: np.ndarray,
        labels: np.ndarray,
        mask: np.ndarray | None = None,
        feather_px: float = 0.0,
    ) -> Composed:
        """``output`` (the generator's image, [-1, 1], the slice's shape) composed into ``ct``, in
        its units: inpaint mode where a region ``mask`` is given, else label mode with the lung of
        ``labels`` feathered by ``feather_px`` (see :meth:`compose_arrays`)."""
        output = np.asarray(output, np.float32)
        if output.shape != ct.shape or np.shape(labels) != ct.shape:
            raise ValueError(
                f"shapes differ: output {output.shape}, labels {np.shape(labels)}, slice {ct.shape}"
            )
        if mask is not None and np.shape(mask) != ct.shape:
            raise ValueError(f"mask {np.shape(mask)} and slice {ct.shape} differ in size")
        return self.compose_arrays(ct.from_model_range(output), ct.pixels, labels, mask, feather_px)


def compose(
    ct: CTSlice,
    output: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray | None = None,
    feather_px: float = 0.0,
) -> Composed:
    """One result composed into its slice (see :meth:`Compositor.compose`)."""
    return Compositor().compose(ct, output, labels, mask, feather_px)


__all__ = [
    "Composed",
    "Compositor",
    "compose",
    "composite_into_nonlung",
    "feather_weights",
]
