"""``prepare``: check a data folder and cache its label maps, or convert NIfTI volumes into one.

A data folder has the ``medseg-ct100`` layout: ``images/ID.png`` (8-bit, windowed),
``lesions/ID.png`` (MedSeg lesion mask: 0 background, 1 GGO, 2 consolidation) and ``manifest.csv``
(first column ``id``). Paired NIfTI volumes (a CT in HU + a lesion-label volume, as MedSeg's
``rp_im`` / ``rp_msk``) are converted slice by slice: HU windowed with the paper's lung window
(level -600 / width 1500), resized to 512 x 512 (labels nearest-neighbour), by default only slices
with lesions, and a manifest records the volume and slice index of every id.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

HELP = "Check a data folder (statistics, derived-lung coverage) and cache it; or convert NIfTI volumes into one."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="data folder to check and cache (medseg-ct100 layout)")
    p.add_argument("--ids", help="split file restricting --data to some ids")
    p.add_argument(
        "--size", type=int, default=512, help="resolution of the cached label maps (default 512)"
    )
    p.add_argument(
        "--cache-out", help="write the slice cache here (.npz; default: the training cache folder)"
    )
    p.add_argument("--cache-dir", help="training cache folder (default ~/.cache/ct-lesion-studio)")
    p.add_argument(
        "--nifti-images", help="CT volume(s) in HU: a .nii/.nii.gz file or a folder of them"
    )
    p.add_argument(
        "--nifti-labels",
        help="lesion-label volume(s) (0/1/2), paired with --nifti-images by file name",
    )
    p.add_argument("--out", help="output data folder for the NIfTI conversion")
    p.add_argument("--all-slices", action="store_true", help="convert slices without lesions too")
    p.add_argument(
        "--lesion-bank",
        metavar="LABEL_VOLUMES",
        help="build the app's bank of real lesion shapes "
        "from lesion-label NIfTI volumes (0/1/2), written to --out (.npz)",
    )
    p.add_argument(
        "--bank-size", type=int, default=160, help="shapes in the lesion bank (default 160)"
    )


def run(args: argparse.Namespace) -> int:
    if args.lesion_bank:
        if not args.out:
            raise ValueError("--lesion-bank needs --out BANK.npz")
        build_lesion_bank(Path(args.lesion_bank), Path(args.out), args.bank_size)
        return 0
    if args.nifti_images or args.nifti_labels:
        if not (args.nifti_images and args.nifti_labels and args.out):
            raise ValueError("NIfTI conversion needs --nifti-images, --nifti-labels and --out")
        convert_nifti(
            Path(args.nifti_images),
            Path(args.nifti_labels),
            Path(args.out),
            args.size,
            args.all_slices,
        )
        if not args.data:
            args.data = args.out
    if not args.data:
        raise ValueError(
            "give --data DIR to check, or --nifti-images/--nifti-labels/--out to convert"
        )
    check_folder(Path(args.data), args.ids, args.size, args.cache_out, args.cache_dir)
    return 0


def check_folder(
    folder: Path, ids_file: str | None, size: int, cache_out: str | None, cache_dir: str | None
) -> dict:
    from gan.data import FolderStats, SliceSet, folder_ids, read_split_file
    from training_cli.data_source import folder_cache_path

    ids = read_split_file(ids_file) if ids_file else folder_ids(folder)
    stats = FolderStats()
    slices = SliceSet.from_folder(folder, ids, size, stats=stats)
    path = Path(cache_out) if cache_out else folder_cache_path(folder, ids, size, cache_dir)
    slices.save(path)
    coverage = stats.coverage()
    classes = np.bincount(slices.label_maps.ravel(), minlength=4)

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    print(
        f"{folder}: {stats.slices} slices, all readable, lesion masks in the MedSeg convention (0/1/2)"
    )
    print(
        f"  lesion pixels (native resolution): GGO {stats.ggo_px:,}, consolidation {stats.consolidation_px:,}"
    )
    print(
        f"  slices with GGO: {int((slices.label_maps == 2).any(axis=(1, 2)).sum())}, "
        f"with consolidation: {int((slices.label_maps == 3).any(axis=(1, 2)).sum())}"
    )
    print(
        f"  lesion pixels inside the derived lung before forcing: GGO {pct(coverage['ggo'])}, "
        f"consolidation {pct(coverage['consolidation'])}, overall {pct(coverage['overall'])}"
    )
    print(
        f"  label maps at {size}^2: background {classes[0]:,}, lung {classes[1]:,}, GGO {classes[2]:,}, "
        f"consolidation {classes[3]:,} pixels"
    )
    print(f"  cache: {path}  (train --data accepts it directly)")
    return {"slices": stats.slices, "coverage": coverage, "cache": str(path)}


def _nifti_files(path: Path) -> dict[str, Path]:
    if path.is_file():
        return {_stem(path): path}
    if not path.is_dir():
        raise ValueError(f"{path}: no such NIfTI file or folder")
    files = {_stem(p): p for p in sorted(path.iterdir()) if p.name.endswith((".nii", ".nii.gz"))}
    if not files:
        raise ValueError(f"{path}: no .nii or .nii.gz files")
    return files


def pair_nifti_volumes(images: Path, labels: Path) -> list[tuple[str, Path, Path]]:
    """(name, CT volume, label volume) triples: two single files pair as they are; folders pair by
    file name, and a volume without a partner is an error."""
    image_files, label_files = _nifti_files(images), _nifti_files(labels)
    if len(image_files) == 1 and len(label_files) == 1:
        (name, image_path), label_path = (
            next(iter(image_files.items())),
            next(iter(label_files.values())),
        )
        return [(name, image_path, label_path)]
    unpaired = sorted(set(image_files) ^ set(label_files))
    if unpaired:
        raise ValueError(
            f"volumes without a partner (paired by file name): {', '.join(unpaired[:10])}"
        )
    return [(k, image_files[k], label_files[k]) for k in sorted(image_files)]


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def convert_nifti(images: Path, labels: Path, out: Path, size: int, all_slices: bool) -> None:
    from gan.ctio import LUNG_WINDOW, read_nifti_volume, unit_to_uint8, window_to_unit, write_png
    from gan.fsutil import atomic_write_text
    from gan.labels import (
        LESION_CONSOLIDATION,
        LESION_GGO,
        LESION_MASK_CONVENTION,
        validate_lesion_mask,
    )
    from gan.resample import resize_image_np, resize_label_map_np

    pairs = pair_nifti_volumes(images, labels)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "lesions").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, image_path, label_path in pairs:
        ct, _, _ = read_nifti_volume(image_path)
        lesions, _, _ = read_nifti_volume(label_path)
        if ct.shape != lesions.shape:
            raise ValueError(f"{name}: CT {ct.shape} and labels {lesions.shape} differ in shape")
        for k in range(ct.shape[2]):
            lesion = validate_lesion_mask(
                np.asarray(lesions[:, :, k]), what=f"{label_path.name} slice {k}"
            )
            if not all_slices and not lesion.any():
                continue
            unit = window_to_unit(ct[:, :, k].astype(np.float32), LUNG_WINDOW)
            image8 = unit_to_uint8(resize_image_np(unit, (size, size)))
            lesion = resize_label_map_np(lesion, (size, size))
            slice_id = f"{name}_{k:04d}"
            write_png(out / "images" / f"{slice_id}.png", image8)
            write_png(out / "lesions" / f"{slice_id}.png", lesion)
            rows.append(
                {
                    "id": slice_id,
                    "volume": image_path.name,
                    "label_volume": label_path.name,
                    "slice_index": k,
                    "ggo_px": int((lesion == LESION_GGO).sum()),
                    "consolidation_px": int((lesion == LESION_CONSOLIDATION).sum()),
                }
            )
    if not rows:
        raise ValueError("no slice with lesions found (use --all-slices to convert every slice)")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "manifest.csv", buffer.getvalue())
    atomic_write_text(
        out / "dataset.json",
        json.dumps(
            {
                "source": "converted from paired NIfTI volumes by `python -m training_cli prepare`",
                "window": {
                    "level": LUNG_WINDOW.level,
                    "width": LUNG_WINDOW.width,
                    "note": "images are 8-bit after this window",
                },
                "resolution": size,
                "lesion_convention": LESION_MASK_CONVENTION,
                "slice_index": "0-based, foot to head, of the volume reoriented to radiological display",
            },
            indent=2,
        )
        + "\n",
    )
    print(f"Converted {len(rows)} slices from {len(pairs)} volume pair(s) into {out}")


def build_lesion_bank(
    labels: Path, out: Path, size: int, min_px: int = 150, max_side: int = 96, seed: int = 0
) -> None:
    """Binary shapes of real lesions (one connected component of one class on one slice), cropped
    to their bounding box, sampled evenly over volumes and sizes; packed bits in one ``.npz``."""
    from scipy import ndimage as ndi

    from gan.ctio import read_nifti_volume
    from gan.fsutil import atomic_path
    from gan.labels import (
        CONSOLIDATION,
        GGO,
        LESION_CONSOLIDATION,
        LESION_GGO,
        validate_lesion_mask,
    )

    candidates = []
    spacing = None
    for name, path in _nifti_files(labels).items():
        volume, vol_spacing, _ = read_nifti_volume(path)
        spacing = spacing or float(vol_spacing[0])
        for k in range(volume.shape[2]):
            lesion = validate_lesion_mask(
                np.asarray(volume[:, :, k]), what=f"{path.name} slice {k}"
            )
            for medseg, ours in ((LESION_GGO, GGO), (LESION_CONSOLIDATION, CONSOLIDATION)):
                components, n = ndi.label(lesion == medseg)
                for index, box in enumerate(ndi.find_objects(components), start=1):
                    shape = components[box] == index
                    if shape.sum() >= min_px and max(shape.shape) <= max_side:
                        candidates.append((name, k, ours, shape))
    if not candidates:
        raise ValueError(f"{labels}: no lesion of at least {min_px} px found")
    rng = np.random.default_rng(seed)
    by_volume: dict[str, list] = {}
    for c in candidates:
        by_volume.setdefault(c[0], []).append(c)
    chosen = []
    while len(chosen) < size and any(by_volume.values()):  # round-robin over volumes
        for name in sorted(by_volume):
            if by_volume[name] and len(chosen) < size:
                chosen.append(by_volume[name].pop(int(rng.integers(len(by_volume[name])))))
    dims = np.array([c[3].shape for c in chosen], np.int32)
    bits = np.packbits(np.concatenate([c[3].ravel() for c in chosen]))
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            dims=dims,
            bits=bits,
            classes=np.array([c[2] for c in chosen], np.uint8),
            spacing_mm=np.float64(spacing),
            sources=np.array([f"{c[0]}:{c[1]}" for c in chosen]),
        )
    ggo = sum(1 for c in chosen if c[2] == GGO)
    print(
        f"Lesion bank: {len(chosen)} shapes ({ggo} GGO, {len(chosen) - ggo} consolidation) from "
        f"{len(by_volume)} volumes, {out.stat().st_size / 1024:.0f} KiB: {out}"
    )
