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
    return areas_from_counts(np.bincount(label_map.ravel(), minlength=4), spacing)


def areas_from_counts(counts: np.ndarray, spacing: tuple[float, float] | None) -> Areas:
    """:class:`Areas` from the pixel count of each label (0..3): what an editor that keeps its
    counts up to date from each change's bounding box measures with."""
    return Areas(
        lung_region_px=int(counts[LUNG] + counts[GGO] + counts[CONSOLIDATION]),
        healthy_lung_px=int(counts[LUNG]),
        ggo_px=int(counts[GGO]),
        consolidation_px=int(counts[CONSOLIDATION]),
        pixel_area_mm2=None if spacing is None else float(spacing[0] * spacing[1]),
    )


# ------------------------------------------------------------------------------------ editing ops
# Every operation takes a label map and returns a new one; lesions always end inside the lung
# region (label > 0) of the input, and whatever a lesion leaves behind returns to lung.

#: Pixel spacing assumed where a file does not give one: MedSeg slices are 630 px at 0.68 mm
#: resized to 512 px (the paper's preprocessing), about 0.84 mm.
ASSUMED_SPACING_MM = 0.84


def lesion_at(label_map: np.ndarray, row: int, col: int) -> np.ndarray:
    """The connected lesion (GGO and consolidation together, 8-connected) under (row, col)."""
    from scipy import ndimage as ndi

    lesion = np.asarray(label_map) >= GGO
    if not (0 <= row < lesion.shape[0] and 0 <= col < lesion.shape[1]) or not lesion[row, col]:
        return np.zeros(lesion.shape, bool)
    components, _ = ndi.label(lesion, structure=np.ones((3, 3)))
    return components == components[row, col]


def _lung_region(label_map: np.ndarray) -> np.ndarray:
    return np.asarray(label_map) > 0


