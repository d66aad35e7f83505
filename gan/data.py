"""Training data: slices in the ``medseg-ct100`` layout, label maps, paired augmentation.

A data folder holds ``images/ID.png`` (8-bit, windowed), ``lesions/ID.png`` (MedSeg lesion mask,
0/1/2) and ``manifest.csv`` (column ``id``). :class:`SliceSet` loads it, derives each lung, builds
label maps and resizes to the model resolution; it saves to / loads from one ``.npz`` cache, which is
all a GPU box needs (torch + numpy, no OpenCV).

:class:`AugmentedSlices` is the torch Dataset: an epoch is ``samples_per_epoch`` augmented samples
(the paper's Table I: 12,000), drawn round-robin over the slices. Augmentation (MONAI dictionary
transforms, image and labels together, labels nearest-neighbour) is seeded from (seed, epoch,
index), so a sample is the same whichever worker or rank makes it, and a resumed run sees exactly
the samples an unbroken run would have.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from gan.labels import NUM_CLASSES, validate_label_map, validate_lesion_mask
from gan.resample import resize_image_np, resize_label_map_np


class DataFolderError(ValueError):
    """A data folder is missing files or holds files of the wrong kind; the message says which."""


def read_split_file(path: str | os.PathLike) -> list[str]:
    """Ids, one per line; blank lines and ``#`` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataFolderError(f"{path}: no such split file")
    ids = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    if not ids:
        raise DataFolderError(f"{path}: split file lists no ids")
    return ids


def folder_ids(folder: str | os.PathLike) -> list[str]:
    """The ids of a data folder, from ``manifest.csv`` if present, else from ``images/``."""
    folder = Path(folder)
    if not (folder / "images").is_dir() or not (folder / "lesions").is_dir():
        raise DataFolderError(
            f"{folder}: expected images/ and lesions/ folders (medseg-ct100 layout)"
        )
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="") as fh:
            reader = csv.DictReader(fh)
            if "id" not in (reader.fieldnames or []):
                raise DataFolderError(f"{manifest}: no 'id' column")
            return [row["id"] for row in reader]
    return sorted(p.stem for p in (folder / "images").glob("*.png"))


@dataclasses.dataclass
class SliceSet:
    """Slices at model resolution: ``images`` (N, S, S) float32 in [-1, 1], ``label_maps`` (N, S, S)
    uint8 in our 0..3 convention, ``ids`` (N,)."""

    ids: list[str]
    images: np.ndarray
    label_maps: np.ndarray

    def __post_init__(self) -> None:
        if self.images.shape != self.label_maps.shape or len(self.ids) != len(self.images):
            raise DataFolderError(
                f"inconsistent slice set: {len(self.ids)} ids, images {self.images.shape}, "
                f"labels {self.label_maps.shape}"
            )
        if len(self.ids) == 0:
            raise DataFolderError("the slice set is empty")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike,
        ids: list[str] | None = None,
        size: int = 512,
        stats: FolderStats | None = None,
    ) -> SliceSet:
        """Read a folder in the medseg-ct100 layout; derive lungs; build label maps; resize.

        ``stats``, if given, accumulates lesion pixel counts and how many fall inside the derived
        lung before lesion pixels are forced in."""
        from gan.ctio import read_label_image, read_raster
        from gan.lung import derive_lung_mask, labels_for_slice

        folder = Path(folder)
        available = folder_ids(folder)
        wanted = available if ids is None else list(ids)
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise DataFolderError(f"{folder}: ids not in this folder: {', '.join(missing[:10])}")
        images, label_maps = [], []
        for slice_id in wanted:
            ct = read_raster(folder / "images" / f"{slice_id}.png")
            lesions = validate_lesion_mask(
                read_label_image(folder / "lesions" / f"{slice_id}.png"),
                what=f"lesions/{slice_id}.png",
            )
            if lesions.shape != ct.shape:
                raise DataFolderError(
                    f"{slice_id}: image {ct.shape} and lesion mask {lesions.shape} differ"
                )
            lung = derive_lung_mask(ct)
            if stats is not None:
                # coverage is of the lung as derived, before the lesion pixels are forced in
                stats.add(lesions, lung)
            # lesion pixels are lung by definition: the one recipe forces them in
            label_map = labels_for_slice(ct, lesions, lung).label_map
            images.append(resize_image_np(ct.to_model_range(), (size, size)))
            label_maps.append(resize_label_map_np(label_map, (size, size)))
        return cls(wanted, np.stack(images).astype(np.float32), np.stack(label_maps))

    def resized(self, size: int) -> SliceSet:
        """The same slices at ``size`` (images bilinear, antialiased; labels nearest neighbour)."""
        if size == self.size:
            return self
        images = np.stack([resize_image_np(x, (size, size)) for x in self.images]).astype(
            np.float32
        )
        labels = np.stack([resize_label_map_np(m, (size, size)) for m in self.label_maps])
        return SliceSet(list(self.ids), images, labels)

    def save(self, path: str | os.PathLike) -> None:
        from gan.fsutil import atomic_path

        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(
                tmp, ids=np.array(self.ids), images=self.images, label_maps=self.label_maps
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> SliceSet:
        try:
            with np.load(path, allow_pickle=False) as data:
                result = cls([str(i) for i in data["ids"]], data["images"], data["label_maps"])
        except (OSError, KeyError, ValueError) as exc:
            raise DataFolderError(f"{path}: not a slice-set cache ({exc})") from None
        validate_label_map(result.label_maps.reshape(-1, result.size), what=f"{path} label maps")
        return result

    def fingerprint(self) -> str:
        """SHA-256 over ids, images and labels: which data a run was trained on."""
        digest = hashlib.sha256()
        digest.update("\n".join(self.ids).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.label_maps).tobytes())
        return digest.hexdigest()


