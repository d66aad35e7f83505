"""Realism metrics on known cases: a classifier two-sample test that cannot tell identical images
apart and always catches a flat fill, and a periodicity score that sees a dot grid but not a shift."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from training_cli import realism as R

SIZE = 128
# the label protocol with a smaller patch, fewer steps and one seed: seconds, not minutes
FAST = dataclasses.replace(R.LABEL_PROTOCOL, patch=24, window=32, steps=80, seeds=(0,))


def texture(n: int, seed: int = 0) -> np.ndarray:
    """Smoothed noise in [-1, 1]: lung-like random texture with no period."""
    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.normal(size=(n, SIZE, SIZE)), (0, 1.5, 1.5))
    return np.clip(noise / noise.std() * 0.3 - 0.5, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def case():
    real = texture(12)
    labels = np.zeros((12, SIZE, SIZE), np.uint8)
    labels[:, 8:-8, 8:-8] = 1  # one big square "lung"
    ids = [f"s{i // 2}#aug{i % 2}" for i in range(12)]  # 6 slices, two images each
    return real, labels, ids


def test_one_slice_gives_a_report_that_does_not_count(case):
    real, labels, ids = case
    report = R.realism_report(real[:2], real[:2], labels[:2], ["s0#aug0", "s0#aug1"])
    assert (
        report["c2st"] is None and not report["counts"] and "fewer than 2 slices" in report["error"]
    )
    assert "n/a" in R.format_realism(report)


def test_balanced_accuracy_is_chance_for_a_classifier_that_guesses_the_larger_class():
    x = np.zeros((30, 24, 24), np.float32)  # nothing to learn: every patch alike
    y = np.r_[np.zeros(20), np.ones(10)]
    assert R._fit_and_score(x, y, x, y, FAST, 0) == pytest.approx(0.5)


def test_valid_corners_keep_the_patch_inside_the_region():
    region = np.zeros((20, 20), bool)
    region[5:15, 5:15] = True
    corners = R.valid_corners(region, 4, 1.0)
    assert {tuple(c) for c in corners} == {(r, c) for r in range(5, 12) for c in range(5, 12)}
    assert len(R.valid_corners(region, 4, 0.5)) > len(corners)
    assert len(R.valid_corners(region, 11, 1.0)) == 0


def test_folds_never_split_a_slice_and_cover_every_slice():
    groups = [f"s{i // 3}" for i in range(12)]
    for _seed, parts in R.fold_splits(groups, R.LABEL_PROTOCOL):
        assert len(parts) == 2 and parts[0].isdisjoint(parts[1])
        assert parts[0] | parts[1] == set(groups)
    with pytest.raises(ValueError, match="at least 2 slices"):
        R.fold_splits(["one"] * 4, R.LABEL_PROTOCOL)


def test_identical_images_score_chance_and_a_flat_fill_is_caught(case):
    real, labels, ids = case
    same = R.realism_report(real, real.copy(), labels, ids, controls=False, protocol=FAST)
    assert same["c2st"]["mean"] == pytest.approx(0.5, abs=0.02)  # identical inputs: no signal
    flat = R.realism_report(
        real, R.flat_fill(real, labels, labels > 0), labels, ids, controls=False, protocol=FAST
    )
    assert flat["c2st"]["mean"] >= 0.95
    assert flat["periodicity"]["mean"] < 0.9  # nothing periodic, nothing at all


def test_a_dot_grid_on_real_texture_is_periodic_and_a_shifted_copy_is_not(case):
    real, labels, ids = case
    groups = [i.split("#")[0] for i in ids]

    def score(synthetic):
        return R.periodicity_at_windows(real, synthetic, labels > 0, groups, FAST)["mean"]

    grid = real.copy()
    grid[:, ::8, ::8] += 0.6  # bright dots every 8 px: a transposed-conv checkerboard
    shifted = np.roll(real, (7, 11), axis=(1, 2))  # the same texture, other places
    assert score(real.copy()) == pytest.approx(1.0)
    assert score(grid) > 3
    assert score(shifted) == pytest.approx(1.0, abs=0.35)
    assert score(grid) > 3 * score(shifted)


def test_the_report_carries_its_controls_and_says_whether_it_counts(case):
    real, labels, ids = case
    report = R.realism_report(real, real.copy(), labels, ids, protocol=FAST)
    controls = report["controls"]
    assert controls["real_vs_real"]["mean"] <= 0.6
    assert controls["flat_fill"]["c2st"]["mean"] >= 0.9
    assert set(controls["in_range"]) == {"real_vs_real", "flat_fill", "blur"}
    limits = R.CONTROL_LIMITS
    assert controls["in_range"]["flat_fill"] == (
        controls["flat_fill"]["c2st"]["mean"] >= limits["flat_fill_min"]
    )
    assert controls["in_range"]["real_vs_real"] == (
        controls["real_vs_real"]["mean"] <= limits["real_vs_real_max"]
    )
    assert not report["counts"]  # a test protocol never counts, whatever its controls say
    assert report["protocol"]["version"] == R.PROTOCOL_VERSION
    assert len(report["c2st"]["runs"]) == 2  # 2 folds x 1 seed
    assert len(R.fold_splits(ids, R.LABEL_PROTOCOL)) == 3  # the standard protocol: 3 seeds
    assert "controls:" in R.format_realism(report)
