"""``export``: checkpoint -> generator-only safetensors (fp32 or fp16) + JSON config + SHA-256."""

from __future__ import annotations

import argparse
from pathlib import Path

from gan.checkpoint import export_generator, load_generator, resolve_weights, trained_stages

HELP = "Export a checkpoint's generator as safetensors (+ JSON config and SHA-256), the format the app loads."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", required=True, help="training checkpoint (.pt), an export, or 'default'"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output .safetensors path (a .json sidecar is written beside it)",
    )
    precision = p.add_mutually_exclusive_group()
    precision.add_argument(
        "--fp16", action="store_true", help="store weights in fp16 (half the size; default)"
    )
    precision.add_argument("--fp32", action="store_true", help="store weights in fp32")


def run(args: argparse.Namespace) -> int:
    source = resolve_weights(args.checkpoint)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {out.name}")
    generator, config = load_generator(source)
    stages = trained_stages(source)
    sidecar = export_generator(
        generator,
        config,
        out,
        half=not args.fp32,
        stages_trained=stages,
        extra={"source": source.name},
    )
    size_mb = out.stat().st_size / 2**20
    print(
        f"Exported {config.preset} generator ({sidecar['parameters']:,} parameters, {sidecar['dtype']}, "
        f"{size_mb:.1f} MiB, stages trained: {', '.join(stages) or 'unknown'})"
    )
    print(
        f"  weights: {out}\n  config:  {out.with_suffix('.json')}\n  sha256:  {sidecar['sha256']}"
    )
    return 0
