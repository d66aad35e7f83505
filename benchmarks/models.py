"""Model size and speed: parameters, GFLOPs per 512^2 forward, median inference time per slice,
for the ``paper`` and ``lite`` presets, fp32 and bf16, on the CPU and on CUDA where available.

    python -m benchmarks.models [--repeats 5] [--presets paper lite] [--out benchmarks/results]

Prints a table and writes ``models.json``. Timings are of the full global-local generator
(``joint``) and of G1 alone (``global``, the fast preview), batch 1, ``torch.inference_mode``.
Compare numbers as ratios within one run: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from gan.config import get_preset
from gan.labels import NUM_CLASSES
from gan.models import GlobalLocalGenerator, MultiResolutionPatchDiscriminator


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def gflops(model: torch.nn.Module, x: torch.Tensor, stage: str) -> float:
    """Forward FLOPs (multiply-add = 2 FLOPs), from torch's own flop counter."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, stage)
    return counter.get_total_flops() / 1e9


def median_ms(model, x, stage, device, dtype, repeats: int) -> float:
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if dtype == "bf16"
        else torch.autocast(device.type, enabled=False)
    )
    times = []
    with torch.inference_mode(), autocast:
        model(x, stage)  # warm-up
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x, stage)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run(presets, repeats: int, devices) -> dict:
    rows = []
    for name in presets:
        cfg = get_preset(name)
        generator = GlobalLocalGenerator(cfg.generator).eval()
        discriminator = MultiResolutionPatchDiscriminator(cfg.discriminator, NUM_CLASSES)
        size = cfg.generator.size
        x = torch.zeros(1, NUM_CLASSES, size, size)
        x[:, 1] = 1
        info = {
            "preset": name,
            "params_g1": count_parameters(generator.global_generator),
            "params_g2": count_parameters(generator.local_enhancer),
            "params_d": count_parameters(discriminator),
            "gflops_joint": gflops(generator, x, "joint"),
            "gflops_global": gflops(generator, x, "global"),
        }
        for device in devices:
            model, xd = generator.to(device), x.to(device)
            for dtype in ("fp32", "bf16"):
                for stage in ("joint", "global"):
                    rows.append(
                        {
                            **info,
                            "device": device.type,
                            "dtype": dtype,
                            "stage": stage,
                            "median_ms": median_ms(model, xd, stage, device, dtype, repeats),
                        }
                    )
        generator.to("cpu")
    return {
        "machine": {
            "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "repeats": repeats,
        "rows": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "lite"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    result = run(args.presets, args.repeats, devices)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "models.json").write_text(json.dumps(result, indent=2) + "\n")
    header = f"{'preset':<7}{'G1 params':>12}{'G2 params':>11}{'D params':>11}{'GFLOPs':>8}{'device':>7}{'dtype':>6}{'stage':>7}{'ms/slice':>10}"
    print(header)
    print("-" * len(header))
    for r in result["rows"]:
        flops = r["gflops_joint"] if r["stage"] == "joint" else r["gflops_global"]
        print(
            f"{r['preset']:<7}{r['params_g1']:>12,}{r['params_g2']:>11,}{r['params_d']:>11,}{flops:>8.1f}"
            f"{r['device']:>7}{r['dtype']:>6}{r['stage']:>7}{r['median_ms']:>10.0f}"
        )
    print(
        f"machine: {result['machine']}; median of {args.repeats}; JSON in {args.out / 'models.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
