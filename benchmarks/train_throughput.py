"""Training throughput: images/s and peak memory of full G+D training steps (joint stage) for the
``paper`` and ``lite`` presets, in fp32 eager, bf16 autocast, and bf16 + channels-last + compile.

    python -m benchmarks.train_throughput [--presets paper lite] [--batch 16] [--size 512] [--steps 5]

On CUDA the defaults are the paper's setting (512^2, batch 16). On a CPU that is hours of work, so
there the defaults shrink (batch 2, 2 timed steps) and the table says so; bf16 on the CPU is
measured too. Each measurement runs in a fresh process; peak memory is CUDA's max allocated, or
that process's peak resident set size on the CPU (model, optimizer, activations and the runtime).
Prints a table and writes ``train_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from gan.config import get_preset
from gan.labels import NUM_CLASSES
from gan.models import GlobalLocalGenerator, MultiResolutionPatchDiscriminator
from gan.training import make_optimizers, train_step

VARIANTS = {
    "fp32 eager": {"bf16": False, "channels_last": False, "compile": False},
    "bf16": {"bf16": True, "channels_last": False, "compile": False},
    "bf16+cl+compile": {"bf16": True, "channels_last": True, "compile": True},
}


def measure(
    preset: str, variant: dict, batch: int, size: int, steps: int, device: torch.device
) -> dict:
    torch.manual_seed(0)
    cfg = get_preset(preset).replace_generator(size=size)
    g = GlobalLocalGenerator(cfg.generator).to(device)
    d = MultiResolutionPatchDiscriminator(cfg.discriminator, NUM_CLASSES).to(device)
    labels = torch.zeros(batch, NUM_CLASSES, size, size, device=device)
    labels[:, 1] = 1
    image = torch.rand(batch, 1, size, size, device=device) * 2 - 1
    if variant["channels_last"]:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        labels, image = (
            labels.contiguous(memory_format=torch.channels_last),
            image.contiguous(memory_format=torch.channels_last),
        )
    opt_g, opt_d = make_optimizers(g, d)
    gm, dm = (torch.compile(g), torch.compile(d)) if variant["compile"] else (g, d)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if variant["bf16"] else None
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_step(
        gm, dm, opt_g, opt_d, labels, image, "joint", cfg.loss, 0, autocast
    )  # warm-up / compile
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for step in range(steps):
        train_step(gm, dm, opt_g, opt_d, labels, image, "joint", cfg.loss, step + 1, autocast)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak_gb = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {
        "images_per_s": batch * steps / seconds,
        "peak_memory_gb": peak_gb,
        "seconds_per_step": seconds / steps,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "lite"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch", type=int)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--single", nargs=2, metavar=("PRESET", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    batch = args.batch or (16 if device.type == "cuda" else 2)
    steps = args.steps or (5 if device.type == "cuda" else 2)
    if args.single:
        preset, name = args.single
        print(json.dumps(measure(preset, VARIANTS[name], batch, args.size, steps, device)))
        return 0
    rows = []
    for preset in args.presets:
        for name in args.variants:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.train_throughput",
                "--single",
                preset,
                name,
                "--batch",
                str(batch),
                "--steps",
                str(steps),
                "--size",
                str(args.size),
                "--device",
                args.device,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode == 0:
                result = json.loads(done.stdout.strip().splitlines()[-1])
            else:  # a variant that cannot run here is reported, not fatal
                result = {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:160]}
            rows.append({"preset": preset, "variant": name, **result})
            print(rows[-1], flush=True)
    hardware = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    record = {
        "hardware": hardware,
        "torch": torch.__version__,
        "batch": batch,
        "size": args.size,
        "steps": steps,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_throughput.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"\n{hardware}; torch {torch.__version__}; joint stage, {args.size}^2, batch {batch}, {steps} timed steps"
    )
    print(f"{'preset':<14}{'variant':<18}{'images/s':>10}{'peak GB':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['preset']:<14}{r['variant']:<18}  {r['error']}")
        else:
            print(
                f"{r['preset']:<14}{r['variant']:<18}{r['images_per_s']:>10.2f}{r['peak_memory_gb']:>9.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
