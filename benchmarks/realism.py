"""Realism of the label and inpainting models: C2ST and periodicity (training_cli/realism.py) on the
evaluation's images, with the floors and controls beside them, in one table.

    python -m benchmarks.realism [--data ../shared/data/medseg-ct100]
        [--ids resources/splits/test.txt] [--augment 20] [--checkpoint default]
        [--inpaint-checkpoint default] [--out benchmarks/results]

Rows: the label model's whole lung (lung interior, 48^2 patches), the per-class-means floor on the
same task, the inpainting model in evaluate's seeded masks (32^2 patches), and the label model
pasted into the same masks. Each task's controls (real vs real, flat fill, sigma-3 blur) come from
the same images. C2ST: 0.5 = indistinguishable from real; periodicity: 1 = as periodic as real.
Writes ``realism.json``. About 15 minutes on a 2-core CPU for the default 320 images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks import add_test_set_arguments, measure_to_json


def measure(
    data: Path,
    ids: Path,
    augment: int,
    checkpoint: str = "default",
    inpaint_checkpoint: str = "default",
    batch: int = 4,
) -> dict:
    from gan.compose import composite_into_nonlung
    from gan.inpaint import paste
    from gan.synthesizer import Synthesizer
    from training_cli.data_source import load_slices
    from training_cli.evaluate import evaluation_masks, evaluation_pairs, synthesize_all
    from training_cli.realism import flat_fill, realism_report

    label_model = Synthesizer(checkpoint, device="cpu", mode="label")
    inpainter = Synthesizer(inpaint_checkpoint, device="cpu", mode="inpaint")
    slices = load_slices(data, ids, label_model.size, None)
    names, labels, real = evaluation_pairs(slices, augment)
    lung = labels > 0
    masks = evaluation_masks(labels).astype(bool)
    whole = synthesize_all(label_model, labels, real, None, batch)
    composite = np.stack(
        [composite_into_nonlung(s, r, m) for s, r, m in zip(whole, real, lung, strict=True)]
    )
    inpainted = paste(synthesize_all(inpainter, labels, real, masks, batch), real, masks)
    rows = {
        "label model, whole lung": realism_report(real, composite, labels, names),
        "floor: per-class means, whole lung": realism_report(
            real, flat_fill(real, labels, lung), labels, names, controls=False
        ),
        "inpainting model, in the masks": realism_report(real, inpainted, labels, names, masks),
        "label model pasted in the masks": realism_report(
            real, paste(whole, real, masks), labels, names, masks, controls=False
        ),
    }
    return {
        "data": str(data),
        "ids": str(ids),
        "augment": augment,
        "images": len(names),
        "models": {"label": label_model.sha256, "inpaint": inpainter.sha256},
        "rows": rows,
    }


def _cell(block: dict | None) -> str:
    if not block or block.get("mean") is None:
        return "n/a"
    return f"{block['mean']:.3f} ± {block['sd']:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_test_set_arguments(parser)
    parser.add_argument("--checkpoint", default="default", help="a label-mode model")
    parser.add_argument("--inpaint-checkpoint", default="default", help="an inpaint-mode model")
    args = parser.parse_args(argv)
    result = measure_to_json(
        args.data,
        args.out,
        "realism.json",
        lambda: measure(
            args.data, args.ids, args.augment, args.checkpoint, args.inpaint_checkpoint
        ),
    )
    if result is None:
        return 1
    print(f"{result['images']} images; C2ST 0.5 = indistinguishable, periodicity 1 = as real")
    print(f"{'method':<38}{'C2ST':>16}{'periodicity':>18}")
    for name, report in result["rows"].items():
        print(f"{name:<38}{_cell(report['c2st']):>16}{_cell(report['periodicity']):>18}")
        controls = report.get("controls")
        if controls:
            for control in ("flat_fill", "blur"):
                block = controls[control]
                print(
                    f"{'  control: ' + control.replace('_', ' '):<38}{_cell(block['c2st']):>16}"
                    f"{_cell(block['periodicity']):>18}"
                )
            print(
                f"{'  control: real vs real':<38}{_cell(controls['real_vs_real']):>16}"
                f"{'':>18}  {'in range' if report['counts'] else 'OUT OF RANGE'}"
            )
    print(f"JSON in {args.out / 'realism.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
