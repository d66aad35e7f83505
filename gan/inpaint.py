"""Context-aware inpainting: regenerate only a region of a real slice (the ``inpaint`` mode).

The ``inpaint`` generator's input is the one-hot label map ⊕ the real image with the region blanked
⊕ the region's mask (:func:`inpaint_condition`); its output is used inside the mask only
(:func:`paste`), so everything outside the region stays the patient's own pixels.

Training draws masks shaped like the edits a radiologist makes (:func:`random_edit_mask`): lesion-
shaped blobs, the real lesions dilated, part of one lung (a "lobe") and the whole lung. In the app
the region is what the user changed, dilated by a margin (:func:`changed_region`). For speed the
generator runs on a window around the region only (:func:`inpaint_window`,
``Synthesizer.inpaint_region``).

Torch and numpy only, so that training runs on a machine with nothing else.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.nn import functional as F

from gan.labels import GGO, NUM_CLASSES

#: Kinds of training mask and how often each is drawn.
MASK_KINDS: dict[str, float] = {"blob": 0.35, "lesions": 0.30, "lobe": 0.20, "lung": 0.15}
#: Margin around a changed region that is regenerated too, so a lesion's surroundings can adapt.
DEFAULT_MARGIN_MM = 5.0


def inpaint_condition(
    one_hot: torch.Tensor, image: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The generator input: (B, 4, S, S) one-hot ⊕ (B, 1, S, S) image in [-1, 1] with the masked
    region set to 0 ⊕ (B, 1, S, S) mask in {0, 1} -> (B, 6, S, S)."""
    mask = mask.to(image.dtype)
    return torch.cat([one_hot, image * (1.0 - mask), mask], dim=1)


def paste(generated, real, mask):
    """Generated pixels inside ``mask``, real ones outside (tensors or arrays of one shape)."""
    if isinstance(generated, torch.Tensor):
        mask = mask.to(generated.dtype)
        return mask * generated + (1.0 - mask) * real
    mask = np.asarray(mask, np.float32)
    return mask * np.asarray(generated, np.float32) + (1.0 - mask) * np.asarray(real, np.float32)


