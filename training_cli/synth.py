"""``synth``: one label map -> one synthetic slice (and its composite), headless, for scripts."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from gan.labels import LABEL_MAP_CONVENTION_TEXT

HELP = (
    f"Synthesize one slice from a label map ({LABEL_MAP_CONVENTION_TEXT}); with "
    "--mode inpaint, regenerate only a region of the real slice."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint, .safetensors export, or 'default'"
    )
    p.add_argument(
        "--image",
        required=True,
        help="the real CT slice (DICOM, NIfTI, PNG/JPG): size, window, non-lung area",
    )
    p.add_argument(
        "--index", type=int, help="slice / frame of --image, for volumes and multi-frame files"
    )
    p.add_argument(
        "--labels",
        required=True,
        help="label map PNG or NIfTI in our convention (0-3), same size as --image",
    )
    p.add_argument("--out", required=True, help="synthetic slice PNG (8-bit, windowed)")
    p.add_argument(
        "--composite-out",
        help="also write the synthetic lung composited into the real non-lung area",
    )
    p.add_argument(
        "--feather",
        type=float,
        default=0.0,
        help="composite edge ramp in pixels (0 = the paper's hard paste)",
    )
    p.add_argument(
        "--stage",
        choices=["joint", "global", "local"],
        help="generator path (default: what it was trained for)",
    )
    p.add_argument(
        "--mode",
        choices=["label", "inpaint"],
        default="label",
        help="label: the whole lung from the label map (the paper; default); inpaint: only the "
        "--mask region of the real slice is regenerated, the rest stays the patient's",
    )
    p.add_argument(
        "--mask",
        help="--mode inpaint: the region to regenerate, a 0/255 PNG the size of --image (default: "
        "the label map's lesions dilated by --margin-mm)",
    )
    p.add_argument(
        "--margin-mm",
        type=float,
        default=None,
        help="--mode inpaint without --mask: margin around the lesions in mm (default 5)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="noise seed of a generator with noise inputs (others ignore it); recorded in the PNG",
    )
    p.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")


def run(args: argparse.Namespace) -> int:
    from gan.ctio import read_label_image, read_slice
    from gan.labels import lung_region, validate_label_map
    from gan.synthesizer import Synthesizer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ct = read_slice(args.image, args.index)
    for w in caught:
        print(f"note: {w.message}")
    label_map = validate_label_map(
        read_label_image(args.labels, ct.slice_index), what=str(args.labels)
    )
    if label_map.shape != ct.shape:
        raise ValueError(f"label map {label_map.shape} and image {ct.shape} differ in size")
    if args.mode == "label" and (args.mask or args.margin_mm is not None):
        raise ValueError("--mask and --margin-mm apply to --mode inpaint")
    if args.mode == "inpaint" and args.feather:
        raise ValueError("--feather applies to --mode label (inpainting replaces the mask only)")
    if args.mode == "label":
        from gan.lung import lung_problem

        # a whole-lung synthesis of no lung, or of the body, is a grey patch: say so instead
        problem = lung_problem(ct, lung_region(label_map))
        if problem:
            raise ValueError(
                f"{args.labels}: {problem}; paint the lung (label 1) or choose another slice"
            )
    synthesizer = Synthesizer(
        args.checkpoint, device=None if args.device == "auto" else args.device, mode=args.mode
    )
    if args.mode == "inpaint":
        return _inpaint(args, synthesizer, ct, label_map)
    from gan.compose import compose
    from gan.export import export_png

    output = synthesizer.synthesize(label_map, stage=args.stage, seed=args.seed)
    composed = compose(ct, output, label_map, feather_px=args.feather)
    export_png(Path(args.out), composed.synthetic, ct, _provenance(synthesizer, args, "synthetic"))
    print(
        f"synthetic: {args.out} ({synthesizer.last_inference_ms:.0f} ms on {synthesizer.device.type})"
    )
    if args.composite_out:
        export_png(
            Path(args.composite_out),
            composed.composite,
            ct,
            _provenance(synthesizer, args, "composite"),
        )
        print(f"composite: {args.composite_out}")
    return 0


def _provenance(synthesizer, args, what: str, detail: str | None = None):
    from gan.export import Provenance

    return Provenance(synthesizer.sha256, args.seed, what, detail)


def _inpaint(args, synthesizer, ct, label_map) -> int:
    """Regenerate the mask region of the real slice; everything else stays as read."""
    from gan.compose import compose
    from gan.ctio import read_raster
    from gan.export import export_png
    from gan.inpaint import DEFAULT_MARGIN_MM, lesion_region, margin_px
    from gan.labels import binary_mask_from_0_255

    if args.mask:
        mask = binary_mask_from_0_255(read_raster(args.mask).pixels, what=str(args.mask))
        if mask.shape != ct.shape:
            raise ValueError(f"mask {mask.shape} and image {ct.shape} differ in size")
        where = f"the mask {args.mask}"
    else:
        margin = DEFAULT_MARGIN_MM if args.margin_mm is None else args.margin_mm
        mask = lesion_region(label_map, margin_px(ct.spacing, margin))
        where = f"the lesions + {margin:g} mm"
    if not mask.any():
        raise ValueError(f"nothing to regenerate: {where} is empty")
    output = synthesizer.synthesize(
        label_map, args.stage, image=ct.to_model_range(), mask=mask, seed=args.seed
    )
    composed = compose(ct, output, label_map, mask=mask)
    # the inpainted slice is the real one with the mask region replaced: a composite
    provenance = _provenance(
        synthesizer,
        args,
        "composite",
        f"inpainted: {int(mask.sum())} px of the real slice regenerated",
    )
    export_png(Path(args.out), composed.composite, ct, provenance)
    print(
        f"inpainted: {args.out} ({int(mask.sum())} px from {where}; "
        f"{synthesizer.last_inference_ms:.0f} ms on {synthesizer.device.type})"
    )
    if args.composite_out:
        export_png(Path(args.composite_out), composed.composite, ct, provenance)
        print(f"composite: {args.composite_out} (the same image: inpainting is a composite)")
    return 0
