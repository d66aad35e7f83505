"""Every field the exporter writes, read back from the files, where mutation testing
(``make mutation``) found it unpinned: the DICOM header fields, the HU clipping, the synthetic
overlay plane, the DICOM SEG's segments and header, the PNG and NIfTI text, and the JSON record."""

import datetime
import hashlib
import json

import numpy as np
import pydicom
import pytest

from gan.ctio import CTSlice, read_dicom, read_png_text
from gan.export import (
    CT_IMAGE_STORAGE,
    LICENCE,
    SECONDARY_CAPTURE_STORAGE,
    SOFTWARE,
    Provenance,
    add_synthetic_overlay,
    build_dicom,
    export_all,
)
from gan.labels import LABEL_MAP_CONVENTION
from tests.conftest import phantom

SHA = hashlib.sha256(b"tests/gan/test_export_fields.py stand-in weights").hexdigest()


@pytest.fixture()
def ct_dicom():
    from pydicom.data import get_testdata_file

    return read_dicom(get_testdata_file("CT_small.dcm"))


def labels_for(shape, consolidation=True):
    _, labels = phantom(max(shape))
    labels = np.ascontiguousarray(labels[: shape[0], : shape[1]])
    if not consolidation:
        labels[labels == 3] = 2
    return labels


@pytest.fixture()
def exported(tmp_path, ct_dicom):
    """export_all of an HU DICOM source into a folder that does not exist yet, with a region."""
    rng = np.random.default_rng(0)
    synthetic = rng.uniform(-1000, 200, ct_dicom.shape).astype(np.float32)
    composite = synthetic.copy()
    composite[0, :3] = [-40000, 40000, 32767.4]  # beyond int16 both ways, and just inside
    region = np.zeros(ct_dicom.shape, bool)
    region[10:20, 30:60] = True
    labels = labels_for(ct_dicom.shape, consolidation=False)
    folder = tmp_path / "nested" / "out"
    files = export_all(
        folder, ct_dicom, labels, synthetic, composite, SHA, seed=7, synthetic_region=region
    )
    return folder, files, ct_dicom, region


def test_export_all_lists_every_file_it_writes_into_a_new_nested_folder(exported):
    folder, files, _, _ = exported
    names = [
        "slice_synthetic.png",
        "slice_synthetic.dcm",
        "slice_composite.png",
        "slice_composite.dcm",
        "slice_synthetic_region.png",
        "slice_labels.png",
        "slice_labels.nii.gz",
        "slice_labels_seg.dcm",
    ]
    assert [p.name for p in files] == [*names, "slice_export.json"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "slice_export.json"])
    text = (folder / "slice_export.json").read_text()
    record = json.loads(text)
    assert text == json.dumps(record, indent=2) + "\n"  # readable, one key a line
    assert record["files"] == names
    assert record["notes"] == []
    assert record["software"] == SOFTWARE and record["licence"] == LICENCE
    assert record["label_convention"] == LABEL_MAP_CONVENTION
    assert record["source"] == str(exported[2].source) and record["source_units"] == "hu"
    assert record["synthetic_pixels"] == 300


def test_the_hu_dicom_header_is_new_anonymous_and_says_what_made_it(exported):
    folder, _, ct, _ = exported
    ds = pydicom.dcmread(folder / "slice_composite.dcm")
    assert ds.file_meta.MediaStorageSOPClassUID == CT_IMAGE_STORAGE == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.FrameOfReferenceUID.is_valid and ds.FrameOfReferenceUID != ct.dicom.get(
        "FrameOfReferenceUID"
    )
    today = datetime.date.today().strftime("%Y%m%d")
    assert ds.StudyDate == ds.SeriesDate == ds.ContentDate == today
    assert len(ds.StudyTime) == len(ds.SeriesTime) == len(ds.ContentTime) == 6
    assert ds.StudyTime.isdigit()
    for keyword in ("StudyID", "AccessionNumber", "ReferringPhysicianName"):
        assert keyword in ds and ds.data_element(keyword).value in ("", None)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        assert keyword in ds and not ds.data_element(keyword).value
    assert (ds.SeriesNumber, ds.InstanceNumber) == (900, 1)
    assert ds.Manufacturer == SOFTWARE and ds.SoftwareVersions == "0.1.0"
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == "synthetic image; patient identity not copied"
    assert ds.BurnedInAnnotation == "YES"  # the source does not say NO
    # geometry and acquisition copied from the source
    for keyword in (
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "SliceThickness",
        "SliceLocation",
        "PatientPosition",
        "KVP",
    ):
        assert ds.data_element(keyword).value == ct.dicom.data_element(keyword).value, keyword
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 16, 15, 1)
    assert (ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType) == (0, 1, "HU")


