import warnings

import numpy as np
import pytest

from gan import ctio


@pytest.fixture(scope="module")
def ct_small_path():
    from pydicom.data import get_testdata_file

    return get_testdata_file("CT_small.dcm")


def test_dicom_ct_is_read_in_hu_with_spacing_and_header(ct_small_path):
    import pydicom

    s = ctio.read_dicom(ct_small_path)
    ds = pydicom.dcmread(ct_small_path)
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    assert s.is_hu and s.shape == (128, 128)
    np.testing.assert_array_equal(s.pixels, expected)
    assert s.spacing == pytest.approx((0.661468, 0.661468))
    assert s.dicom is not None and "PixelData" not in s.dicom
    assert s.dicom.SOPInstanceUID == ds.SOPInstanceUID


def test_monochrome1_is_inverted(ct_small_path, tmp_path):
    import pydicom

    ds = pydicom.dcmread(ct_small_path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    with pytest.warns(ctio.ConversionWarning, match="MONOCHROME1"):
        s = ctio.read_dicom(path)
    normal = ctio.read_dicom(ct_small_path)
    # inversion reverses the order of values: the brightest pixel becomes the darkest
    assert np.argmax(s.pixels) == np.argmin(normal.pixels)


def _enhanced_ct(ct_small_path, tmp_path):
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(ct_small_path)
    frame = ds.pixel_array
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([frame, frame[::-1]]).astype(frame.dtype).tobytes()
    del ds.RescaleSlope, ds.RescaleIntercept, ds.PixelSpacing
    per_frame = []
    for intercept in (-1024, -1000):
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept = 1, intercept
        item = Dataset()
        item.PixelValueTransformationSequence = Sequence([transform])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.7]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path)
    return path, frame


def test_multiframe_is_read_frame_by_frame_with_per_frame_rescale(ct_small_path, tmp_path):
    path, frame = _enhanced_ct(ct_small_path, tmp_path)
    first = ctio.read_dicom(path, frame=0)
    second = ctio.read_slice(path, index=1)
    np.testing.assert_array_equal(first.pixels, frame.astype(np.float32) - 1024)
    np.testing.assert_array_equal(second.pixels, frame[::-1].astype(np.float32) - 1000)
    assert first.spacing == (0.5, 0.7) and second.frame == 1
    with pytest.raises(ctio.CTReadError, match="frame 2 out of range"):
        ctio.read_dicom(path, frame=2)


def test_non_image_corrupt_and_non_dicom_files_get_one_line_errors(tmp_path):
    from pydicom.data import get_testdata_file

    with pytest.raises(ctio.CTReadError, match="holds no image"):
        ctio.read_dicom(get_testdata_file("rtplan.dcm"))
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not dicom at all" * 10)
    with pytest.raises(ctio.CTReadError) as err:
        ctio.read_slice(junk)
    assert "\n" not in str(err.value)
    with pytest.raises(ctio.CTReadError, match="no such file"):
        ctio.read_slice(tmp_path / "missing.dcm")


def test_truncated_dicom_is_refused(ct_small_path, tmp_path):
    data = open(ct_small_path, "rb").read()
    path = tmp_path / "truncated.dcm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ctio.CTReadError):
        ctio.read_dicom(path)


def test_non_ct_dicom_is_kept_raw_with_a_warning():
    from pydicom.data import get_testdata_file

    with pytest.warns(ctio.ConversionWarning, match="not CT"):
        s = ctio.read_dicom(get_testdata_file("MR_small.dcm"))
    assert s.value_kind == "raw" and not s.is_hu


def test_dicom_series_folder_is_ordered_along_the_patient_axis(ct_small_path, tmp_path):
    import pydicom

    for i, z in enumerate([30.0, 10.0, 20.0]):
        ds = pydicom.dcmread(ct_small_path)
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.InstanceNumber = i + 1
        ds.RescaleIntercept = -1000 - int(z)  # marks which slice is which
        ds.save_as(tmp_path / f"img{i}.dcm")
    (tmp_path / "notes.txt").write_text("not a DICOM file")
    files = ctio.list_dicom_series(tmp_path)
    assert [f.name for f in files] == ["img1.dcm", "img2.dcm", "img0.dcm"]
    first = ctio.read_slice(tmp_path, index=0)
    assert first.source.name == "img1.dcm"


def _write_volume(path, data, affine):
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, affine), str(path))


def test_nifti_slice_is_display_oriented_and_reports_spacing(tmp_path):
    # A volume stored LPS (as several Radiopaedia volumes are): x towards patient left,
    # y towards posterior. Mark the patient's right-anterior corner of slice 2.
    data = np.full((6, 5, 4), -1000, np.int16)
    data[0, 0, 2] = 500  # x index 0 = most patient-right (LPS), y index 0 = most anterior
    path = tmp_path / "vol.nii.gz"
    _write_volume(path, data, np.diag([-0.7, -0.8, 2.5, 1.0]))  # LPS: RAS+ affine, x and y flipped
    assert ctio.nifti_num_slices(path) == 4
    s = ctio.read_nifti_slice(path, 2)
    assert s.is_hu and s.shape == (5, 6)  # rows = anterior-posterior, cols = right-left
    assert s.spacing == pytest.approx((0.8, 0.7))
    # radiological display: anterior at the top, patient's right on the image's left
    assert s.pixels[0, 0] == 500 and s.pixels.sum() == 500 - 1000 * 29
    with pytest.raises(ctio.CTReadError, match="out of range"):
        ctio.read_nifti_slice(path, 4)


