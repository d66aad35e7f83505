"""CT Lesion Studio training tool: ``python -m training_cli <command> --help``.

Commands::

    prepare   check a data folder (or convert NIfTI volumes into one) and cache its label maps
    train     train the global-local cGAN (three stages; CPU, one GPU, or torchrun DDP)
    evaluate  Table-II metrics (FID, KID, PSNR, SSIM, RMSE) on complemented and lung-only images
    synth     one label map -> one synthetic slice (and its composite), headless
    export    checkpoint -> generator-only safetensors + JSON config + SHA-256
    batch     synthetic training data for curators: K augmented samples per input, with a manifest
    split     a seeded train/test split of a data folder, stratified by lesion class and area
    figure    label | real | synthetic | composite rows for some slices, as one PNG
    utility   does synthetic data help segmentation? U-Nets on real vs real + synthetic slices
"""

from __future__ import annotations

import argparse
import sys

from gan.config import PRESETS
from training_cli.train import TrainOptions

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
    "batch": "python -m training_cli batch --checkpoint lite.safetensors --data ../shared/data/medseg-ct100 "
    "--ids train.txt --per-input 8 --layout nnunet --out synthetic/",
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


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainOptions()
    p.add_argument(
        "--data", help="data folder (medseg-ct100 layout) or a .npz cache from `prepare`"
    )
    p.add_argument("--ids", help="split file: the slice ids to train on, one per line")
    p.add_argument("--out", default=d.out, help=f"run folder (default {d.out})")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run exactly where its last checkpoint left it",
    )
    p.add_argument(
        "--preset",
        default=d.preset,
        choices=list(PRESETS),
        help="network: paper (46 M G params), lite (half widths, 11.5 M), lite-texture (lite "
        "with resize-conv upsampling and noise inputs, for texture), tiny (tests)",
    )
    p.add_argument(
        "--mode",
        default=d.mode,
        choices=["label", "inpaint"],
        help="label: G sees the label map only (the paper); inpaint: label map + the real image "
        "with an edit-shaped region blanked + its mask, and regenerates that region only",
    )
    p.add_argument(
        "--stage",
        default=d.stage,
        choices=["global", "local", "joint", "all"],
        help="all = the paper's schedule: G1 alone at 256^2, then G2 alone at 512^2, then jointly",
    )
    p.add_argument("--epochs", type=int, help="epochs of every stage (paper: 20)")
    for stage in ("global", "local", "joint"):
        p.add_argument(
            f"--epochs-{stage}",
            type=int,
            default=20,
            help=f"epochs of the {stage} stage (default 20)",
        )
    p.add_argument(
        "--samples-per-epoch",
        type=int,
        default=d.samples_per_epoch,
        help="augmented samples per epoch (paper Table I: 12,000)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="global batch, split over processes (paper: 16)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=d.lr,
        help="Adam learning rate (paper: 2e-4; constant for the "
        "first half of each stage's epochs, then linear decay to zero)",
    )
    p.add_argument("--beta1", type=float, default=d.beta1, help="Adam beta1 (paper: 0.5)")
    p.add_argument("--beta2", type=float, default=d.beta2, help="Adam beta2 (paper: 0.999)")
    p.add_argument(
        "--lambda-fm", type=float, default=d.lambda_fm, help="feature-matching weight (paper: 10)"
    )
    p.add_argument(
        "--lambda-l1",
        type=float,
        default=d.lambda_l1,
        help="weight of an L1 term (not in the paper) over the pixels the composite takes from G: "
        "inside the mask for --mode inpaint, the lung for --mode label (default 0: off)",
    )
    p.add_argument(
        "--diffaugment",
        default=d.diffaugment,
        metavar="PARTS",
        help="DiffAugment on everything D sees, real and synthetic alike (not in the paper): "
        "comma-separated translation, cutout, color (default: off)",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=d.ema,
        help="keep an exponential moving average of G's weights with this decay (e.g. 0.999) and "
        "export it instead of G (not in the paper; default 0: off)",
    )
    p.add_argument(
        "--gan-loss",
        default=d.gan_loss,
        choices=["bce", "hinge"],
        help="cGAN loss (paper: bce, eq. 2)",
    )
    p.add_argument(
        "--size", type=int, help="model resolution (default: the preset's, 512 for paper and lite)"
    )
    p.add_argument(
        "--upsample",
        choices=["transposed", "resize"],
        help="override the preset's upsampling: transposed convs (the paper's) or "
        "nearest-neighbour resize + conv (no checkerboard)",
    )
    p.add_argument(
        "--noise",
        choices=["on", "off"],
        help="override the preset's per-pixel noise inputs (a source of texture; off in the paper)",
    )
    p.add_argument(
        "--discriminator",
        choices=["patch", "oasis"],
        help="override the preset's discriminator: the multi-resolution 70x70 PatchGAN (the "
        "paper's) or OASIS's per-pixel segmenter of the image (fake or one of the 4 classes)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers, help="data-loader processes per GPU")
    p.add_argument(
        "--device", default=d.device, help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu"
    )
    p.add_argument("--no-bf16", action="store_true", help="fp32 on CUDA instead of bf16 autocast")
    p.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="bf16 autocast on the CPU too (faster on CPUs with native bf16)",
    )
    p.add_argument("--no-tf32", action="store_true", help="disable TF32 matmuls on CUDA")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D")
    p.add_argument(
        "--checkpoint-every", type=int, default=d.checkpoint_every, help="steps between checkpoints"
    )
    p.add_argument(
        "--keep-last", type=int, default=d.keep_last, help="periodic checkpoints to keep"
    )
    p.add_argument(
        "--log-every", type=int, default=d.log_every, help="steps between metrics-log lines"
    )
    p.add_argument(
        "--max-steps", type=int, help="stop (with a checkpoint) after this many steps in all"
    )
    p.add_argument(
        "--init-generator",
        help="warm-start G from a checkpoint, an exported .safetensors or 'default' (the shipped "
        "label model); a label generator can start an inpaint one (new input channels start at 0)",
    )
    p.add_argument(
        "--cache-dir", help="where data-folder caches go (default ~/.cache/ct-lesion-studio)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def train_options_from_args(args: argparse.Namespace) -> TrainOptions:
    epochs = {
        s: args.epochs if args.epochs is not None else getattr(args, f"epochs_{s}")
        for s in ("global", "local", "joint")
    }
    return TrainOptions(
        data=args.data or "",
        out=args.out,
        preset=args.preset,
        mode=args.mode,
        ids=args.ids,
        stage=args.stage,
        epochs_global=epochs["global"],
        epochs_local=epochs["local"],
        epochs_joint=epochs["joint"],
        samples_per_epoch=args.samples_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        beta1=args.beta1,
        beta2=args.beta2,
        lambda_fm=args.lambda_fm,
        lambda_l1=args.lambda_l1,
        gan_loss=args.gan_loss,
        diffaugment=args.diffaugment,
        ema=args.ema,
        size=args.size,
        upsample=args.upsample,
        noise=None if args.noise is None else args.noise == "on",
        discriminator=args.discriminator,
        seed=args.seed,
        workers=args.workers,
        device=args.device,
        bf16=not args.no_bf16,
        cpu_bf16=args.cpu_bf16,
        tf32=not args.no_tf32,
        channels_last=args.channels_last,
        compile=args.compile,
        checkpoint_every=args.checkpoint_every,
        keep_last=args.keep_last,
        log_every=args.log_every,
        max_steps=args.max_steps,
        init_generator=args.init_generator,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
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
