"""Importing labels drawn elsewhere onto the open image (no Qt).

Conventions a file may be in:

* ``label_map``: ours, 0 background, 1 lung, 2 GGO, 3 consolidation (PNG or NIfTI);
* ``lesion_mask``: MedSeg's, 0 background, 1 GGO, 2 consolidation; the lung is derived from the CT;
* ``binary``: 0/255 (or 0/1), one class the user picks; painted over the current labels;
* ``dicom_seg``: a DICOM Segmentation (highdicom); segments are mapped to classes by their labels.

:func:`guess_convention` suggests one from the values found; :func:`build_label_map` applies the
mapping, so the app can preview it before anything changes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from gan.ctio import CTSlice, file_kind, read_label_image
from gan.labels import (
    CONSOLIDATION,
    GGO,
    LABEL_MAP_CONVENTION_TEXT,
    LESION_MASK_CONVENTION,
    LUNG,
    LabelFormatError,
    binary_mask_from_0_255,
    convention_text,
    validate_label_map,
    validate_lesion_mask,
)
from gan.messages import error_line

CONVENTIONS = {
    "label_map": f"Label map ({LABEL_MAP_CONVENTION_TEXT})",
    "lesion_mask": f"MedSeg lesion mask ({convention_text(LESION_MASK_CONVENTION)}; lung derived)",
    "binary": "Binary mask (0/255 or 0/1) of one class",
    "dicom_seg": "DICOM Segmentation (segments mapped by their labels)",
}


@dataclasses.dataclass
class LabelFile:
    path: Path
    values: np.ndarray  # the raw array (or, for DICOM SEG, our label map already)
    found: list[int]
    convention: str


def read_for_import(path: str | Path, slice_index: int | None = None) -> LabelFile:
    """Read a label file; for a NIfTI volume, slice ``slice_index`` (that of the open image)."""
    path = Path(path)
    if not path.exists():
        raise LabelFormatError(f"{path}: no such file")
    if file_kind(path) == "dicom":
        return LabelFile(path, read_dicom_seg(path), [], "dicom_seg")
    values = np.asarray(read_label_image(path, slice_index))
    found = [int(v) for v in np.unique(values)[:16]]
    return LabelFile(path, values, found, guess_convention(found))


def guess_convention(found: list[int]) -> str:
    values = set(found)
    if values <= {0, 255} or values <= {0, 1}:
        return "binary"  # 0/255 or 0/1: one class, which the user picks
    return "lesion_mask" if values <= {0, 1, 2} else "label_map"


def build_label_map(
    file: LabelFile,
    convention: str,
    ct: CTSlice,
    current: np.ndarray,
    binary_class: int = GGO,
) -> np.ndarray:
    """The label map the import would produce for ``ct`` (nothing is changed here)."""
    from gan.lung import labels_for_slice

    values = file.values
    if values.shape != ct.shape:
        raise LabelFormatError(
            f"{file.path.name}: labels are {values.shape[1]}x{values.shape[0]}, "
            f"the image is {ct.shape[1]}x{ct.shape[0]}"
        )
    if convention in ("label_map", "dicom_seg"):
        return validate_label_map(values, what=file.path.name).copy()
    if convention == "lesion_mask":
        lesions = validate_lesion_mask(values, what=file.path.name)
        return labels_for_slice(ct, lesions).label_map
    if convention == "binary":
        mask = binary_mask_from_0_255(values, what=file.path.name)
        out = np.array(current, np.uint8, copy=True)
        if binary_class == LUNG:
            out[mask & (out == 0)] = LUNG
        else:
            out[mask] = binary_class
        return out
    raise LabelFormatError(f"unknown label convention {convention!r}")


SEGMENT_KEYWORDS = (
    (("ground", "glass", "ggo"), GGO),
    (("consolidation",), CONSOLIDATION),
    (("lung",), LUNG),
)


def segment_class(label: str, property_type: str = "") -> int | None:
    text = f"{label} {property_type}".lower()
    for keywords, value in SEGMENT_KEYWORDS:
        if any(k in text for k in keywords):
            return value
    return None


def read_dicom_seg(path: Path) -> np.ndarray:
    """A single-slice DICOM SEG as our label map: lung first, then GGO, then consolidation on top."""
    import highdicom as hd
    import pydicom

    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:  # noqa: BLE001 - pydicom/highdicom raise many kinds on foreign files
        kind = ""
        try:
            kind = str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality", ""))
        except Exception:  # noqa: BLE001
            pass
        what = f"a {kind} file" if kind else "unreadable"
        raise LabelFormatError(
            f"{path.name}: not a DICOM Segmentation ({what}: {error_line(exc, 100)})"
        ) from None
    try:
        return _seg_label_map(seg, path)
    except LabelFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom parses values lazily, so a damaged file
        # fails here, on first access, in any way (AttributeError, NotImplementedError, ...)
        raise LabelFormatError(
            f"{path.name}: damaged DICOM Segmentation ({error_line(exc, 100, with_type=True)})"
        ) from None


def _frame_segment(seg, frame: int) -> int:
    """The segment number of ``frame``: from its per-frame functional group, else the shared one
    (where a single-segment SEG keeps it, as highdicom writes it)."""
    per_frame = seg.get("PerFrameFunctionalGroupsSequence") or []
    item = per_frame[frame] if frame < len(per_frame) else None
    if item is None or "SegmentIdentificationSequence" not in item:
        item = seg.SharedFunctionalGroupsSequence[0]
    return int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)


def _seg_label_map(seg, path: Path) -> np.ndarray:
    rows, cols = int(seg.Rows), int(seg.Columns)
    out = np.zeros((rows, cols), np.uint8)
    mapped = {}
    for description in seg.SegmentSequence:
        number = int(description.SegmentNumber)
        prop = (
            description.SegmentedPropertyTypeCodeSequence[0].CodeMeaning
            if "SegmentedPropertyTypeCodeSequence" in description
            else ""
        )
        value = segment_class(str(description.SegmentLabel), str(prop))
        if value is not None:
            mapped[number] = value
    if not mapped:
        raise LabelFormatError(
            f"{path.name}: no segment is labelled lung, ground-glass or consolidation"
        )
    frames = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    if frames.shape[1:] != out.shape:
        raise LabelFormatError(
            f"{path.name}: frames of {frames.shape[1:]} do not match Rows x Columns {out.shape}"
        )
    if frames.shape[0] != len(seg.SegmentSequence):
        raise LabelFormatError(
            f"{path.name}: only single-slice segmentations (one frame per segment) are supported"
        )
    numbers = [_frame_segment(seg, i) for i in range(frames.shape[0])]
    for value in (LUNG, GGO, CONSOLIDATION):
        for frame, number in zip(frames, numbers, strict=True):
            if mapped.get(number) == value:
                out[frame > 0] = value
    return out
