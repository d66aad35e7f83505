import numpy as np
import pytest

from gan.ctio import CTSlice, write_png
from gan.label_import import build_label_map, guess_convention, read_for_import, segment_class
from gan.labels import LabelFormatError
from tests.conftest import phantom


@pytest.fixture()
def ct():
    image, _ = phantom(64)
    return CTSlice(((image + 1) * 127.5).astype(np.float32), "uint8")


def test_guesses():
    assert guess_convention([0, 255]) == "binary" and guess_convention([0, 1]) == "binary"
    assert guess_convention([0, 1, 2, 3]) == "label_map"
    assert guess_convention([0, 1, 2]) == "lesion_mask"


def test_each_convention_maps_as_documented(ct, tmp_path):
    _, labels = phantom(64)
    write_png(tmp_path / "map.png", labels)
    f = read_for_import(tmp_path / "map.png")
    assert f.convention == "label_map"
    assert np.array_equal(build_label_map(f, "label_map", ct, labels), labels)

    lesions = np.where(labels >= 2, labels - 1, 0).astype(np.uint8)  # MedSeg 1 GGO, 2 consolidation
    write_png(tmp_path / "lesions.png", lesions)
    f = read_for_import(tmp_path / "lesions.png")
    assert f.convention == "lesion_mask"
    out = build_label_map(f, "lesion_mask", ct, labels)
    assert (
        np.array_equal(out >= 2, labels >= 2)
        and (out[labels == 3] == 3).all()
        and (out == 1).sum() > 100
    )

    binary = np.zeros((64, 64), np.uint8)
    binary[20:30, 15:25] = 255
    write_png(tmp_path / "bin.png", binary)
    f = read_for_import(tmp_path / "bin.png")
    assert f.convention == "binary"
    out = build_label_map(f, "binary", ct, labels, binary_class=3)
    assert (out[20:30, 15:25] == 3).all() and np.array_equal(out[binary == 0], labels[binary == 0])

    with pytest.raises(LabelFormatError, match="255"):
        build_label_map(
            f, "label_map", ct, labels
        )  # the wrong convention is refused, naming values
    write_png(tmp_path / "small.png", labels[:32])
    with pytest.raises(LabelFormatError, match="the image is 64x64"):
        build_label_map(read_for_import(tmp_path / "small.png"), "label_map", ct, labels)


def test_dicom_seg_segments_map_by_label(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    from tests.conftest import make_seg

    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    mask = np.zeros((1, 128, 128, 2), bool)
    mask[0, 20:100, 20:60, 0] = True
    mask[0, 40:60, 30:50, 1] = True
    seg = make_seg(source, mask, ["Lung", "Ground-glass opacity"])
    seg.save_as(tmp_path / "seg.dcm")
    f = read_for_import(tmp_path / "seg.dcm")
    assert f.convention == "dicom_seg"
    assert (f.values == 2).sum() == 400 and (f.values == 1).sum() == 80 * 40 - 400
    assert segment_class("Consolidation") == 3 and segment_class("Liver") is None
    with pytest.raises(LabelFormatError, match="not a DICOM Segmentation"):
        read_for_import(get_testdata_file("CT_small.dcm"))
