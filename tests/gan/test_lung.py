import json

import numpy as np
import pytest

from gan.lung import derive_lung_mask
from tests.conftest import phantom


def test_phantom_lungs_are_found_and_outside_air_is_not():
    image, labels = phantom(128)
    lung = derive_lung_mask(image)
    truth = labels == 1  # the dark lung; lesions are brighter
    assert (lung & truth).sum() / truth.sum() > 0.95
    assert not lung[0].any() and not lung[:, 0].any()  # air around the body is not lung


def test_lesions_are_forced_inside():
    image, labels = phantom(128)
    lesions = (labels >= 2).astype(np.uint8)
    lung = derive_lung_mask(image, lesion_mask=lesions)
    assert lung[labels >= 2].all()


def test_pleural_consolidation_bite_is_filled_by_the_hull():
    image, labels = phantom(128)
    # a dense consolidation along the lateral pleura of the left lung, as bright as the chest wall
    yy, xx = np.mgrid[:128, :128]
    bite = (labels > 0) & (xx < 0.22 * 128) & (np.abs(yy - 64) < 14)
    image = image.copy()
    image[bite] = 0.7
    without = derive_lung_mask(image, pleural_hull=False)
    with_hull = derive_lung_mask(image)
    assert without[bite].mean() < 0.2
    assert with_hull[bite].mean() > 0.8


def test_blank_slice_gives_empty_mask():
    assert not derive_lung_mask(np.zeros((32, 32), np.float32)).any()


@pytest.mark.data
def test_lesion_coverage_on_shared_data(medseg_dir, tmp_path):
    """Measurement, not a quality gate: the benchmark records the number; here it must at least
    beat a plain threshold by a margin on GGO and run end to end."""
    from benchmarks.lung_coverage import measure_coverage

    result = measure_coverage(medseg_dir, ids=None, overlay_dir=tmp_path, n_overlays=2)
    assert result["slices"] == 80
    assert result["coverage"]["ggo"] > 0.8
    assert result["coverage"]["consolidation"] > 0.4
    assert result["coverage"]["consolidation"] > result["coverage_without_hull"]["consolidation"]
    assert len(list(tmp_path.glob("*.png"))) == 2
    json.dumps(result)


def test_lungs_touching_at_the_anterior_junction_leave_the_mediastinum_out():
    """Both lungs in one dark component (they meet in front of the heart): a hull of the pair
    would cover the mediastinum between them; each lung gets its own hull instead."""
    image, labels = phantom(128)
    yy, xx = np.mgrid[:128, :128] / 128
    bridge = (np.abs(xx - 0.5) < 0.12) & (np.abs(yy - 0.3) < 0.03)
    image = image.copy()
    image[bridge] = -0.8
    mediastinum = (np.abs(xx - 0.5) < 0.05) & (np.abs(yy - 0.55) < 0.1)
    assert (image[mediastinum] > 0).all()
    lung = derive_lung_mask(image)
    assert lung[bridge].mean() > 0.9 and (lung & (labels == 1)).sum() / (labels == 1).sum() > 0.95
    assert lung[mediastinum].mean() < 0.05


@pytest.mark.data
def test_no_mediastinum_in_the_lungs_of_the_shared_slices_that_had_it(medseg_dir):
    """Slices whose lungs touch anteriorly: before the per-lung hull, 23-27 % of their mask was
    soft tissue (the mediastinum); a lung mask holds vessels, a few per cent."""
    from skimage.filters import threshold_otsu

    from gan.ctio import read_label_image, read_raster

    for slice_id in ("0010", "0043", "0048", "0063"):
        ct = read_raster(medseg_dir / "images" / f"{slice_id}.png")
        unit = ct.to_model_range()
        lesions = read_label_image(medseg_dir / "lesions" / f"{slice_id}.png")
        lung = derive_lung_mask(ct)
        bright = (unit > threshold_otsu(unit)) & lung & (lesions == 0)
        assert bright.sum() / lung.sum() < 0.08, slice_id


