"""``batch``: synthetic training data for curators (K augmented label maps per input slice)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Write K synthetic slices per input (augmented label maps, synthesized, composited) with a manifest."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint, .safetensors export, or 'default'"
    )
    p.add_argument("--data", help="input folder in the medseg-ct100 layout (images/ + lesions/)")
    p.add_argument(
        "--ids", help="split file restricting --data (use the training split, never the test split)"
    )
    p.add_argument("--nifti-images", help="CT volume(s) in HU (file or folder), instead of --data")
    p.add_argument(
        "--nifti-labels",
        help="lesion-label volume(s) (0/1/2), paired with --nifti-images by file name",
    )
    p.add_argument("--out", required=True, help="output folder (a rerun resumes where it stopped)")
    p.add_argument(
        "--per-input", type=int, default=4, help="augmented samples per input slice (default 4)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--layout",
        choices=["flat", "nnunet"],
        default="flat",
        help="flat: images/ labels/; nnunet: imagesTr/NAME_0000.png labelsTr/NAME.png + dataset.json",
    )
    p.add_argument(
        "--feather", type=float, default=0.0, help="composite edge ramp in pixels (0 = hard paste)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gan.batch import folder_inputs, nifti_inputs, run_batch
    from gan.data import read_split_file
    from gan.synthesizer import Synthesizer

    if bool(args.data) == bool(args.nifti_images):
        raise ValueError("give either --data DIR or --nifti-images/--nifti-labels")
    synthesizer = Synthesizer(
        args.checkpoint, device=None if args.device == "auto" else args.device, mode="label"
    )
    if args.data:
        ids = read_split_file(args.ids) if args.ids else None
        from gan.data import folder_ids

        count = len(ids or folder_ids(args.data))
        inputs = folder_inputs(Path(args.data), ids)
    else:
        from training_cli.prepare import pair_nifti_volumes

        if not args.nifti_labels:
            raise ValueError("--nifti-images needs --nifti-labels")
        pairs = [
            (image, label)
            for _, image, label in pair_nifti_volumes(
                Path(args.nifti_images), Path(args.nifti_labels)
            )
        ]
        count = None
        inputs = nifti_inputs(pairs)
    total = count * args.per_input if count is not None else None
    notes: list[str] = []

    def note(line: str) -> None:
        notes.append(line)
        tqdm.write(line)  # above the progress bar, not through it

    with tqdm(total=total, unit="slice", disable=args.no_progress, desc="batch") as bar:
        result = run_batch(
            inputs,
            synthesizer,
            Path(args.out),
            args.per_input,
            args.seed,
            args.layout,
            args.feather,
            progress=bar.update,
            note=note,
        )
    skipped = (
        f"; {len(notes)} input slices skipped (implausible lung), listed in "
        f"{Path(args.out) / 'skipped_inputs.csv'}"
        if notes
        else ""
    )
    print(
        f"Wrote {result['written']} samples ({result['skipped']} already there) to {args.out}; "
        f"manifest: {Path(args.out) / 'manifest.csv'}{skipped}"
    )
    return 0
