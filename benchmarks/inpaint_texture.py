"""Where the inpainting model and the label-only model differ in FID/KID: KID and texture split by
edit-mask size, on the evaluation's seeded masks (the same images and masks as
``evaluate --mode inpaint`` and ``evaluate --paste-in-masks``).

    python -m benchmarks.inpaint_texture [--data ../shared/data/medseg-ct100]
        [--ids resources/splits/test.txt] [--augment 20] [--inpaint-checkpoint default]
        [--out benchmarks/results]

Texture = mean gradient magnitude inside the mask relative to the real slice's (1 = as much fine
structure as the real lung; below 1 smoother, above 1 busier). Prints a table and writes
``inpaint_texture.json``. About 6 minutes on a 2-core CPU for the 320 images of the default run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks import add_test_set_arguments, measure_to_json

LARGE = 0.35  # a mask covering this fraction of the lung or more counts as large


def texture_ratio(composite: np.ndarray, real: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient magnitude of ``composite`` inside ``mask``, relative to ``real``'s."""
    from gan.inpaint import gradient_magnitude

    reference = gradient_magnitude(real)[mask].mean()
    return float(gradient_magnitude(composite)[mask].mean() / max(reference, 1e-9))


def measure(
    data: Path, ids: Path, augment: int, inpaint_checkpoint: str = "default", batch: int = 4
) -> dict:
    from gan.inpaint import paste
    from gan.synthesizer import Synthesizer
    from training_cli import metrics as M
    from training_cli.data_source import load_slices
    from training_cli.evaluate import (
        _inception,
        evaluation_masks,
        evaluation_pairs,
        synthesize_all,
    )

    inpainter = Synthesizer(inpaint_checkpoint, device="cpu", mode="inpaint")
    label_model = Synthesizer("default", device="cpu", mode="label")
    slices = load_slices(data, ids, inpainter.size, None)
    _, labels, real = evaluation_pairs(slices, augment)
    masks = evaluation_masks(labels).astype(bool)
    composites = {
        "inpaint": paste(synthesize_all(inpainter, labels, real, masks, batch), real, masks),
        "label-only": paste(synthesize_all(label_model, labels, real, masks, batch), real, masks),
    }
    lung_px = np.maximum((labels > 0).reshape(len(labels), -1).sum(1), 1)
    fraction = masks.reshape(len(masks), -1).sum(1) / lung_px
    extractor = _inception("cpu")
    feats_real = extractor((real.astype(np.float64) + 1) / 2)
    feats = {k: extractor((c.astype(np.float64) + 1) / 2) for k, c in composites.items()}
    texture = {
        k: np.array([texture_ratio(c[i], real[i], masks[i]) for i in range(len(c))])
        for k, c in composites.items()
    }
    result = {
        "data": str(data),
        "ids": str(ids),
        "augment": augment,
        "large_mask_fraction_of_lung": LARGE,
        "models": {"inpaint": inpainter.sha256, "label-only": label_model.sha256},
        "groups": {},
    }
    for group, chosen in (
        ("all", np.ones(len(fraction), bool)),
        ("small", fraction < LARGE),
        ("large", fraction >= LARGE),
    ):
        n = int(chosen.sum())
        row: dict = {"images": n}
        for method in composites:
            kid, kid_std = M.kernel_inception_distance(
                feats_real[chosen], feats[method][chosen], subset_size=min(1000, n)
            )
            row[method] = {
                "kid": kid,
                "kid_std": kid_std,
                "texture": float(texture[method][chosen].mean()),
            }
        result["groups"][group] = row
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_test_set_arguments(parser)
    parser.add_argument(
        "--inpaint-checkpoint", default="default", help="an inpaint-mode model (default: shipped)"
    )
    args = parser.parse_args(argv)
    result = measure_to_json(
        args.data,
        args.out,
        "inpaint_texture.json",
        lambda: measure(args.data, args.ids, args.augment, args.inpaint_checkpoint),
    )
    if result is None:
        return 1
    print(f"{'masks':<8}{'images':>7}  {'KID inpaint':>18}  {'KID label-only':>18}  "
          f"{'texture inp.':>12}  {'texture label':>13}")  # fmt: skip
    for group, row in result["groups"].items():
        a, b = row["inpaint"], row["label-only"]
        print(
            f"{group:<8}{row['images']:>7}  {a['kid']:>9.4f} ± {a['kid_std']:.4f}  "
            f"{b['kid']:>9.4f} ± {b['kid_std']:.4f}  {a['texture']:>12.2f}  {b['texture']:>13.2f}"
        )
    print(f"small/large: mask < / >= {LARGE:.0%} of the lung; JSON in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
