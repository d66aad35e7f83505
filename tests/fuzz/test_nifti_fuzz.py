"""NIfTI readers fuzzed with odd shapes (1-D, 2-D, 4-D, 5-D, zero-length), every voxel type
(bool, int8..int64, float16/32/64, complex), any affine (singular, NaN, huge, infinite) and voxel
size, then damaged headers and truncation; plain and gzipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gan.ctio import (
    CTReadError,
    nifti_num_slices,
    read_label_image,
    read_nifti_volume,
    read_slice,
)
from gan.label_import import read_for_import
from gan.labels import LabelFormatError
from tests.fuzz._support import check_ct_slice, damaged, fuzz, nifti_bytes, outcome

pytestmark = pytest.mark.timeout(120)

#: bool has no NIfTI type nibabel writes: it is stored as uint8 and marked DT_BINARY (code 1,
#: 1 bit), which nibabel refuses on reading. NIfTI-1 has no float16 either: its values (inf
#: where they overflow) are stored as float32.
DTYPES = (
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)

floats = st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-30, 1e38, -1e38, np.inf, -np.inf, np.nan])


@st.composite
def affine(draw) -> np.ndarray:
    """The sform's three rows: identity, random, or with zeros (singular), NaN, huge or inf."""
    kind = draw(st.sampled_from(["eye", "random", "singular", "any"]))
    rows = np.eye(4)[:3].copy()
    if kind == "random":
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        rows = rng.normal(size=(3, 4)) * 10
    elif kind == "singular":
        rows[:, draw(st.integers(0, 2))] = 0.0
    elif kind == "any":
        for _ in range(draw(st.integers(1, 4))):
            rows[draw(st.integers(0, 2)), draw(st.integers(0, 3))] = draw(floats)
    return rows


@st.composite
def nifti_file(draw) -> tuple[str, bytes]:
    ndim = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    if draw(st.integers(0, 4)):  # mostly no empty axis, so that the readers get past the shape
        shape = tuple(max(n, 1) for n in shape)
    name = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    store = {"bool": "uint8", "float16": "float32"}.get(name, name)
    info = np.iinfo(store) if np.dtype(store).kind in "iu" else None
    if info is not None:
        array = rng.integers(max(info.min, -(2**62)), min(info.max, 2**62), shape).astype(store)
    else:
        array = (rng.normal(size=shape) * 1000).astype(name).astype(store)
        if array.size and draw(st.booleans()):
            with np.errstate(over="ignore"):
                array.flat[0] = np.asarray(draw(floats)).astype(name)  # NaN, inf or huge voxels
    pixdim = None
    if draw(st.booleans()):
        pixdim = tuple(draw(st.lists(floats, min_size=3, max_size=3)))
    data = nifti_bytes(
        array,
        srows=draw(affine()),
        pixdim=pixdim,
        datatype=(1, 1) if name == "bool" else None,
    )
    if draw(st.booleans()):
        data = draw(damaged(data, header=352))  # 348-byte header + extension flag
    if draw(st.booleans()):
        return ".nii.gz", gzip.compress(data, compresslevel=1)
    return ".nii", data


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nifti-fuzz")


@fuzz(200)
@given(case=nifti_file(), index=st.none() | st.integers(-1, 6))
def test_any_nifti_opens_or_fails_in_one_clear_line(folder, case, index):
    """Every reader of a NIfTI (slice, whole volume, slice count, label slice, label import): a
    usable result or one error of the project's own type naming the file."""
    suffix, data = case
    path = folder / f"volume{suffix}"
    path.write_bytes(data)
    ct = outcome("nifti: read_slice", lambda: read_slice(path, index), path, (CTReadError,))
    if ct is not None:
        check_ct_slice(ct, path)
        assert 0 <= ct.slice_index < ct.metadata["n_slices"]
    volume = outcome(
        "nifti: read_nifti_volume", lambda: read_nifti_volume(path), path, (CTReadError,)
    )
    if volume is not None:
        pixels, spacing, matrix = volume
        assert pixels.ndim == 3 and pixels.size and np.isfinite(matrix).all()
        assert all(np.isfinite(v) and v > 0 for v in spacing)
    count = outcome("nifti: nifti_num_slices", lambda: nifti_num_slices(path), path, (CTReadError,))
    if count is not None:
        assert isinstance(count, int) and count >= 0
    labels = outcome(
        "nifti: read_label_image", lambda: read_label_image(path, index), path, (CTReadError,)
    )
    if labels is not None:
        assert labels.ndim == 2 and labels.dtype == np.int64
    imported = outcome(
        "nifti: read_for_import",
        lambda: read_for_import(path, index),
        path,
        (CTReadError, LabelFormatError),
    )
    if imported is not None:
        assert imported.values.ndim == 2