def test_hu_beyond_int16_is_clipped_not_wrapped(exported):
    folder, _, _, _ = exported
    pixels = pydicom.dcmread(folder / "slice_composite.dcm").pixel_array
    assert pixels.dtype == np.int16
    assert pixels[0, :3].tolist() == [-32768, 32767, 32767]


def test_the_overlay_plane_marks_the_synthetic_pixels_with_its_documented_attributes(exported):
    folder, _, _, region = exported
    ds = pydicom.dcmread(folder / "slice_composite.dcm")
    np.testing.assert_array_equal(ds.overlay_array(0x6000), region)
    assert ds[0x60000022].value == "Synthetic pixels (CT Lesion Studio)"  # OverlayDescription
    assert ds[0x60000040].value == "R"  # OverlayType: ROI
    assert list(ds[0x60000050].value) == [1, 1]  # OverlayOrigin
    assert (ds[0x60000100].value, ds[0x60000102].value) == (1, 0)  # bits allocated, position
    assert ds[0x60001500].value == "SYNTHETIC"  # OverlayLabel
    assert 0x60000010 not in pydicom.dcmread(folder / "slice_synthetic.dcm")


def test_the_overlay_of_a_non_square_image_takes_a_0_255_region():
    ct = CTSlice(np.zeros((4, 16), np.float32), "uint8")
    ds = build_dicom(ct.pixels, ct, Provenance(SHA))
    region = np.zeros((4, 16), np.uint8)
    region[1:3, 5:12] = 255  # a region read from a PNG
    add_synthetic_overlay(ds, region)
    assert (ds[0x60000010].value, ds[0x60000011].value) == (4, 16)  # rows, columns
    np.testing.assert_array_equal(ds.overlay_array(0x6000), region > 0)
    with pytest.raises(
        ValueError, match=r"^synthetic region \(16, 4\) differs from the image 4x16$"
    ):
        add_synthetic_overlay(ds, region.T)


def test_an_8bit_secondary_capture_is_8_bits_high_bit_7():
    ct = CTSlice(np.full((4, 6), 100, np.float32), "uint8")
    ds = build_dicom(ct.pixels, ct, Provenance(SHA))
    assert ds.file_meta.MediaStorageSOPClassUID == SECONDARY_CAPTURE_STORAGE
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (8, 8, 7, 0)


def test_the_seg_has_lung_and_lesion_segments_and_its_own_header(exported):
    folder, _, _, _ = exported
    image = pydicom.dcmread(folder / "slice_composite.dcm")
    seg = pydicom.dcmread(folder / "slice_labels_seg.dcm")
    described = [
        (
            s.SegmentNumber,
            s.SegmentLabel,
            s.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning,
            s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning,
        )
        for s in seg.SegmentSequence
    ]
    assert described == [
        (1, "Lung", "Tissue", "Lung"),
        (2, "Ground-glass opacity", "Morphologically Abnormal Structure", "Lesion"),
        (3, "Consolidation", "Morphologically Abnormal Structure", "Lesion"),
    ]
    assert seg.NumberOfFrames == 3  # the empty consolidation segment keeps its frame
    assert seg.SeriesInstanceUID.is_valid and seg.SeriesInstanceUID != image.SeriesInstanceUID
    assert (seg.SeriesNumber, seg.InstanceNumber) == (901, 1)
    assert seg.Manufacturer == SOFTWARE and seg.ManufacturerModelName == SOFTWARE
    assert seg.SoftwareVersions == "0.1.0" and seg.DeviceSerialNumber == "none"
    assert seg.SeriesDescription == "Labels (CT Lesion Studio)"