def test_lungs_cut_by_the_image_border_are_found_in_ct_small():
    """pydicom's CT_small.dcm is a 128x128 crop whose body fills the frame: both lungs run into
    the top corners. They are lung, not the air around the body (before, the slice had none)."""
    from pydicom.data import get_testdata_file
    from skimage import measure

    from gan.ctio import read_slice
    from gan.lung import lung_problem

    ct = read_slice(get_testdata_file("CT_small.dcm"))
    lung = derive_lung_mask(ct)
    regions = measure.regionprops(measure.label(lung))
    assert len(regions) == 2
    assert all(0.07 < r.area / lung.size < 0.16 for r in regions)
    assert 0.15 < lung.mean() < 0.3
    # one lung each side of the spine, both reaching the top edge
    assert sorted(r.centroid[1] < 0.4 * 128 for r in regions) == [False, True]
    assert all(r.bbox[0] == 0 for r in regions)
    hu = ct.pixels
    assert -900 < np.median(hu[lung]) < -650  # aerated parenchyma
    assert np.median(hu[~lung]) > -200  # soft tissue and bone are left out
    assert not lung[-40:].any()  # the back muscles at the bottom of the crop
    assert lung_problem(ct, lung) is None


def test_air_in_the_corners_of_a_frame_filling_body_is_not_lung():
    """A round body touching all four sides leaves air in the corners; those dark pieces meet
    only sides that the body reaches, as CT_small's lungs do, but are thin crescents."""
    image, labels = phantom(128)
    yy, xx = np.mgrid[:128, :128] / 127
    body = (xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.53**2
    image = np.where(body & (labels == 0), np.float32(0.7), image)
    corners = ~body
    assert corners[0, 0] and corners[-1, -1] and body[0, 64] and body[64, 0]
    lung = derive_lung_mask(image)
    assert not lung[corners].any()
    truth = labels == 1
    assert (lung & truth).sum() / truth.sum() > 0.95


def test_no_lung_is_a_problem():
    from gan.lung import lung_problem

    image, _ = phantom(96)
    body_only = np.where(image > -1, np.float32(0.7), image)
    assert "no lung" in lung_problem(body_only, derive_lung_mask(body_only))
    assert "no lung" in lung_problem(np.zeros((32, 32), np.float32), np.zeros((32, 32), bool))


def test_a_lung_of_nothing_but_the_known_lesions_is_no_lung():
    """derive_lung_mask forces lesion pixels inside: with no lung of its own, the mask is the
    lesions alone, and that is not a lung found."""
    from gan.lung import lung_problem

    image, labels = phantom(96)
    body_only = np.where(image > -1, np.float32(0.7), image)
    lesions = labels >= 2
    lung = derive_lung_mask(body_only, lesion_mask=lesions)
    assert lung.sum() == lesions.sum()
    assert "no lung" in lung_problem(body_only, lung, lesions)
    assert lung_problem(image, derive_lung_mask(image, lesion_mask=lesions), lesions) is None


def test_a_lung_covering_most_of_the_body_is_a_problem():
    """A thin bright ring on air: its dark inside is taken for lung, 80 % of the body."""
    from gan.lung import lung_problem

    yy, xx = np.mgrid[:96, :96] / 96
    r = np.hypot((xx - 0.5) / 0.45, (yy - 0.5) / 0.4)
    image = np.where(r < 1, np.float32(-0.8), np.float32(-1.0))
    image[(r < 1) & (r > 0.9)] = 0.7
    lung = derive_lung_mask(image)
    assert lung.sum() / (r < 1).sum() > 0.7
    reason = lung_problem(image, lung)
    assert reason is not None and "% of the body" in reason and "60 %" in reason


def test_the_body_fraction_threshold_is_the_named_constant(monkeypatch):
    """The phantom's lungs cover a known share of its body (the pixels brighter than the air);
    a threshold just above it accepts them, just below it rejects them."""
    import gan.lung as L

    image, labels = phantom(128)
    lung = derive_lung_mask(image)
    share = lung.sum() / (image > -1).sum()
    assert 0.3 < share < L.MAX_BODY_FRACTION
    monkeypatch.setattr(L, "MAX_BODY_FRACTION", share + 0.02)
    assert L.lung_problem(image, lung) is None
    monkeypatch.setattr(L, "MAX_BODY_FRACTION", share - 0.02)
    assert "% of the body" in L.lung_problem(image, lung)


@pytest.mark.data
def test_no_shared_slice_is_implausible(medseg_dir):
    """The batch and the app skip implausible lungs: none of the real slices may be one."""
    from gan.ctio import read_label_image, read_raster
    from gan.data import folder_ids
    from gan.lung import lung_problem

    for slice_id in folder_ids(medseg_dir):
        ct = read_raster(medseg_dir / "images" / f"{slice_id}.png")
        lesions = read_label_image(medseg_dir / "lesions" / f"{slice_id}.png")
        lung = derive_lung_mask(ct, lesion_mask=lesions)
        assert lung_problem(ct, lung, lesions) is None, slice_id
