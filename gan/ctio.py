"""CT slices in and out: one :class:`CTSlice` type; DICOM, NIfTI and PNG/JPG readers; windowing.

Values are either Hounsfield units (``value_kind == "hu"``: DICOM CT, NIfTI), display-windowed 8-bit
(``"uint8"``: PNG/JPG, whose window is unknown and differs between scans, so HU is never claimed),
or raw values of unknown meaning (``"raw"``: 16-bit PNG, non-CT DICOM).

Readers raise :class:`CTReadError` with a one-line message for anything they cannot read, and issue
:class:`ConversionWarning` where they converted something (RGB to gray, 16-bit kept raw, ...).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gan.fsutil import atomic_path
from gan.messages import error_line, one_line

ValueKind = Literal["hu", "uint8", "raw"]

DICOM_SUFFIXES = {".dcm", ".dicom", ".ima", ""}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


class CTReadError(ValueError):
    """A file could not be read as a CT slice; the message says why, in one line."""


class ConversionWarning(UserWarning):
    """Something in the input was converted on reading (the message says what)."""


def _checked_pixels(pixels: np.ndarray, path: Path) -> np.ndarray:
    """``pixels`` as float32, or CTReadError where there are none or some are not finite."""
    if pixels.size == 0:
        raise CTReadError(f"{path}: the image has no pixels (shape {pixels.shape})")
    if pixels.dtype.kind == "c":
        raise CTReadError(f"{path}: complex pixel values are not supported")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused just below
        values = np.asarray(pixels, np.float32)
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise CTReadError(f"{path}: {bad} pixel values are not finite numbers (NaN or infinite)")
    return values


def _imdecode(path: Path, what: str) -> np.ndarray:
    """A raster file's pixels as stored (cv2 IMREAD_UNCHANGED); CTReadError where unreadable."""
    import cv2

    try:
        data = np.fromfile(path, np.uint8)
        # a damaged header can claim a size OpenCV refuses (cv2.error), not just fail (None)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except OSError as exc:
        raise CTReadError(
            f"{path}: cannot read the file ({error_line(exc, with_type=True)})"
        ) from None
    except cv2.error:
        image = None
    if image is None:
        raise CTReadError(f"{path}: not a readable {what} (empty, truncated or unknown format)")
    return image


@dataclasses.dataclass(frozen=True)
class Window:
    """A display window by level (centre) and width, in the slice's own units."""

    level: float
    width: float

    @property
    def low(self) -> float:
        return self.level - self.width / 2

    @property
    def high(self) -> float:
        return self.level + self.width / 2


#: The paper's "HU scale [-600, 1500]", read as the usual lung window: level -600, width 1500.
LUNG_WINDOW = Window(-600.0, 1500.0)
MEDIASTINUM_WINDOW = Window(40.0, 400.0)
#: An 8-bit image is taken as already windowed: 0..255 maps linearly onto [-1, 1].
UINT8_WINDOW = Window(127.5, 255.0)


