"""Lung-mask derivation from any CT slice (no lung masks ship with the data).

Steps, on the slice windowed to [-1, 1] (lung window for HU, as-is for 8-bit):

1. median filter, Otsu threshold: air and lung are dark, soft tissue and bone bright;
2. drop dark regions that touch the image border (the air around the body, the table);
3. keep sizeable dark components (drops the trachea, small bowel-gas pockets and noise);
4. fill holes (vessels, nodules and lesions surrounded by lung);
5. pleura-side hull: dense consolidation against the chest wall is as bright as soft tissue and is
   cut out by step 1. Each lung's convex hull fills those bites; hull pieces that lie medially
   (the heart and mediastinum concavity) are left out unless they lie posteriorly (dependent,
   paravertebral consolidation);
6. known lesion pixels, where given, are forced inside.

``benchmarks/lung_coverage.py`` measures how much of the labelled GGO and consolidation falls inside
the derived lung before step 6.
"""

from __future__ import annotations

import numpy as np

from gan.ctio import CTSlice

#: Bumped whenever the derivation changes (training caches key on it).
DERIVATION_VERSION = 2

#: Dark components smaller than this fraction of the image, or of the largest one, are dropped.
MIN_AREA_IMAGE_FRACTION = 0.002
MIN_AREA_LARGEST_FRACTION = 0.05
#: Hull pieces whose centre lies this far (fraction of the lung's height) behind the lung's centre
#: are kept even when medial: dependent consolidation along the spine.
POSTERIOR_FRACTION = 0.2
#: A dark component with at least this fraction of its pixels on each side of the midline holds
#: both lungs (touching at the anterior junction line) and is hulled as two halves.
BOTH_LUNGS_FRACTION = 0.2


def derive_lung_mask(
    image: CTSlice | np.ndarray,
    lesion_mask: np.ndarray | None = None,
    pleural_hull: bool = True,
) -> np.ndarray:
    """Bool lung mask of a slice.

    Parameters
    ----------
    image : a :class:`CTSlice`, or an (H, W) array already windowed to [-1, 1].
    lesion_mask : optional (H, W) array, nonzero on known lesion pixels; they are forced inside.
    pleural_hull : fill bites of dense tissue along the pleura (step 5 above).
    """
    unit = image.to_model_range() if isinstance(image, CTSlice) else np.asarray(image, np.float32)
    if unit.ndim != 2:
        raise ValueError(f"expected a 2-D slice, got shape {unit.shape}")
    lung = _dark_lung_regions(unit)
    if pleural_hull:
        lung = _add_pleural_hull(lung)
    if lesion_mask is not None:
        lesion_mask = np.asarray(lesion_mask)
        if lesion_mask.shape != lung.shape:
            raise ValueError(f"lesion mask shape {lesion_mask.shape} != slice shape {lung.shape}")
        lung |= lesion_mask > 0
    return lung


def _dark_lung_regions(unit: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage import filters, measure

    smooth = ndi.median_filter(unit, size=3)
    if float(smooth.max() - smooth.min()) < 1e-6:
        return np.zeros(unit.shape, bool)
    dark = smooth < filters.threshold_otsu(smooth)

    labels = measure.label(dark, connectivity=1)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    dark &= ~np.isin(labels, border[border > 0])

    labels, n = ndi.label(dark)
    if n == 0:
        return dark
    areas = np.bincount(labels.ravel())[1:]
    min_area = max(MIN_AREA_IMAGE_FRACTION * dark.size, MIN_AREA_LARGEST_FRACTION * areas.max())
    keep = np.flatnonzero(areas >= min_area) + 1
    return ndi.binary_fill_holes(np.isin(labels, keep))


def _add_pleural_hull(lung: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage import measure, morphology

    if not lung.any():
        return lung
    out = lung.copy()
    midline_x = np.nonzero(lung)[1].mean()
    labels = measure.label(lung)
    for region in measure.regionprops(labels):
        for part in _split_at_midline(labels == region.label, midline_x):
            rows, cols = np.nonzero(part)
            cy, cx = rows.mean(), cols.mean()
            height = rows.max() - rows.min() + 1
            pieces = measure.label(morphology.convex_hull_image(part) & ~part)
            for piece in measure.regionprops(pieces):
                py, px = piece.centroid
                medial = abs(px - midline_x) < abs(cx - midline_x)
                posterior = py > cy + POSTERIOR_FRACTION * height
                if not medial or posterior:
                    out[pieces == piece.label] = True
    return ndi.binary_fill_holes(out)


def _split_at_midline(component: np.ndarray, midline_x: float) -> list[np.ndarray]:
    """A component holding both lungs (they touch at the anterior junction line) as its left and
    right halves, so that each lung gets its own hull: the hull of both together would cover the
    mediastinum. A component with less than ``BOTH_LUNGS_FRACTION`` of its pixels on one side of
    the midline is one lung and stays whole."""
    cut = int(round(midline_x))
    left = component.copy()
    left[:, cut:] = False
    right = component & ~left
    total = component.sum()
    if min(left.sum(), right.sum()) < BOTH_LUNGS_FRACTION * total:
        return [component]
    return [left, right]
