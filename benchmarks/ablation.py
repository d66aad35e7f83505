"""The realism issue's ablation at equal budget: each texture change alone and all together, G1
alone at 256^2 for the same number of samples, scored on a validation set carved out of the
training split (never the test split).

    python -m benchmarks.ablation [--samples 1600] [--arms lite,resize,...] [--parallel 2]
        [--runs runs/ablation] [--out benchmarks/results]

Every arm trains from scratch with the same seed, data order, schedule (Adam 2e-4, constant for
half the samples, then linear decay to 0) and batch; only its change differs. Every run keeps an
EMA of G (it does not feed back into training), so the ``ema`` arm is the ``lite`` run's moving
average and ``lite`` its raw G. The validation slices (``resources/splits/ablation/val.txt``, 8 of
the 64 training slices, stratified like the test split) are kept out of every arm's training;
they are scored under ``evaluate``'s seeded augmentations with the realism metrics (C2ST,
periodicity, with their controls), lung-only KID/FID and lung-only SSIM.

Finished runs are reused (delete ``runs/ablation/<arm>`` to retrain one). Writes
``ablation.json`` and ``ablation.md`` (the table) to ``--out`` and ``ablation.png`` (the same
validation slices, one column per arm) beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import DEFAULT_DATA, REPO

SPLITS = REPO / "resources" / "splits" / "ablation"
EMA = "0.999"
#: arm -> (train arguments on top of the common ones, evaluate the EMA weights?)
ARMS: dict[str, tuple[list[str], bool]] = {
    "lite": (["--preset", "lite"], False),
    "ema": (["--preset", "lite"], True),
    "resize": (["--preset", "lite", "--upsample", "resize"], False),
    "noise": (["--preset", "lite", "--noise", "on"], False),
    "diffaugment": (["--preset", "lite", "--diffaugment", "translation,cutout"], False),
    "fm2": (["--preset", "lite", "--lambda-fm", "2"], False),
    # OASIS-style per-pixel segmentation D (gan/models/oasis.py): about 2.7x a patch arm's time
    "oasis": (["--preset", "lite", "--discriminator", "oasis"], False),
    "all": (
        ["--preset", "lite-texture", "--diffaugment", "translation,cutout", "--lambda-fm", "2"],
        True,
    ),
}
#: arms that share another's training run (the EMA is kept in every run)
SAME_RUN = {"ema": "lite"}


def run_dir(runs: Path, arm: str) -> Path:
    return runs / SAME_RUN.get(arm, arm)


def train_command(arm: str, args: argparse.Namespace) -> list[str]:
    from gan.synthesizer import cpu_has_native_bf16

    extra, _ = ARMS[arm]
    cmd = [
        sys.executable,
        "-m",
        "training_cli",
        "train",
        *extra,
        "--stage",
        "global",
        "--epochs-global",
        "1",
        "--samples-per-epoch",
        str(args.samples),
        "--batch-size",
        "4",
        "--seed",
        "0",
        "--workers",
        "0",
        "--ema",
        EMA,
        "--data",
        str(args.data),
        "--ids",
        str(args.train_ids),
        "--out",
        str(run_dir(args.runs, arm)),
        "--checkpoint-every",
        "100",
        "--no-progress",
    ]
    if cpu_has_native_bf16():
        cmd.append("--cpu-bf16")
    return cmd


def raw_generator_checkpoint(final: Path) -> Path:
    """A copy of a checkpoint without its EMA weights, so that ``evaluate`` scores the raw G."""
    raw = final.with_name("final-raw-g.pt")
    if not raw.exists():
        payload = torch.load(final, map_location="cpu", weights_only=False)
        payload.pop("generator_ema", None)
        torch.save(payload, raw)
    return raw


def arm_checkpoint(arm: str, runs: Path) -> Path:
    final = run_dir(runs, arm) / "checkpoints" / "final.pt"
    return final if ARMS[arm][1] else raw_generator_checkpoint(final)


def evaluate_arm(arm: str, args: argparse.Namespace, images: tuple) -> dict:
    """``evaluate``'s report of one arm on the validation images (lung-only and complemented
    FID/KID/SSIM, C2ST and periodicity). The realism controls depend on the images only, not on
    the arm, so they are computed once and shared (``controls.json``): three of every four C2ST
    fits would otherwise repeat the same control."""
    from gan.compose import composite_into_nonlung
    from gan.synthesizer import Synthesizer
    from training_cli.evaluate import compute_report, synthesize_all
    from training_cli.realism import realism_report

    names, labels, real = images
    synthesizer = Synthesizer(str(arm_checkpoint(arm, args.runs)), device="cpu", mode="label")
    synthetic = synthesize_all(synthesizer, labels, real, None, 4, "global")
    summary, _ = compute_report(real, synthetic, labels, names, fid=True, realism=False)
    composite = np.stack(
        [
            composite_into_nonlung(s, r, m)
            for s, r, m in zip(synthetic, real, labels > 0, strict=True)
        ]
    )
    shared = args.runs / "controls.json"
    if shared.exists():
        realism = realism_report(real, composite, labels, names, controls=False)
        saved = json.loads(shared.read_text())
        realism["controls"], realism["counts"] = saved["controls"], saved["counts"]
    else:
        realism = realism_report(real, composite, labels, names)
        shared.write_text(
            json.dumps({"controls": realism["controls"], "counts": realism["counts"]}) + "\n"
        )
    summary["realism"] = realism
    summary["checkpoint_sha256"] = synthesizer.sha256
    return summary


def evaluate_arms(arms: list[str], args: argparse.Namespace) -> None:
    """Write ``<arm>.val.json`` for every arm that has a finished run and no report yet."""
    from training_cli.data_source import load_slices
    from training_cli.evaluate import evaluation_pairs

    todo = [
        a
        for a in arms
        if not (args.runs / f"{a}.val.json").exists()
        and (run_dir(args.runs, a) / "checkpoints" / "final.pt").exists()
    ]
    if not todo:
        return
    slices = load_slices(args.data, str(args.val_ids), 512, None)
    images = evaluation_pairs(slices, args.augment)
    for arm in todo:
        start = time.monotonic()
        report = evaluate_arm(arm, args, images)
        (args.runs / f"{arm}.val.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"evaluated {arm} in {(time.monotonic() - start) / 60:.1f} min", flush=True)


def run_parallel(jobs: list[tuple[str, list[str], Path]], parallel: int, threads: int) -> None:
    """Run (name, command, log) jobs, ``parallel`` at a time, each with ``threads`` threads."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < parallel:
            name, cmd, log = pending.pop(0)
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"start {name}: {' '.join(cmd[2:])}", flush=True)
            handle = open(log, "w")  # noqa: SIM115 - closed when the job ends
            proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO)
            running.append((name, proc, handle, log, time.monotonic()))
        time.sleep(2)
        for job in list(running):
            name, proc, handle, log, start = job
            if proc.poll() is None:
                continue
            handle.close()
            running.remove(job)
            took = time.monotonic() - start
            if proc.returncode:
                tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
                raise SystemExit(f"{name} failed ({proc.returncode}): {tail[0]} — see {log}")
            print(f"done  {name} in {took / 60:.1f} min", flush=True)


