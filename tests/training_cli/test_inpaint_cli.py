"""The inpaint mode through the CLI: train (warm-started from a label model, resumable), evaluate
on seeded masks, synth with and without a mask, export as the default of its mode."""

import json

import numpy as np
import pytest

from gan.ctio import read_png_text, write_png
from tests.conftest import phantom
from tests.training_cli.conftest import TINY, cli, metrics

LOSS_KEYS = ("d_real_fake", "g_adv", "g_fm", "g_total", "g_l1")


@pytest.fixture(scope="module")
def label_run(phantom_npz, tmp_path_factory):
    run = tmp_path_factory.mktemp("label")
    assert cli("train", *TINY, "--data", phantom_npz, "--out", run, "--epochs", "1").returncode == 0
    return run / "checkpoints" / "final.pt"


@pytest.fixture(scope="module")
def inpaint_run(phantom_npz, label_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("inpaint")
    result = cli(
        "train",
        *TINY,
        "--data",
        phantom_npz,
        "--out",
        run,
        "--mode",
        "inpaint",
        "--stage",
        "joint",
        "--lambda-l1",
        "10",
        "--init-generator",
        label_run,
        "--epochs",
        "2",
    )
    assert result.returncode == 0, result.stderr
    return run


def test_inpaint_training_logs_l1_keeps_its_mode_and_resumes_bit_for_bit(
    inpaint_run, phantom_npz, label_run, tmp_path
):
    record = json.loads((inpaint_run / "training_options.json").read_text())
    assert record["model_config"]["generator"]["mode"] == "inpaint"
    assert record["options"]["lambda_l1"] == 10.0
    logged = metrics(inpaint_run)
    assert len(logged) == 8 and all(r["g_l1"] > 0 for r in logged)
    assert (inpaint_run / "samples" / "joint_e002.png").is_file()
    parts = tmp_path / "parts"
    args = ["--mode", "inpaint", "--stage", "joint", "--lambda-l1", "10"]
    stopped = cli(
        "train", *TINY, "--data", phantom_npz, "--out", parts, *args,
        "--init-generator", label_run, "--epochs", "2", "--max-steps", "3",
    )  # fmt: skip
    assert stopped.returncode == 0, stopped.stderr
    assert cli("train", "--resume", parts, "--workers", "0", "--no-progress").returncode == 0
    for x, y in zip(logged, metrics(parts), strict=True):
        assert {k: x[k] for k in LOSS_KEYS} == {k: y[k] for k in LOSS_KEYS}


def test_bad_mode_combinations_are_one_line_errors(phantom_npz, inpaint_run, tmp_path):
    result = cli(
        "train", *TINY, "--data", phantom_npz, "--out", tmp_path / "a", "--lambda-l1", "-1"
    )
    assert result.returncode == 1 and "--lambda-l1 must be 0 or more" in result.stderr
    # an inpaint generator cannot warm-start a label one
    result = cli(
        "train", *TINY, "--data", phantom_npz, "--out", tmp_path / "b",
        "--init-generator", inpaint_run / "checkpoints" / "final.pt",
    )  # fmt: skip
    assert result.returncode == 1 and "cannot start a 'label' one" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_inpaint_reports_masked_metrics_and_seam_and_refuses_the_wrong_mode(
    inpaint_run, label_run, phantom_npz, tmp_path
):
    final = inpaint_run / "checkpoints" / "final.pt"
    common = ["--data", phantom_npz, "--augment", "2", "--no-fid"]
    out = tmp_path / "inpaint.json"
    result = cli("evaluate", "--checkpoint", final, "--mode", "inpaint", *common, "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["mode"] == "inpaint" and report["masks"]["mean_px"] > 0
    assert set(report["masked"]) == {"psnr", "ssim", "rmse"}
    assert report["seam"]["mean"] > 0 and "seam score" in result.stdout
    # the label-only model on the same masks: same rows, same mask sizes
    out2 = tmp_path / "label.json"
    result = cli("evaluate", "--checkpoint", label_run, "--paste-in-masks", *common, "--out", out2)
    assert result.returncode == 0, result.stderr
    label = json.loads(out2.read_text())
    assert label["mode"] == "label" and label["masks"] == report["masks"]
    import csv

    tables = [list(csv.DictReader(open(p.with_suffix(".csv")))) for p in (out, out2)]
    assert [(r["id"], r["mask_px"]) for r in tables[0]] == [
        (r["id"], r["mask_px"]) for r in tables[1]
    ]
    # outside the masks both are the real image, so complemented beats masked PSNR for both
    for r in (report, label):
        assert r["complemented"]["psnr"] > r["masked"]["psnr"]
    wrong = cli("evaluate", "--checkpoint", label_run, "--mode", "inpaint", *common, "--out", out)
    assert wrong.returncode == 1
    assert "label-mode generator, but an inpaint-mode one is needed" in wrong.stderr


def test_synth_inpaint_keeps_every_pixel_outside_the_mask(inpaint_run, tmp_path):
    final = inpaint_run / "checkpoints" / "final.pt"
    image, labels = phantom(80)
    ct = ((image + 1) * 127.5).astype(np.uint8)
    write_png(tmp_path / "ct.png", ct)
    write_png(tmp_path / "labels.png", labels)
    mask = np.zeros((80, 80), np.uint8)
    mask[30:50, 20:40] = 255
    write_png(tmp_path / "mask.png", mask)
    common = ["synth", "--checkpoint", final, "--mode", "inpaint", "--image", tmp_path / "ct.png"]
    common += ["--labels", tmp_path / "labels.png"]
    result = cli(*common, "--mask", tmp_path / "mask.png", "--out", tmp_path / "a.png")
    assert result.returncode == 0, result.stderr
    import cv2

    out = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(out[mask == 0], ct[mask == 0])
    assert "inpainted" in read_png_text(tmp_path / "a.png")["Synthetic"]
    # without --mask: the lesions plus the margin
    result = cli(*common, "--margin-mm", "2", "--out", tmp_path / "b.png")
    assert result.returncode == 0 and "lesions + 2 mm" in result.stdout
    out = cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)
    far = labels == 1  # healthy lung away from the lesions is untouched...
    from gan.inpaint import dilate

    far &= ~dilate(labels >= 2, 4)
    np.testing.assert_array_equal(out[far], ct[far])
    # a 0/1/2 "mask", and a label checkpoint, are refused in one line
    write_png(tmp_path / "bad.png", (mask // 255 * 2).astype(np.uint8) + (mask // 255))
    bad = cli(*common, "--mask", tmp_path / "bad.png", "--out", tmp_path / "c.png")
    assert bad.returncode == 1 and "binary mask" in bad.stderr


def test_export_registers_an_inpaint_default_per_mode(
    inpaint_run, label_run, tmp_path, monkeypatch
):
    from gan.synthesizer import Synthesizer
    from training_cli.__main__ import main

    models = tmp_path / "resources" / "models"
    models.mkdir(parents=True)
    monkeypatch.setattr("gan.paths.resources_dir", lambda: tmp_path / "resources")
    final = str(inpaint_run / "checkpoints" / "final.pt")
    out = str(models / "tiny-inpaint.safetensors")
    assert (
        main(["export", "--checkpoint", final, "--out", out, "--register-default", "inpaint"]) == 0
    )
    wrong = ["export", "--checkpoint", str(label_run), "--out", str(models / "x.safetensors")]
    assert main([*wrong, "--register-default", "inpaint"]) == 1
    index = json.loads((models / "index.json").read_text())
    assert list(index["defaults"]) == ["inpaint"]
    assert Synthesizer("default", device="cpu", mode="inpaint").mode == "inpaint"
