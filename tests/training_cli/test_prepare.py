import csv
import json

import nibabel as nib
import numpy as np
import pytest

from gan.ctio import read_label_image, read_raster
from tests.training_cli.conftest import cli


def _volumes(tmp_path):
    """A 630x630x5 CT in HU and a lesion volume with lesions on slices 1 and 3 only."""
    ct = np.full((630, 630, 5), -1000, np.int16)  # air
    ct[100:530, 100:530, :] = 40  # soft tissue
    ct[150:300, 150:480, :] = -600  # lung: mid-grey in the lung window
    lesions = np.zeros((630, 630, 5), np.uint16)
    lesions[180:230, 200:260, 1] = 1  # GGO
    lesions[250:280, 300:350, 3] = 2  # consolidation
    affine = np.diag([-0.68, -0.68, 5.0, 1.0])
    (tmp_path / "im").mkdir()
    (tmp_path / "msk").mkdir()
    nib.save(nib.Nifti1Image(ct, affine), str(tmp_path / "im" / "7.nii.gz"))
    nib.save(nib.Nifti1Image(lesions, affine), str(tmp_path / "msk" / "7.nii.gz"))
    return tmp_path / "im", tmp_path / "msk"


def test_nifti_volumes_convert_to_the_slice_layout(tmp_path):
    images, labels = _volumes(tmp_path)
    out = tmp_path / "converted"
    result = cli(
        "prepare",
        "--nifti-images",
        images,
        "--nifti-labels",
        labels,
        "--out",
        out,
        "--cache-dir",
        tmp_path / "cache",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert [(r["id"], r["volume"], r["slice_index"]) for r in rows] == [
        ("7_0001", "7.nii.gz", "1"),
        ("7_0003", "7.nii.gz", "3"),
    ]
    ct = read_raster(out / "images" / "7_0001.png")
    assert ct.shape == (512, 512) and ct.value_kind == "uint8"
    # lung window level -600 / width 1500: -600 HU -> the middle of the 8-bit range, air -> 0
    assert abs(int(np.median(ct.pixels[150:240, 150:240])) - 128) <= 1
    assert ct.pixels[0, 0] == 60  # air, -1000 HU: (-1000 + 1350) / 1500 * 255 = 59.5
    lesion = read_label_image(out / "lesions" / "7_0001.png")
    assert (
        set(np.unique(lesion)) == {0, 1} and int(rows[0]["ggo_px"]) == int((lesion == 1).sum()) > 0
    )
    assert json.loads((out / "dataset.json").read_text())["window"]["level"] == -600
    assert "2 slices" in result.stdout and "cache:" in result.stdout
    everything = cli(
        "prepare",
        "--nifti-images",
        images,
        "--nifti-labels",
        labels,
        "--out",
        tmp_path / "all",
        "--all-slices",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert everything.returncode == 0 and len(list((tmp_path / "all" / "images").iterdir())) == 5


def test_unpaired_or_bad_label_volumes_are_refused(tmp_path):
    images, labels = _volumes(tmp_path)
    bad = np.zeros((630, 630, 5), np.uint16)
    bad[10, 10, 2] = 255
    nib.save(nib.Nifti1Image(bad, np.eye(4)), str(labels / "7.nii.gz"))
    result = cli(
        "prepare",
        "--nifti-images",
        images,
        "--nifti-labels",
        labels,
        "--out",
        tmp_path / "o",
        "--all-slices",
    )
    assert result.returncode == 1 and "255" in result.stderr and "MedSeg" in result.stderr
    (labels / "8.nii.gz").write_bytes((labels / "7.nii.gz").read_bytes())
    result = cli(
        "prepare", "--nifti-images", images, "--nifti-labels", labels, "--out", tmp_path / "o"
    )
    assert result.returncode == 1 and "without a partner" in result.stderr


@pytest.mark.data
def test_prepare_checks_the_shared_folder(medseg_dir, tmp_path):
    split = tmp_path / "s.txt"
    split.write_text("0001\n0085\n")
    result = cli(
        "prepare",
        "--data",
        medseg_dir,
        "--ids",
        split,
        "--size",
        "128",
        "--cache-out",
        tmp_path / "c.npz",
    )
    assert result.returncode == 0, result.stderr
    assert "2 slices" in result.stdout and "inside the derived lung" in result.stdout
    assert (tmp_path / "c.npz").exists()
