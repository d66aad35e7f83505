"""``synth`` and ``batch`` on slices whose lung is implausible (issue 20): one line, no grey
patch synthesized from no lung."""

import csv

import numpy as np
import pytest

from gan.ctio import write_png
from tests.conftest import make_tiny_weights, phantom, write_phantom_folder
from tests.training_cli.conftest import train_here


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


def _synth(weights, tmp_path, labels):
    image, _ = phantom(64)
    write_png(tmp_path / "ct.png", ((image + 1) * 127.5).astype(np.uint8))
    write_png(tmp_path / "labels.png", labels)
    return train_here(
        "synth",
        "--checkpoint",
        weights,
        "--image",
        tmp_path / "ct.png",
        "--labels",
        tmp_path / "labels.png",
        "--out",
        tmp_path / "s.png",
        "--device",
        "cpu",
    )


@pytest.mark.parametrize("case", ["no_lung", "whole_body"])
def test_synth_of_an_implausible_lung_is_a_one_line_error(weights, tmp_path, capsys, case):
    image, labels = phantom(64)
    if case == "no_lung":
        labels = np.zeros_like(labels)
    else:  # lung everywhere inside the body
        labels = np.where(image > -1, np.maximum(labels, 1), 0).astype(np.uint8)
    rc = _synth(weights, tmp_path, labels)
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert ("no lung found" if case == "no_lung" else "% of the body") in err
    assert not (tmp_path / "s.png").exists()


def test_synth_of_a_plausible_lung_still_runs(weights, tmp_path, capsys):
    _, labels = phantom(64)
    assert _synth(weights, tmp_path, labels) == 0, capsys.readouterr().err
    assert (tmp_path / "s.png").exists()


def test_batch_skips_a_slice_without_lung_and_lists_it(weights, tmp_path, capsys):
    folder = write_phantom_folder(tmp_path / "data", n=2)
    image, _ = phantom(64)
    body_only = np.where(image > -1, np.float32(0.7), image)
    write_png(folder / "images" / "0002.png", ((body_only + 1) * 127.5).astype(np.uint8))
    write_png(folder / "lesions" / "0002.png", np.zeros((64, 64), np.uint8))
    out = tmp_path / "out"
    args = ("batch", "--synthesis", "whole-lung", "--checkpoint", weights)
    args += ("--data", folder, "--out", out)
    rc = train_here(*args, "--per-input", "2", "--no-progress", "--device", "cpu")
    stdout = capsys.readouterr().out
    assert rc == 0
    notes = [line for line in stdout.splitlines() if line.startswith("note: ")]
    assert notes == ["note: skipped data/images/0002.png: no lung found"]
    assert "1 input slices skipped" in stdout
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert sorted(r["name"] for r in rows) == ["0000_v00", "0000_v01", "0001_v00", "0001_v01"]
    skipped = list(csv.DictReader(open(out / "skipped_inputs.csv")))
    assert skipped == [
        {
            "name": "0002",
            "source": "data/images/0002.png",
            "source_slice": "",
            "reason": "no lung found",
        }
    ]
