import numpy as np
import pytest
import torch

from gan.data import (
    AugmentConfig,
    AugmentedSlices,
    DataFolderError,
    SliceSet,
    read_split_file,
    sample_seed,
)
from tests.conftest import phantom


def _slice_set(size=64, n=2):
    images, labels = zip(*(phantom(size) for _ in range(n)), strict=True)
    return SliceSet([f"{i:04d}" for i in range(n)], np.stack(images), np.stack(labels))


def _agreement(labels, image, levels):
    """Fraction of pixels well inside each class region whose intensity is that class's level."""
    from scipy import ndimage as ndi

    good = total = 0
    for k in (1, 2, 3):
        core = ndi.binary_erosion(labels == k, iterations=2)
        good += int((np.abs(image[core] - levels[k]) < 0.05).sum())
        total += int(core.sum())
    return good / total


def test_augmentation_keeps_image_and_labels_aligned():
    # Each class gets a flat intensity; after augmentation (crop, rotation, elastic, no noise) the
    # intensity read back inside each augmented label region must be that class's level.
    _, labels = phantom(128)
    levels = np.array([0.7, -0.8, -0.2, 0.4], np.float32)
    slices = SliceSet(["a"], levels[labels][None], labels[None])
    cfg = AugmentConfig(noise_prob=0.0, elastic_prob=1.0)
    dataset = AugmentedSlices(slices, samples_per_epoch=6, seed=3, augment=cfg)
    for i in range(6):
        lab, img = (t.numpy() for t in dataset[i])
        img = img[0]
        assert lab.shape == img.shape == (128, 128)
        assert set(np.unique(lab)) <= {0, 1, 2, 3}  # nearest neighbour: no invented labels
        assert (lab != labels).sum() > 100  # augmentation did move things
        assert _agreement(lab, img, levels) > 0.985
        # the check is sensitive: labels off by two pixels fail it
        assert _agreement(np.roll(lab, 2, axis=0), img, levels) < 0.975


def test_augmentation_is_seeded_per_sample_and_epoch():
    slices = _slice_set()
    a = AugmentedSlices(slices, 6, seed=1)
    b = AugmentedSlices(slices, 6, seed=1)
    for i in (0, 5):
        torch.testing.assert_close(a[i][1], b[i][1])
        assert torch.equal(a[i][0], b[i][0])
    first = a[2][1]
    a.set_epoch(1)
    assert not torch.equal(first, a[2][1])
    assert sample_seed(0, 0, 1) != sample_seed(0, 0, 2) != sample_seed(1, 0, 1)


def test_epoch_length_and_output_types():
    ds = AugmentedSlices(_slice_set(), 10, augment=AugmentConfig(enabled=False))
    assert len(ds) == 10
    labels, image = ds[3]
    assert labels.dtype == torch.int64 and image.dtype == torch.float32
    assert image.shape == (1, 64, 64) and float(image.min()) >= -1 and float(image.max()) <= 1


def test_slice_set_cache_round_trip(tmp_path):
    slices = _slice_set()
    slices.save(tmp_path / "cache.npz")
    loaded = SliceSet.load(tmp_path / "cache.npz")
    assert loaded.ids == slices.ids and loaded.fingerprint() == slices.fingerprint()
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(DataFolderError):
        SliceSet.load(tmp_path / "bad.npz")


def test_split_files(tmp_path):
    (tmp_path / "s.txt").write_text("# training slices\n0001\n\n0002  # note\n")
    assert read_split_file(tmp_path / "s.txt") == ["0001", "0002"]
    (tmp_path / "e.txt").write_text("# nothing\n")
    with pytest.raises(DataFolderError, match="no ids"):
        read_split_file(tmp_path / "e.txt")


@pytest.mark.data
def test_medseg_folder_builds_label_maps(medseg_dir):
    slices = SliceSet.from_folder(medseg_dir, ids=["0001", "0085"], size=256)
    assert slices.images.shape == (2, 256, 256) and slices.label_maps.dtype == np.uint8
    for k in (1, 2, 3):
        assert (slices.label_maps == k).any()
    with pytest.raises(DataFolderError, match="not in this folder"):
        SliceSet.from_folder(medseg_dir, ids=["9999"])