def test_png_and_nifti_text_name_the_convention_and_the_software(exported):
    import nibabel as nib

    folder, _, _, _ = exported
    assert read_png_text(folder / "slice_labels.png") == {
        "LabelConvention": "0 background, 1 lung, 2 GGO, 3 consolidation",
        "Software": SOFTWARE,
    }
    assert read_png_text(folder / "slice_synthetic_region.png") == {
        "Meaning": "255 = synthetic pixel of the composite",
        "Software": SOFTWARE,
    }
    assert read_png_text(folder / "slice_composite.png") == {
        "Synthetic": "yes (composite); not for diagnosis",
        "Software": SOFTWARE,
        "ModelSHA256": SHA,
        "Seed": "7",
        "Licence": LICENCE,
    }
    descrip = nib.load(folder / "slice_labels.nii.gz").header["descrip"].item().decode()
    assert descrip == "CT Lesion Studio labels: 0 background, 1 lung, 2 GGO, 3 consolidation"


def test_without_a_seed_the_provenance_says_none():
    provenance = Provenance(SHA)
    assert provenance.png_text()["Seed"] == "none"
    assert "; seed none (deterministic); " in provenance.text()


def test_a_source_without_a_file_records_no_source(tmp_path):
    ct = CTSlice(np.full((16, 16), 100, np.float32), "uint8")
    export_all(tmp_path, ct, labels_for(ct.shape), ct.pixels, ct.pixels, SHA)
    record = json.loads((tmp_path / "slice_export.json").read_text())
    assert record["source"] is None and record["seed"] is None


@pytest.mark.parametrize(
    ("error", "note"),
    [
        (ValueError("no frame of reference\nsecond line"), "no frame of reference"),
        (ValueError(), "ValueError"),
    ],
)
def test_a_seg_that_cannot_be_written_is_noted_by_its_first_line(
    tmp_path, monkeypatch, error, note
):
    import gan.export

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(gan.export, "export_labels_seg", refuse)
    ct = CTSlice(np.full((16, 16), 100, np.float32), "uint8")
    files = export_all(tmp_path, ct, labels_for(ct.shape), ct.pixels, ct.pixels, SHA)
    record = json.loads((tmp_path / "slice_export.json").read_text())
    assert record["notes"] == [f"DICOM SEG not written: {note}"]
    assert "slice_labels_seg.dcm" not in [p.name for p in files]


def test_geometry_from_a_nifti_affine_is_written_to_the_micrometre():
    """Positions, directions, spacing and thickness rounded to 6 decimals (a DS holds 16
    characters): the 7th decimal of the affine does not reach the file."""
    affine = np.diag([0.12345678, 0.23456789, 1.23456789, 1.0])
    affine[:3, 3] = [10.12345678, -20.12345678, 30.12345678]
    ct = CTSlice(np.zeros((4, 5), np.float32), "hu", affine=affine, slice_index=0)
    ds = build_dicom(ct.pixels, ct, Provenance(SHA))
    # RAS -> LPS flips x and y; rows run along the affine's first axis, columns along the second
    assert [float(v) for v in ds.ImagePositionPatient] == [-10.123457, 20.123457, 30.123457]
    assert [float(v) for v in ds.PixelSpacing] == [0.123457, 0.234568]
    assert [float(v) for v in ds.ImageOrientationPatient] == [0, -1, 0, -1, 0, 0]
    assert float(ds.SliceThickness) == 1.234568