def row(arm: str, report: dict, train_record: dict) -> dict:
    realism = report.get("realism") or {}
    c2st = realism.get("c2st") or {}
    period = realism.get("periodicity") or {}
    lung = report["lung_only"]
    return {
        "arm": arm,
        "change": " ".join(ARMS[arm][0]) + (f" (EMA {EMA} weights)" if ARMS[arm][1] else ""),
        "c2st": c2st.get("mean"),
        "c2st_sd": c2st.get("sd"),
        "periodicity": period.get("mean"),
        "periodicity_sd": period.get("sd"),
        "realism_counts": realism.get("counts"),
        "lung_kid": lung.get("kid"),
        "lung_kid_std": lung.get("kid_std"),
        "lung_fid": lung.get("fid"),
        "lung_ssim": lung.get("ssim"),
        "train_seconds": train_record.get("seconds"),
        "samples": train_record.get("samples"),
    }


def train_record(run: Path) -> dict:
    """Samples and seconds of the run's global stage (from its metrics log)."""
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    steps = [x for x in lines if x.get("stage") == "global" and "time" in x]
    if not steps:
        return {}
    return {
        "samples": steps[-1]["global_step"] * 4,
        "seconds": steps[-1]["time"] - steps[0]["time"],
    }


def control_summary(realism: dict) -> dict | None:
    """The validation images' controls (the same for every arm: same images, same protocol)."""
    ctrl = realism.get("controls")
    if not ctrl:
        return None
    return {
        "real vs real C2ST": round(ctrl["real_vs_real"]["mean"], 3),
        "flat fill C2ST": round(ctrl["flat_fill"]["c2st"]["mean"], 3),
        "flat fill periodicity": round(ctrl["flat_fill"]["periodicity"]["mean"], 2),
        "blur σ=3 C2ST": round(ctrl["blur"]["c2st"]["mean"], 3),
        "blur σ=3 periodicity": round(ctrl["blur"]["periodicity"]["mean"], 2),
        "in range": bool(realism.get("counts")),
    }


