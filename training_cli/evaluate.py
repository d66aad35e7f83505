"""``evaluate``: the paper's Table II on a folder of real slices.

Every slice (with ``--augment K``: K seeded augmentations of each) is synthesized from its label
map. **Complemented** images put the synthetic lung into the real non-lung area (hard paste, as the
paper); **lung-only** metrics read lung pixels only (for FID/KID, non-lung set to black).
Intensities are in [0, 1] after the window.

**Masked** evaluation (``--mode inpaint``, or ``--paste-in-masks`` for a label-only model or a floor):
every image gets a seeded edit mask (:func:`gan.inpaint.random_edit_mask`, the same for every
method); the complemented image is the real one with the mask region replaced, lung-only metrics
read that image's lung, and the report gains ``masked`` (PSNR/SSIM/RMSE inside the mask) and
``seam`` (gradient magnitude along the mask boundary relative to the real image's; 1 = seamless).

**Realism** (training_cli/realism.py; off with ``--no-realism``): a classifier two-sample test
(0.5 = a small CNN cannot tell synthetic patches from real ones at the same places) and a
periodicity score (1 = as periodic as the real lung) on the lung interior, or inside the masks,
each with its spread over folds and seeds and with controls from the same images (real vs real,
a flat fill, a blur) that say whether the report counts.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

HELP = (
    "Table-II metrics (FID, KID, PSNR, SSIM, RMSE) for complemented and lung-only synthetic images, "
    "and realism metrics that see texture (C2ST, periodicity) with their controls."
)
AUGMENT_SEED = 20_220_101  # evaluation augmentations are fixed, whatever the training seed
MASK_SEED = 20_221_125  # and so are the evaluation masks


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="checkpoint, .safetensors export, or 'default'")
    p.add_argument(
        "--mode",
        choices=["label", "inpaint"],
        default="label",
        help="label: the paper's whole-lung synthesis (default); inpaint: an inpaint-mode "
        "generator regenerates a seeded edit mask per image ('default' picks the shipped one)",
    )
    p.add_argument(
        "--paste-in-masks",
        action="store_true",
        help="a label-mode model or --baseline judged on --mode inpaint's task: its output "
        "pasted inside the same seeded masks (the comparison for the inpainting model)",
    )
    p.add_argument(
        "--baseline",
        choices=["mean", "class-mean"],
        help="instead of a model, a floor: the lung filled with the training slices' mean lung "
        "intensity (mean) or with their mean of each class, lung / GGO / consolidation (class-mean)",
    )
    p.add_argument(
        "--train-ids",
        help="split file of the slices the baseline's means come from (default: every slice of "
        "--data not in --ids)",
    )
    p.add_argument(
        "--size", type=int, default=512, help="resolution of a baseline evaluation (default 512)"
    )
    p.add_argument("--data", required=True, help="data folder (medseg-ct100 layout) or .npz cache")
    p.add_argument("--ids", help="split file: the slices to evaluate on (the test split)")
    p.add_argument(
        "--out", required=True, help="report.json to write (a per-image CSV goes beside it)"
    )
    p.add_argument(
        "--augment",
        type=int,
        default=0,
        help="K seeded augmentations per slice (0: the slices as they are)",
    )
    p.add_argument(
        "--no-fid", action="store_true", help="skip FID/KID (no Inception network needed)"
    )
    p.add_argument(
        "--no-realism",
        action="store_true",
        help="skip the realism metrics (C2ST and periodicity with their controls; a few minutes "
        "on a CPU for 320 images)",
    )
    p.add_argument(
        "--stage",
        choices=["joint", "global", "local"],
        help="generator path (global = G1-only ablation)",
    )
    p.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--cache-dir", help="data-folder cache location (default ~/.cache/ct-lesion-studio)"
    )


def evaluation_pairs(slices, augment: int):
    """(ids, label maps, real images in [-1, 1]) for every evaluated image."""
    from gan.data import AugmentedSlices

    if augment <= 0:
        return [f"{i}" for i in slices.ids], slices.label_maps, slices.images
    dataset = AugmentedSlices(slices, len(slices) * augment, seed=AUGMENT_SEED)
    ids, labels, images = [], [], []
    for index in range(len(dataset)):
        lab, img = dataset[index]
        ids.append(f"{slices.ids[index % len(slices)]}#aug{index // len(slices)}")
        labels.append(lab.numpy().astype(np.uint8))
        images.append(img[0].numpy())
    return ids, np.stack(labels), np.stack(images)


def class_means(slices) -> np.ndarray:
    """Mean intensity in [-1, 1] of lung, GGO and consolidation pixels (index = label), with
    index 0 the mean over all three together (the single-mean floor)."""
    means = np.zeros(4, np.float64)
    lung = slices.label_maps > 0
    if not lung.any():
        raise ValueError("the baseline's slices have no lung pixels")
    means[0] = float(slices.images[lung].mean())
    for label in (1, 2, 3):
        pixels = slices.images[slices.label_maps == label]
        means[label] = float(pixels.mean()) if pixels.size else means[0]
    return means


def baseline_images(label_maps: np.ndarray, means: np.ndarray, kind: str) -> np.ndarray:
    """The floor's 'synthetic' images: every lung pixel set to one mean (``mean``) or to its
    class's mean (``class-mean``); the non-lung area is replaced by the real one in the composite."""
    label_maps = np.asarray(label_maps)
    if kind == "mean":
        return np.full(label_maps.shape, means[0], np.float32)
    if kind == "class-mean":
        lut = np.array([means[0], means[1], means[2], means[3]], np.float32)
        return lut[label_maps]
    raise ValueError(f"unknown baseline {kind!r}; choose mean or class-mean")


