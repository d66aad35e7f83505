"""What every fuzz test checks, and the file builders they share.

The contract (issue 20): a reader given any file ends in success or in ONE clear error, an
exception of the project's own type for that reader (the types the app's and the CLI's open paths
turn into a one-line message), whose message is a single line naming the file. Anything else (a
KeyError, an AttributeError, a multi-line message) is a traceback or a garbled dialog for the user.
"""

from __future__ import annotations

import collections
import math
import struct
import warnings
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Reader calls per property, and how many of them succeeded (the rest ended in a clear error),
#: printed at the end of the session (tests/fuzz/conftest.py).
CASES: collections.Counter[str] = collections.Counter()
SUCCEEDED: collections.Counter[str] = collections.Counter()

#: Shared settings: a fixed derivation of each test's examples (CI sees the same cases on every
#: run), no example database written into the checkout, and a per-example deadline that turns a
#: reader that loops (or decodes for ever) into a failure naming the input.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=5),
    print_blob=False,
    # the session's temporary folders are reused by every example on purpose (files are rewritten)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def fuzz(max_examples: int) -> settings:
    return settings(FUZZ, max_examples=max_examples)


def outcome(name: str, call, path: Path, allowed: tuple[type[BaseException], ...]):
    """Run ``call()``; return its result, or None where it raised one of ``allowed`` with a clear
    message. Anything else fails the test, saying what came out."""
    CASES[name] += 1
    try:
        with warnings.catch_warnings():
            # ConversionWarning and library notes are the reader telling the user what it did
            warnings.simplefilter("ignore")
            result = call()
        SUCCEEDED[name] += 1
        return result
    except allowed as exc:
        message = str(exc)
        assert message, f"{type(exc).__name__} without a message for {path.name}"
        assert "\n" not in message and "\r" not in message, f"message of several lines: {message!r}"
        assert message.isprintable(), f"message with control characters: {message!r}"
        assert path.name in message, f"message does not name the file {path.name}: {message!r}"
        assert len(message) <= 500, f"message of {len(message)} characters: {message[:200]!r}..."
        return None
    except Exception as exc:  # noqa: BLE001 - the point: report what escaped, as a failure
        raise AssertionError(
            f"{path.name}: {type(exc).__name__} escaped (not one of "
            f"{[t.__name__ for t in allowed]}): {exc!r}"[:800]
        ) from exc


def check_ct_slice(ct, path: Path) -> None:
    """A slice a reader returned is one the app can use: 2-D float32 pixels, some, all finite,
    a known value kind, a spacing of positive sizes or none, a finite affine or none."""
    pixels = ct.pixels
    assert pixels.ndim == 2 and pixels.size > 0 and pixels.dtype == np.float32, (path, pixels.shape)
    assert np.isfinite(pixels).all(), f"{path.name}: non-finite pixels returned"
    assert ct.value_kind in ("hu", "uint8", "raw")
    if ct.spacing is not None:
        assert len(ct.spacing) == 2 and all(math.isfinite(v) and v > 0 for v in ct.spacing), (
            f"{path.name}: spacing {ct.spacing}"
        )
    if ct.affine is not None:
        affine = np.asarray(ct.affine)
        assert affine.shape == (4, 4) and np.isfinite(affine).all(), f"{path.name}: affine"


@st.composite
def damaged(draw, data: bytes, header: int = 2048) -> bytes:
    """``data`` with up to 16 bytes changed (mostly in its first ``header`` bytes, where a parser
    decides what follows), then cut at any length or left whole."""
    out = bytearray(data)
    n = draw(st.sampled_from([0, 1, 1, 2, 3, 4, 8, 16]))  # few: most files stay near-valid
    for _ in range(n):
        top = min(len(out), header) if draw(st.booleans()) else len(out)
        if top:
            out[draw(st.integers(0, top - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]
    return bytes(out)


# ---------------------------------------------------------------------------------- PNG builder

PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: colour type -> the bit depths the PNG specification allows
PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def png_bytes(width: int, height: int, colour_type: int, depth: int, raw: bytes) -> bytes:
    """A valid PNG of any colour type and bit depth, its rows taken from ``raw`` (repeated)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    row = -(-width * PNG_CHANNELS[colour_type] * depth // 8)
    raw = (raw or b"\x00") * (row * height // max(len(raw), 1) + 1)
    scan = b"".join(b"\x00" + raw[i * row : (i + 1) * row] for i in range(height))
    parts = [
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)),
    ]
    if colour_type == 3:
        parts.append(chunk(b"PLTE", bytes(range(256)) * 3))
    parts += [chunk(b"IDAT", zlib.compress(scan)), chunk(b"IEND", b"")]
    return b"".join(parts)


# ---------------------------------------------------------------------------------- NIfTI builder


def nifti_bytes(
    array: np.ndarray,
    srows: np.ndarray | None = None,
    pixdim: tuple[float, float, float] | None = None,
    datatype: tuple[int, int] | None = None,
) -> bytes:
    """A single-file NIfTI-1 of ``array`` whose header then gets ``srows`` (the sform, any float32
    numbers: singular, NaN, huge), ``pixdim`` (voxel sizes) and ``datatype`` (code, bitpix) as
    given, written into the header bytes (nibabel itself refuses to write most of these)."""
    import io

    import nibabel as nib

    image = nib.Nifti1Image(array, np.eye(4), dtype=array.dtype)
    image.header.set_sform(np.eye(4), code=2)
    image.header.set_qform(None, code=0)
    buffer = io.BytesIO()
    file_map = nib.Nifti1Image.make_file_map({"image": buffer, "header": buffer})
    image.to_file_map(file_map)
    out = bytearray(buffer.getvalue())
    if srows is not None:
        out[280:328] = np.asarray(srows, "<f4").reshape(12).tobytes()
    if pixdim is not None:
        out[80:92] = np.asarray(pixdim, "<f4").tobytes()
    if datatype is not None:
        out[70:74] = struct.pack("<hh", *datatype)
    return bytes(out)