@dataclasses.dataclass
class CTSlice:
    """One axial slice.

    Attributes
    ----------
    pixels : (H, W) float32, in HU, 8-bit display values or raw values (see ``value_kind``).
    value_kind : "hu", "uint8" or "raw".
    spacing : (row, column) pixel spacing in mm, or None where the file does not say.
    source : the file it came from, if any.
    slice_index, frame : which slice of a volume / frame of a multi-frame DICOM this is.
    affine : for NIfTI sources, the 4x4 affine of the (display-oriented) volume.
    dicom : for DICOM sources, the header (pixel data removed) that a DICOM export builds on.
    """

    pixels: np.ndarray
    value_kind: ValueKind
    spacing: tuple[float, float] | None = None
    source: Path | None = None
    slice_index: int | None = None
    frame: int | None = None
    affine: np.ndarray | None = None
    dicom: Any = None
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        pixels = np.asarray(self.pixels)
        if pixels.ndim != 2:
            raise CTReadError(f"a CT slice must be 2-D, got shape {pixels.shape}")
        self.pixels = pixels.astype(np.float32, copy=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape  # type: ignore[return-value]

    @property
    def is_hu(self) -> bool:
        return self.value_kind == "hu"

    def slice_affine(self) -> np.ndarray | None:
        """For NIfTI sources: the affine of this slice alone (voxel (row, col, 0) -> world, mm)."""
        if self.affine is None:
            return None
        affine = np.array(self.affine, np.float64, copy=True)
        affine[:3, 3] += affine[:3, 2] * (self.slice_index or 0)
        return affine

    def default_window(self) -> Window:
        """The window the model input uses: the lung window for HU, identity for 8-bit."""
        if self.value_kind == "hu":
            return LUNG_WINDOW
        if self.value_kind == "uint8":
            return UINT8_WINDOW
        lo, hi = np.percentile(self.pixels, [0.5, 99.5])
        return Window(float(lo + hi) / 2, float(max(hi - lo, 1e-6)))

    def to_model_range(self, window: Window | None = None) -> np.ndarray:
        """Pixels windowed onto [-1, 1] (float32), as the generator sees them."""
        return window_to_unit(self.pixels, window or self.default_window())

    def from_model_range(self, unit: np.ndarray, window: Window | None = None) -> np.ndarray:
        """A generator's [-1, 1] image back in this slice's own units (float32)."""
        return unit_to_window(unit, window or self.default_window())

    def to_uint8(self, window: Window | None = None) -> np.ndarray:
        return unit_to_uint8(self.to_model_range(window))


# ---------------------------------------------------------------------------------- windowing


def window_to_unit(values: np.ndarray, window: Window) -> np.ndarray:
    """Map ``window.low .. window.high`` linearly onto [-1, 1], clipping outside."""
    scaled = (np.asarray(values, np.float32) - window.low) / window.width
    return np.clip(scaled * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)


def unit_to_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Inverse of :func:`window_to_unit`: [-1, 1] back to the window's units (HU for HU windows)."""
    return ((np.asarray(values, np.float32) + 1.0) / 2.0 * window.width + window.low).astype(
        np.float32
    )


def unit_to_uint8(values: np.ndarray) -> np.ndarray:
    """[-1, 1] -> 0..255 uint8 (rounded, clipped)."""
    return np.clip(np.round((np.asarray(values, np.float32) + 1.0) * 127.5), 0, 255).astype(
        np.uint8
    )


def uint8_to_unit(values: np.ndarray) -> np.ndarray:
    return window_to_unit(values, UINT8_WINDOW)


# ---------------------------------------------------------------------------------- readers


def file_kind(path: str | os.PathLike) -> str:
    """ "dicom", "nifti", "raster" or "dicom-folder", judged by name (and a folder's existence)."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "dicom-folder"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if path.suffix.lower() in RASTER_SUFFIXES:
        return "raster"
    return "dicom"


def read_slice(path: str | os.PathLike, index: int | None = None) -> CTSlice:
    """Read any supported file; ``index`` picks the frame, NIfTI slice or series slice."""
    path = Path(path)
    if not path.exists():
        raise CTReadError(f"{path}: no such file or folder")
    kind = file_kind(path)
    if kind == "nifti":
        return read_nifti_slice(path, index)
    if kind == "raster":
        return read_raster(path)
    if kind == "dicom-folder":
        files = list_dicom_series(path)
        i = 0 if index is None else index
        if not 0 <= i < len(files):
            raise CTReadError(f"{path}: slice {i} out of range (series has {len(files)} slices)")
        return read_dicom(files[i])
    return read_dicom(path, frame=index)


def read_raster(path: str | os.PathLike) -> CTSlice:
    """PNG/JPG: 8-bit gray = already windowed; RGB -> gray with a warning; 16-bit kept raw."""
    path = Path(path)
    image = _to_gray(_imdecode(path, "image file"), path)
    if image.dtype == np.uint8:
        kind: ValueKind = "uint8"
    elif image.dtype == np.uint16:
        warnings.warn(
            f"{path.name}: 16-bit image kept as raw values (no HU, no known window)",
            ConversionWarning,
            stacklevel=2,
        )
        kind = "raw"
    else:
        raise CTReadError(f"{path}: unsupported pixel type {image.dtype}")
    return CTSlice(_checked_pixels(image, path), kind, spacing=None, source=path)


def _to_gray(image: np.ndarray, path: Path) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 4:
        image = image[..., :3]
    if channels >= 3:
        if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(
            image[..., 1], image[..., 2]
        ):
            return np.ascontiguousarray(image[..., 0])
        warnings.warn(
            f"{path.name}: colour image converted to grayscale", ConversionWarning, stacklevel=3
        )
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)
    return image[..., 0]


def read_label_image(path: str | os.PathLike, index: int | None = None) -> np.ndarray:
    """A label/mask image as an integer array, exactly as stored: a PNG, or slice ``index`` of a
    NIfTI volume (display-oriented like :func:`read_nifti_slice`; default the middle slice)."""
    path = Path(path)
    if file_kind(path) == "nifti":
        return _integer_labels(read_nifti_slice(path, index).pixels, path)
    if not path.is_file():
        raise CTReadError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    image = _imdecode(path, "label image")
    if image.ndim == 3:
        colour = image[..., : min(3, image.shape[2])]  # a 4th channel is alpha, a 2nd of 2 too
        if image.shape[2] >= 3 and not all(
            np.array_equal(colour[..., 0], colour[..., c]) for c in range(1, 3)
        ):
            raise CTReadError(f"{path}: a label image must be single-channel, got a colour image")
        image = np.ascontiguousarray(image[..., 0])
    if image.size == 0:
        raise CTReadError(f"{path}: the label image has no pixels (shape {image.shape})")
    return _integer_labels(image, path) if image.dtype.kind == "f" else image


def _integer_labels(values: np.ndarray, path: Path) -> np.ndarray:
    """Float label values as int64 where they are whole numbers; CTReadError where not (a cast
    would truncate 0.5 to 0 and turn NaN into garbage)."""
    values = np.asarray(values)
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise CTReadError(f"{path}: label values must be whole numbers, the file holds fractions")
    if np.abs(values).max() >= 2**31:
        raise CTReadError(f"{path}: label values out of range (|value| >= 2**31)")
    return values.astype(np.int64)


def list_dicom_series(folder: str | os.PathLike) -> list[Path]:
    """The image files of a DICOM series folder, ordered along the patient axis."""
    import pydicom

    folder = Path(folder)
    entries = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        # pydicom parses values lazily, so a damaged header fails on access as well as on reading
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if "Rows" not in ds:
                continue
            position = getattr(ds, "ImagePositionPatient", None)
            z = float(position[2]) if position is not None and len(position) == 3 else None
            number = int(getattr(ds, "InstanceNumber", 0) or 0)
        except Exception:  # noqa: BLE001 - anything unreadable is simply not part of the series
            continue
        z = z if z is not None and np.isfinite(z) else float(number)
        entries.append((z, number, path))
    if not entries:
        raise CTReadError(f"{folder}: no DICOM images in this folder")
    entries.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in entries]


def _first_item(ds, *keywords):
    """Follow sequence keywords into their first items; None where any is missing."""
    node = ds
    for keyword in keywords:
        seq = getattr(node, keyword, None)
        if not seq:
            return None
        node = seq[0]
    return node


def _frame_group(ds, frame: int, sequence: str):
    """A functional-group item for ``frame``: per-frame first, then shared."""
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if per_frame and frame < len(per_frame):
        item = _first_item(per_frame[frame], sequence)
        if item is not None:
            return item
    shared = getattr(ds, "SharedFunctionalGroupsSequence", None)
    if shared:
        return _first_item(shared[0], sequence)
    return None


def frame_value(ds, keyword: str, frame: int, sequence: str):
    """``keyword`` of a DICOM dataset: at the top level (a classic image), else in ``sequence`` of
    frame ``frame``'s functional groups (an Enhanced multi-frame: per-frame, then shared); None
    where neither holds it."""
    value = ds.get(keyword)
    if value is None:
        item = _frame_group(ds, frame, sequence)
        value = item.get(keyword) if item is not None else None
    return value


def read_dicom(path: str | os.PathLike, frame: int | None = None) -> CTSlice:
    """One DICOM image (one frame of a multi-frame file), rescaled to HU for CT."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise CTReadError(f"{path}: not a DICOM file") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on corrupt input
        raise CTReadError(f"{path}: unreadable DICOM ({error_line(exc, with_type=True)})") from None
    try:
        return _dicom_slice(ds, path, frame)
    except CTReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom parses values lazily, so a damaged header
        # fails here, on first access, in any way (ValueError, NotImplementedError, KeyError, ...)
        raise CTReadError(
            f"{path}: damaged DICOM header ({error_line(exc, with_type=True)})"
        ) from None


def _dicom_slice(ds, path: Path, frame: int | None) -> CTSlice:
    from pydicom.pixels import pixel_array

    if "PixelData" not in ds:
        sop = getattr(ds, "SOPClassUID", None)
        what = one_line(getattr(sop, "name", None) or "unknown SOP class", 80)
        raise CTReadError(f"{path}: DICOM file holds no image ({what})")
    samples = int(getattr(ds, "SamplesPerPixel", 1))
    if samples != 1:
        raise CTReadError(
            f"{path}: colour DICOM ({one_line(ds.get('PhotometricInterpretation', '?'), 40)}); "
            "a grayscale CT is needed"
        )
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    index = 0 if frame is None else int(frame)
    if not 0 <= index < n_frames:
        raise CTReadError(f"{path}: frame {index} out of range (file has {n_frames} frames)")
    try:
        raw = pixel_array(ds, index=index) if n_frames > 1 else ds.pixel_array
    except Exception as exc:  # noqa: BLE001
        raise CTReadError(
            f"{path}: pixel data cannot be decoded ({error_line(exc, with_type=True)})"
        ) from None
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise CTReadError(f"{path}: unexpected pixel array shape {raw.shape}")

    values = raw.astype(np.float64)
    if ds.get("PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        bits = int(ds.get("BitsStored", 16))
        if int(ds.get("PixelRepresentation", 0)) == 0:
            values = (2**bits - 1) - values
        else:
            values = -values - 1
        warnings.warn(
            f"{path.name}: MONOCHROME1 inverted for display", ConversionWarning, stacklevel=3
        )

    slope, intercept = _rescale(ds, index)
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        raise CTReadError(f"{path}: rescale slope {slope} / intercept {intercept} not finite")
    values = values * slope + intercept
    modality = str(ds.get("Modality", ""))
    rescale_type = str(ds.get("RescaleType", "") or "")
    kind: ValueKind = "hu" if modality == "CT" or rescale_type.upper() == "HU" else "raw"
    if kind == "raw":
        warnings.warn(
            f"{path.name}: modality {one_line(modality, 40) or 'unknown'} is not CT; values kept raw (no HU)",
            ConversionWarning,
            stacklevel=3,
        )

    spacing = _valid_spacing(_dicom_spacing(ds, index), path)
    header = ds.copy()
    if "PixelData" in header:
        del header.PixelData
    return CTSlice(
        _checked_pixels(values, path),
        kind,
        spacing=spacing,
        source=path,
        frame=index if n_frames > 1 else None,
        dicom=header,
        metadata={"n_frames": n_frames, "modality": modality},
    )


def _rescale(ds, frame: int) -> tuple[float, float]:
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    item = _frame_group(ds, frame, "PixelValueTransformationSequence")
    if item is not None:
        return float(item.get("RescaleSlope", 1) or 1), float(item.get("RescaleIntercept", 0) or 0)
    return 1.0, 0.0


def _dicom_spacing(ds, frame: int) -> tuple[float, float] | None:
    spacing = frame_value(ds, "PixelSpacing", frame, "PixelMeasuresSequence")
    if spacing is None or len(spacing) != 2:
        return None
    return float(spacing[0]), float(spacing[1])


def _valid_spacing(spacing, path: Path) -> tuple[float, float] | None:
    """``spacing`` where both are positive finite mm; else None (unknown), with a warning."""
    if spacing is None or all(np.isfinite(v) and v > 0 for v in spacing):
        return spacing
    warnings.warn(
        f"{path.name}: pixel spacing {spacing} is not a positive size; spacing taken as unknown",
        ConversionWarning,
        stacklevel=4,
    )
    return None


def _display_volume(path: Path):
    """Load a NIfTI volume reoriented for radiological axial display.

    Returns ``(volume, spacing, affine)``, volume indexed ``[row, column, slice]`` with anterior at
    the top, the patient's right on the image's left, slices running foot to head.
    """
    import nibabel as nib

    try:
        image = nib.load(str(path))
        canonical = nib.as_closest_canonical(image)  # RAS+: x to the right, y anterior, z up
        data = np.asanyarray(canonical.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds on corrupt input
        raise CTReadError(f"{path}: unreadable NIfTI ({error_line(exc, with_type=True)})") from None
    if data.dtype.kind not in "biuf":
        raise CTReadError(f"{path}: voxel type {data.dtype} is not supported (need real numbers)")
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise CTReadError(f"{path}: expected a 2-D or 3-D volume, got shape {data.shape}")
    if data.size == 0:
        raise CTReadError(f"{path}: the volume has no voxels (shape {data.shape})")
    zooms = tuple(float(z) for z in canonical.header.get_zooms()[:3])
    if len(zooms) < 2 or not all(np.isfinite(z) and z > 0 for z in zooms):
        raise CTReadError(f"{path}: voxel size {zooms} in the header is not a positive size")
    if not np.all(np.isfinite(canonical.affine)):
        raise CTReadError(f"{path}: the header's affine holds non-finite numbers")
    # (x, y, z) -> (row = y descending [anterior first], col = x descending [patient right first], z)
    volume = np.transpose(data, (1, 0, 2))[::-1, ::-1, :]
    nx, ny = data.shape[0], data.shape[1]
    # voxel (row, col, k) of the display volume = canonical voxel (nx-1-col, ny-1-row, k)
    to_canonical = np.array(
        [[0, -1, 0, nx - 1], [-1, 0, 0, ny - 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64
    )
    affine = canonical.affine @ to_canonical
    return volume, (zooms[1], zooms[0]), affine


def nifti_num_slices(path: str | os.PathLike) -> int:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        if image.ndim < 3:
            return 1
        ornt = nib.orientations.io_orientation(image.affine)
        axes = np.where(ornt[:, 0] == 2)[0]
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds on corrupt input
        raise CTReadError(f"{path}: unreadable NIfTI ({error_line(exc, with_type=True)})") from None
    if axes.size == 0:  # a singular affine: no voxel axis runs foot to head
        raise CTReadError(f"{path}: the header's affine has no axial (foot-to-head) axis")
    return int(image.shape[int(axes[0])])


def read_nifti_slice(path: str | os.PathLike, index: int | None = None) -> CTSlice:
    """One axial slice of a NIfTI volume (index counts foot to head; default: the middle one)."""
    path = Path(path)
    volume, spacing, affine = _display_volume(path)
    depth = volume.shape[2]
    i = depth // 2 if index is None else int(index)
    if not 0 <= i < depth:
        raise CTReadError(f"{path}: slice {i} out of range (volume has {depth} slices)")
    pixels = _checked_pixels(np.ascontiguousarray(volume[:, :, i]), path)
    # NIfTI CT volumes store HU (scl_slope/inter applied by nibabel); an 8-bit volume is display data.
    kind: ValueKind = "uint8" if volume.dtype == np.uint8 else "hu"
    return CTSlice(
        pixels,
        kind,
        spacing=spacing,
        source=path,
        slice_index=i,
        affine=affine,
        metadata={"n_slices": depth},
    )


def read_nifti_volume(
    path: str | os.PathLike,
) -> tuple[np.ndarray, tuple[float, float], np.ndarray]:
    """The whole volume in display orientation: ``(volume[row, col, slice], spacing, affine)``."""
    volume, spacing, affine = _display_volume(Path(path))
    return np.ascontiguousarray(volume), spacing, affine


# ---------------------------------------------------------------------------------- writers


def write_png(
    path: str | os.PathLike, image: np.ndarray, text: dict[str, str] | None = None
) -> None:
    """Write an 8/16-bit gray or 8-bit RGB image as PNG, atomically. ``text`` goes into tEXt chunks.

    Pure numpy + zlib, so training on a bare GPU box (torch + numpy only) can write sample grids.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(image, text))


def encode_png(image: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """PNG bytes of (H, W) uint8/uint16 or (H, W, 3) uint8 RGB pixels (filter 0, zlib level 6)."""
    import struct
    import zlib

    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG needs uint8 or uint16 pixels, got {image.dtype}")
    if image.ndim == 2:
        colour_type = 0
    elif image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        colour_type = 2
    else:
        raise ValueError(f"PNG writer takes (H, W) gray or (H, W, 3) uint8 RGB, got {image.shape}")
    height, width = image.shape[:2]
    bit_depth = 16 if image.dtype == np.uint16 else 8
    rows = np.ascontiguousarray(image.astype(image.dtype.newbyteorder(">"), copy=False))
    raw = rows.reshape(height, -1).view(np.uint8)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), raw], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header)]
    for key, value in (text or {}).items():
        parts.append(
            chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1", "replace"))
        )
    parts += [chunk(b"IDAT", zlib.compress(scanlines, 6)), chunk(b"IEND", b"")]
    return b"".join(parts)


def read_png_text(path: str | os.PathLike) -> dict[str, str]:
    """The tEXt chunks of a PNG file (keyword -> text); what :func:`encode_png` writes."""
    import struct

    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise CTReadError(f"{path}: not a PNG file")
    text, pos = {}, 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt" and b"\x00" in body:
            key, value = body.split(b"\x00", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IEND":
            break
        pos += 12 + length
    return text


def write_nifti(
    path: str | os.PathLike,
    array: np.ndarray,
    affine: np.ndarray | None = None,
    description: str = "",
) -> None:
    """Write a 2-D slice or 3-D volume (display orientation, as the readers return) as NIfTI."""
    import nibabel as nib

    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    image = nib.Nifti1Image(array, np.eye(4) if affine is None else np.asarray(affine, np.float64))
    if description:
        image.header["descrip"] = description.encode("ascii", "replace")[:79]
    suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
    with atomic_path(path, suffix=suffix) as tmp:
        nib.save(image, str(tmp))