def evaluation_masks(label_maps: np.ndarray) -> np.ndarray:
    """One seeded edit mask per evaluated image (image i always gets the same one)."""
    from gan.data import sample_seed
    from gan.inpaint import random_edit_mask

    return np.stack(
        [
            random_edit_mask(m, np.random.default_rng(sample_seed(MASK_SEED, 0, i)))
            for i, m in enumerate(np.asarray(label_maps))
        ]
    )


def synthesize_all(synthesizer, label_maps, real, masks, batch_size: int, stage=None) -> np.ndarray:
    """The synthesizer's output for every label map, ``batch_size`` at a time; an inpaint-mode
    synthesizer also gets the real images and the masks (a label-mode one ignores them)."""
    inpaint = synthesizer.mode == "inpaint"
    return np.concatenate(
        [
            synthesizer.synthesize_batch(
                label_maps[i : i + batch_size],
                stage=stage,
                images=real[i : i + batch_size] if inpaint else None,
                masks=masks[i : i + batch_size] if inpaint else None,
                # image i's noise seed is i: no two images share a noise field
                seeds=list(range(i, min(i + batch_size, len(label_maps)))),
            )
            for i in range(0, len(label_maps), batch_size)
        ]
    )


def compute_report(
    real: np.ndarray,
    synthetic: np.ndarray,
    label_maps: np.ndarray,
    ids: list[str],
    fid: bool,
    device: str = "cpu",
    masks: np.ndarray | None = None,
    realism: bool = False,
) -> tuple[dict, list[dict]]:
    """Metrics of synthetic vs real images, both (N, H, W) in [-1, 1]; returns (summary, rows).

    With ``masks`` (N, H, W) the synthetic images count inside the masks only (masked evaluation).
    ``realism``: add C2ST and periodicity (training_cli/realism.py) on what the composite shows:
    the lung interior, or the masked regions."""
    from gan.compose import Compositor
    from gan.inpaint import seam_score
    from gan.labels import lung_region
    from training_cli import metrics as M

    real01 = (np.asarray(real, np.float64) + 1) / 2
    lung = lung_region(label_maps)
    region = lung if masks is None else np.asarray(masks, bool)
    # composed as everywhere else (gan/compose.py): the hard paste into the real non-lung area, or
    # the real image with only the mask regenerated
    compositor = Compositor()
    complemented = np.stack(
        [
            compositor.compose_arrays(
                synthetic[i], real[i], label_maps[i], None if masks is None else region[i]
            ).composite
            for i in range(len(synthetic))
        ]
    )
    comp01 = (complemented.astype(np.float64) + 1) / 2
    # lung-only reads what the method puts in the lung: all of it synthetic, or the masked composite
    synth01 = comp01 if masks is not None else (np.asarray(synthetic, np.float64) + 1) / 2
    rows = []
    for i, slice_id in enumerate(ids):
        row = {
            "id": slice_id,
            "complemented_psnr": M.psnr(comp01[i], real01[i]),
            "complemented_ssim": M.ssim(comp01[i], real01[i]),
            "complemented_rmse": M.rmse(comp01[i], real01[i]),
            "lung_only_psnr": M.psnr(synth01[i], real01[i], lung[i]),
            "lung_only_ssim": M.ssim(synth01[i], real01[i], lung[i]),
            "lung_only_rmse": M.rmse(synth01[i], real01[i], lung[i]),
            "lung_px": int(lung[i].sum()),
        }
        if masks is not None:
            row.update(
                {
                    "masked_psnr": M.psnr(comp01[i], real01[i], region[i]),
                    "masked_ssim": M.ssim(comp01[i], real01[i], region[i]),
                    "masked_rmse": M.rmse(comp01[i], real01[i], region[i]),
                    "seam": seam_score(comp01[i], real01[i], region[i]),
                    "mask_px": int(region[i].sum()),
                }
            )
        rows.append(row)

    def mean(key: str) -> float:
        values = [r[key] for r in rows if math.isfinite(r[key])]
        return float(np.mean(values)) if values else float("nan")

    summary: dict = {}
    for block, real_set, synth_set in (
        ("complemented", real01, comp01),
        ("lung_only", real01 * lung, synth01 * lung),  # non-lung black, for FID/KID
    ):
        summary[block] = {k: mean(f"{block}_{k}") for k in ("psnr", "ssim", "rmse")}
        summary[block]["psnr_infinite"] = sum(1 for r in rows if r[f"{block}_psnr"] == float("inf"))
        if fid:
            extractor = _inception(device)
            fr, fs = extractor(real_set), extractor(synth_set)
            summary[block]["fid"] = M.frechet_distance(fr, fs)
            kid, kid_std = M.kernel_inception_distance(fr, fs)
            summary[block]["kid"], summary[block]["kid_std"] = kid, kid_std
        else:
            summary[block]["fid"] = summary[block]["kid"] = summary[block]["kid_std"] = None
    if masks is not None:
        summary["masked"] = {k: mean(f"masked_{k}") for k in ("psnr", "ssim", "rmse")}
        seams = np.array([r["seam"] for r in rows if math.isfinite(r["seam"])])
        summary["seam"] = {
            "mean": float(seams.mean()) if seams.size else None,
            "median": float(np.median(seams)) if seams.size else None,
            "band_px": 3,
            "meaning": "mean gradient magnitude in a 3-px band on both sides of the mask boundary, "
            "relative to the same band of the real image (1 = as smooth as the real slice)",
        }
    if realism:
        from training_cli.realism import realism_report

        summary["realism"] = realism_report(real, complemented, label_maps, ids, masks)
    return summary, rows


