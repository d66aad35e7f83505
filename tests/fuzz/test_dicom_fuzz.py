"""DICOM readers fuzzed with pydicom's own test files, mutated and cut short at random lengths."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gan.ctio import CTReadError, list_dicom_series, read_dicom, read_slice
from tests.fuzz._support import check_ct_slice, damaged, fuzz, outcome

pytestmark = pytest.mark.timeout(120)

#: Bundled with pydicom (never downloaded): uncompressed CT and MR, JPEG (12-bit lossy, which the
#: installed decoders refuse, and RGB baseline), JPEG 2000, RLE, and 15-frame RT dose (plain, RLE).
SOURCES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "JPEG-lossy.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_RLE.dcm",
    "rtdose.dcm",
    "rtdose_rle.dcm",
)


def _source(name: str) -> bytes:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom's test file {name} is not bundled with this pydicom")
    return Path(path).read_bytes()


SOURCE_BYTES = {}


def source_bytes(name: str) -> bytes:
    if name not in SOURCE_BYTES:
        SOURCE_BYTES[name] = _source(name)
    return SOURCE_BYTES[name]


@st.composite
def damaged_dicom(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(SOURCES))
    return name, draw(damaged(source_bytes(name)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dicom-fuzz")


def test_the_sources_read_as_they_are(folder):
    """The unmutated sources read (or, the undecodable 12-bit JPEG and the RGB file, fail clearly):
    the fuzz starts from files the readers understand, and imports are done before any deadline."""
    read = {}
    for name in SOURCES:
        path = folder / name
        path.write_bytes(source_bytes(name))
        read[name] = outcome("dicom: sources", lambda p=path: read_dicom(p), path, (CTReadError,))
    assert read["CT_small.dcm"].is_hu and read["rtdose.dcm"].metadata["n_frames"] == 15
    assert read["JPEG-lossy.dcm"] is None and read["SC_rgb_jpeg_dcmtk.dcm"] is None
    assert sum(v is not None for v in read.values()) == len(SOURCES) - 2


@fuzz(300)
@given(case=damaged_dicom(), index=st.none() | st.integers(-2, 16))
def test_a_damaged_dicom_file_reads_or_fails_in_one_clear_line(folder, case, index):
    """read_slice (the app's and the CLI's entry) on a mutated/truncated DICOM: a usable slice or
    one CTReadError naming the file; no other exception, however the header or pixels broke."""
    name, data = case
    path = folder / f"damaged-{name}"
    path.write_bytes(data)
    ct = outcome("dicom: read_slice(file)", lambda: read_slice(path, index), path, (CTReadError,))
    if ct is not None:
        check_ct_slice(ct, path)


@fuzz(60)
@given(cases=st.lists(damaged_dicom(), min_size=1, max_size=3), index=st.none() | st.integers(0, 3))
def test_a_series_folder_of_damaged_files_lists_or_fails_clearly(folder, cases, index):
    """A series folder holding damaged files (one may be whole): list_dicom_series skips what it
    cannot read, and opening a slice of the folder succeeds or fails in one CTReadError."""
    series = folder / "series"
    shutil.rmtree(series, ignore_errors=True)
    series.mkdir()
    for i, (_, data) in enumerate(cases):
        (series / f"{i}.dcm").write_bytes(data)
    files = outcome(
        "dicom: list_dicom_series", lambda: list_dicom_series(series), series, (CTReadError,)
    )
    if files is not None:
        assert files and all(f.parent == series for f in files)
    ct = outcome(
        "dicom: read_slice(folder)", lambda: read_slice(series, index), series, (CTReadError,)
    )
    if ct is not None:
        check_ct_slice(ct, series)


@pytest.fixture(scope="module")
def segmentations(folder) -> list[bytes]:
    """Two DICOM SEGs of CT_small, as highdicom writes them: one segment (its number kept in the
    shared functional group) and three (lung, ground glass, consolidation; one per frame)."""
    import numpy as np
    import pydicom

    from tests.conftest import make_seg

    source = folder / "CT_small.dcm"
    source.write_bytes(source_bytes("CT_small.dcm"))
    ct = pydicom.dcmread(source)
    out = []
    for labels in (["ground glass"], ["lung", "ground glass", "consolidation"]):
        mask = np.zeros((1, 128, 128, len(labels)), bool)
        for i in range(len(labels)):
            mask[0, 20 + 10 * i : 90, 20 : 100 - 10 * i, i] = True
        seg = make_seg(ct, mask, labels)
        path = folder / "seg.dcm"
        seg.save_as(path)
        out.append(path.read_bytes())
    return out


def test_a_single_segment_seg_imports(folder, segmentations):
    """A one-segment SEG, as highdicom writes it (the segment number in the shared functional
    group, not per frame), imports as ground glass (it failed with an AttributeError before)."""
    from gan.label_import import read_for_import

    path = folder / "one.dcm"
    path.write_bytes(segmentations[0])
    values = read_for_import(path).values
    assert set(np.unique(values).tolist()) == {0, 2}


@fuzz(80)
@given(data=st.data())
def test_a_damaged_dicom_seg_imports_or_fails_in_one_clear_line(folder, segmentations, data):
    """read_for_import of a mutated/truncated DICOM SEG: a label map (0..3, Rows x Columns) or one
    LabelFormatError naming the file; a damaged header never escapes as another exception."""
    from gan.label_import import read_for_import
    from gan.labels import LabelFormatError

    source = data.draw(st.sampled_from(segmentations))
    path = folder / "damaged-seg.dcm"
    path.write_bytes(data.draw(damaged(source, header=4096)))
    file = outcome(
        "dicom: read_for_import(SEG)",
        lambda: read_for_import(path),
        path,
        (LabelFormatError, CTReadError),
    )
    if file is not None:
        assert file.values.ndim == 2 and file.values.dtype == np.uint8
        assert int(file.values.max()) <= 3
