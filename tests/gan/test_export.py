"""Exports read back: DICOM (new UIDs, no identity, HU or Secondary Capture), SEG, NIfTI geometry."""

import numpy as np
import pytest

from gan.ctio import read_dicom, read_nifti_slice, read_nifti_volume, read_slice
from gan.export import Provenance, build_dicom, export_all
from tests.conftest import phantom

SHA = "ab" * 32


@pytest.fixture()
def ct_dicom():
    from pydicom.data import get_testdata_file

    return read_dicom(get_testdata_file("CT_small.dcm"))


def _labels(shape):
    _, labels = phantom(shape[0])
    return labels[:, : shape[1]]


def test_hu_source_exports_a_ct_image_in_hu_without_identity(ct_dicom, tmp_path):
    import highdicom as hd
    import pydicom

    rng = np.random.default_rng(0)
    synthetic = rng.uniform(-1000, 100, ct_dicom.shape).astype(np.float32)
    labels = _labels(ct_dicom.shape)
    files = export_all(tmp_path, ct_dicom, labels, synthetic, synthetic, SHA, seed=7)
    assert all(f.exists() for f in files)
    ds = pydicom.dcmread(tmp_path / "slice_synthetic.dcm")
    source = ct_dicom.dicom
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    for uid in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert getattr(ds, uid) != getattr(source, uid)
    assert str(ds.PatientName) == "" and ds.PatientID == "" and ds.PatientIdentityRemoved == "YES"
    assert "DeidentificationMethod" in ds and list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert (
        "SYNTHETIC" in ds.SeriesDescription
        and SHA in ds.ImageComments
        and "seed 7" in ds.ImageComments
    )
    assert ds.BurnedInAnnotation == "YES"
    back = read_dicom(tmp_path / "slice_synthetic.dcm")
    assert back.is_hu and np.abs(back.pixels - synthetic).max() <= 1
    assert list(ds.ImagePositionPatient) == list(source.ImagePositionPatient)
    seg = hd.seg.segread(str(tmp_path / "slice_labels_seg.dcm"))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [
        "Lung",
        "Ground-glass opacity",
        "Consolidation",
    ]
    assert (
        seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        == pydicom.dcmread(tmp_path / "slice_composite.dcm").SeriesInstanceUID
    )
    assert b"ModelSHA256" in (tmp_path / "slice_synthetic.png").read_bytes()


def test_source_that_states_no_burned_in_text_keeps_no(ct_dicom):
    ct_dicom.dicom.BurnedInAnnotation = "NO"
    ds = build_dicom(np.zeros(ct_dicom.shape, np.float32), ct_dicom, Provenance(SHA))
    assert ds.BurnedInAnnotation == "NO"


def test_8bit_source_exports_secondary_capture_without_hu(tmp_path):
    import pydicom

    from gan.ctio import write_png

    image, labels = phantom(64)
    write_png(tmp_path / "in.png", ((image + 1) * 127.5).astype(np.uint8))
    ct = read_slice(tmp_path / "in.png")
    export_all(tmp_path / "out", ct, labels, ct.pixels, ct.pixels, SHA)
    ds = pydicom.dcmread(tmp_path / "out" / "slice_composite.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.BitsAllocated == 8
    assert "RescaleSlope" not in ds and "RescaleType" not in ds
    assert np.array_equal(ds.pixel_array, ct.pixels.astype(np.uint8))


def test_nifti_labels_keep_the_source_geometry(tmp_path):
    import nibabel as nib

    volume = np.full((30, 20, 6), -1000, np.int16)
    affine = np.array([[-0.7, 0, 0, 100.0], [0, -0.7, 0, 50.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "v.nii.gz"))
    ct = read_nifti_slice(tmp_path / "v.nii.gz", 4)
    labels = np.zeros(ct.shape, np.uint8)
    labels[3:6, 2:4] = 2
    export_all(tmp_path / "out", ct, labels, ct.pixels, ct.pixels, SHA)
    written = nib.load(str(tmp_path / "out" / "slice_labels.nii.gz"))
    _, _, display_affine = read_nifti_volume(tmp_path / "v.nii.gz")
    # voxel (r, c, 0) of the export sits where voxel (r, c, 4) of the source volume does
    for r, c in ((0, 0), (5, 3), (19, 29)):
        np.testing.assert_allclose(
            written.affine @ [r, c, 0, 1], display_affine @ [r, c, 4, 1], atol=1e-4
        )
    assert b"labels" in written.header["descrip"].tobytes()
