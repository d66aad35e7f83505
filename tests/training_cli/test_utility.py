"""The utility experiment (paper Tables III/IV): protocol, metrics, CI and the command end to end."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.ctio import write_png
from tests.conftest import make_tiny_weights, phantom
from tests.training_cli.conftest import cli
from training_cli.segmenter import (
    CLASSES,
    confidence_interval,
    fold_scores,
    lesion_targets,
    split_folds,
)
from training_cli.utility import arm_composition, arm_list, parse_fractions, resolve_split

TRAIN = ["0000", "0001", "0002", "0003"]
TEST = ["0004", "0005"]


def write_distinct_folder(root: Path, n: int = 6, size: int = 64) -> Path:
    """Phantom slices that differ from each other (noise and a shifted lesion per slice), so a
    test slice can be recognised wherever it turns up."""
    (root / "images").mkdir(parents=True)
    (root / "lesions").mkdir()
    for i in range(n):
        image, labels = phantom(size)
        rng = np.random.default_rng(100 + i)
        image = np.clip(image + rng.normal(0, 0.08, image.shape), -1, 1)
        lesions = np.where(labels >= 2, labels - 1, 0).astype(np.uint8)
        lesions = np.roll(lesions, i, axis=0) * (labels > 0)
        write_png(root / "images" / f"{i:04d}.png", ((image + 1) * 127.5).astype(np.uint8))
        write_png(root / "lesions" / f"{i:04d}.png", lesions.astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("utility")
    data = write_distinct_folder(root / "data")
    split = root / "split"
    split.mkdir()
    (split / "train.txt").write_text("".join(f"{i}\n" for i in TRAIN))
    (split / "test.txt").write_text("".join(f"{i}\n" for i in TEST))
    weights = make_tiny_weights(root / "tiny.safetensors")
    return {"root": root, "data": data, "split": split, "weights": weights}


SMALL = [
    "--size",
    "64",
    "--test-augment",
    "5",
    "--folds",
    "5",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--channels",
    "8,16,32",
    "--fractions",
    "0,0.25,0.5",
    "--no-progress",
]


def test_confidence_interval_on_known_numbers():
    mean, half, n = confidence_interval([1, 2, 3, 4, 5])
    # t(0.975, 4) = 2.776445; sd = sqrt(2.5)
    assert n == 5 and mean == pytest.approx(3.0)
    assert half == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-5)
    mean, half, n = confidence_interval([0.5, float("nan"), 0.7, None])
    assert n == 2 and mean == pytest.approx(0.6)
    assert half == pytest.approx(12.706205 * math.sqrt(0.02) / math.sqrt(2), rel=1e-5)
    assert math.isnan(confidence_interval([0.4])[1]) and math.isnan(confidence_interval([])[0])


def test_fold_scores_pool_pixels_and_match_hand_counts():
    target = np.zeros((2, 4, 4), np.int64)
    pred = np.zeros((2, 4, 4), np.int64)
    target[0, 0, :4] = 1  # 4 GGO pixels in image 0
    pred[0, 0, :2] = 1  # 2 found
    pred[0, 1, 0] = 1  # 1 false positive
    target[1, 3, :2] = 2  # 2 consolidation pixels in image 1, predicted as GGO
    pred[1, 3, :2] = 1
    s = fold_scores(pred, target)
    # GGO pooled over both images: TP 2, FP 1 + 2, FN 2, TN 32 - 7
    assert s["ggo"]["dice"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 2))
    assert s["ggo"]["sensitivity"] == pytest.approx(2 / 4)
    assert s["ggo"]["specificity"] == pytest.approx(25 / 28)
    # consolidation: TP 0, FN 2, no prediction
    assert s["consolidation"]["dice"] == 0 and s["consolidation"]["sensitivity"] == 0
    assert s["consolidation"]["specificity"] == 1
    # infection (either class): TP 2 + 2, FP 1, FN 2
    assert s["infection"]["dice"] == pytest.approx(8 / (8 + 1 + 2))
    assert s["infection"]["sensitivity"] == pytest.approx(4 / 6)


def test_fold_dice_on_one_image_equals_monai_dice_metric():
    from monai.metrics import DiceMetric

    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, (1, 16, 16))
    pred = np.where(rng.random((1, 16, 16)) < 0.7, target, rng.integers(0, 3, (1, 16, 16)))
    hot = lambda a: torch.nn.functional.one_hot(torch.from_numpy(a), 3).permute(0, 3, 1, 2)  # noqa: E731
    per_class = DiceMetric(include_background=False, reduction="none")(hot(pred), hot(target))
    s = fold_scores(pred, target)
    assert s["ggo"]["dice"] == pytest.approx(float(per_class[0, 0]))
    assert s["consolidation"]["dice"] == pytest.approx(float(per_class[0, 1]))


def test_lesion_targets_and_folds():
    assert lesion_targets(np.array([0, 1, 2, 3])).tolist() == [0, 0, 1, 2]
    folds = split_folds(23, 10)
    assert len(folds) == 10 and sorted(np.concatenate(folds).tolist()) == list(range(23))
    with pytest.raises(ValueError, match="folds"):
        split_folds(5, 10)


def test_arms_are_nested_and_sized():
    arms = arm_list("both", [0.0, 0.1, 0.5])
    assert arms == [("real", 0.0), ("replace", 0.1), ("replace", 0.5), ("add", 0.1), ("add", 0.5)]
    r10, s10 = arm_composition(64, 64, "replace", 0.1, seed=0)
    r50, s50 = arm_composition(64, 64, "replace", 0.5, seed=0)
    assert (len(r10), len(s10), len(r50), len(s50)) == (58, 6, 32, 32)
    assert set(s10) <= set(s50) and set(r50) <= set(r10)
    real, syn = arm_composition(64, 64, "add", 0.3, seed=0)
    assert len(real) == 64 and len(syn) == 19
    with pytest.raises(ValueError, match="synthetic"):
        arm_composition(64, 10, "add", 0.5, seed=0)
    with pytest.raises(ValueError):
        parse_fractions("0,1.5", "replace")
    assert parse_fractions("0.5,0,0.1,0.1", "add") == [0.0, 0.1, 0.5]


def test_a_generator_trained_on_test_slices_is_refused(setup, tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(setup["weights"].read_bytes())
    ids = tmp_path / "all.txt"
    ids.write_text("".join(f"{i}\n" for i in TRAIN + TEST))
    weights.with_suffix(".json").write_text(
        json.dumps({"training": {"options": {"ids": str(ids)}}})
    )
    with pytest.raises(ValueError, match="trained on test slices"):
        resolve_split(str(setup["split"]), weights)
    ids.write_text("".join(f"{i}\n" for i in TRAIN))
    split = resolve_split(str(setup["split"]), weights)
    assert split["model_training_ids_known"] and split["test"] == TEST


def test_no_test_slice_reaches_synthesis_or_segmenter_training(setup, tmp_path, monkeypatch):
    """Spies on the batch exporter's inputs and on every segmenter training set: neither ever
    holds a test slice (recognised by its pixels at the segmenter's resolution)."""
    import gan.batch
    import training_cli.segmenter as segmenter
    from training_cli.__main__ import main
    from training_cli.data_source import load_slices_for_ids

    synthesized, trained = [], []
    real_inputs = gan.batch.folder_inputs

    def spy_inputs(folder, ids=None):
        for item in real_inputs(folder, ids):
            synthesized.append(item.source_id)
            yield item

    real_train = segmenter.train_segmenter

    def spy_train(images, label_maps, *args, **kwargs):
        trained.append(np.array(images))
        return real_train(images, label_maps, *args, **kwargs)

    monkeypatch.setattr(gan.batch, "folder_inputs", spy_inputs)
    monkeypatch.setattr(segmenter, "train_segmenter", spy_train)
    out = tmp_path / "report"
    argv = ["utility", "--data", str(setup["data"]), "--checkpoint", str(setup["weights"])]
    argv += ["--split", str(setup["split"]), "--seeds", "0", "--out", str(out), *SMALL]
    assert main(argv) == 0
    assert synthesized and set(synthesized) <= set(TRAIN)
    tests = load_slices_for_ids(setup["data"], TEST, 64).images
    trains = load_slices_for_ids(setup["data"], TRAIN, 64).images
    assert len(trained) == 5  # real, replace 25/50 %, add 25/50 %
    for images in trained:
        for image in images:
            assert not any(np.allclose(image, t, atol=1e-6) for t in tests)
    assert any(np.allclose(trained[0][0], t, atol=1e-6) for t in trains)  # the spy can see
    for arm in (out / "arms").glob("*.json"):
        record = json.loads(arm.read_text())
        assert set(record["real_used"]) <= set(TRAIN)
        assert {name.rsplit("_v", 1)[0] for name in record["synthetic_used"]} <= set(TRAIN)


def test_utility_end_to_end_on_six_slices_and_resume(setup, tmp_path):
    out = tmp_path / "report"
    args = ["utility", "--data", setup["data"], "--checkpoint", setup["weights"]]
    args += ["--split", setup["split"], "--seeds", "0,1", "--out", out, *SMALL]
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    for name in ("report.md", "report.json", "report.csv", "dice.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["resolution"] == 64 and report["n_test_images"] == 10
    assert report["n_train_slices"] == 4 and "not the paper" in report["note"]
    assert report["hardware"]
    rows = report["summary"]
    assert {(r["experiment"], r["fraction"]) for r in rows} == {
        (e, f) for e in ("replace", "add") for f in (0.0, 0.25, 0.5)
    }
    for r in rows:
        assert r["n_folds"] == 5 and r["n_seeds"] == 2 and set(r["per_seed"]) == {"0", "1"}
        assert r["mean"] is None or 0.0 <= r["mean"] <= 1.0
    by = {(r["experiment"], r["fraction"]): r for r in rows if r["class"] == "ggo"}
    assert (by["replace", 0.5]["n_real"], by["replace", 0.5]["n_synthetic"]) == (2, 2)
    assert (by["add", 0.5]["n_real"], by["add", 0.5]["n_synthetic"]) == (4, 2)
    with open(out / "report.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 5 * 2 * 5 * 3  # arms x seeds x folds x classes
    md = (out / "report.md").read_text()
    assert "Table III" in md and "Table IV" in md and "| 50% | 4 + 2 |" in md
    assert len(list((out / "arms").glob("*.json"))) == 10
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "arms").glob("*.json")}
    again = cli(*args)  # everything done: the rerun trains nothing
    assert again.returncode == 0, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "arms").glob("*.json")} == stamps


