"""Where a label model wins or loses complemented SSIM against the flat floors: the SSIM map split
into the lung's interior, a band just inside the lung's edge and a band just outside it, next to
how much fine structure the method puts in the lung's interior.

    python -m benchmarks.ssim_texture [--checkpoint default] [--checkpoint runs/x/final.pt ...]
        [--data ../shared/data/medseg-ct100] [--ids resources/splits/test.txt]
        [--train-ids resources/splits/train.txt] [--augment 20] [--out benchmarks/results]

The images, composites and SSIM are exactly ``evaluate``'s (complemented: the method's lung in the
real non-lung area); the floors are ``evaluate --baseline mean|class-mean`` with their means from
``--train-ids``. Bands are ``BAND_PX`` wide. Texture = mean gradient magnitude in the lung's interior
relative to the real slice's (1 = as much fine structure as the real lung, 0 = flat). Prints a
table and writes ``ssim_texture.json``. About 3 minutes per model on a 2-core CPU at --augment 20.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks import REPO, add_test_set_arguments, measure_to_json

BAND_PX = 6
REGIONS = ("interior", "edge_inside", "edge_outside")


def regions(lung: np.ndarray, band_px: int = BAND_PX) -> dict[str, np.ndarray]:
    """The lung's interior, the band of ``band_px`` inside its edge and the band outside it."""
    from scipy import ndimage

    lung = np.asarray(lung, bool)
    interior = ndimage.binary_erosion(lung, iterations=band_px)
    outside = ndimage.binary_dilation(lung, iterations=band_px) & ~lung
    return {"interior": interior, "edge_inside": lung & ~interior, "edge_outside": outside}


def split_ssim(
    composite01: np.ndarray, real01: np.ndarray, parts: dict[str, np.ndarray]
) -> dict[str, float]:
    """``evaluate``'s complemented SSIM of one image, its map's mean over each of ``parts``
    (``regions`` of its lung), and the interior texture ratio."""
    from benchmarks.inpaint_texture import texture_ratio
    from training_cli import metrics as M

    value, full = M.ssim_map(composite01, real01)
    row = {"ssim": float(value)}
    for name, where in parts.items():
        row[name] = float(full[where].mean()) if where.any() else float("nan")
    interior = parts["interior"]
    row["texture"] = texture_ratio(composite01, real01, interior) if interior.any() else np.nan
    return row


def measure(
    data: Path, ids: Path, train_ids: Path, augment: int, checkpoints: list[str], batch: int = 4
) -> dict:
    from gan.compose import composite_into_nonlung
    from gan.data import read_split_file
    from gan.synthesizer import Synthesizer
    from training_cli.data_source import load_slices, load_slices_for_ids
    from training_cli.evaluate import (
        baseline_images,
        class_means,
        evaluation_pairs,
        synthesize_all,
    )

    slices = load_slices(data, ids, 512, None)
    _, labels, real = evaluation_pairs(slices, augment)
    means = class_means(load_slices_for_ids(data, read_split_file(train_ids), 512, None))
    outputs = {f"floor: {k}": baseline_images(labels, means, k) for k in ("mean", "class-mean")}
    shas = {}
    for checkpoint in checkpoints:
        synthesizer = Synthesizer(checkpoint, device="cpu", mode="label")
        outputs[checkpoint] = synthesize_all(synthesizer, labels, real, None, batch)
        shas[checkpoint] = synthesizer.sha256
    real01 = (real.astype(np.float64) + 1) / 2
    lung = labels > 0
    parts = [regions(m) for m in lung]  # the same for every method: computed once per image
    methods = {}
    for name, synthetic in outputs.items():
        rows = [
            split_ssim((composite_into_nonlung(s, r, m).astype(np.float64) + 1) / 2, r01, p)
            for s, r, r01, m, p in zip(synthetic, real, real01, lung, parts, strict=True)
        ]
        methods[name] = {k: float(np.nanmean([row[k] for row in rows])) for k in rows[0]}
    share = {k: float(np.mean([p[k].mean() for p in parts])) for k in REGIONS}
    return {
        "data": str(data),
        "ids": str(ids),
        "train_ids": str(train_ids),
        "augment": augment,
        "images": int(len(labels)),
        "band_px": BAND_PX,
        "share_of_image": share,
        "checkpoint_sha256": shas,
        "methods": methods,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint",
        action="append",
        help="a label-mode model (checkpoint, export or 'default'); repeat to compare several",
    )
    add_test_set_arguments(parser)
    parser.add_argument(
        "--train-ids", type=Path, default=REPO / "resources" / "splits" / "train.txt"
    )
    args = parser.parse_args(argv)
    result = measure_to_json(
        args.data,
        args.out,
        "ssim_texture.json",
        lambda: measure(
            args.data, args.ids, args.train_ids, args.augment, args.checkpoint or ["default"]
        ),
    )
    if result is None:
        return 1
    share = result["share_of_image"]
    print(
        f"{result['images']} images; share of the image: interior {share['interior']:.1%}, "
        f"edge inside {share['edge_inside']:.1%}, edge outside {share['edge_outside']:.1%}"
    )
    print(f"{'method':<44}{'SSIM':>8}{'interior':>10}{'edge in':>9}{'edge out':>10}{'texture':>9}")
    for name, row in result["methods"].items():
        print(
            f"{name[-44:]:<44}{row['ssim']:>8.4f}{row['interior']:>10.4f}"
            f"{row['edge_inside']:>9.4f}{row['edge_outside']:>10.4f}{row['texture']:>9.2f}"
        )
    print(f"JSON in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