def test_nifti_write_then_read_round_trips(tmp_path):
    """A slice written with a display-oriented affine (as the readers return: rows run towards
    posterior, columns towards the patient's left) reads back with the same pixels, affine and
    (row, column) spacing; the stored file holds exactly those pixels and that affine."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    image = rng.uniform(-1000, 400, (3, 5)).astype(np.float32)  # non-square: a transpose shows
    # voxel (row, col, 0) -> RAS: a row down is 0.5 mm posterior (-y), a column along is 0.6 mm
    # towards the patient's left (-x); the translation is not zero
    affine = np.array(
        [[0.0, -0.6, 0.0, 12.0], [-0.5, 0.0, 0.0, -7.0], [0.0, 0.0, 2.0, 30.0], [0, 0, 0, 1]]
    )
    path = tmp_path / "slice.nii.gz"
    ctio.write_nifti(path, image, affine=affine, description="SYNTHETIC test")

    stored = nib.load(str(path))
    assert b"SYNTHETIC" in stored.header["descrip"].tobytes()
    np.testing.assert_array_equal(np.asarray(stored.dataobj), image[:, :, None])
    np.testing.assert_allclose(stored.affine, affine, atol=1e-6)

    volume, spacing, read_affine = ctio.read_nifti_volume(path)
    assert volume.shape == (3, 5, 1)
    np.testing.assert_array_equal(volume[:, :, 0], image)
    np.testing.assert_allclose(read_affine, affine, atol=1e-6)
    assert spacing == pytest.approx((0.5, 0.6))
    back = ctio.read_nifti_slice(path, 0)
    np.testing.assert_array_equal(back.pixels, image)
    np.testing.assert_allclose(back.slice_affine(), affine, atol=1e-6)


def test_png_8bit_rgb_and_16bit(tmp_path):
    import cv2

    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    s = ctio.read_slice(tmp_path / "g.png")
    assert s.value_kind == "uint8" and not s.is_hu and s.spacing is None
    np.testing.assert_array_equal(s.to_uint8(), gray)

    colour = np.dstack([gray, gray // 2, gray // 3])
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    with pytest.warns(ctio.ConversionWarning, match="grayscale"):
        assert ctio.read_slice(tmp_path / "c.png").shape == (8, 8)

    same = np.dstack([gray] * 3)  # RGB with equal channels: gray already, no warning
    cv2.imwrite(str(tmp_path / "s.png"), same)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctio.read_slice(tmp_path / "s.png")

    deep = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    with pytest.warns(ctio.ConversionWarning, match="16-bit"):
        d = ctio.read_slice(tmp_path / "d.png")
    assert d.value_kind == "raw" and d.pixels.max() == 63000

    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ctio.CTReadError, match="not a readable image"):
        ctio.read_slice(tmp_path / "bad.png")


def test_png_text_chunks_are_written(tmp_path):
    path = tmp_path / "t.png"
    ctio.write_png(
        path, np.zeros((4, 4), np.uint8), text={"Software": "CT Lesion Studio", "Synthetic": "yes"}
    )
    data = path.read_bytes()
    assert b"tEXtSynthetic\x00yes" in data
    assert ctio.read_png_text(path) == {"Software": "CT Lesion Studio", "Synthetic": "yes"}
    import cv2

    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape == (4, 4)
    rng = np.random.default_rng(0)
    for image in (
        rng.integers(0, 65536, (5, 7)).astype(np.uint16),
        rng.integers(0, 256, (6, 5, 3)).astype(np.uint8),
    ):
        ctio.write_png(path, image)
        back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image.ndim == 3:
            back = cv2.cvtColor(back, cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(back, image)


def test_label_images_with_0_255_read_exactly(tmp_path):
    import cv2

    mask = np.zeros((4, 4), np.uint8)
    mask[1:3, 1:3] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    assert set(np.unique(ctio.read_label_image(tmp_path / "m.png"))) == {0, 255}


def test_windowing_lung_window_and_inverse():
    w = ctio.LUNG_WINDOW
    assert (w.low, w.high) == (-1350.0, 150.0)
    hu = np.array([-2000, -1350, -600, 150, 1000], np.float32)
    unit = ctio.window_to_unit(hu, w)
    assert unit.tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    np.testing.assert_allclose(ctio.unit_to_window(unit[1:4], w), hu[1:4])
    assert ctio.unit_to_uint8(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]
    assert ctio.uint8_to_unit(np.array([0, 255])).tolist() == [-1.0, 1.0]
    # an 8-bit slice maps linearly onto [-1, 1] and never claims HU
    s = ctio.CTSlice(np.array([[0, 255]], np.float32), "uint8")
    assert s.to_model_range().tolist() == [[-1.0, 1.0]] and not s.is_hu


def test_label_volumes_are_read_at_the_requested_slice(tmp_path):
    import nibabel as nib

    labels = np.zeros((6, 5, 4), np.uint8)
    labels[1, 1, 3] = 2
    nib.save(nib.Nifti1Image(labels, np.eye(4)), str(tmp_path / "l.nii.gz"))
    assert ctio.read_label_image(tmp_path / "l.nii.gz", 3).max() == 2
    assert ctio.read_label_image(tmp_path / "l.nii.gz", 0).max() == 0