# ------------------------------------------------------------------------------- morphology
def dilate(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Binary dilation of an (H, W) mask by about a disc of ``radius_px`` (0 or less: unchanged).

    ``radius_px`` 3x3 steps alternating a square and a cross: an octagon, within 8 % of a disc, at
    a millisecond per step (a direct disc convolution costs the radius squared)."""
    mask = np.asarray(mask, bool)
    r = int(round(radius_px))
    if r <= 0 or not mask.any():
        return mask.copy()
    # work on the mask's bounding box grown by the radius: an edit is small, the slice is not
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    r0, r1 = max(rows[0] - r, 0), min(rows[-1] + r + 1, mask.shape[0])
    c0, c1 = max(cols[0] - r, 0), min(cols[-1] + r + 1, mask.shape[1])
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = _dilate_full(mask[r0:r1, c0:c1], r)
    return out


def _dilate_full(mask: np.ndarray, r: int) -> np.ndarray:
    x = torch.from_numpy(mask.astype(np.float32))[None, None]
    for step in range(r):
        if step % 2 == 0:
            x = F.max_pool2d(x, 3, stride=1, padding=1)
        else:  # the cross: the max of a vertical and a horizontal 3-pixel line
            x = torch.maximum(
                F.max_pool2d(x, (3, 1), stride=1, padding=(1, 0)),
                F.max_pool2d(x, (1, 3), stride=1, padding=(0, 1)),
            )
    return (x[0, 0] > 0.5).numpy()


def erode(mask: np.ndarray, radius_px: float) -> np.ndarray:
    return ~dilate(~np.asarray(mask, bool), radius_px)


# ------------------------------------------------------------------------------- masks
def _blob(shape: tuple[int, int], centre, radius: float, rng: np.random.Generator) -> np.ndarray:
    """An irregular blob (smooth noise inside a stretched, rotated disc), like a drawn lesion."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    stretch = rng.uniform(0.55, 1.0)
    dy, dx = (yy - centre[0]) / radius, (xx - centre[1]) / radius
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / stretch
    coarse = torch.from_numpy(rng.standard_normal((1, 1, 6, 6)).astype(np.float32))
    # noise on a 6x6 grid over the blob's box, smooth once upsampled
    box = int(np.ceil(2.6 * radius))
    noise = F.interpolate(coarse, size=(box, box), mode="bicubic", align_corners=False)[0, 0]
    noise = noise / (noise.abs().max() + 1e-6)
    field = np.zeros(shape, np.float32)
    r0, c0 = int(centre[0]) - box // 2, int(centre[1]) - box // 2
    rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r0 + box, h), min(c0 + box, w)
    if rr1 > rr0 and cc1 > cc0:
        field[rr0:rr1, cc0:cc1] = noise.numpy()[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
    return (u**2 + v**2) < 1.0 + 0.5 * field


def random_edit_mask(
    label_map: np.ndarray, rng: np.random.Generator, kind: str | None = None
) -> np.ndarray:
    """A training mask (H, W) bool shaped like an edit on this label map.

    ``kind`` (default: drawn with :data:`MASK_KINDS`' odds): ``blob`` 1-3 lesion-like blobs in the
    lung; ``lesions`` the real lesions dilated by 3-15 px (a blob where there are none); ``lobe`` one
    lung cut by an oblique line, the front or back part; ``lung`` the whole lung dilated by 2-6 px.
    Sizes are in pixels of a 512^2 slice and scale with the map's size.
    """
    label_map = np.asarray(label_map)
    h, w = label_map.shape
    scale = h / 512.0
    lung = label_map > 0
    if kind is None:
        names = list(MASK_KINDS)
        p = np.array([MASK_KINDS[n] for n in names])
        kind = names[rng.choice(len(names), p=p / p.sum())]
    if kind == "lesions":
        lesions = label_map >= GGO
        if lesions.any():
            return dilate(lesions, rng.uniform(3, 15) * scale)
        kind = "blob"
    if kind in ("lobe", "lung") and lung.sum() < 50 * scale * scale:
        kind = "blob"
    if kind == "lung":
        return dilate(lung, rng.uniform(2, 6) * scale)
    if kind == "lobe":
        cols = np.nonzero(lung)[1]
        midline = float(np.median(cols))
        yy, xx = np.mgrid[:h, :w]
        side = lung & ((xx < midline) if rng.random() < 0.5 else (xx >= midline))
        if side.sum() < 50 * scale * scale:
            side = lung
        rows, cols = np.nonzero(side)
        cut_row = np.quantile(rows, rng.uniform(0.35, 0.65))
        slope = rng.uniform(-0.6, 0.6)
        line = cut_row + slope * (xx - cols.mean())
        part = side & ((yy < line) if rng.random() < 0.5 else (yy >= line))
        return dilate(part if part.any() else side, 2 * scale)
    if kind != "blob":
        raise ValueError(f"unknown mask kind {kind!r}; one of {', '.join(MASK_KINDS)}")
    where = np.argwhere(lung) if lung.any() else np.argwhere(np.ones_like(lung))
    mask = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 4))):
        centre = where[rng.integers(len(where))]
        mask |= _blob((h, w), centre, rng.uniform(10, 55) * scale, rng)
    return mask


def changed_region(before: np.ndarray, after: np.ndarray, margin_px: float) -> np.ndarray:
    """Pixels whose label differs between two label maps, dilated by ``margin_px``."""
    changed = np.asarray(before) != np.asarray(after)
    return dilate(changed, margin_px)


def lesion_region(label_map: np.ndarray, margin_px: float) -> np.ndarray:
    """The lesions (GGO and consolidation) of a label map dilated by ``margin_px``: the default
    region to regenerate where no mask is given."""
    return dilate(np.asarray(label_map) >= GGO, margin_px)


def margin_px(
    spacing_mm: tuple[float, float] | None, margin_mm: float = DEFAULT_MARGIN_MM
) -> float:
    """A margin in millimetres as pixels (0.84 mm/px where the spacing is unknown)."""
    from gan.lesions import ASSUMED_SPACING_MM

    pixel = float(np.mean(spacing_mm)) if spacing_mm else ASSUMED_SPACING_MM
    return margin_mm / pixel


# ------------------------------------------------------------------------------- crop window
#: Context around the region's bounding box that a crop-window inpainting gives the generator, in
#: model pixels (0.84 mm at 512^2). The rule (benchmarks/inpaint_window.py, docs/benchmarks.md):
#: the smallest measured margin whose masked PSNR against whole-slice inpainting, on the test
#: split's seeded masks with the slice's statistics, has a mean of at least WINDOW_TOLERANCE_DB and
#: a 10th percentile of at least WINDOW_TAIL_DB, and whose C2ST stays within one SD of the whole
#: slice's. Measured: 16 px 34.5 / 27.4 dB, 32 px 37.7 / 31.3 dB, 48 px 39.9 / 32.3 dB.
DEFAULT_WINDOW_MARGIN_PX = 48
#: mean masked PSNR (dB, intensities in [0, 1]) of the window's result against the whole slice's
WINDOW_TOLERANCE_DB = 35.0
#: ... and the 10th percentile over the test images (a mean hides the worst edits)
WINDOW_TAIL_DB = 32.0
#: A window covering more than this fraction of the slice is not worth its deviation: the whole
#: slice is inpainted instead. The rule: the fraction at which a window costs 0.8 x the whole
#: slice (interpolated; 0.74 to 0.80 in three runs, 2 threads, bf16), rounded down.
MAX_WINDOW_FRACTION = 0.75


