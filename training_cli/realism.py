"""Realism metrics that see what FID/KID miss: a classifier two-sample test and a periodicity score.

**C2ST** (classifier two-sample test; Lopez-Paz & Oquab, ICLR 2017): a small CNN learns to tell real
patches from synthetic patches cut at the same places; its accuracy on slices it never saw is the
score. 0.5: indistinguishable; 1.0: every patch caught. The slices (not the images: augmentations
of one slice stay together) are split in two folds, the classifier trains on one and is scored on
the other and vice versa, for three seeds; the report gives the mean and the spread of those six.

**Periodicity**: the mean power spectrum of Hann-windowed windows inside the region; the ratio by
which the most peaked frequency stands above the median of its ring (the frequencies at the same
radius) is the image set's peak ratio, and the score is synthetic ÷ real at the same places. A regular grid of dots
(transposed-conv checkerboards) scores well above 1; texture as real as the real scores about 1;
flat or blurred regions score below 1 (nothing periodic, but nothing at all either).

Every evaluation reports **controls** from the same images: real vs real patches from other places
(should be <= 0.55), the region filled with per-class means and the real region blurred with
sigma = 3 px (each should be >= 0.90). A report whose controls miss that is marked as not counting.

The protocol (patch sizes, classifier, training steps, folds, seeds) is fixed here: numbers are comparable
across runs only under one protocol, and ``PROTOCOL_VERSION`` names it in every report.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

PROTOCOL_VERSION = 1
REALISM_SEED = 20_261_201  # patch places; the same for every method judged on the same images
CONTROL_LIMITS = {"real_vs_real_max": 0.55, "flat_fill_min": 0.90, "blur_min": 0.90}


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How patches are cut and the classifier trained; one per mode."""

    patch: int  # C2ST patch side (px)
    min_inside: float  # share of a patch (or window) that must lie in the region
    patches_per_image: int = 8
    window: int = 64  # periodicity window side (px)
    windows_per_image: int = 4
    steps: int = 300  # classifier updates (batches drawn with replacement: any data size)
    batch_size: int = 64
    lr: float = 2e-3
    folds: int = 2
    seeds: tuple[int, ...] = (0, 1, 2)
    blur_sigma: float = 3.0


#: label mode: 48^2 patches wholly inside the lung (its interior)
LABEL_PROTOCOL = Protocol(patch=48, min_inside=1.0)
#: inpaint mode: 32^2 patches mostly (3/4) inside the regenerated region
INPAINT_PROTOCOL = Protocol(patch=32, min_inside=0.75)


def valid_corners(region: np.ndarray, size: int, min_inside: float) -> np.ndarray:
    """(K, 2) top-left corners (row, col) of every ``size`` x ``size`` square inside the image
    with at least ``min_inside`` of its pixels in ``region``."""
    region = np.asarray(region, bool)
    h, w = region.shape
    if h < size or w < size:
        return np.zeros((0, 2), np.int64)
    integral = np.pad(region.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    inside = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )  # (h - size + 1, w - size + 1): pixels of the region in the square at each corner
    need = math.ceil(min_inside * size * size - 1e-9)
    return np.argwhere(inside >= max(need, 1))


def sample_corners(regions: np.ndarray, size: int, min_inside: float, per_image: int, seed: int):
    """Up to ``per_image`` seeded corners per image: a list of (K_i, 2) arrays."""
    rng = np.random.default_rng(seed)
    out = []
    for region in regions:
        corners = valid_corners(region, size, min_inside)
        # shuffled even when all are kept: a split of them (method / control) has no spatial order
        out.append(corners[rng.permutation(len(corners))[:per_image]])
    return out


def cut(images: np.ndarray, corners: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Patches (N, size, size) float32 and the index of the image each came from (N,)."""
    patches, owner = [], []
    for i, (image, cs) in enumerate(zip(images, corners, strict=True)):
        for r, c in cs:
            patches.append(image[r : r + size, c : c + size])
            owner.append(i)
    if not patches:
        return np.zeros((0, size, size), np.float32), np.zeros(0, np.int64)
    return np.stack(patches).astype(np.float32), np.asarray(owner, np.int64)


def _classifier(size: int):
    """Three 3x3 conv layers with ReLU and pooling, one logit."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 1),
    )