def test_utility_bad_options_give_one_line(setup, tmp_path):
    result = cli(
        "utility", "--data", setup["data"], "--checkpoint", setup["weights"],
        "--split", setup["split"], "--fractions", "0,abc", "--out", tmp_path / "r",
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        result.stderr.strip().startswith("error: --fractions") and "Traceback" not in result.stderr
    )
    result = cli("utility", "--data", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_summary_pairs_each_arm_with_the_same_seeds_real_only_network():
    from training_cli.utility import finding, summarize

    def arm(experiment, fraction, seed, dice):
        fold = {c: {"dice": dice, "sensitivity": 0.5, "specificity": 0.9} for c in CLASSES}
        return {
            "experiment": experiment,
            "fraction": fraction,
            "seed": seed,
            "n_real": 10,
            "n_synthetic": round(fraction * 10),
            "folds": [fold, fold],
        }

    # seed 1 is a far better network than seed 0 whatever its data; the synthetic slices add
    # +0.100 and +0.102 to each seed's own Dice: unresolved unpaired, resolved paired
    results = [arm("real", 0.0, 0, 0.2), arm("real", 0.0, 1, 0.6)]
    results += [arm("add", 0.5, 0, 0.3), arm("add", 0.5, 1, 0.702)]
    rows = summarize(results, "add")
    r = next(
        r for r in rows if r["fraction"] == 0.5 and r["class"] == "ggo" and r["metric"] == "dice"
    )
    assert r["mean"] == pytest.approx(0.501) and r["per_seed"] == {"0": 0.3, "1": 0.702}
    assert r["change_vs_0"] == pytest.approx(0.101)
    # differences 0.100, 0.102: sd 0.001 * sqrt(2), over sqrt(2) seeds, times t(0.975, 1)
    assert r["change_ci95_seeds"] == pytest.approx(12.706205 * 0.001, rel=1e-4)
    assert r["ci95_seeds"] > 1.0  # the unpaired spread swamps the effect
    assert "infection: 50% better" in finding(rows)
    base = next(r for r in rows if r["fraction"] == 0.0 and r["metric"] == "dice")
    assert base["change_vs_0"] == 0.0


def test_utility_compares_the_synthesis_kinds_on_one_shared_real_arm(setup, tmp_path, monkeypatch):
    """--synthesis whole-lung,inpaint,procedural: each kind gets the same arms and seeds, the 0 %
    arm is trained once (per seed) and shared, and the comparison has one row per kind; a later
    run of one kind reuses that 0 % arm and its own arms."""
    import training_cli.segmenter as segmenter
    from training_cli.__main__ import main

    trained = []
    real_train = segmenter.train_segmenter

    def spy_train(images, label_maps, *args, **kwargs):
        trained.append(len(images))
        return real_train(images, label_maps, *args, **kwargs)

    monkeypatch.setattr(segmenter, "train_segmenter", spy_train)
    inpaint = make_tiny_weights(tmp_path / "inpaint.safetensors", mode="inpaint")
    kinds = ["whole-lung", "inpaint", "procedural"]
    out = tmp_path / "report"
    argv = ["utility", "--data", str(setup["data"]), "--checkpoint", str(setup["weights"])]
    argv += ["--inpaint-checkpoint", str(inpaint), "--split", str(setup["split"])]
    argv += ["--seeds", "0", "--out", str(out), *SMALL, "--fractions", "0,0.25"]
    argv += ["--experiment", "add"]
    assert main([*argv, "--synthesis", ",".join(kinds)]) == 0
    assert trained == [4, 5, 5, 5]  # the real arm once, then 4 real + 1 synthetic per kind
    report = json.loads((out / "report.json").read_text())
    assert report["synthesis"] == kinds
    comparison = report["comparison"]
    assert [r["synthesis"] for r in comparison] == kinds
    assert all((r["experiment"], r["fraction"]) == ("add", 0.25) for r in comparison)
    assert all(set(r["infection"]) >= {"change_vs_0", "change_ci95_seeds"} for r in comparison)
    rows = report["summary"]
    assert {(r["synthesis"], r["fraction"]) for r in rows} == {
        (k, f) for k in kinds for f in (0, 0.25)
    }
    base = [
        r["per_seed"]
        for r in rows
        if r["fraction"] == 0 and r["class"] == "ggo" and r["metric"] == "dice"
    ]
    assert len(base) == 3 and base[0] == base[1] == base[2]  # one shared real-only network
    arms = sorted(p.name for p in (out / "arms").glob("*.json"))
    assert arms == [
        "add-0.25-seed0.json",
        "inpaint-add-0.25-seed0.json",
        "procedural-add-0.25-seed0.json",
        "real-0.00-seed0.json",
    ]
    for name in ("synthesis.png", "dice.png", "dice-inpaint.png", "dice-procedural.png"):
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    assert "Which kind of synthetic data helps?" in md
    assert sum(line.startswith("| add | 25% |") for line in md.splitlines()) == 3
    trained.clear()
    assert main([*argv, "--synthesis", "inpaint"]) == 0
    assert trained == []  # its arm and the shared real arm were kept
