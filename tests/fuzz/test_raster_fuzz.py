"""PNG/JPEG/TIFF/BMP images of every Pillow mode and PNG colour type and bit depth, whole and
damaged, through the image reader, the label-image reader and the label import."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gan.ctio import CTReadError, CTSlice, read_label_image, read_slice
from gan.label_import import build_label_map, read_for_import
from gan.labels import LabelFormatError
from tests.fuzz._support import (
    PNG_DEPTHS,
    check_ct_slice,
    damaged,
    fuzz,
    outcome,
    png_bytes,
)

pytestmark = pytest.mark.timeout(120)

#: (Pillow mode, format) pairs Pillow writes: every mode the issue names (1, L, LA, P, RGB, RGBA,
#: I;16, I, F) in each format that holds it, plus the JPEG-only CMYK.
PILLOW_CASES = (
    ("1", "png"),
    ("1", "bmp"),
    ("1", "tiff"),
    ("L", "png"),
    ("L", "jpeg"),
    ("L", "bmp"),
    ("LA", "png"),
    ("LA", "tiff"),
    ("P", "png"),
    ("P", "bmp"),
    ("RGB", "png"),
    ("RGB", "jpeg"),
    ("RGB", "tiff"),
    ("RGBA", "png"),
    ("RGBA", "tiff"),
    ("CMYK", "jpeg"),
    ("I;16", "png"),
    ("I;16", "tiff"),
    ("I", "tiff"),
    ("F", "tiff"),
)
SUFFIX = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tif"}


@st.composite
def pillow_image(draw) -> tuple[str, bytes]:
    """An image of any mode, size 1..12 square-ish, pixels from any bytes; gray ones often so
    (all channels equal), since colour images go another way through the readers."""
    from PIL import Image

    mode, fmt = draw(st.sampled_from(PILLOW_CASES))
    width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "F":
        values = draw(st.sampled_from([np.nan, np.inf, 0.5, 1e30, 3.0]))
        pixels = rng.normal(size=(height, width)).astype(np.float32)
        pixels[0, 0] = values
        image = Image.fromarray(pixels, "F")
    elif mode == "I":
        image = Image.fromarray(rng.integers(-(2**31), 2**31, (height, width)).astype(np.int32))
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 2**16, (height, width)).astype(np.uint16))
    elif mode == "1":
        image = Image.fromarray(rng.integers(0, 2, (height, width)).astype(bool))
    else:
        bands = len(Image.new(mode, (1, 1)).getbands())
        pixels = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
        if draw(st.booleans()):
            pixels[..., 1:3] = pixels[..., :1] if bands >= 3 else pixels[..., 1:3]
        if draw(st.booleans()):
            pixels[..., :] = pixels[..., :] % 4  # small values: a label map, a lesion mask
        image = Image.frombytes(mode, (width, height), pixels.tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return SUFFIX[fmt], buffer.getvalue()


@st.composite
def any_png(draw) -> tuple[str, bytes]:
    """A PNG of any colour type (gray, RGB, palette, gray+alpha, RGBA) at every bit depth it
    allows, 8 and 16 included, with any pixel bytes."""
    colour_type = draw(st.sampled_from(sorted(PNG_DEPTHS)))
    depth = draw(st.sampled_from(PNG_DEPTHS[colour_type]))
    raw = draw(st.binary(min_size=1, max_size=64))
    size = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    return ".png", png_bytes(*size, colour_type, depth, raw)


images = pillow_image() | any_png()


@st.composite
def image_file(draw) -> tuple[str, bytes]:
    suffix, data = draw(images)
    if draw(st.booleans()):
        data = draw(damaged(data, header=64))
    return suffix, data


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("raster-fuzz")


@fuzz(250)
@given(case=image_file())
def test_any_image_opens_or_fails_in_one_clear_line(folder, case):
    """read_slice of a raster, read_label_image and read_for_import of the same file: each a
    usable result or one error of the project's own type naming the file."""
    suffix, data = case
    path = folder / f"image{suffix}"
    path.write_bytes(data)
    ct = outcome("raster: read_slice", lambda: read_slice(path), path, (CTReadError,))
    if ct is not None:
        check_ct_slice(ct, path)
        assert ct.value_kind in ("uint8", "raw")
    labels = outcome(
        "raster: read_label_image", lambda: read_label_image(path), path, (CTReadError,)
    )
    if labels is not None:
        assert labels.ndim == 2 and labels.size and labels.dtype.kind in "uib", labels.dtype
    imported = outcome(
        "raster: read_for_import",
        lambda: read_for_import(path),
        path,
        (CTReadError, LabelFormatError),
    )
    if imported is not None:
        assert imported.values.ndim == 2 and imported.convention in (
            "binary",
            "lesion_mask",
            "label_map",
        )


@fuzz(120)
@given(
    dtype=st.sampled_from([np.uint8, np.uint16]),
    shape=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    values=st.lists(
        st.integers(0, 3) | st.sampled_from([255, 256, 65535]) | st.integers(0, 65535),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 2**32 - 1),
    convention=st.sampled_from(["label_map", "lesion_mask", "binary", "guess"]),
    binary_class=st.integers(1, 3),
)
def test_a_label_png_of_any_values_imports_or_is_refused_clearly(
    folder, dtype, shape, values, seed, convention, binary_class
):
    """A label PNG holding any values (8- or 16-bit), imported in any convention onto an image of
    its size: a valid label map (0..3, the image's shape) or one LabelFormatError naming the file."""
    from gan.ctio import write_png

    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array(values, np.int64) % (np.iinfo(dtype).max + 1), shape).astype(dtype)
    path = folder / "labels.png"
    write_png(path, labels)
    file = outcome(
        "labels: read_for_import",
        lambda: read_for_import(path),
        path,
        (LabelFormatError, CTReadError),
    )
    assert file is not None, "a valid PNG must be read"
    ct = CTSlice(np.full(shape, -800.0, np.float32), "hu")
    current = np.zeros(shape, np.uint8)
    use = file.convention if convention == "guess" else convention
    out = outcome(
        "labels: build_label_map",
        lambda: build_label_map(file, use, ct, current, binary_class=binary_class),
        path,
        (LabelFormatError,),
    )
    if out is not None:
        assert out.shape == shape and out.dtype == np.uint8 and int(out.max()) <= 3