@dataclasses.dataclass
class FolderStats:
    """Lesion pixels per class at native resolution, and those inside the derived lung."""

    slices: int = 0
    ggo_px: int = 0
    consolidation_px: int = 0
    ggo_in_lung: int = 0
    consolidation_in_lung: int = 0
    lung_px: int = 0

    def add(self, lesions: np.ndarray, lung: np.ndarray) -> None:
        from gan.labels import LESION_CONSOLIDATION, LESION_GGO

        ggo, cons = lesions == LESION_GGO, lesions == LESION_CONSOLIDATION
        self.slices += 1
        self.ggo_px += int(ggo.sum())
        self.consolidation_px += int(cons.sum())
        self.ggo_in_lung += int((ggo & lung).sum())
        self.consolidation_in_lung += int((cons & lung).sum())
        self.lung_px += int((lung | (lesions > 0)).sum())

    def coverage(self) -> dict[str, float | None]:
        def frac(a: int, b: int) -> float | None:
            return a / b if b else None

        return {
            "ggo": frac(self.ggo_in_lung, self.ggo_px),
            "consolidation": frac(self.consolidation_in_lung, self.consolidation_px),
            "overall": frac(
                self.ggo_in_lung + self.consolidation_in_lung, self.ggo_px + self.consolidation_px
            ),
        }


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The paper's augmentation: random resize-crop, rotation, Gaussian noise, elastic deformation."""

    crop_scale: tuple[float, float] = (0.8, 1.0)
    rotate_degrees: float = 10.0
    noise_std: float = 0.01  # in units of the [0, 1] image
    noise_prob: float = 0.5
    elastic_prob: float = 0.3
    elastic_spacing: int = 64  # control-point spacing at 512^2; scaled with the image size
    elastic_magnitude: tuple[float, float] = (1.0, 3.0)
    enabled: bool = True


def build_augmentation(size: int, cfg: AugmentConfig):
    """MONAI dictionary transforms over keys ``image`` (1, S, S) in [0, 1] and ``label`` (1, S, S).

    The image is shifted to [0, 1] beforehand so that zero padding is black air, as in a CT.
    """
    import math

    from monai.transforms import (
        Compose,
        Rand2DElasticd,
        RandAffined,
        RandGaussianNoised,
        RandScaleCropd,
        Resized,
    )

    keys = ["image", "label"]
    spacing = max(4, round(cfg.elastic_spacing * size / 512))
    return Compose(
        [
            RandScaleCropd(
                keys, roi_scale=cfg.crop_scale[0], max_roi_scale=cfg.crop_scale[1], random_size=True
            ),
            Resized(keys, spatial_size=(size, size), mode=("bilinear", "nearest")),
            RandAffined(
                keys,
                prob=1.0,
                rotate_range=math.radians(cfg.rotate_degrees),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            Rand2DElasticd(
                keys,
                spacing=(spacing, spacing),
                magnitude_range=cfg.elastic_magnitude,
                prob=cfg.elastic_prob,
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            RandGaussianNoised(["image"], prob=cfg.noise_prob, std=cfg.noise_std),
        ]
    )


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one augmented sample, independent of worker and rank."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


class AugmentedSlices(torch.utils.data.Dataset):
    """``samples_per_epoch`` augmented (label map, image) pairs per epoch.

    Item ``i`` is slice ``i % len(slices)`` augmented with seed ``sample_seed(seed, epoch, i)``.
    Returns ``(labels, image)``: (S, S) int64 in 0..3 and (1, S, S) float32 in [-1, 1]; with
    ``mode="inpaint"`` also a (1, S, S) float32 edit mask in {0, 1} drawn from the augmented label
    map with the same seed (:func:`gan.inpaint.random_edit_mask`).
    """

    def __init__(
        self,
        slices: SliceSet,
        samples_per_epoch: int,
        seed: int = 0,
        augment: AugmentConfig = AugmentConfig(),
        mode: str = "label",
    ) -> None:
        if mode not in ("label", "inpaint"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.slices = slices
        self.samples_per_epoch = int(samples_per_epoch)
        self.seed = int(seed)
        self.augment = augment
        self.epoch = 0
        self._transform = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        k = index % len(self.slices)
        image = (self.slices.images[k][None] + 1.0) / 2.0  # [-1, 1] -> [0, 1]; 0 = black air
        label = self.slices.label_maps[k][None].astype(np.float32)
        if self.augment.enabled:
            if self._transform is None:  # built lazily: once per worker process
                self._transform = build_augmentation(self.slices.size, self.augment)
            self._transform.set_random_state(seed=sample_seed(self.seed, self.epoch, index))
            out = self._transform({"image": image, "label": label})
            image = np.asarray(_to_numpy(out["image"]), np.float32)
            label = np.asarray(_to_numpy(out["label"]), np.float32)
        labels = torch.from_numpy(np.clip(np.rint(label[0]), 0, NUM_CLASSES - 1).astype(np.int64))
        image_t = torch.from_numpy(np.clip(image * 2.0 - 1.0, -1.0, 1.0).astype(np.float32))
        if self.mode == "inpaint":
            from gan.inpaint import random_edit_mask

            rng = np.random.default_rng(sample_seed(self.seed + 7919, self.epoch, index))
            mask = random_edit_mask(labels.numpy(), rng)
            return labels, image_t, torch.from_numpy(mask[None].astype(np.float32))
        return labels, image_t


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
