"""Batch export throughput: synthetic slices per second of ``training_cli batch``, one process and
several (torchrun), on the CPU; on a GPU also batched (``--batch-size``).

    python -m benchmarks.batch_throughput [--synthesis inpaint] [--slices 8] [--per-input 2]
        [--processes 1 2] [--batch-sizes 1] [--device cpu] [--tiny] [--out benchmarks/results]

Each row is one fresh export of the first ``--slices`` training slices (``--ids``, the training
split) of ``--data`` into a new folder, timed end to end: interpreter and model start-up, lung
derivation, edits, synthesis, compositing and PNG writing, as a curator's run pays them. With N
processes, each gets cores / N threads (``OMP_NUM_THREADS``), so every row uses the whole
machine. The manifest's SHA-256 is recorded per row: at batch size 1 every process count writes
the same export. ``--tiny`` uses an untrained tiny model (a check of the harness, not a
measurement). Prints a table; writes ``batch_throughput.json`` and ``batch_throughput.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import DEFAULT_DATA, REPO


def command(args, processes: int, batch_size: int, out: Path, ids: Path, weights: str) -> list:
    launcher = (
        [sys.executable, "-m", "training_cli"]
        if processes == 1
        else [str(Path(sys.executable).parent / "torchrun"), "--standalone"]
        + ["--nproc_per_node", str(processes), "-m", "training_cli"]
    )
    model = (["--checkpoint", weights] if args.synthesis == "whole-lung" else []) + (
        ["--inpaint-checkpoint", weights] if args.synthesis == "inpaint" else []
    )
    return launcher + [
        "batch", "--synthesis", args.synthesis, *model, "--data", str(args.data),
        "--ids", str(ids), "--per-input", str(args.per_input), "--batch-size", str(batch_size),
        "--device", args.device, "--out", str(out), "--no-progress",
    ]  # fmt: skip


def measure(args, processes: int, batch_size: int, ids: Path, weights: str, work: Path) -> dict:
    out = work / f"p{processes}-b{batch_size}"
    threads = max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(
        command(args, processes, batch_size, out, ids, weights),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    manifest = out / "manifest.csv"
    samples = max(len(manifest.read_text().splitlines()) - 1, 0)
    return {
        "samples": samples,
        "seconds": round(seconds, 2),
        "slices_per_s": round(samples / seconds, 3),
        "threads_per_process": threads,
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--synthesis", default="inpaint", choices=["inpaint", "whole-lung", "procedural"]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ids", type=Path, default=REPO / "resources" / "splits" / "train.txt")
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--per-input", type=int, default=2)
    parser.add_argument("--processes", type=int, nargs="+")
    parser.add_argument("--batch-sizes", type=int, nargs="+")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--checkpoint", default="default", help="the model (inpaint or label)")
    parser.add_argument(
        "--tiny", action="store_true", help="an untrained tiny model (harness check)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"error: no data folder at {args.data}")
        return 1
    cuda = args.device.startswith("cuda")
    processes = args.processes or ([max(torch.cuda.device_count(), 1)] if cuda else [1, 2])
    batch_sizes = args.batch_sizes or ([1, 8, 16] if cuda else [1])
    from gan.data import read_split_file

    ids = read_split_file(args.ids)[: args.slices]
    with tempfile.TemporaryDirectory(prefix="batch-throughput-") as tmp:
        work = Path(tmp)
        (work / "ids.txt").write_text("".join(f"{i}\n" for i in ids))
        weights = args.checkpoint
        if args.tiny:
            from gan.checkpoint import export_generator
            from gan.config import get_preset
            from gan.models import GlobalLocalGenerator

            mode = "label" if args.synthesis == "whole-lung" else "inpaint"
            torch.manual_seed(0)
            cfg = get_preset("tiny").replace_generator(mode=mode)
            weights = str(work / "tiny.safetensors")
            export_generator(GlobalLocalGenerator(cfg.generator), cfg, weights, half=False)
        rows = []
        for p in processes:
            for b in batch_sizes:
                row = {"processes": p, "batch_size": b}
                row.update(measure(args, p, b, work / "ids.txt", weights, work))
                rows.append(row)
                print(row, flush=True)
    hardware = (
        f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
        if cuda
        else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    )
    record = {
        "hardware": hardware,
        "torch": torch.__version__,
        "synthesis": args.synthesis,
        "model": "tiny (untrained)" if args.tiny else args.checkpoint,
        "slices": len(ids),
        "per_input": args.per_input,
        "note": "end to end, start-up included; a row is one fresh export",
        "rows": rows,
    }
    lines = [
        f"{hardware}; torch {torch.__version__}; `batch --synthesis {args.synthesis}`, "
        f"{len(ids)} slices x {args.per_input} samples, model {record['model']}; end to end",
        "",
        "| processes | batch | threads/process | samples | seconds | slices/s | manifest |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['processes']} | {r['batch_size']} | error: {r['error']} |")
        else:
            lines.append(
                f"| {r['processes']} | {r['batch_size']} | {r['threads_per_process']} | "
                f"{r['samples']} | {r['seconds']:.1f} | {r['slices_per_s']:.2f} | "
                f"{r['manifest_sha256'][:12]} |"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch_throughput.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / "batch_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
