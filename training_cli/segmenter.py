"""The 2D lesion segmenter of the utility experiment (paper section IV-B2, Tables III/IV), built from
MONAI: its ``UNet``, ``DiceCELoss``, ``DiceMetric`` and confusion-matrix metrics.

Targets: 0 = not a lesion (background and lung), 1 = GGO, 2 = consolidation. Scores are computed
per class and for infection (GGO or consolidation), pooled over the images of a fold: a fold's
pixels are one sample, so a fold whose slices hold no consolidation does not produce NaN Dice.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from gan.labels import CONSOLIDATION, GGO

#: Reported classes: name -> target classes counted as positive.
CLASSES = {"ggo": (1,), "consolidation": (2,), "infection": (1, 2)}
METRICS = ("dice", "sensitivity", "specificity")


@dataclasses.dataclass(frozen=True)
class SegmenterOptions:
    """Identical for every arm of an experiment: only the training set differs."""

    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    num_res_units: int = 2
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    augment: bool = (
        True  # the paper's augmentation (gan.data.build_augmentation), seeded per sample
    )

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        d["network"] = "monai.networks.nets.UNet (2D, 1 -> 3 channels, stride-2 levels)"
        d["loss"] = "monai.losses.DiceCELoss(softmax, one-hot targets)"
        d["optimizer"] = "Adam"
        return d


def lesion_targets(label_maps: np.ndarray) -> np.ndarray:
    """Label maps (0 background, 1 lung, 2 GGO, 3 consolidation) -> targets 0/1/2."""
    label_maps = np.asarray(label_maps)
    targets = np.zeros(label_maps.shape, np.int64)
    targets[label_maps == GGO] = 1
    targets[label_maps == CONSOLIDATION] = 2
    return targets


def build_unet(opts: SegmenterOptions) -> torch.nn.Module:
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=3,
        channels=tuple(opts.channels),
        strides=(2,) * (len(opts.channels) - 1),
        num_res_units=opts.num_res_units,
    )


class _TrainingSet(torch.utils.data.Dataset):
    """Images in [-1, 1] (N, S, S) with label maps; augmented with a seed fixed by (seed, epoch,
    index), so two arms that share items see them augmented identically."""

    def __init__(self, images: np.ndarray, label_maps: np.ndarray, seed: int, augment: bool):
        self.images, self.label_maps = images, label_maps
        self.seed, self.augment, self.epoch = seed, augment, 0
        self._transform = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from gan.data import AugmentConfig, build_augmentation, sample_seed

        image = (self.images[index][None] + 1.0) / 2.0
        label = self.label_maps[index][None].astype(np.float32)
        if self.augment:
            if self._transform is None:
                self._transform = build_augmentation(self.images.shape[-1], AugmentConfig())
            self._transform.set_random_state(seed=sample_seed(self.seed, self.epoch, index))
            out = self._transform({"image": image, "label": label})
            image = np.asarray(out["image"], np.float32)
            label = np.asarray(out["label"], np.float32)
        target = lesion_targets(np.rint(label[0]).astype(np.int64))
        return torch.from_numpy(image * 2.0 - 1.0).float(), torch.from_numpy(target[None])


def train_segmenter(
    images: np.ndarray,
    label_maps: np.ndarray,
    opts: SegmenterOptions,
    seed: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[torch.nn.Module, dict]:
    """Train a fresh U-Net on ``images`` (N, S, S) in [-1, 1] and their label maps; returns the
    network (eval mode) and a record of losses and time."""
    from monai.losses import DiceCELoss

    device = torch.device(device)
    torch.manual_seed(seed)
    net = build_unet(opts).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=opts.lr)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    dataset = _TrainingSet(images, label_maps, seed, opts.augment)
    order = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=opts.batch_size, shuffle=True, generator=order, num_workers=0
    )
    losses, started = [], time.perf_counter()
    steps_per_epoch = math.ceil(len(dataset) / opts.batch_size)
    net.train()
    for epoch in range(opts.epochs):
        dataset.epoch = epoch
        total = 0.0
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x.to(device)), y.to(device))
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        losses.append(total / steps_per_epoch)
        progress(epoch + 1, opts.epochs)
    net.eval()
    return net, {
        "epochs": opts.epochs,
        "steps": opts.epochs * steps_per_epoch,
        "images": len(dataset),
        "loss_per_epoch": [round(v, 5) for v in losses],
        "seconds": round(time.perf_counter() - started, 1),
    }


@torch.no_grad()
def predict(net: torch.nn.Module, images: np.ndarray, device="cpu", batch_size: int = 16):
    """Target-class predictions (N, S, S) int64 for images in [-1, 1]."""
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.asarray(images[i : i + batch_size], np.float32)[:, None])
        out.append(net(x.to(device)).argmax(1).cpu().numpy())
    return np.concatenate(out)


def fold_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, dict[str, float]]:
    """Dice, sensitivity and specificity per reported class, pooled over the given images.

    Dice is MONAI's ``DiceMetric`` on the fold's images laid side by side as one image (pooled
    Dice); sensitivity and specificity come from MONAI's confusion-matrix metrics summed over
    the fold. A class absent from both prediction and truth scores Dice 1 and sensitivity NaN.
    """
    from monai.metrics import DiceMetric, compute_confusion_matrix_metric, get_confusion_matrix

    scores = {}
    for name, classes in CLASSES.items():
        p = torch.from_numpy(np.isin(pred, classes))
        t = torch.from_numpy(np.isin(target, classes))
        # (N, S, S) -> one (1, 2, S, N*S) one-hot image: background and the class
        p1 = torch.cat(list(p), dim=-1)[None]
        t1 = torch.cat(list(t), dim=-1)[None]
        p_hot = torch.stack([~p1, p1], dim=1).float()
        t_hot = torch.stack([~t1, t1], dim=1).float()
        dice = DiceMetric(include_background=False, reduction="none", ignore_empty=False)
        dice_value = float(dice(p_hot, t_hot)[0, 0])
        cm = get_confusion_matrix(p_hot, t_hot, include_background=False)
        scores[name] = {
            "dice": dice_value,
            "sensitivity": float(compute_confusion_matrix_metric("sensitivity", cm)[0, 0]),
            "specificity": float(compute_confusion_matrix_metric("specificity", cm)[0, 0]),
        }
    return scores


def confidence_interval(values, level: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the two-sided Student-t interval, n) over the finite values; the
    half-width is NaN with fewer than two values."""
    from scipy.stats import t

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    if v.size == 1:
        return float(v[0]), float("nan"), 1
    half = float(t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean()), half, int(v.size)


def split_folds(n: int, folds: int) -> list[np.ndarray]:
    """Disjoint, contiguous index folds covering ``range(n)`` (sizes differ by at most one)."""
    if folds < 1:
        raise ValueError("--folds must be at least 1")
    if n < folds:
        raise ValueError(f"{n} test images cannot make {folds} folds (raise --test-augment)")
    return [np.asarray(f) for f in np.array_split(np.arange(n), folds)]
