"""Lung-mask derivation from any CT slice (no lung masks ship with the data).

Steps, on the slice windowed to [-1, 1] (lung window for HU, as-is for 8-bit):

1. median filter, Otsu threshold: air and lung are dark, soft tissue and bone bright;
2. drop dark regions that touch the image border (the air around the body, the table gap), except
   lungs cut by the border: a dark region is kept where it meets the border only on sides that the
   body reaches too (the body fills the frame there) and it is lung-shaped, a solid, thick blob.
   The shape test is needed because many slices have a bright frame (a white background outside
   the scanner's field of view, the table) joined to the body, and the air crescents between the
   body's outline and that frame meet only "reached" sides as well; they are thin or curved;
3. keep sizeable dark components (drops the trachea, small bowel-gas pockets and noise);
4. fill holes (vessels, nodules and lesions surrounded by lung);
5. pleura-side hull: dense consolidation against the chest wall is as bright as soft tissue and is
   cut out by step 1. Each lung's convex hull fills those bites; hull pieces that lie medially
   (the heart and mediastinum concavity) are left out unless they lie posteriorly (dependent,
   paravertebral consolidation);
6. known lesion pixels, where given, are forced inside.

:func:`lung_problem` says when a derived lung is not plausible (none found, or most of the body):
callers show that line and let the user paint the lung instead of synthesizing from it.

``benchmarks/lung_coverage.py`` measures how much of the labelled GGO and consolidation falls inside
the derived lung before step 6.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gan.ctio import CTSlice

#: Bumped whenever the derivation changes (training caches key on it).
DERIVATION_VERSION = 3

#: Dark components smaller than this fraction of the image, or of the largest one, are dropped.
MIN_AREA_IMAGE_FRACTION = 0.002
MIN_AREA_LARGEST_FRACTION = 0.05
#: The body reaches a side of the image where it covers at least this fraction of that side.
BODY_REACH_FRACTION = 0.05
#: A dark region meeting the border only where the body reaches it is lung (not air between the
#: body and a bright frame) when its filled area is at least this fraction of its convex hull ...
BORDER_LUNG_SOLIDITY = 0.7
#: ... and a circle of this radius (fraction of the image's shorter side) fits inside it. Measured
#: on the shared slices: the air pieces reach 0.064 when solid (0.093 for a curved table gap);
#: CT_small.dcm's cut lungs, 0.13 and 0.15.
BORDER_LUNG_INSCRIBED_FRACTION = 0.1
#: A lung covering more of the body than this (lungs included in the body) is not a lung: the
#: threshold took the body's inside, or the slice is not a chest slice. (On the 80 shared slices
#: the derived lung covers 4 to 56 % of the body; CT_small.dcm, 22 %.)
MAX_BODY_FRACTION = 0.6
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
    lung = _dark_lung_regions(_unit(image))
    if pleural_hull:
        lung = _add_pleural_hull(lung)
    if lesion_mask is not None:
        lesion_mask = np.asarray(lesion_mask)
        if lesion_mask.shape != lung.shape:
            raise ValueError(f"lesion mask shape {lesion_mask.shape} != slice shape {lung.shape}")
        lung |= lesion_mask > 0
    return lung


def lung_problem(
    image: CTSlice | np.ndarray, lung: np.ndarray, lesion_mask: np.ndarray | None = None
) -> str | None:
    """Why ``lung`` (a derived or given lung region of ``image``) is implausible, in one line for
    the user; None when it is plausible.

    It is implausible when it holds no pixel besides the known lesions (``lesion_mask``, forced
    inside by :func:`derive_lung_mask`) or covers more than ``MAX_BODY_FRACTION`` of the body."""
    lung = np.asarray(lung, bool)
    unit = _unit(image)
    if lung.shape != unit.shape:
        raise ValueError(f"lung mask shape {lung.shape} != slice shape {unit.shape}")
    own = lung if lesion_mask is None else lung & ~(np.asarray(lesion_mask) > 0)
    if not own.any():
        return "no lung found"
    fraction = lung.sum() / (_body(unit) | lung).sum()
    if fraction > MAX_BODY_FRACTION:
        return (
            f"the lung would cover {100 * fraction:.0f} % of the body "
            f"(more than {100 * MAX_BODY_FRACTION:.0f} %): not a plausible lung"
        )
    return None


class SliceLabels(NamedTuple):
    """A slice's label map (lung derived, known lesions in it) and why its lung is implausible."""

    label_map: np.ndarray  # (H, W) uint8, 0 background, 1 lung, 2 GGO, 3 consolidation
    lung_problem: str | None  # see :func:`lung_problem`; None where the lung is plausible