def _place(label_map: np.ndarray, removed: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Remove the lesion pixels ``removed`` (back to lung), then write ``classes`` (0 = nothing)
    inside the lung region."""
    out = np.array(label_map, np.uint8, copy=True)
    lung = _lung_region(label_map)
    out[removed & (out >= GGO)] = LUNG
    put = (classes >= GGO) & lung
    out[put] = classes[put]
    return out


def resize_lesion(
    label_map: np.ndarray,
    selection: np.ndarray,
    margin_mm: float,
    spacing_mm: float | tuple[float, float] | None,
) -> np.ndarray:
    """Grow (margin > 0) or shrink (margin < 0) the selected lesion by ``margin_mm``.

    ``spacing_mm``: one pixel size, or (row, column) sizes for non-square pixels (distances are
    then measured in mm along each axis); None assumes :data:`ASSUMED_SPACING_MM`.
    Grown pixels take the class of the nearest lesion pixel; shrunk pixels return to lung.
    """
    from scipy import ndimage as ndi

    sampling = np.broadcast_to(np.asarray(spacing_mm or ASSUMED_SPACING_MM, float), (2,))
    radius = abs(margin_mm)  # in mm: the distance transforms below measure in mm
    selection = np.asarray(selection, bool)
    if radius <= 0 or not selection.any():
        return np.array(label_map, np.uint8, copy=True)
    outside = ndi.distance_transform_edt(~selection, sampling=sampling)
    if margin_mm > 0:
        grown = outside <= radius
        _, (rows, cols) = ndi.distance_transform_edt(
            ~selection, sampling=sampling, return_indices=True
        )
        nearest = np.asarray(label_map)[rows, cols]
        classes = np.where(grown, nearest, 0).astype(np.uint8)
        return _place(label_map, np.zeros_like(selection), classes)
    inside = ndi.distance_transform_edt(selection, sampling=sampling)
    kept = inside > radius
    classes = np.where(kept, np.asarray(label_map), 0).astype(np.uint8)
    return _place(label_map, selection, classes)


def _warp_selection(label_map: np.ndarray, selection: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine (in (col, row) pixel coordinates, as OpenCV) to the selected lesion's
    classes, nearest neighbour; returns the moved classes (0 elsewhere)."""
    import cv2

    classes = np.where(selection, np.asarray(label_map), 0).astype(np.uint8)
    h, w = classes.shape
    return cv2.warpAffine(
        classes, matrix.astype(np.float64), (w, h), flags=cv2.INTER_NEAREST, borderValue=0
    )


def _centroid(selection: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(selection)
    return float(cols.mean()), float(rows.mean())


def transform_lesion(
    label_map: np.ndarray,
    selection: np.ndarray,
    shift: tuple[float, float] = (0.0, 0.0),
    angle_deg: float = 0.0,
    scale: float = 1.0,
) -> np.ndarray:
    """Move (rows, cols), rotate (degrees, counter-clockwise) and scale the selected lesion about
    its centre; the result is clipped to the lung."""
    import cv2

    selection = np.asarray(selection, bool)
    if not selection.any():
        return np.array(label_map, np.uint8, copy=True)
    cx, cy = _centroid(selection)
    matrix = cv2.getRotationMatrix2D((cx, cy), angle_deg, scale)
    matrix[0, 2] += shift[1]
    matrix[1, 2] += shift[0]
    return _place(label_map, selection, _warp_selection(label_map, selection, matrix))


def lung_midline(label_map: np.ndarray) -> float:
    """Column of the body's midline, between the two lungs (the middle of the lung region's extent)."""
    cols = np.nonzero(_lung_region(label_map).any(axis=0))[0]
    if cols.size == 0:
        return (np.shape(label_map)[1] - 1) / 2
    return (cols.min() + cols.max()) / 2


def mirror_lesion(
    label_map: np.ndarray, selection: np.ndarray, keep_original: bool = True
) -> np.ndarray:
    """Mirror the selected lesion across the midline into the other lung (kept in the lung)."""
    selection = np.asarray(selection, bool)
    if not selection.any():
        return np.array(label_map, np.uint8, copy=True)
    mid = lung_midline(label_map)
    matrix = np.array([[-1.0, 0.0, 2 * mid], [0.0, 1.0, 0.0]])
    moved = _warp_selection(label_map, selection, matrix)
    removed = np.zeros_like(selection) if keep_original else selection
    return _place(label_map, removed, moved)


def _smooth_field(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage as ndi

    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (np.abs(field).max() + 1e-9)


def _elastic_remap(
    classes: np.ndarray, sigma: float, magnitude_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Move class pixels along a smooth random displacement field (nearest neighbour)."""
    import cv2

    h, w = classes.shape
    dy = _smooth_field((h, w), sigma, rng) * magnitude_px
    dx = _smooth_field((h, w), sigma, rng) * magnitude_px
    grid_y, grid_x = np.mgrid[:h, :w].astype(np.float32)
    return cv2.remap(
        classes,
        (grid_x + dx).astype(np.float32),
        (grid_y + dy).astype(np.float32),
        interpolation=cv2.INTER_NEAREST,
        borderValue=0,
    )


def deform_lesion(
    label_map: np.ndarray, selection: np.ndarray, magnitude_px: float = 6.0, seed: int = 0
) -> np.ndarray:
    """Deform the selected lesion elastically (a smooth random displacement field)."""

    selection = np.asarray(selection, bool)
    if not selection.any():
        return np.array(label_map, np.uint8, copy=True)
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(selection)
    sigma = max(4.0, 0.25 * max(np.ptp(rows) + 1, np.ptp(cols) + 1))
    classes = np.where(selection, np.asarray(label_map), 0).astype(np.uint8)
    return _place(label_map, selection, _elastic_remap(classes, sigma, magnitude_px, rng))


def procedural_lesion_shape(radius_px: float, rng: np.random.Generator) -> np.ndarray:
    """A blob: thresholded smooth noise inside a soft disc, irregular like a real opacity."""
    from scipy import ndimage as ndi

    size = int(np.ceil(2.4 * radius_px)) | 1
    yy, xx = (np.mgrid[:size, :size] - size // 2) / max(radius_px, 1)
    stretch = rng.uniform(0.6, 1.0)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) / stretch
    noise = ndi.gaussian_filter(rng.standard_normal((size, size)), max(radius_px / 3, 1))
    noise /= np.abs(noise).max() + 1e-9
    shape = (u**2 + v**2) < 1 + 0.6 * noise
    labels, n = ndi.label(shape)
    if n > 1:
        shape = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    return ndi.binary_fill_holes(shape)


@dataclasses.dataclass(frozen=True)
class LesionBank:
    """Real lesion shapes (binary masks) with their pixel spacing and class (GGO or consolidation)."""

    shapes: list[np.ndarray]
    classes: np.ndarray
    spacing_mm: float

    @classmethod
    def load(cls, path) -> LesionBank:
        with np.load(path, allow_pickle=False) as data:
            dims = data["dims"]
            bits = np.unpackbits(data["bits"])
            shapes, offset = [], 0
            for h, w in dims:
                n = int(h) * int(w)
                shapes.append(bits[offset : offset + n].reshape(int(h), int(w)).astype(bool))
                offset += n
            return cls(shapes, data["classes"].astype(np.uint8), float(data["spacing_mm"]))


def default_lesion_bank() -> LesionBank | None:
    from gan.paths import resources_dir

    path = resources_dir() / "lesion_bank" / "radiopaedia_lesions.npz"
    return LesionBank.load(path) if path.is_file() else None


def random_lesions(
    label_map: np.ndarray,
    count: int = 3,
    ggo_fraction: float = 0.7,
    target_involvement: float = 0.15,
    seed: int = 0,
    bank: LesionBank | None = None,
) -> np.ndarray:
    """Add ``count`` random lesions inside the lung, sized so that about ``target_involvement`` of
    the lung ends up involved (existing lesions count); GGO with probability ``ggo_fraction``.
    Shapes are procedural, or drawn from ``bank`` (real lesion shapes, rescaled to the size wanted)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    out = np.array(label_map, np.uint8, copy=True)
    lung = _lung_region(out)
    lung_px = int(lung.sum())
    if lung_px == 0 or count <= 0:
        return out
    existing = int((out >= GGO).sum())
    wanted = max(0.0, target_involvement * lung_px - existing)
    per_lesion = wanted / count
    candidates = np.argwhere(ndi.binary_erosion(lung, iterations=3) & (out == LUNG))
    if len(candidates) == 0 or per_lesion < 4:
        return out
    for _ in range(count):
        label = GGO if rng.random() < ggo_fraction else CONSOLIDATION
        if bank is not None and bank.shapes:
            same = np.flatnonzero(bank.classes == label)
            pick = int(rng.choice(same if same.size else np.arange(len(bank.shapes))))
            shape = bank.shapes[pick]
            # the target area is in this image's pixels, so the zoom is set by areas alone
            factor = float(
                np.clip(
                    np.sqrt(per_lesion / max(shape.sum(), 1)) * rng.uniform(0.8, 1.25), 0.2, 5.0
                )
            )
            shape = ndi.zoom(shape.astype(np.uint8), factor, order=0) > 0
            if rng.random() < 0.5:
                shape = shape[:, ::-1]
        else:
            radius = np.sqrt(per_lesion / np.pi) * rng.uniform(0.8, 1.25)
            shape = procedural_lesion_shape(max(radius, 2.0), rng)
        if not shape.any():
            continue
        r, c = candidates[rng.integers(len(candidates))]
        h, w = shape.shape
        r0, c0 = int(r) - h // 2, int(c) - w // 2
        canvas = np.zeros(out.shape, bool)
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + h, out.shape[0]), min(c0 + w, out.shape[1])
        canvas[rr0:rr1, cc0:cc1] = shape[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
        put = canvas & lung & (out == LUNG)
        out[put] = label
    return out


def augment_lesions(
    label_map: np.ndarray,
    seed: int = 0,
    max_rotation_deg: float = 10.0,
    scale_range: tuple[float, float] = (0.85, 1.15),
    elastic_px: float = 4.0,
) -> np.ndarray:
    """The paper's test-time augmentation applied to the lesion layer: a random rotation, scaling
    and elastic deformation of all lesions together about the lung's centre; the lung stays the
    patient's, so the lesions stay inside it."""
    import cv2

    rng = np.random.default_rng(seed)
    lesions = np.asarray(label_map) >= GGO
    if not lesions.any():
        return np.array(label_map, np.uint8, copy=True)
    cx, cy = _centroid(_lung_region(label_map))
    matrix = cv2.getRotationMatrix2D(
        (cx, cy), rng.uniform(-max_rotation_deg, max_rotation_deg), rng.uniform(*scale_range)
    )
    moved = _warp_selection(label_map, lesions, matrix)
    return _place(label_map, lesions, _elastic_remap(moved, 24.0, elastic_px, rng))
