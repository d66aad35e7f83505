"""CT Lesion Studio training tool: ``python -m training_cli <command> --help``.

Commands::

    prepare   check a data folder (or convert NIfTI volumes into one) and cache its label maps
    train     train the global-local cGAN (three stages; CPU, one GPU, or torchrun DDP)
    evaluate  Table-II metrics (FID, KID, PSNR, SSIM, RMSE) on complemented and lung-only images
    synth     one label map -> one synthetic slice (and its composite), headless
    export    checkpoint -> generator-only safetensors + JSON config + SHA-256
    batch     synthetic training data for curators: K samples per input (inpaint, procedural, whole lung)
    split     a seeded train/test split of a data folder, stratified by lesion class and area
    figure    label | real | synthetic | composite rows for some slices, as one PNG
    utility   does synthetic data help segmentation? U-Nets on real vs real + synthetic slices
"""

from __future__ import annotations

import argparse
import sys

# the train command's flags are built from TrainOptions' fields (training_cli/train.py)
from training_cli.train import add_train_arguments, train_options_from_args

EXAMPLES = {
    "prepare": "python -m training_cli prepare --data ../shared/data/medseg-ct100\n"
    "  python -m training_cli prepare --nifti-images rp_im --nifti-labels rp_msk --out data/radiopaedia",
    "train": "python -m training_cli train --preset lite --data ../shared/data/medseg-ct100 "
    "--ids resources/splits/train.txt --out runs/lite\n"
    "  python -m training_cli train --mode inpaint --stage joint --lambda-l1 10 "
    "--init-generator default --data DATA --ids resources/splits/train.txt --out runs/inpaint\n"
    "  torchrun --nproc_per_node 2 -m training_cli train --preset paper --data DATA --out runs/paper\n"
    "  python -m training_cli train --resume runs/lite",
    "evaluate": "python -m training_cli evaluate --checkpoint runs/lite/checkpoints/final.pt "
    "--data ../shared/data/medseg-ct100 --ids resources/splits/test.txt --augment 20 --out report.json",
    "synth": "python -m training_cli synth --checkpoint model.safetensors --image slice.png "
    "--labels labels.png --out synthetic.png --composite-out composite.png",
    "export": "python -m training_cli export --checkpoint runs/lite/checkpoints/final.pt --out lite.safetensors --fp16",
    "batch": "python -m training_cli batch --data ../shared/data/medseg-ct100 "
    "--ids train.txt --per-input 8 --layout nnunet --out synthetic/\n"
    "  torchrun --nproc_per_node 2 -m training_cli batch --synthesis procedural --data DATA --out synthetic/",
    "figure": "python -m training_cli figure --checkpoint default --data ../shared/data/medseg-ct100 "
    "--ids resources/splits/test.txt --rows 6 --out docs/test_slices.png",
    "utility": "python -m training_cli utility --data ../shared/data/medseg-ct100 --checkpoint default "
    "--experiment both --fractions 0,0.1,0.2,0.3,0.4,0.5 --folds 10 --out utility-report",
    "split": "python -m training_cli split --data ../shared/data/medseg-ct100 --test 16 --seed 0 "
    "--out resources/splits",
}


def _parser_for(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="Example:\n  " + EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training_cli",
        description=__doc__.split("\n\n")[0],
        epilog="Run `python -m training_cli COMMAND --help` for a command's options and an example.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_arguments(
        _parser_for(sub, "train", "Train the global-local cGAN in the paper's three stages.")
    )
    from training_cli import batch, evaluate, export, figure, prepare, split, synth, utility

    prepare.add_arguments(_parser_for(sub, "prepare", prepare.HELP))
    evaluate.add_arguments(_parser_for(sub, "evaluate", evaluate.HELP))
    synth.add_arguments(_parser_for(sub, "synth", synth.HELP))
    export.add_arguments(_parser_for(sub, "export", export.HELP))
    batch.add_arguments(_parser_for(sub, "batch", batch.HELP))
    split.add_arguments(_parser_for(sub, "split", split.HELP))
    figure.add_arguments(_parser_for(sub, "figure", figure.HELP))
    utility.add_arguments(_parser_for(sub, "utility", utility.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gan.checkpoint import CheckpointError
    from gan.ctio import CTReadError
    from gan.data import DataFolderError
    from gan.labels import LabelFormatError
    from training_cli.train import TrainingError

    expected = (
        CheckpointError,
        CTReadError,
        DataFolderError,
        LabelFormatError,
        TrainingError,
        OSError,
        ValueError,
    )
    try:
        if args.command == "train":
            from training_cli.train import run_training

            if not args.resume and not args.data:
                print("error: train needs --data DIR (or --resume RUN_DIR)", file=sys.stderr)
                return 2
            return run_training(train_options_from_args(args), resume_dir=args.resume)
        from training_cli import batch, evaluate, export, figure, prepare, split, synth, utility

        commands = {
            "prepare": prepare,
            "evaluate": evaluate,
            "synth": synth,
            "export": export,
            "batch": batch,
            "split": split,
            "figure": figure,
            "utility": utility,
        }
        return commands[args.command].run(args)
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