def labels_for_slice(
    ct: CTSlice, lesions: np.ndarray | None = None, lung: np.ndarray | None = None
) -> SliceLabels:
    """The label map of a real slice: its derived lung with the known ``lesions`` (a MedSeg
    lesion mask, 0/1/2, or None for none) labelled inside, and the lung's plausibility. The one
    home of the lung-plus-lesions recipe (app, synth, batch, label import, training data).

    ``lung``: the slice's lung as :func:`derive_lung_mask` gave it without lesions, where the
    caller has it already (the training data measures coverage on it): not derived again."""
    from gan.labels import label_map_from_lesions

    if lesions is not None and np.shape(lesions) != ct.shape:
        raise ValueError(f"lesion mask {np.shape(lesions)} does not match slice {ct.shape}")
    if lesions is None:
        lesions = np.zeros(ct.shape, np.uint8)
    if lung is None:
        lung = derive_lung_mask(ct, lesion_mask=lesions)
    else:  # step 6 of the derivation: the known lesions are forced inside
        lung = np.asarray(lung, bool) | (np.asarray(lesions) > 0)
    return SliceLabels(label_map_from_lesions(lesions, lung), lung_problem(ct, lung, lesions))


def _unit(image: CTSlice | np.ndarray) -> np.ndarray:
    unit = image.to_model_range() if isinstance(image, CTSlice) else np.asarray(image, np.float32)
    if unit.ndim != 2:
        raise ValueError(f"expected a 2-D slice, got shape {unit.shape}")
    return unit


def _dark(unit: np.ndarray) -> np.ndarray | None:
    """Step 1: the dark pixels (air and lung); None for a flat slice."""
    from scipy import ndimage as ndi
    from skimage import filters

    smooth = ndi.median_filter(unit, size=3)
    if float(smooth.max() - smooth.min()) < 1e-6:
        return None
    return smooth < filters.threshold_otsu(smooth)


def _body(unit: np.ndarray) -> np.ndarray:
    """Everything but the air outside the body (lungs, table and burned-in text included)."""
    from scipy import ndimage as ndi
    from skimage import measure

    dark = _dark(unit)
    if dark is None:
        return np.ones(unit.shape, bool)
    labels = measure.label(dark, connectivity=1)
    return ndi.binary_fill_holes(~np.isin(labels, _outside_air_labels(labels, ~dark)))


def _dark_lung_regions(unit: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage import measure

    dark = _dark(unit)
    if dark is None:
        return np.zeros(unit.shape, bool)
    labels = measure.label(dark, connectivity=1)
    dark &= ~np.isin(labels, _outside_air_labels(labels, ~dark))

    labels, n = ndi.label(dark)
    if n == 0:
        return dark
    areas = np.bincount(labels.ravel())[1:]
    min_area = max(MIN_AREA_IMAGE_FRACTION * dark.size, MIN_AREA_LARGEST_FRACTION * areas.max())
    keep = np.flatnonzero(areas >= min_area) + 1
    return ndi.binary_fill_holes(np.isin(labels, keep))


def _sides(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    return mask[0], mask[-1], mask[:, 0], mask[:, -1]


def _outside_air_labels(labels: np.ndarray, bright: np.ndarray) -> np.ndarray:
    """Labels of the dark components that are air outside the body (step 2 of the module doc)."""
    from scipy import ndimage as ndi

    body_labels, n = ndi.label(bright)
    body = body_labels == np.bincount(body_labels.ravel())[1:].argmax() + 1 if n else bright
    air: set[int] = set()
    cut_by_the_frame: set[int] = set()
    for side, body_side in zip(_sides(labels), _sides(body), strict=True):
        touching = set(np.unique(side[side > 0]).tolist())
        if body_side.mean() >= BODY_REACH_FRACTION:
            cut_by_the_frame |= touching
        else:
            air |= touching  # a side the body does not reach: this dark region is outside it
    air |= {k for k in cut_by_the_frame - air if not _lung_shaped(labels == k)}
    return np.array(sorted(air), labels.dtype)


def _lung_shaped(component: np.ndarray) -> bool:
    """A dark region cut by the border that is solid and thick, as a lung is; the air between the
    body and a bright frame is a thin crescent or a curved band."""
    from scipy import ndimage as ndi
    from skimage import morphology

    filled = ndi.binary_fill_holes(component)  # the vessels
    if filled.sum() < BORDER_LUNG_SOLIDITY * morphology.convex_hull_image(filled).sum():
        return False
    # the border is an edge too: a circle must fit inside the image
    radius = ndi.distance_transform_edt(np.pad(filled, 1))[1:-1, 1:-1].max()
    return bool(radius >= BORDER_LUNG_INSCRIBED_FRACTION * min(component.shape))


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