@dataclasses.dataclass(frozen=True)
class Window:
    """A rectangle of the slice, in pixels: rows ``top:top + height``, columns ``left:left + width``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def fraction_of(self, shape: tuple[int, int]) -> float:
        """The window's share of a slice of ``shape``'s area."""
        return self.height * self.width / float(shape[0] * shape[1])


def _window_side(lo: int, hi: int, margin: int, multiple: int, length: int) -> tuple[int, int]:
    """(start, side) along one axis: [lo, hi) plus ``margin`` both ways, with the start and the
    side on the ``multiple`` grid (so that the generator's stride-2 layers sample the pixels they
    sample on the whole slice), clipped to [0, length)."""
    start = max(lo - margin, 0) // multiple * multiple
    end = -(-min(hi + margin, length) // multiple) * multiple
    end = min(end, length - length % multiple)
    return start, end - start


def inpaint_window(
    mask: np.ndarray,
    margin_px: int = DEFAULT_WINDOW_MARGIN_PX,
    multiple: int = 16,
    max_fraction: float = MAX_WINDOW_FRACTION,
) -> Window | None:
    """The window a crop-window inpainting runs the generator on, or None for the whole slice.

    The window is the bounding box of ``mask`` (H, W) grown by ``margin_px`` on every side, each
    side then grown to a multiple of ``multiple`` (the sizes the generator accepts: 2 x 2^n_downsample)
    around the box's centre and moved inside the slice (clipped at its edges and corners). None
    where the mask is empty, where the window's area is more than ``max_fraction`` of the slice
    (the whole slice is then as fast and exact), or where the box plus margin cannot fit in a
    window of accepted size inside the slice."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    if margin_px < 0 or multiple < 1:
        raise ValueError(f"margin_px must be >= 0 and multiple >= 1, not {margin_px}, {multiple}")
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(rows):
        return None
    height, width = mask.shape
    margin = int(np.ceil(margin_px))
    top, h = _window_side(int(rows[0]), int(rows[-1]) + 1, margin, multiple, height)
    left, w = _window_side(int(cols[0]), int(cols[-1]) + 1, margin, multiple, width)
    if h < rows[-1] + 1 - rows[0] or w < cols[-1] + 1 - cols[0] or h <= 0 or w <= 0:
        return None  # a slice not a multiple of the accepted size, too small for the region
    window = Window(top, left, h, w)
    return None if window.fraction_of(mask.shape) > max_fraction else window


# ------------------------------------------------------------------------------- seam score
def boundary_band(mask: np.ndarray, width_px: int = 3) -> np.ndarray:
    """Pixels within ``width_px`` of the mask's boundary, on either side."""
    mask = np.asarray(mask, bool)
    return dilate(mask, width_px) & ~erode(mask, width_px)


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Central-difference gradient magnitude of an (H, W) image."""
    gy, gx = np.gradient(np.asarray(image, np.float64))
    return np.hypot(gy, gx)


def seam_score(image: np.ndarray, real: np.ndarray, mask: np.ndarray, width_px: int = 3) -> float:
    """Mean gradient magnitude in a band along the mask's boundary in ``image``, relative to the
    same band in ``real``: 1 is as smooth as the real slice there, above 1 is a visible seam.
    NaN where the mask has no boundary."""
    band = boundary_band(mask, width_px)
    if not band.any():
        return float("nan")
    reference = float(gradient_magnitude(real)[band].mean())
    return float(gradient_magnitude(image)[band].mean()) / max(reference, 1e-6)


__all__ = [
    "DEFAULT_MARGIN_MM",
    "DEFAULT_WINDOW_MARGIN_PX",
    "MASK_KINDS",
    "MAX_WINDOW_FRACTION",
    "NUM_CLASSES",
    "WINDOW_TAIL_DB",
    "WINDOW_TOLERANCE_DB",
    "Window",
    "boundary_band",
    "changed_region",
    "dilate",
    "erode",
    "inpaint_condition",
    "inpaint_window",
    "lesion_region",
    "margin_px",
    "paste",
    "random_edit_mask",
    "seam_score",
]