def _fit_and_score(train_x, train_y, test_x, test_y, protocol: Protocol, seed: int) -> float:
    """Train the classifier on (train_x, train_y); its balanced accuracy on the test set."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(seed)
    model = _classifier(protocol.patch)
    optimiser = torch.optim.Adam(model.parameters(), lr=protocol.lr)
    # standardised by the training patches' statistics (intensity stays a cue; the scale helps Adam)
    mean, std = float(train_x.mean()), float(train_x.std()) + 1e-6
    x = (torch.from_numpy(train_x)[:, None] - mean) / std
    y = torch.from_numpy(train_y.astype(np.float32))
    draw = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(protocol.steps):
        batch = torch.randint(0, len(x), (protocol.batch_size,), generator=draw)
        loss = F.binary_cross_entropy_with_logits(model(x[batch]).squeeze(1), y[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        test = (torch.from_numpy(test_x)[:, None] - mean) / std
        logits = torch.cat([model(t).squeeze(1) for t in test.split(256)])
    predicted = (logits > 0).numpy()
    truth = test_y.astype(bool)
    # balanced accuracy: with unequal classes, always guessing the larger is still 0.5
    per_class = [
        float((predicted[truth == c] == c).mean()) for c in (False, True) if (truth == c).any()
    ]
    return float(np.mean(per_class))


def fold_splits(groups: list[str], protocol: Protocol):
    """For each seed, the groups (slices) split in ``folds`` parts: [(seed, [set, set]), ...]."""
    unique = sorted(set(groups))
    if len(unique) < protocol.folds:
        raise ValueError(
            f"a C2ST needs at least {protocol.folds} slices to split in folds, got {len(unique)}"
        )
    splits = []
    for seed in protocol.seeds:
        order = np.random.default_rng(seed).permutation(len(unique))
        parts = np.array_split(order, protocol.folds)
        splits.append((seed, [{unique[j] for j in part} for part in parts]))
    return splits


def c2st(
    real_patches: np.ndarray,
    other_patches: np.ndarray,
    owners: np.ndarray,
    other_owners: np.ndarray,
    groups: list[str],
    protocol: Protocol,
) -> dict:
    """Accuracy of telling ``real_patches`` (label 0) from ``other_patches`` (label 1) on held-out
    slices; ``owners`` index ``groups`` (the slice of each image). Mean and SD over folds x seeds."""
    group_of = np.asarray(groups)
    accuracies = []
    for seed, parts in fold_splits(groups, protocol):
        for k, test_groups in enumerate(parts):
            test_real = np.isin(group_of[owners], list(test_groups))
            test_other = np.isin(group_of[other_owners], list(test_groups))
            train_x = np.concatenate([real_patches[~test_real], other_patches[~test_other]])
            train_y = np.r_[np.zeros((~test_real).sum()), np.ones((~test_other).sum())]
            test_x = np.concatenate([real_patches[test_real], other_patches[test_other]])
            test_y = np.r_[np.zeros(test_real.sum()), np.ones(test_other.sum())]
            if len(test_x) == 0 or len(train_x) == 0:
                continue
            accuracies.append(
                _fit_and_score(train_x, train_y, test_x, test_y, protocol, seed * 100 + k)
            )
    if not accuracies:
        return {"mean": None, "sd": None, "runs": [], "patches": 0}
    return {
        "mean": float(np.mean(accuracies)),
        "sd": float(np.std(accuracies)),
        "runs": accuracies,
        "patches": int(len(real_patches)),
    }


def mean_power_spectrum(windows: np.ndarray) -> np.ndarray:
    """(N, S, S) windows -> (S, S) mean power spectrum (DC centred), each window's mean removed
    and a 2-D Hann window applied."""
    windows = np.asarray(windows, np.float64)
    size = windows.shape[-1]
    hann = np.outer(np.hanning(size), np.hanning(size))
    centred = (windows - windows.mean(axis=(1, 2), keepdims=True)) * hann
    power = np.abs(np.fft.fft2(centred)) ** 2
    return np.fft.fftshift(power.mean(axis=0))


def peak_ratio(spectrum: np.ndarray, floor: float = 1e-3) -> float:
    """How far one frequency stands above its ring: at each integer radius >= 1, the ring's
    strongest power over its median, maximised over the rings.

    Not "the strongest frequency overall": lung texture has a 1/f-like spectrum, so that is always
    a low frequency, and a dot grid (a peak at the grid's period) would go unseen. ``floor`` (a
    share of the mean power, added above and below) keeps rings with next to no power, such as the
    high frequencies of a blurred or flat region, from reading their rounding noise as peaks."""
    size = spectrum.shape[0]
    yy, xx = np.mgrid[:size, :size] - size // 2
    radius = np.rint(np.hypot(yy, xx)).astype(int)
    eps = floor * float(spectrum.mean()) + 1e-30  # a flat region: 0 / 0 reads as 1
    best = 0.0
    for r in range(1, size // 2 + 1):
        ring = spectrum[radius == r]
        best = max(best, float((ring.max() + eps) / (np.median(ring) + eps)))
    return best


def periodicity(
    real_windows: np.ndarray,
    synthetic_windows: np.ndarray,
    owners: np.ndarray,
    groups: list[str],
    protocol: Protocol,
) -> dict:
    """Synthetic ÷ real peak ratio, windows at the same places; mean and SD over the same folds x
    seeds as the C2ST (each fold's windows scored alone)."""
    if len(real_windows) == 0:
        return {"mean": None, "sd": None, "runs": [], "windows": 0}
    group_of = np.asarray(groups)
    scores = []
    for _seed, parts in fold_splits(groups, protocol):
        for test_groups in parts:
            pick = np.isin(group_of[owners], list(test_groups))
            if pick.any():
                real = peak_ratio(mean_power_spectrum(real_windows[pick]))
                synthetic = peak_ratio(mean_power_spectrum(synthetic_windows[pick]))
                scores.append(synthetic / real)
    return {
        "mean": float(np.mean(scores)),
        "sd": float(np.std(scores)),
        "runs": scores,
        "windows": int(len(real_windows)),
        "real_peak_ratio": peak_ratio(mean_power_spectrum(real_windows)),
        "synthetic_peak_ratio": peak_ratio(mean_power_spectrum(synthetic_windows)),
    }


def flat_fill(real: np.ndarray, label_maps: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The control 'region filled with per-class means': each class's mean over ``region``."""
    out = np.array(real, np.float32, copy=True)
    for label in np.unique(label_maps[region]):
        where = region & (label_maps == label)
        out[where] = real[where].mean()
    return out


def blurred(real: np.ndarray, region: np.ndarray, sigma: float) -> np.ndarray:
    """The control 'real region blurred': a Gaussian blur of each image, inside ``region`` only."""
    from scipy import ndimage as ndi

    out = np.array(real, np.float32, copy=True)
    for i in range(len(out)):
        smooth = ndi.gaussian_filter(out[i], sigma)
        out[i][region[i]] = smooth[region[i]]
    return out


def periodicity_at_windows(real, synthetic, regions, groups, protocol) -> dict:
    """:func:`periodicity` of ``synthetic`` against ``real`` on the protocol's seeded windows."""
    windows = sample_corners(
        regions, protocol.window, protocol.min_inside, protocol.windows_per_image, REALISM_SEED + 7
    )
    real_w, owners = cut(real, windows, protocol.window)
    synth_w, _ = cut(synthetic, windows, protocol.window)
    return periodicity(real_w, synth_w, owners, groups, protocol)


def judge(real, synthetic, regions, groups, protocol, corners) -> dict:
    """C2ST (patches at ``corners``) and periodicity of ``synthetic`` against ``real``."""
    real_p, owners = cut(real, corners, protocol.patch)
    synth_p, _ = cut(synthetic, corners, protocol.patch)
    return {
        "c2st": c2st(real_p, synth_p, owners, owners, groups, protocol),
        "periodicity": periodicity_at_windows(real, synthetic, regions, groups, protocol),
    }


def realism_report(
    real: np.ndarray,
    synthetic: np.ndarray,
    label_maps: np.ndarray,
    ids: list[str],
    masks: np.ndarray | None = None,
    controls: bool = True,
    protocol: Protocol | None = None,
) -> dict:
    """C2ST and periodicity for one method, with its controls from the same images.

    real, synthetic : (N, H, W) in [-1, 1]; synthetic is what the method shows (for inpainting the
    composite: the real slice with the region regenerated). label_maps : (N, H, W). ids : one per
    image; '#aug' suffixes are stripped, so augmentations of a slice share a fold.
    masks : (N, H, W) bool, the regenerated regions (inpaint mode), else the lung is the region.
    protocol : for tests on small images only; a report under any but the mode's standard
    protocol does not count.
    """
    real = np.asarray(real, np.float32)
    synthetic = np.asarray(synthetic, np.float32)
    label_maps = np.asarray(label_maps)
    standard = LABEL_PROTOCOL if masks is None else INPAINT_PROTOCOL
    protocol = protocol or standard
    if len({str(i).split("#", 1)[0] for i in ids}) < protocol.folds:
        return {
            "protocol": {**dataclasses.asdict(protocol), "version": PROTOCOL_VERSION},
            "region": "lung interior" if masks is None else "regenerated region",
            "c2st": None,
            "periodicity": None,
            "counts": False,
            "error": f"fewer than {protocol.folds} slices: no held-out fold to score on",
        }
    regions = label_maps > 0 if masks is None else np.asarray(masks, bool)
    groups = [str(i).split("#", 1)[0] for i in ids]
    # 2K places per image: the first K judge the method, the other K are the real-vs-real control's
    both = sample_corners(
        regions, protocol.patch, protocol.min_inside, 2 * protocol.patches_per_image, REALISM_SEED
    )
    corners = [c[: protocol.patches_per_image] for c in both]
    others = [c[protocol.patches_per_image :] for c in both]
    report = {
        "protocol": {**dataclasses.asdict(protocol), "version": PROTOCOL_VERSION},
        "region": "lung interior" if masks is None else "regenerated region",
        **judge(real, synthetic, regions, groups, protocol, corners),
    }
    if not controls:
        return report
    real_a, owners_a = cut(real, corners, protocol.patch)
    real_b, owners_b = cut(real, others, protocol.patch)
    fills = {
        "flat_fill": flat_fill(real, label_maps, regions),
        "blur": blurred(real, regions, protocol.blur_sigma),
    }
    ctrl = {"real_vs_real": c2st(real_a, real_b, owners_a, owners_b, groups, protocol)}
    for name, images in fills.items():
        ctrl[name] = judge(real, images, regions, groups, protocol, corners)
    checks = {
        "real_vs_real": _le(ctrl["real_vs_real"]["mean"], CONTROL_LIMITS["real_vs_real_max"]),
        "flat_fill": _ge(ctrl["flat_fill"]["c2st"]["mean"], CONTROL_LIMITS["flat_fill_min"]),
        "blur": _ge(ctrl["blur"]["c2st"]["mean"], CONTROL_LIMITS["blur_min"]),
    }
    report["controls"] = {**ctrl, "limits": CONTROL_LIMITS, "in_range": checks}
    report["counts"] = all(checks.values()) and protocol == standard
    return report


def _le(value, limit) -> bool:
    return value is not None and value <= limit


def _ge(value, limit) -> bool:
    return value is not None and value >= limit


def format_realism(report: dict) -> str:
    """Two or three lines for a terminal."""

    def fmt(block: dict | None, key: str = "mean") -> str:
        if not block or block.get(key) is None:
            return "n/a"
        return f"{block['mean']:.3f} ± {block['sd']:.3f}"

    lines = [
        f"realism ({report['region']}): C2ST {fmt(report['c2st'])} (0.5 = indistinguishable), "
        f"periodicity {fmt(report['periodicity'])} (1 = as periodic as real)"
    ]
    ctrl = report.get("controls")
    if ctrl:
        lines.append(
            f"controls: real vs real {fmt(ctrl['real_vs_real'])}, flat fill "
            f"{fmt(ctrl['flat_fill']['c2st'])}, blur σ=3 {fmt(ctrl['blur']['c2st'])}: "
            + (
                "in range, the report counts"
                if report["counts"]
                else "OUT OF RANGE: does not count"
            )
        )
    return "\n".join(lines)
