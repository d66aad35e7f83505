"""Label conventions, colours and one-hot encoding.

Two conventions exist and are never mixed:

* a **label map** (ours): 0 background, 1 lung, 2 GGO, 3 consolidation. The generator, the app,
  ``synth --labels`` and every export use it.
* a **lesion mask** (MedSeg's): 0 background, 1 GGO, 2 consolidation, no lung label. The
  ``lesions/`` files of the data folders use it.

:func:`label_map_from_lesions` is the one conversion from lesion mask + lung mask to label map.
"""

from __future__ import annotations

import numpy as np

BACKGROUND, LUNG, GGO, CONSOLIDATION = 0, 1, 2, 3
NUM_CLASSES = 4
CLASS_NAMES = ("background", "lung", "GGO", "consolidation")

#: The paper's colours (RGB): lung red, GGO blue, consolidation green.
CLASS_COLOURS = {
    LUNG: (255, 0, 0),
    GGO: (0, 0, 255),
    CONSOLIDATION: (0, 255, 0),
}

LESION_GGO, LESION_CONSOLIDATION = 1, 2

LABEL_MAP_CONVENTION = {
    "name": "ct-lesion-studio label map",
    "values": {"0": "background", "1": "lung", "2": "GGO", "3": "consolidation"},
}
LESION_MASK_CONVENTION = {
    "name": "MedSeg lesion mask",
    "values": {"0": "background", "1": "GGO", "2": "consolidation"},
}


def convention_text(convention: dict) -> str:
    """A convention's values in one line: ``0 background, 1 lung, ...``."""
    return ", ".join(f"{k} {v}" for k, v in convention["values"].items())


#: :data:`LABEL_MAP_CONVENTION` in one line, for PNG text, NIfTI descriptions and CSV columns.
LABEL_MAP_CONVENTION_TEXT = convention_text(LABEL_MAP_CONVENTION)


class LabelFormatError(ValueError):
    """A label file holds values that do not fit the convention it is read as."""


def _check_values(array: np.ndarray, allowed: int, what: str, convention: dict) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise LabelFormatError(f"{what} must be a 2-D array, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise LabelFormatError(
                f"{what} holds non-integer values; expected integers 0..{allowed - 1}"
            )
    elif array.dtype.kind not in "uib":
        raise LabelFormatError(f"{what} has dtype {array.dtype}; expected integers")
    found = np.unique(array)
    bad = found[(found < 0) | (found >= allowed)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in found[:12]) + (" ..." if found.size > 12 else "")
        legend = convention_text(convention)
        hint = ""
        if set(int(v) for v in found) <= {0, 255}:
            hint = " This looks like a binary 0/255 mask: import it as a binary mask and pick its class."
        raise LabelFormatError(
            f"{what} holds values {{{shown}}}; expected the {convention['name']} convention "
            f"({legend}).{hint}"
        )
    return array.astype(np.uint8, copy=False)


def validate_label_map(array: np.ndarray, what: str = "label map") -> np.ndarray:
    """Return ``array`` as uint8 after checking it holds only 0..3; raise LabelFormatError otherwise."""
    return _check_values(array, NUM_CLASSES, what, LABEL_MAP_CONVENTION)


def validate_lesion_mask(array: np.ndarray, what: str = "lesion mask") -> np.ndarray:
    """Return ``array`` as uint8 after checking it holds only 0..2 (MedSeg convention)."""
    return _check_values(array, 3, what, LESION_MASK_CONVENTION)


def binary_mask_from_0_255(array: np.ndarray, what: str = "binary mask") -> np.ndarray:
    """Turn a 0/255 (or 0/1) mask into bool; raise LabelFormatError for anything else."""
    array = np.asarray(array)
    found = set(int(v) for v in np.unique(array))
    if not found <= {0, 255} and not found <= {0, 1}:
        raise LabelFormatError(
            f"{what} holds values {sorted(found)[:12]}; expected a binary mask (0/255 or 0/1)"
        )
    return array > 0


def label_map_from_lesions(lesion_mask: np.ndarray, lung_mask: np.ndarray) -> np.ndarray:
    """Combine a MedSeg lesion mask (0/1/2) and a lung mask into a label map (0/1/2/3).

    Lesion pixels are lung by definition, so they are labelled even where ``lung_mask`` misses them.
    """
    lesion_mask = validate_lesion_mask(lesion_mask)
    lung_mask = np.asarray(lung_mask, dtype=bool)
    if lung_mask.shape != lesion_mask.shape:
        raise LabelFormatError(
            f"lung mask shape {lung_mask.shape} does not match lesion mask shape {lesion_mask.shape}"
        )
    out = np.zeros(lesion_mask.shape, np.uint8)
    out[lung_mask | (lesion_mask > 0)] = LUNG
    out[lesion_mask == LESION_GGO] = GGO
    out[lesion_mask == LESION_CONSOLIDATION] = CONSOLIDATION
    return out


def lesion_mask_from_label_map(label_map: np.ndarray) -> np.ndarray:
    """The MedSeg lesion mask (0/1/2) of a label map; the lung label is dropped."""
    label_map = validate_label_map(label_map)
    out = np.zeros(label_map.shape, np.uint8)
    out[label_map == GGO] = LESION_GGO
    out[label_map == CONSOLIDATION] = LESION_CONSOLIDATION
    return out


def lung_region(label_map: np.ndarray) -> np.ndarray:
    """Bool mask of everything inside the lung (lung, GGO and consolidation)."""
    return np.asarray(label_map) > BACKGROUND


def one_hot(label_map: np.ndarray) -> np.ndarray:
    """(H, W) label map -> (NUM_CLASSES, H, W) float32 one-hot."""
    label_map = validate_label_map(label_map)
    return (np.arange(NUM_CLASSES, dtype=np.uint8)[:, None, None] == label_map[None]).astype(
        np.float32
    )


def one_hot_torch(labels):
    """(B, H, W) integer tensor -> (B, NUM_CLASSES, H, W) float tensor."""
    import torch

    if labels.dtype.is_floating_point:
        raise TypeError("one_hot_torch expects an integer label tensor")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES):
        raise LabelFormatError(
            f"label tensor holds values outside 0..{NUM_CLASSES - 1} "
            f"(min {int(labels.min())}, max {int(labels.max())})"
        )
    return torch.nn.functional.one_hot(labels.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()


def colorize(label_map: np.ndarray) -> np.ndarray:
    """(H, W) label map -> (H, W, 3) uint8 RGB in the paper's colours (background black)."""
    label_map = validate_label_map(label_map)
    lut = np.zeros((NUM_CLASSES, 3), np.uint8)
    for label, rgb in CLASS_COLOURS.items():
        lut[label] = rgb
    return lut[label_map]


def overlay(gray_uint8: np.ndarray, label_map: np.ndarray, opacity: float = 0.4) -> np.ndarray:
    """Blend the coloured labels over an 8-bit grayscale image; returns (H, W, 3) uint8 RGB."""
    gray = np.asarray(gray_uint8, np.uint8)
    if gray.shape != np.shape(label_map):
        raise LabelFormatError(f"image shape {gray.shape} != label map shape {np.shape(label_map)}")
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    colours = colorize(label_map).astype(np.float32)
    painted = (np.asarray(label_map) > 0)[..., None]
    out = np.where(painted, (1 - opacity) * rgb + opacity * colours, rgb)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