_EXTRACTORS: dict = {}


def _inception(device: str):
    from training_cli.metrics import InceptionFeatures

    if device not in _EXTRACTORS:
        _EXTRACTORS[device] = InceptionFeatures(device)
    return _EXTRACTORS[device]


def json_safe(value):
    """``value`` with non-finite floats as None (JSON has no NaN), through dicts and lists."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run(args: argparse.Namespace) -> int:
    from gan.synthesizer import Synthesizer
    from training_cli.data_source import load_slices

    if bool(args.checkpoint) == bool(args.baseline):
        raise ValueError("give either --checkpoint (a model) or --baseline (a floor), not both")
    if not args.no_fid:
        from training_cli.metrics import inception_weights_path

        inception_weights_path()  # fail early, before the synthesis work
    if args.mode == "inpaint" and args.paste_in_masks:
        raise ValueError(
            "--paste-in-masks is for label models and floors; --mode inpaint masks already"
        )
    if args.baseline:
        if args.mode == "inpaint":
            raise ValueError(
                "a --baseline has no mode; judge it on the masks with --paste-in-masks"
            )
        return _run_baseline(args)
    synthesizer = Synthesizer(
        args.checkpoint, device=None if args.device == "auto" else args.device, mode=args.mode
    )
    slices = load_slices(args.data, args.ids, synthesizer.size, args.cache_dir)
    ids, label_maps, real = evaluation_pairs(slices, args.augment)
    masks = evaluation_masks(label_maps) if args.mode == "inpaint" or args.paste_in_masks else None
    synthetic = synthesize_all(synthesizer, label_maps, real, masks, args.batch_size, args.stage)
    return _write_report(
        args,
        slices,
        ids,
        label_maps,
        real,
        synthetic,
        device=str(synthesizer.device),
        masks=masks,
        method={
            "mode": synthesizer.mode,
            "checkpoint": str(synthesizer.weights),
            "checkpoint_sha256": synthesizer.sha256,
            "preset": synthesizer.config.preset,
            "stage": args.stage or synthesizer.stage,
            "resolution": synthesizer.size,
            "precision": "bf16"
            if synthesizer.device.type == "cuda" or synthesizer.cpu_bf16
            else "fp32",
        },
    )


def _run_baseline(args: argparse.Namespace) -> int:
    from gan.data import folder_ids, read_split_file
    from training_cli.data_source import load_slices, load_slices_for_ids

    if args.stage:
        raise ValueError("--stage applies to a model, not to a --baseline")
    slices = load_slices(args.data, args.ids, args.size, args.cache_dir)
    if args.train_ids:
        train_ids = read_split_file(args.train_ids)
    else:
        data = Path(args.data)
        every = list(np.load(data)["ids"]) if data.suffix == ".npz" else folder_ids(data)
        train_ids = [str(i) for i in every if str(i) not in set(slices.ids)]
    overlap = sorted(set(train_ids) & set(slices.ids))
    if overlap:
        raise ValueError(
            f"the baseline's slices overlap the evaluated ones: {', '.join(overlap[:5])}"
        )
    if not train_ids:
        raise ValueError("no slices left for the baseline's means (give --train-ids)")
    train = load_slices_for_ids(args.data, train_ids, args.size, args.cache_dir)
    means = class_means(train)
    ids, label_maps, real = evaluation_pairs(slices, args.augment)
    synthetic = baseline_images(label_maps, means, args.baseline)
    return _write_report(
        args,
        slices,
        ids,
        label_maps,
        real,
        synthetic,
        device="cuda" if args.device == "cuda" else "cpu",
        masks=evaluation_masks(label_maps) if args.paste_in_masks else None,
        method={
            "baseline": args.baseline,
            "baseline_means": {
                "all_lung": means[0],
                "lung": means[1],
                "ggo": means[2],
                "consolidation": means[3],
                "scale": "[-1, 1]",
                "from_slices": len(train),
            },
            "preset": f"baseline:{args.baseline}",
            "stage": "none",
            "resolution": args.size,
        },
    )


def _write_report(
    args, slices, ids, label_maps, real, synthetic, device: str, method: dict, masks=None
) -> int:
    from gan.fsutil import atomic_write_text

    summary, rows = compute_report(
        real,
        synthetic,
        label_maps,
        ids,
        fid=not args.no_fid,
        device=device,
        masks=masks,
        realism=not args.no_realism,
    )
    report = {
        "n_slices": len(slices),
        "n_images": len(ids),
        "augment": args.augment,
        "masks": None
        if masks is None
        else {
            "seed": MASK_SEED,
            "kinds": "gan.inpaint.MASK_KINDS",
            "mean_px": float(masks.sum((1, 2)).mean()),
        },
        **{k: v for k, v in summary.items()},
        **method,
        "intensity": "[0, 1] after the window; PSNR data range 1; SSIM Gaussian sigma 1.5",
        "data": str(args.data),
        "ids": str(args.ids) if args.ids else None,
    }
    out = Path(args.out)
    atomic_write_text(out, json.dumps(json_safe(report), indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out.with_suffix(".csv"), buffer.getvalue())
    print(format_table(report))
    print(f"report: {out}  per-image CSV: {out.with_suffix('.csv')}")
    return 0


def format_table(report: dict) -> str:
    def cell(v, fmt):
        return (
            "n/a"
            if v is None or (isinstance(v, float) and not math.isfinite(v))
            else format(v, fmt)
        )

    lines = [
        f"{report['n_images']} images from {report['n_slices']} slices; {report['preset']} ({report['stage']})",
        f"{'':<14}{'FID':>9}{'KID':>9}{'PSNR':>8}{'SSIM':>8}{'RMSE':>8}",
    ]
    for block in ("complemented", "lung_only"):
        r = report[block]
        lines.append(
            f"{block:<14}{cell(r['fid'], '.3f'):>9}{cell(r['kid'], '.4f'):>9}{cell(r['psnr'], '.2f'):>8}"
            f"{cell(r['ssim'], '.4f'):>8}{cell(r['rmse'], '.4f'):>8}"
        )
    if report.get("masked"):
        r = report["masked"]
        lines.append(
            f"{'in the mask':<14}{'':>9}{'':>9}{cell(r['psnr'], '.2f'):>8}"
            f"{cell(r['ssim'], '.4f'):>8}{cell(r['rmse'], '.4f'):>8}"
        )
        lines.append(
            f"seam score (1 = as smooth as the real slice): {cell(report['seam']['mean'], '.3f')}"
        )
    if report.get("realism"):
        from training_cli.realism import format_realism

        lines.append(format_realism(report["realism"]))
    return "\n".join(lines)
