"""One prepared GPU check (``make gpu-check``): everything that needs CUDA, in one go, in minutes.

    python -m benchmarks.gpu_check [--out gpu-check-out] [--data .device-data/train.npz]
        [--budget-s 450] [--dry-run]

In order, each step's result in ``OUT/gpu_check.json`` (and one line each on the terminal):

1. ``environment``: torch, CUDA, the GPUs, and which of our packages import (a GPU box may hold
   torch alone: ``make gpu-wheels`` downloads the pure-Python and binary wheels it needs into
   ``.whl/``, carried beside the tree; this script installs them with ``--no-index`` if present).
2. ``bf16``: the lite generator under bf16 autocast against fp32 on the GPU, same weights and input:
   mean |diff| <= 0.02 and max |diff| <= 0.25 in [-1, 1] (the tolerance bf16's 8-bit mantissa
   leaves after ~30 layers with instance norm).
3. ``synthesizer``: the shipped label model through ``gan.synthesizer.Synthesizer`` on the GPU (bf16)
   against the CPU in fp32, the same tolerance; ``inpaint``: the shipped inpainting model keeps
   every pixel outside its region.
4. ``latency``: the shipped label model, 512^2, median ms at batch 1 and batch 8.
5. ``ddp``: a few steps of two-process ``torchrun`` training (NCCL with two GPUs or more, gloo
   when two processes share one) that must exit 0 with identical replicas.
6. ``train``: the candidate texture recipe (``lite-texture``, DiffAugment, EMA) on ``--data`` for
   the rest of ``--budget-s``, stopped by SIGINT (a checkpoint), exported to
   ``OUT/lite-texture-label.safetensors`` with its run's metrics.

``--dry-run`` runs the same code on the CPU at toy sizes (tiny presets, 64^2, phantom data, a few
steps), saying what it skipped; the tests run it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NEEDED = ("numpy", "safetensors", "monai", "tqdm", "scipy")
TOLERANCE = {"mean_abs": 0.02, "max_abs": 0.25}
RECIPE = ["--diffaugment", "translation,cutout,color", "--ema", "0.999"]


def step(name: str, results: dict, fn, *args) -> dict:
    """Run one check; its result (or the one-line error it raised) goes into ``results``."""
    start = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a failed check is reported, the others still run
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        result = {"status": "failed", "error": f"{type(exc).__name__}: {first}"}
    result["seconds"] = round(time.perf_counter() - start, 1)
    results[name] = result
    detail = result.get("error") or result.get("reason") or result.get("summary", "")
    print(f"{name:<12} {result['status']:<8} {result['seconds']:>6.1f} s  {detail}", flush=True)
    return result


def environment() -> dict:
    import torch

    wheels = REPO / ".whl"
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    installed = []
    if missing and wheels.is_dir() and any(wheels.glob("*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
            + [str(w) for w in sorted(wheels.glob("*.whl"))],
            check=True,
        )
        importlib.invalidate_caches()
        installed = missing
        missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "status": "ok" if not missing else "failed",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpus": gpus,
        "installed_from_wheels": installed,
        "missing": missing,
        "summary": f"torch {torch.__version__}, {len(gpus)} GPU(s) {', '.join(gpus)}",
        **({"error": f"missing packages: {', '.join(missing)}"} if missing else {}),
    }


def _phantom(size: int):
    """A chest-like label map: two lungs with a GGO and a consolidation patch (numpy only)."""
    import numpy as np

    yy, xx = np.mgrid[:size, :size] / size
    labels = np.zeros((size, size), np.uint8)
    for cx in (0.3, 0.7):
        lung = ((xx - cx) / 0.14) ** 2 + ((yy - 0.5) / 0.25) ** 2 < 1
        labels[lung] = 1
        labels[lung & (yy > 0.6)] = 2 if cx < 0.5 else 3
    return labels


def _diff(a, b) -> dict:
    import numpy as np

    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    ok = d.mean() <= TOLERANCE["mean_abs"] and d.max() <= TOLERANCE["max_abs"]
    return {
        "mean_abs": float(d.mean()),
        "max_abs": float(d.max()),
        "within_tolerance": bool(ok),
        "tolerance": TOLERANCE,
    }


def bf16_against_fp32(device: str, dry: bool) -> dict:
    import torch

    from gan.config import get_preset
    from gan.labels import one_hot_torch
    from gan.models import GlobalLocalGenerator
    from gan.synthesizer import autocast_context, cpu_has_native_bf16

    if dry and not cpu_has_native_bf16():
        return {"status": "skipped", "reason": "dry run on a CPU without native bf16"}
    preset = "tiny" if dry else "lite"
    cfg = get_preset(preset).generator
    torch.manual_seed(0)
    g = GlobalLocalGenerator(cfg).to(device).eval()
    x = one_hot_torch(torch.from_numpy(_phantom(cfg.size).astype("int64"))[None]).to(device)
    with torch.no_grad():
        fp32 = g(x).float().cpu().numpy()
        with autocast_context(torch.device(device), True, cpu=device == "cpu"):
            bf16 = g(x).float().cpu().numpy()
    result = {"preset": preset, **_diff(bf16, fp32)}
    result["status"] = "ok" if result["within_tolerance"] else "failed"
    result["summary"] = f"mean |bf16 - fp32| {result['mean_abs']:.4f}, max {result['max_abs']:.3f}"
    return result


def synthesizer_on(device: str, dry: bool) -> dict:
    import numpy as np

    from gan.synthesizer import Synthesizer

    labels = _phantom(128 if dry else 512)
    reference = Synthesizer("default", device="cpu", cpu_bf16=False).synthesize(labels)
    if dry:
        return {
            "status": "skipped",
            "reason": "dry run: no GPU to compare with the CPU (the CPU path ran)",
            "cpu_output_std": float(reference.std()),
        }
    on_gpu = Synthesizer("default", device=device).synthesize(labels)
    result = {**_diff(on_gpu, reference)}
    inpainter = Synthesizer("default", device=device, mode="inpaint")
    image = np.clip(reference + 0.01, -1, 1).astype(np.float32)
    mask = np.zeros(labels.shape, bool)
    mask[200:260, 120:180] = True
    kept = inpainter.inpaint(labels, image, mask)
    result["inpaint_keeps_outside"] = bool(np.array_equal(kept[~mask], image[~mask]))
    ok = result["within_tolerance"] and result["inpaint_keeps_outside"]
    result["status"] = "ok" if ok else "failed"
    result["summary"] = f"mean |GPU bf16 - CPU fp32| {result['mean_abs']:.4f}"
    return result


def latency(device: str, dry: bool) -> dict:
    import numpy as np
    import torch

    from gan.synthesizer import Synthesizer

    weights = "default"
    if dry:  # a tiny untrained model: the same code path in a fraction of the time
        from gan.checkpoint import export_generator
        from gan.config import get_preset
        from gan.models import GlobalLocalGenerator

        cfg = get_preset("tiny")
        weights = Path(tempfile.mkdtemp()) / "tiny.safetensors"
        export_generator(GlobalLocalGenerator(cfg.generator), cfg, weights, half=False)
    s = Synthesizer(weights, device=device, cpu_bf16=False if dry else None)
    labels = _phantom(s.size)
    rows = {}
    for batch in (1, 2) if dry else (1, 8):
        maps = np.stack([labels] * batch)
        times = []
        for _ in range(2 if dry else 10):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            s.synthesize_batch(maps)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000)
        rows[f"batch_{batch}_ms"] = statistics.median(times[1:] or times)
    summary = ", ".join(f"{k} {v:.1f}" for k, v in rows.items())
    return {"status": "ok", "device": device, **rows, "summary": summary}


def _train_args(data: Path, out: Path, dry: bool) -> list[str]:
    size = ["--preset", "tiny-texture", "--size", "64"] if dry else ["--preset", "lite-texture"]
    return [*size, "--data", str(data), "--out", str(out), "--no-progress", *RECIPE]


def ddp_steps(data: Path, out: Path, dry: bool) -> dict:
    import torch

    # torch's own launcher module: a pip-installed torch may keep its torchrun script elsewhere
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    command += ["2", "-m", "training_cli"]
    command += ["train", *_train_args(data, out / "ddp", dry), "--max-steps", "4"]
    command += ["--stage", "joint", "--batch-size", "4", "--workers", "0", "--log-every", "1"]
    command += ["--samples-per-epoch", "16"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {"status": "failed", "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    lines = [json.loads(x) for x in (out / "ddp" / "metrics.jsonl").read_text().splitlines()]
    gpus = torch.cuda.device_count()
    backend = "nccl" if gpus >= 2 else "gloo"
    identical = [r["ddp_replicas_identical"] for r in lines if "ddp_replicas_identical" in r]
    if identical != [True]:
        return {"status": "failed", "error": f"replicas identical: {identical}"}
    return {
        "status": "ok",
        "backend": backend if not dry else "gloo (CPU)",
        "steps": sum(1 for r in lines if "g_total" in r),
        "summary": f"2 processes, {backend if not dry else 'gloo on the CPU'}, 4 steps",
    }


def train_recipe(data: Path, out: Path, seconds: float, dry: bool) -> dict:
    run = out / "train"
    command = [sys.executable, "-m", "training_cli", "train", *_train_args(data, run, dry)]
    command += ["--stage", "all", "--workers", "0" if dry else "8", "--checkpoint-every", "200"]
    if dry:
        command += ["--max-steps", "3", "--samples-per-epoch", "4", "--batch-size", "2"]
    else:
        command += ["--batch-size", "16", "--samples-per-epoch", "2400", "--epochs", "5"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=max(seconds, 30))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # saves a checkpoint, exits 130
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a trainer holding the GPU
            raise
    if proc.returncode not in (0, 130):
        return {"status": "failed", "error": (err.decode().strip().splitlines() or ["?"])[-1]}
    checkpoints = sorted((run / "checkpoints").glob("*.pt"))
    final = run / "checkpoints" / "final.pt"
    source = final if final.exists() else checkpoints[-1]
    weights = out / "lite-texture-label.safetensors"
    exported = subprocess.run(
        [sys.executable, "-m", "training_cli", "export", "--checkpoint", str(source)]
        + ["--out", str(weights)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if exported.returncode != 0:
        return {"status": "failed", "error": exported.stderr.strip().splitlines()[-1]}
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "g_total" in r]
    rate = [r["images_per_s"] for r in steps if r.get("images_per_s")]
    return {
        "status": "ok",
        "checkpoint": str(source),
        "weights": str(weights),
        "steps": len(steps),
        "images_per_s": statistics.median(rate) if rate else None,
        "summary": f"{len(steps)} steps, exported {weights.name}",
    }


def _phantom_npz(folder: Path) -> Path:
    """Four phantom slices as a slice cache: the dry run's training data."""
    import numpy as np

    from gan.data import SliceSet

    labels = np.stack([_phantom(64)] * 4)
    images = np.where(labels > 0, -0.8 + 0.4 * (labels - 1), 0.6).astype(np.float32)
    rng = np.random.default_rng(0)
    images = np.clip(images + rng.normal(0, 0.05, images.shape), -1, 1).astype(np.float32)
    path = folder / "phantoms.npz"
    SliceSet([f"p{i}" for i in range(4)], images, labels).save(path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check-out"))
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO / ".device-data" / "train.npz",
        help="training slices as a .npz slice cache (`prepare --cache-out`; git-ignored)",
    )
    parser.add_argument("--budget-s", type=float, default=450, help="all steps together")
    parser.add_argument("--dry-run", action="store_true", help="the CPU, toy sizes, a few steps")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    import shutil

    for earlier in ("ddp", "train"):  # a rerun into the same folder starts its runs afresh
        shutil.rmtree(args.out / earlier, ignore_errors=True)
    results: dict = {"dry_run": args.dry_run, "budget_s": args.budget_s}
    env = step("environment", results, environment)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("error: no CUDA GPU here (use --dry-run on a CPU)")
        return 1
    if env["status"] != "ok":
        _write(args.out, results)
        return 1
    device = "cpu" if args.dry_run else "cuda"
    step("bf16", results, bf16_against_fp32, device, args.dry_run)
    step("synthesizer", results, synthesizer_on, device, args.dry_run)
    step("latency", results, latency, device, args.dry_run)
    with tempfile.TemporaryDirectory() as tmp:
        data = _phantom_npz(Path(tmp)) if args.dry_run else args.data
        if not args.dry_run and not data.is_file():
            results["ddp"] = results["train"] = {
                "status": "skipped",
                "reason": f"no training data at {data} (carry a `prepare --cache-out` .npz)",
            }
        else:
            step("ddp", results, ddp_steps, data, args.out, args.dry_run)
            left = args.budget_s - (time.perf_counter() - start) - 60  # export and write-up
            step("train", results, train_recipe, data, args.out, left, args.dry_run)
    _write(args.out, results)
    failed = [k for k, v in results.items() if isinstance(v, dict) and v["status"] == "failed"]
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'}; {args.out}")
    return 1 if failed else 0


def _write(out: Path, results: dict) -> None:
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
