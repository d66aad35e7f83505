"""Exports read back: every written image holds the pixels it was given (synthetic and composite
apart), in the documented units; DICOM has new UIDs, no identity, HU or Secondary Capture, the
source's geometry (or the NIfTI affine's, in DICOM's LPS) and the spacing in (row, column) order;
labels keep their values and geometry; the provenance names the model's SHA-256 and the seed."""

import hashlib
import json

import numpy as np
import pytest

from gan.ctio import (
    read_dicom,
    read_label_image,
    read_nifti_slice,
    read_png_text,
    read_raster,
    read_slice,
)
from gan.export import Provenance, build_dicom, export_all
from tests.conftest import phantom

# a digest that no code path makes up itself: a constant in the exporter cannot equal it
SHA = hashlib.sha256(b"tests/gan/test_export.py stand-in weights").hexdigest()


@pytest.fixture()
def ct_dicom():
    from pydicom.data import get_testdata_file

    return read_dicom(get_testdata_file("CT_small.dcm"))


@pytest.fixture()
def ct_dicom_non_square(tmp_path):
    """CT_small.dcm with a non-square PixelSpacing: 0.6 mm between rows, 0.8 mm between columns."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelSpacing = [0.6, 0.8]
    ds.save_as(tmp_path / "source.dcm")
    return read_dicom(tmp_path / "source.dcm")


def _labels(shape):
    _, labels = phantom(max(shape))
    return np.ascontiguousarray(labels[: shape[0], : shape[1]])


def _png_pixels(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _hu_on_lung_window_levels(rng, shape):
    """HU values that the lung window (level -600, width 1500: -1350..150 HU onto 0..255) maps
    exactly onto whole 8-bit levels k (k outside 0..255 clips), so the PNG can be compared
    exactly: HU = -1350 + k * 1500 / 255. Returns (HU float32, expected 8-bit levels)."""
    k = rng.integers(-20, 276, shape)
    hu = (-1350 + k * (1500 / 255)).astype(np.float32)
    return hu, np.clip(k, 0, 255).astype(np.uint8)


def _check_common_provenance(folder, seed):
    """The PNG text of both images and the JSON record name SHA and ``seed``."""
    for what in ("synthetic", "composite"):
        text = read_png_text(folder / f"slice_{what}.png")
        assert text["ModelSHA256"] == SHA and text["Seed"] == str(seed)
        assert text["Synthetic"].startswith(f"yes ({what})")
    record = json.loads((folder / "slice_export.json").read_text())
    assert record["model_sha256"] == SHA and record["seed"] == seed and record["synthetic"] is True
    return record


def test_hu_source_exports_each_image_in_hu_with_its_own_pixels_and_no_identity(
    ct_dicom_non_square, tmp_path
):
    """An HU DICOM source: synthetic and composite (different arrays) each land in their own PNG
    (lung window) and DICOM (HU, rounded to int16), with the source's geometry, the spacing in
    (row, column) order, no identity and the model's SHA-256 and seed; the synthetic region is
    an overlay of the composite only; labels and SEG read back as given."""
    import highdicom as hd
    import pydicom

    ct = ct_dicom_non_square
    assert ct.spacing == (0.6, 0.8)
    rng = np.random.default_rng(0)
    images = {}
    images["synthetic"], synthetic_png = _hu_on_lung_window_levels(rng, ct.shape)
    images["composite"], composite_png = _hu_on_lung_window_levels(rng, ct.shape)
    expected_png = {"synthetic": synthetic_png, "composite": composite_png}
    labels = _labels(ct.shape)
    region = np.zeros(ct.shape, bool)
    region[20:70, 30:100] = True  # not symmetric: a transposed overlay would differ
    files = export_all(
        tmp_path,
        ct,
        labels,
        images["synthetic"],
        images["composite"],
        SHA,
        seed=7,
        synthetic_region=region,
    )
    assert all(f.exists() for f in files)
    source = ct.dicom
    for what in ("synthetic", "composite"):
        np.testing.assert_array_equal(
            _png_pixels(tmp_path / f"slice_{what}.png"), expected_png[what]
        )
        ds = pydicom.dcmread(tmp_path / f"slice_{what}.dcm")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.Modality == "CT"
        for uid in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert getattr(ds, uid) != getattr(source, uid)
        assert (
            str(ds.PatientName) == "" and ds.PatientID == "" and ds.PatientIdentityRemoved == "YES"
        )
        assert "DeidentificationMethod" in ds
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]  # CT: value 3 required
        assert ds.SeriesDescription.startswith(f"SYNTHETIC {what} ")
        assert f"SYNTHETIC {what} image" in ds.ImageComments
        assert f"model sha256 {SHA};" in ds.ImageComments and "seed 7;" in ds.ImageComments
        assert ds.BurnedInAnnotation == "YES"
        assert [float(v) for v in ds.PixelSpacing] == [0.6, 0.8]  # (row, column) as the source
        assert list(ds.ImagePositionPatient) == list(source.ImagePositionPatient)
        assert list(ds.ImageOrientationPatient) == list(source.ImageOrientationPatient)
        back = read_dicom(tmp_path / f"slice_{what}.dcm")
        assert back.is_hu and back.spacing == (0.6, 0.8)
        # HU are stored as int16 with slope 1, intercept 0: the values come back rounded
        np.testing.assert_array_equal(back.pixels, np.round(images[what]))
    composite_ds = pydicom.dcmread(tmp_path / "slice_composite.dcm")
    np.testing.assert_array_equal(composite_ds.overlay_array(0x6000).astype(bool), region)
    assert 0x60000010 not in pydicom.dcmread(tmp_path / "slice_synthetic.dcm")
    np.testing.assert_array_equal(
        _png_pixels(tmp_path / "slice_synthetic_region.png"), np.where(region, 255, 0)
    )
    record = _check_common_provenance(tmp_path, 7)
    assert record["synthetic_pixels"] == int(region.sum()) and record["source_units"] == "hu"
    assert sorted(record["files"]) == sorted(f.name for f in files[:-1])
    np.testing.assert_array_equal(read_label_image(tmp_path / "slice_labels.png"), labels)
    import nibabel as nib

    written = np.asarray(nib.load(str(tmp_path / "slice_labels.nii.gz")).dataobj)
    np.testing.assert_array_equal(written[:, :, 0], labels)
    seg = hd.seg.segread(str(tmp_path / "slice_labels_seg.dcm"))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [
        "Lung",
        "Ground-glass opacity",
        "Consolidation",
    ]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == composite_ds.SeriesInstanceUID
    # one frame per segment, in segment order: lung region (all lesions included), GGO, consolidation
    np.testing.assert_array_equal(
        np.asarray(seg.pixel_array, bool), np.stack([labels >= 1, labels == 2, labels == 3])
    )


def test_source_that_states_no_burned_in_text_keeps_no(ct_dicom):
    ct_dicom.dicom.BurnedInAnnotation = "NO"
    ds = build_dicom(np.zeros(ct_dicom.shape, np.float32), ct_dicom, Provenance(SHA))
    assert ds.BurnedInAnnotation == "NO"


def test_8bit_source_exports_secondary_captures_holding_each_image_without_hu(tmp_path):
    """An 8-bit PNG source (non-square, no spacing): synthetic and composite (different arrays)
    each land unchanged in their own PNG and 8-bit Secondary Capture, with no HU claim, no
    geometry and the provenance of their own kind."""
    import pydicom

    from gan.ctio import write_png

    image, _ = phantom(64)
    source = ((image + 1) * 127.5).astype(np.uint8)[8:56]  # 48 x 64
    write_png(tmp_path / "in.png", source)
    ct = read_slice(tmp_path / "in.png")
    assert ct.shape == (48, 64) and ct.value_kind == "uint8"
    rng = np.random.default_rng(1)
    images = {
        w: rng.integers(0, 256, ct.shape).astype(np.float32) for w in ("synthetic", "composite")
    }
    labels = _labels(ct.shape)
    out = tmp_path / "out"
    export_all(out, ct, labels, images["synthetic"], images["composite"], SHA, seed=3)
    for what in ("synthetic", "composite"):
        # the 8-bit window is the identity: 0..255 in, the same 0..255 out
        expected = images[what].astype(np.uint8)
        np.testing.assert_array_equal(_png_pixels(out / f"slice_{what}.png"), expected)
        np.testing.assert_array_equal(read_raster(out / f"slice_{what}.png").pixels, expected)
        ds = pydicom.dcmread(out / f"slice_{what}.dcm")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.BitsAllocated == 8
        assert ds.Modality == "OT" and ds.ConversionType == "SYN"
        assert "RescaleSlope" not in ds and "RescaleType" not in ds
        assert "PixelSpacing" not in ds and "ImagePositionPatient" not in ds
        assert ds.SeriesDescription.startswith(f"SYNTHETIC {what} ")
        assert f"model sha256 {SHA};" in ds.ImageComments and "seed 3;" in ds.ImageComments
        assert (ds.Rows, ds.Columns) == (48, 64)
        np.testing.assert_array_equal(ds.pixel_array, expected)
    record = _check_common_provenance(out, 3)
    assert record["source_units"] == "uint8" and record["synthetic_pixels"] is None
    np.testing.assert_array_equal(read_label_image(out / "slice_labels.png"), labels)


def _rotation(z_deg, x_deg):
    z, x = np.radians(z_deg), np.radians(x_deg)
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return rz @ rx


NX, NY, NZ = 20, 30, 6  # stored voxel counts along i, j, k
# Display convention (gan.ctio): row 0 is the most anterior, column 0 the patient's right.
# Each storage: (voxel sizes and axis signs, display pixel (r, c) of slice k -> stored voxel).
ORIENTATIONS = {
    # RAS+: i towards the patient's right (+x), j anterior (+y): the patient's right is i = NX-1,
    # the most anterior row j = NY-1
    "RAS": (np.diag([0.8, 0.6, 2.5]), lambda r, c, k: (NX - 1 - c, NY - 1 - r, k)),
    # LPS (as many Radiopaedia volumes): i towards the patient's left, j posterior: i = 0 is the
    # patient's right, j = 0 the most anterior
    "LPS": (np.diag([-0.8, -0.6, 2.5]), lambda r, c, k: (c, r, k)),
}


@pytest.mark.parametrize("stored", sorted(ORIENTATIONS))
def test_nifti_source_exports_the_affine_geometry_in_lps_with_row_column_spacing(tmp_path, stored):
    """A NIfTI source with an oblique affine and non-square voxels (0.8 mm along x, 0.6 mm along
    y): ImagePositionPatient is the LPS position of pixel (0, 0), ImageOrientationPatient the LPS
    directions of increasing column then row, PixelSpacing (row, column) = (0.6, 0.8), all worked
    out here from the stored affine; the labels NIfTI puts every voxel where the source's is; the
    pixels are the ones given."""
    import nibabel as nib
    import pydicom

    scale, voxel_of = ORIENTATIONS[stored]
    affine = np.eye(4)
    affine[:3, :3] = _rotation(12.0, 8.0) @ scale  # oblique, still closest to the stored axes
    affine[:3, 3] = [100.0, 50.0, -30.0]
    rng = np.random.default_rng(2)
    data = rng.integers(-1000, 400, (NX, NY, NZ)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "v.nii.gz"))
    k = 4
    ct = read_nifti_slice(tmp_path / "v.nii.gz", k)
    rows, cols = NY, NX
    assert ct.shape == (rows, cols) and ct.is_hu
    # the mapping used below is the one the reader uses: display pixel (r, c) = stored voxel
    expected_pixels = np.array(
        [[data[voxel_of(r, c, k)] for c in range(cols)] for r in range(rows)], np.float32
    )
    np.testing.assert_array_equal(ct.pixels, expected_pixels)

    def world_lps(r, c):
        ras = affine @ [*voxel_of(r, c, k), 1.0]
        return np.array([-ras[0], -ras[1], ras[2]])  # RAS -> LPS

    along_row = world_lps(0, 1) - world_lps(0, 0)  # next column
    down_column = world_lps(1, 0) - world_lps(0, 0)  # next row
    images = {
        w: rng.uniform(-1000, 300, ct.shape).astype(np.float32) for w in ("synthetic", "composite")
    }
    labels = _labels(ct.shape)
    out = tmp_path / "out"
    export_all(out, ct, labels, images["synthetic"], images["composite"], SHA, seed=None)
    for what in ("synthetic", "composite"):
        ds = pydicom.dcmread(out / f"slice_{what}.dcm")
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient], world_lps(0, 0), atol=1e-5
        )
        np.testing.assert_allclose(
            [float(v) for v in ds.ImageOrientationPatient],
            [
                *(along_row / np.linalg.norm(along_row)),
                *(down_column / np.linalg.norm(down_column)),
            ],
            atol=1e-5,
        )
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [0.6, 0.8], atol=1e-6)
        assert float(ds.SliceThickness) == pytest.approx(2.5)
        assert "seed none" in ds.ImageComments
        back = read_dicom(out / f"slice_{what}.dcm")
        np.testing.assert_allclose(back.spacing, (0.6, 0.8), atol=1e-6)
        np.testing.assert_array_equal(back.pixels, np.round(images[what]))
    written = nib.load(str(out / "slice_labels.nii.gz"))
    np.testing.assert_array_equal(np.asarray(written.dataobj)[:, :, 0], labels)
    # voxel (r, c, 0) of the export sits where voxel (r, c) of slice k of the source does
    for r, c in ((0, 0), (0, cols - 1), (5, 3), (rows - 1, 0), (rows - 1, cols - 1)):
        np.testing.assert_allclose(
            written.affine @ [r, c, 0, 1], affine @ [*voxel_of(r, c, k), 1], atol=1e-4
        )
    assert b"labels" in written.header["descrip"].tobytes()
