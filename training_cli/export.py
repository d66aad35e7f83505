"""``export``: checkpoint -> generator-only safetensors (fp32 or fp16) + JSON config + SHA-256."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan import paths
from gan.checkpoint import export_generator, load_generator, resolve_weights, trained_stages
from gan.fsutil import atomic_write_text

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
    p.add_argument(
        "--register-default",
        metavar="MODE",
        choices=["label", "inpaint"],
        help="also list the export as the shipped default of MODE in resources/models/index.json "
        "(the export must be written into resources/models/)",
    )


def run(args: argparse.Namespace) -> int:
    source = resolve_weights(args.checkpoint)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {out.name}")
    models_dir = paths.resources_dir() / "models"
    if args.register_default and out.resolve().parent != models_dir.resolve():
        raise ValueError(f"--register-default needs --out inside {models_dir}")
    generator, config = load_generator(source)
    if args.register_default and config.generator.mode != args.register_default:
        raise ValueError(
            f"{source.name} is a {config.generator.mode}-mode generator; it cannot be the default "
            f"{args.register_default!r} model"
        )
    stages = trained_stages(source)
    extra = {"source": source.name}
    training = training_record(source)
    if training:
        extra["training"] = training
    sidecar = export_generator(
        generator, config, out, half=not args.fp32, stages_trained=stages, extra=extra
    )
    if args.register_default:
        register_default(models_dir / "index.json", args.register_default, out, sidecar)
        print(
            f"  listed as the default {args.register_default!r} model in {models_dir / 'index.json'}"
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


def training_record(checkpoint: Path) -> dict | None:
    """What the run folder of a training checkpoint says about how the weights were made: options,
    hardware, data, and per stage the samples seen and the wall-clock time (from metrics.jsonl)."""
    run_dir = checkpoint.resolve().parent.parent
    options_path = run_dir / "training_options.json"
    if checkpoint.suffix != ".pt" or not options_path.is_file():
        return None
    options = json.loads(options_path.read_text())
    record = {
        k: options.get(k) for k in ("options", "git_commit", "world_size", "device_name", "torch")
    }
    data = dict(options.get("data") or {})
    data["ids"] = len(data.get("ids") or [])  # the count; the split file names them
    record["data"] = data
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        from training_cli.curves import read_metrics

        batch = int(options.get("options", {}).get("batch_size", 1))
        stages: dict[str, dict] = {}
        previous_time = None
        from gan.checkpoint import load_checkpoint

        last = int(load_checkpoint(checkpoint).get("progress", {}).get("global_step", 1 << 62))
        for r in read_metrics(metrics):
            if r.get("global_step", 0) > last:
                break  # logged after this checkpoint
            stage = stages.setdefault(r.get("stage", "?"), {"steps": 0, "seconds": 0.0})
            stage["last_step"] = r.get("global_step", 0)
            if previous_time is not None and "time" in r:
                stage["seconds"] += max(0.0, r["time"] - previous_time)
            previous_time = r.get("time", previous_time)
        if stages and last < 1 << 62:  # steps after the last logged line, up to the checkpoint
            final = stages[list(stages)[-1]]
            final["last_step"] = max(final["last_step"], last)
        first = 0
        for stage in stages.values():  # stages run in order: steps are differences of global_step
            stage["steps"] = stage.pop("last_step") - first
            first += stage["steps"]
            stage["samples"] = stage["steps"] * batch
            stage["seconds"] = round(stage["seconds"], 1)
        record["stages"] = stages
    from gan.checkpoint import load_checkpoint, stage_in_progress

    payload = load_checkpoint(checkpoint)
    partial = stage_in_progress(payload)
    if partial:
        progress = payload["progress"]
        record["stopped_in_stage"] = {
            "stage": partial,
            "epochs_done": progress.get("epoch", 0),
            "steps_into_epoch": progress.get("step", 0),
            "epochs_planned": record["options"].get(f"epochs_{partial}"),
        }
    return record


def register_default(index_path: Path, mode: str, weights: Path, sidecar: dict) -> None:
    """Point ``--checkpoint default`` (for ``mode``) at ``weights``, with its SHA-256."""
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    index.setdefault("format", "ct-lesion-studio-model-index")
    index.setdefault("format_version", 1)
    index.setdefault("defaults", {})[mode] = {
        "weights": weights.name,
        "sha256": sidecar["sha256"],
        "preset": sidecar["config"].get("preset"),
        "stages_trained": sidecar["stages_trained"],
        "dtype": sidecar["dtype"],
        "model_card": "MODEL_CARD.md",
    }
    atomic_write_text(index_path, json.dumps(index, indent=2) + "\n")
