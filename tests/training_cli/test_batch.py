import csv
import hashlib
import json

import numpy as np
import pytest

from gan.batch import augment_label_map, folder_inputs, run_batch
from gan.ctio import read_label_image, read_png_text
from gan.synthesizer import Synthesizer
from tests.conftest import make_tiny_weights, phantom, write_phantom_folder
from tests.training_cli.conftest import cli


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = make_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")
    return path


def weights_sha256(path):
    """The model SHA-256 as gan.synthesizer.Synthesizer.sha256 defines it: SHA-256 of the weights
    file's bytes, worked out here with hashlib alone."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_provenance(out, rows, sha):
    """Every manifest row and the PNG text of every image it names hold ``sha`` and the row's
    seed."""
    for row in rows:
        assert row["model_sha256"] == sha
        text = read_png_text(out / row["image"])
        assert text["ModelSHA256"] == sha and text["Seed"] == row["seed"]
        assert text["Synthetic"].startswith("yes")


@pytest.fixture()
def folder(tmp_path):
    return write_phantom_folder(tmp_path / "data")


def test_augmented_maps_keep_lesions_in_the_lung_and_are_seeded():
    _, labels = phantom(96)
    a, params = augment_label_map(labels, 5)
    b, _ = augment_label_map(labels, 5)
    assert np.array_equal(a, b) and "paper_augmentation_seed" in params
    assert np.array_equal(a > 0, labels > 0) and not ((a >= 2) & (labels == 0)).any()


def test_batch_writes_files_and_manifest_and_resumes(folder, weights, tmp_path):
    out = tmp_path / "out"
    result = cli(
        "batch",
        "--synthesis",
        "whole-lung",
        "--checkpoint",
        weights,
        "--data",
        folder,
        "--out",
        out,
        "--per-input",
        "2",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert len(rows) == 6 and {r["name"] for r in rows} == {
        f"{i:04d}_v{v:02d}" for i in range(3) for v in range(2)
    }
    for row in rows:
        assert (out / row["image"]).exists() and (out / row["labels"]).exists()
        assert set(np.unique(read_label_image(out / row["labels"]))) <= {0, 1, 2, 3}
        assert "non-commercial" in row["licence"]
    check_provenance(out, rows, weights_sha256(weights))
    again = cli(
        "batch",
        "--synthesis",
        "whole-lung",
        "--checkpoint",
        weights,
        "--data",
        folder,
        "--out",
        out,
        "--per-input",
        "2",
        "--no-progress",
    )
    assert "Wrote 0 samples (6 already there)" in again.stdout


def test_nnunet_layout_and_cancel_leaves_nothing_partial(folder, weights, tmp_path):
    synthesizer = Synthesizer(weights, device="cpu")
    out = tmp_path / "nn"
    calls = {"n": 0}

    def cancel_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    result = run_batch(
        folder_inputs(folder),
        synthesizer,
        out,
        per_input=2,
        layout="nnunet",
        cancelled=cancel_after_three,
    )
    assert result == {"written": 3, "skipped": 0, "cancelled": True}
    images = sorted(p.name for p in (out / "imagesTr").iterdir())
    labels = sorted(p.name for p in (out / "labelsTr").iterdir())
    assert len(images) == len(labels) == 3 and all(n.endswith("_0000.png") for n in images)
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary files left
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "lung": 1, "GGO": 2, "consolidation": 3}
    assert dataset["numTraining"] == 3 and dataset["file_ending"] == ".png"
    rest = run_batch(folder_inputs(folder), synthesizer, out, per_input=2, layout="nnunet")
    assert rest == {"written": 3, "skipped": 3, "cancelled": False}
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert len(rows) == 6
    check_provenance(out, rows, weights_sha256(weights))