def cell(value, spec: str, sd=None) -> str:
    if value is None:
        return "—"
    return f"{value:{spec}}" + (f" ± {sd:{spec}}" if sd is not None else "")


def table(rows: list[dict], controls: dict | None) -> str:
    lines = [
        "| arm | change | C2ST ↓ (0.5 ideal) | periodicity (1 ideal) | lung KID ↓ | lung FID ↓ "
        "| lung SSIM ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | `{r['change']}` | {cell(r['c2st'], '.3f', r['c2st_sd'])} | "
            f"{cell(r['periodicity'], '.2f', r['periodicity_sd'])} | "
            f"{cell(r['lung_kid'], '.4f', r['lung_kid_std'])} | {cell(r['lung_fid'], '.1f')} | "
            f"{cell(r['lung_ssim'], '.3f')} |"
        )
    if controls:
        lines.append("")
        lines.append(
            "Controls on the same validation images: "
            + ", ".join(f"{k} {v}" for k, v in controls.items())
        )
    return "\n".join(lines)


def figure(args: argparse.Namespace, arms: list[str], out: Path) -> None:
    """The same validation slices (rows) synthesized by each arm (columns), lung composited into
    the real slice; the real slice first."""
    from gan.compose import composite_into_nonlung
    from gan.ctio import encode_png
    from gan.fsutil import atomic_write_bytes
    from gan.synthesizer import Synthesizer
    from training_cli.data_source import load_slices

    slices = load_slices(args.data, str(args.val_ids), 512, None)
    rows = min(4, len(slices))
    tiles = [[((slices.images[i] + 1) * 127.5).clip(0, 255) for i in range(rows)]]
    for arm in arms:
        synth = Synthesizer(str(arm_checkpoint(arm, args.runs)), device="cpu", mode="label")
        column = []
        for i in range(rows):
            labels = slices.label_maps[i]
            fake = synth.synthesize(labels, seed=i)
            comp = composite_into_nonlung(fake, slices.images[i], labels > 0)
            column.append(((comp + 1) * 127.5).clip(0, 255))
        tiles.append(column)
    import cv2

    # the lung's right half of each slice at full resolution (texture is what this is about),
    # and a header naming each column
    crop = [np.concatenate([t[96:416, 40:296] for t in c], axis=0) for c in tiles]
    header = np.zeros((28, crop[0].shape[1]), np.uint8)
    heads = []
    for name in ["real", *arms]:
        h = header.copy()
        cv2.putText(h, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
        heads.append(h)
    grid = np.concatenate(
        [np.concatenate([h, c.astype(np.uint8)], axis=0) for h, c in zip(heads, crop, strict=True)],
        axis=1,
    )
    atomic_write_bytes(out, encode_png(grid.astype(np.uint8)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--train-ids", type=Path, default=SPLITS / "train.txt")
    parser.add_argument("--val-ids", type=Path, default=SPLITS / "val.txt")
    parser.add_argument("--samples", type=int, default=1600, help="training samples per arm")
    parser.add_argument("--augment", type=int, default=10, help="augmentations per val slice")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"default: {','.join(ARMS)}")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="only evaluate the arms whose runs have finished (no training, no table)",
    )
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "ablation")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    if not (args.data / "images").is_dir():
        print(f"error: no data folder at {args.data}")
        return 1
    threads = max(1, (os.cpu_count() or 2) // args.parallel)

    if not args.evaluate_only:
        to_train = sorted(
            {SAME_RUN.get(a, a) for a in arms}
            - {a for a in ARMS if (run_dir(args.runs, a) / "checkpoints" / "final.pt").exists()}
        )
        run_parallel(
            [(a, train_command(a, args), args.runs / f"{a}.train.log") for a in to_train],
            args.parallel,
            threads,
        )
    evaluate_arms(arms, args)
    if args.evaluate_only:
        return 0
    rows, controls = [], None
    for arm in arms:
        report = json.loads((args.runs / f"{arm}.val.json").read_text())
        rows.append(row(arm, report, train_record(run_dir(args.runs, arm))))
        controls = controls or control_summary(report.get("realism") or {})
    text = table(rows, controls)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "samples_per_arm": args.samples,
        "val_ids": str(
            args.val_ids.relative_to(REPO) if args.val_ids.is_relative_to(REPO) else args.val_ids
        ),
        "augment": args.augment,
        "stage": "global (G1 alone, 256^2)",
        "cpu": _cpu_name(),
        "rows": rows,
        "controls": controls,
    }
    (args.out / "ablation.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "ablation.md").write_text(text + "\n")
    figure(args, arms, args.out / "ablation.png")
    print(f"wrote {args.out / 'ablation.json'}, ablation.md and ablation.png")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


if __name__ == "__main__":
    raise SystemExit(main())
