"""Crop-window inpainting against whole-slice inpainting: the quality each context margin keeps, the
time it saves, and where a window stops paying (``Synthesizer.inpaint_region``).

    python -m benchmarks.inpaint_window [--data ../shared/data/medseg-ct100]
        [--ids resources/splits/test.txt] [--augment 4] [--margins 16 32 48 64 96 128]
        [--inpaint-checkpoint default] [--repeats 9] [--no-realism] [--out benchmarks/results]

Three parts, all with 2 torch threads (``--threads``) and the CPU's bf16 where it is native (as the app
runs):

* **quality** on evaluate's images and seeded edit masks (the test split): for each margin and for
  both instance-norm statistics (``slice``: from a whole-slice pass over the unedited slice, as
  ``prepare_region`` keeps them when a slice opens; ``window``: the window's own), every image is
  windowed (no fallback) and compared with whole-slice inpainting (``Synthesizer.inpaint``) and
  with the real slice: masked PSNR/SSIM (intensities in [0, 1]), the seam score
  (``gan.inpaint.seam_score``, 1 = as smooth as the real slice), the C2ST of training_cli/realism.py
  inside the masks (0.5 = indistinguishable from real), and ms per call, whole-slice timed on the
  same image just before (ratios from one run are what compare: the CPU is shared).
* **crossover**: square windows of growing side on the bundled sample slice, timed against the
  whole slice: the window fraction where a window costs 0.8 x the whole slice is the fallback.
* **edits**: ~10, ~30 and ~50 mm GGO discs painted on the sample slice (the region the app
  regenerates: the change dilated by ``gan.inpaint.DEFAULT_MARGIN_MM``), timed with the defaults
  against the whole slice, interleaved; median and minimum of ``--repeats``.

Writes ``inpaint_window.json`` and ``inpaint_window.md`` (the tables) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks import add_test_set_arguments

MARGINS = (16, 32, 48, 64, 96, 128)
STATISTICS = ("slice", "window")
EDITS_MM = {"small": 10.0, "medium": 30.0, "large": 50.0}
#: a window must take at most this share of the whole slice's time to be worth its deviation
CROSSOVER_RATIO = 0.8


def _threads(n: int = 2) -> None:
    import torch

    torch.set_num_threads(n)


def _psnr_ssim(a01, b01, mask) -> tuple[float, float]:
    from training_cli import metrics as M

    return M.psnr(a01, b01, mask), M.ssim(a01, b01, mask)


def _mean(values) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def quality(
    synthesizer,
    data: Path,
    ids: Path,
    augment: int,
    margins=MARGINS,
    realism: bool = True,
    log=print,
) -> dict:
    """Per margin and statistics: crop vs whole-slice vs real on the test split (see the module
    docstring); ``rows`` holds one summary per (statistics, margin) and the whole-slice row."""
    from gan.inpaint import MAX_WINDOW_FRACTION, seam_score
    from training_cli.data_source import load_slices
    from training_cli.evaluate import evaluation_masks, evaluation_pairs

    slices = load_slices(data, ids, synthesizer.size, None)
    names, labels, real = evaluation_pairs(slices, augment)
    masks = evaluation_masks(labels).astype(bool)
    variants = [(st, m) for st in STATISTICS for m in margins]
    composites = {v: np.empty_like(real) for v in variants}
    whole = np.empty_like(real)
    per = {v: [] for v in variants}
    whole_rows = []
    for i in range(len(names)):
        image, lab, mask = real[i], labels[i], masks[i]
        whole[i] = synthesizer.inpaint(lab, image, mask, seed=i)
        whole_ms = synthesizer.last_inference_ms
        real01, whole01 = (image + 1) / 2, (whole[i] + 1) / 2
        psnr_r, ssim_r = _psnr_ssim(whole01, real01, mask)
        whole_rows.append(
            {"ms": whole_ms, "psnr_real": psnr_r, "ssim_real": ssim_r,
             "seam": seam_score(whole01, real01, mask)}
        )  # fmt: skip
        synthesizer.prepare_region(lab, image)  # the statistics of the slice as it opened
        for st, margin in variants:
            crop = synthesizer.inpaint_region(
                lab, image, mask, margin_px=margin, seed=i, max_fraction=1.0, statistics=st
            )
            window = synthesizer.last_window
            composites[(st, margin)][i] = crop
            crop01 = (crop + 1) / 2
            psnr_w, ssim_w = _psnr_ssim(crop01, whole01, mask)
            psnr_r, ssim_r = _psnr_ssim(crop01, real01, mask)
            fraction = 1.0 if window is None else window.fraction_of(mask.shape)
            per[(st, margin)].append(
                {"ms": synthesizer.last_inference_ms, "whole_ms": whole_ms,
                 "fraction": fraction, "psnr_whole": psnr_w, "ssim_whole": ssim_w,
                 "psnr_real": psnr_r, "ssim_real": ssim_r,
                 "seam": seam_score(crop01, real01, mask)}
            )  # fmt: skip
        if (i + 1) % 10 == 0 or i + 1 == len(names):
            log(f"  quality: {i + 1}/{len(names)} images", flush=True)

    def c2st(images) -> dict | None:
        if not realism:
            return None
        from training_cli.realism import realism_report

        block = realism_report(real, images, labels, names, masks, controls=False)["c2st"]
        return {"mean": block["mean"], "sd": block["sd"]}

    rows = [
        {"statistics": "whole slice", "margin_px": None, "served": None,
         "psnr_whole": None, "ssim_whole": None,
         "psnr_real": _mean(r["psnr_real"] for r in whole_rows),
         "ssim_real": _mean(r["ssim_real"] for r in whole_rows),
         "seam": _mean(r["seam"] for r in whole_rows), "c2st": c2st(whole),
         "ms": statistics.median(r["ms"] for r in whole_rows), "whole_ms": None, "ratio": None}
    ]  # fmt: skip
    log("  C2ST: whole slice done", flush=True)
    for st, margin in variants:
        rs = per[(st, margin)]
        served = [r for r in rs if r["fraction"] <= MAX_WINDOW_FRACTION]
        rows.append(
            {
                "statistics": st,
                "margin_px": margin,
                # the share of the images the defaults would window at this margin
                "served": len(served) / len(rs),
                "psnr_whole": _mean(r["psnr_whole"] for r in rs),
                "psnr_whole_served": _mean(r["psnr_whole"] for r in served),
                "psnr_whole_p10": float(np.percentile([r["psnr_whole"] for r in rs], 10)),
                "ssim_whole": _mean(r["ssim_whole"] for r in rs),
                "psnr_real": _mean(r["psnr_real"] for r in rs),
                "ssim_real": _mean(r["ssim_real"] for r in rs),
                "seam": _mean(r["seam"] for r in rs),
                "c2st": c2st(composites[(st, margin)]),
                "ms": statistics.median(r["ms"] for r in rs),
                "whole_ms": statistics.median(r["whole_ms"] for r in rs),
                "ratio": statistics.median(r["ms"] / r["whole_ms"] for r in rs),
                "ms_served": statistics.median(r["ms"] for r in served) if served else None,
            }
        )
        log(f"  {st} statistics, margin {margin}: done", flush=True)
    return {
        "data": str(data),
        "ids": str(ids),
        "augment": augment,
        "images": len(names),
        "mean_mask_px": float(masks.sum((1, 2)).mean()),
        "max_window_fraction": MAX_WINDOW_FRACTION,
        "rows": rows,
        # per image: the window fraction and PSNR vs whole, to apply another fallback afterwards
        "per_image": {
            f"{st}/{margin}": [[r["fraction"], r["psnr_whole"]] for r in per[(st, margin)]]
            for st, margin in variants
        },
    }


def _sample():
    from gan.ctio import read_label_image, read_slice
    from gan.lung import labels_for_slice
    from gan.paths import sample_lesions_path, sample_slice_path

    ct = read_slice(sample_slice_path())
    labels = labels_for_slice(ct, read_label_image(sample_lesions_path())).label_map
    return ct, labels


def _summary(pairs) -> dict:
    """Median and minimum of (crop ms, whole ms) pairs timed back to back, and their ratios."""
    crop, whole = [p[0] for p in pairs], [p[1] for p in pairs]
    return {
        "crop_ms_median": statistics.median(crop),
        "crop_ms_min": min(crop),
        "whole_ms_median": statistics.median(whole),
        "whole_ms_min": min(whole),
        "ratio_median": statistics.median(c / w for c, w in pairs),
        "ratio_min": min(crop) / min(whole),
    }


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def crossover(synthesizer, repeats: int, log=print) -> dict:
    """ms of square windows (side 64..448 px, on the sample slice's centre) against the whole
    slice, interleaved; the largest fraction whose median ratio stays <= CROSSOVER_RATIO."""
    ct, labels = _sample()
    image = ct.to_model_range()
    synthesizer.prepare_region(labels, image)
    size, step = synthesizer.size, synthesizer.window_multiple
    rows = []
    for side in range(64, size, 64):
        top = (size - side) // 2 // step * step
        mask = np.zeros(labels.shape, bool)
        mask[top : top + side, top : top + side] = True  # margin 0: the window is the square

        def crop(mask=mask):
            synthesizer.inpaint_region(labels, image, mask, margin_px=0, max_fraction=1.0)

        def whole(mask=mask):
            synthesizer.inpaint(labels, image, mask)

        crop(), whole()  # warm-up: a new shape's kernels
        pairs = [(_timed(crop), _timed(whole)) for _ in range(repeats)]
        window = synthesizer.last_window
        rows.append(
            {"side": side, "fraction": side * side / size**2,
             "window": None if window is None else [window.height, window.width],
             **_summary(pairs)}
        )  # fmt: skip
        log(f"  crossover: {rows[-1]}", flush=True)
    return {"rule_ratio": CROSSOVER_RATIO, "rows": rows, "crossing": crossing(rows)}


def crossing(rows, ratio: float = CROSSOVER_RATIO) -> float:
    """The window fraction at which the ratio of minima (the best of the repeats: the CPU is
    shared, and the least disturbed call is the fairest) reaches ``ratio``, linearly interpolated
    between the measured sides."""
    # a window of the whole slice is the whole slice: ratio 1 at fraction 1
    points = [(0.0, 0.0)] + [(r["fraction"], r["ratio_min"]) for r in rows] + [(1.0, 1.0)]
    for (f0, r0), (f1, r1) in zip(points, points[1:], strict=False):
        if r1 > ratio:
            return f0 + (ratio - r0) / (r1 - r0) * (f1 - f0)
    return 1.0


def edit_masks(labels: np.ndarray, spacing) -> dict:
    """{name: (label map with a GGO disc of ~that diameter in the right lung, region the app
    regenerates)}: the disc dilated by DEFAULT_MARGIN_MM, centred where the lung is deepest."""
    from scipy import ndimage as ndi

    from gan.inpaint import DEFAULT_MARGIN_MM, changed_region, margin_px
    from gan.labels import GGO
    from gan.lesions import ASSUMED_SPACING_MM

    pixel = float(np.mean(spacing)) if spacing else ASSUMED_SPACING_MM
    lung = labels > 0
    half = lung.copy()
    half[:, labels.shape[1] // 2 :] = False  # the image's left: the patient's right lung
    depth = ndi.distance_transform_edt(half)
    centre = np.unravel_index(int(np.argmax(depth)), depth.shape)
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    out = {}
    for name, mm in EDITS_MM.items():
        radius = mm / pixel / 2
        disc = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
        edited = labels.copy()
        edited[disc & lung] = GGO
        out[name] = (edited, changed_region(labels, edited, margin_px(spacing, DEFAULT_MARGIN_MM)))
    return out


def edits(synthesizer, repeats: int, log=print) -> dict:
    """The defaults (window or fallback) against the whole slice for small/medium/large edits on
    the sample slice, interleaved, after ``prepare_region`` (the slice as it opened); the first
    call without statistics (a whole-slice pass that keeps them) is timed once too."""
    ct, labels = _sample()
    image = ct.to_model_range()
    rows = {}
    for name, (edited, mask) in edit_masks(labels, ct.spacing).items():
        synthesizer._slice_statistics.clear()  # the first call: no statistics yet
        first_ms = _timed(lambda e=edited, m=mask: synthesizer.inpaint_region(e, image, m))
        synthesizer._slice_statistics.clear()
        synthesizer.prepare_region(labels, image)  # the statistics of the slice as it opened
        prepare_ms = synthesizer.last_inference_ms
        whole = synthesizer.inpaint(edited, image, mask)
        start = time.perf_counter()
        crop = synthesizer.inpaint_region(edited, image, mask)  # a window shape not run before
        new_shape_ms = (time.perf_counter() - start) * 1000
        window = synthesizer.last_window
        pairs = []
        for _ in range(repeats):
            pairs.append(
                (
                    _timed(lambda e=edited, m=mask: synthesizer.inpaint_region(e, image, m)),
                    _timed(lambda e=edited, m=mask: synthesizer.inpaint(e, image, m)),
                )
            )
        psnr, ssim = _psnr_ssim((crop + 1) / 2, (whole + 1) / 2, mask)
        rows[name] = {
            "diameter_mm": EDITS_MM[name],
            "region_px": int(mask.sum()),
            "region_box": [int(np.ptp(np.nonzero(mask)[k])) + 1 for k in (0, 1)],
            "window": None if window is None else [window.height, window.width],
            **_summary(pairs),
            "new_shape_ms": new_shape_ms,
            "first_call_ms": first_ms,
            "prepare_ms": prepare_ms,
            "psnr_vs_whole": psnr,
            "ssim_vs_whole": ssim,
        }
        log(f"  edit {name}: {rows[name]}", flush=True)
    return {"spacing_mm": ct.spacing, "rows": rows}


def _cell(v, fmt: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _c2st_cell(block) -> str:
    return (
        "n/a"
        if not block or block.get("mean") is None
        else f"{block['mean']:.3f}±{block['sd']:.3f}"
    )


def format_tables(result: dict) -> str:
    q = result.get("quality")
    lines = [f"{result['hardware']}; torch {result['torch']}; {result['precision']}; "
             f"{result['load']}", ""]  # fmt: skip
    if q:
        lines += [
            f"Quality on {q['images']} test images (evaluate's seeded masks, mean "
            f"{q['mean_mask_px']:.0f} px), every image windowed; ms median per call:",
            "",
            "| statistics | margin px | windowed at default fraction | PSNR vs whole | p10 | "
            "SSIM vs whole | PSNR vs real | SSIM vs real | seam | C2ST | ms | whole ms | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in q["rows"]:
            lines.append(
                f"| {r['statistics']} | {_cell(r['margin_px'], 'd')} | {_cell(r['served'], '.0%')} "
                f"| {_cell(r['psnr_whole'], '.1f')} | {_cell(r.get('psnr_whole_p10'), '.1f')} "
                f"| {_cell(r['ssim_whole'], '.4f')} | {_cell(r['psnr_real'], '.2f')} "
                f"| {_cell(r['ssim_real'], '.4f')} | {_cell(r['seam'], '.3f')} "
                f"| {_c2st_cell(r['c2st'])} | {_cell(r['ms'], '.0f')} "
                f"| {_cell(r['whole_ms'], '.0f')} | {_cell(r['ratio'], '.2f')} |"
            )
        lines.append("")
    c = result.get("crossover")
    if c:
        lines += ["Window side vs whole slice (sample slice, ms median / min):", "",
                  "| side | fraction | crop ms | whole ms | ratio of minima |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in c["rows"]:
            lines.append(
                f"| {r['side']} | {r['fraction']:.2f} "
                f"| {r['crop_ms_median']:.0f} / {r['crop_ms_min']:.0f} "
                f"| {r['whole_ms_median']:.0f} / {r['whole_ms_min']:.0f} | {r['ratio_min']:.2f} |"
            )
        lines += [f"a window costs {c['rule_ratio']} x the whole slice at "
                  f"{c['crossing']:.2f} of its area (interpolated)", ""]  # fmt: skip
    e = result.get("edits")
    if e:
        lines += [
            "Edits on the sample slice, defaults vs whole slice (ms, median / min):",
            "",
            "| edit | region box px | window | crop ms | whole ms | ratio of minima | "
            "PSNR vs whole | new window shape ms | first call on the slice ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in e["rows"].items():
            window = "whole slice" if r["window"] is None else "x".join(map(str, r["window"]))
            lines.append(
                f"| {name} (~{r['diameter_mm']:.0f} mm) | {'x'.join(map(str, r['region_box']))} "
                f"| {window} | {r['crop_ms_median']:.0f} / {r['crop_ms_min']:.0f} "
                f"| {r['whole_ms_median']:.0f} / {r['whole_ms_min']:.0f} | {r['ratio_min']:.2f} "
                f"| {_cell(r['psnr_vs_whole'], '.1f')} | {r['new_shape_ms']:.0f} "
                f"| {r['first_call_ms']:.0f} |"
            )
    return "\n".join(lines)


def _load() -> str:
    try:
        one, five, _ = (float(v) for v in Path("/proc/loadavg").read_text().split()[:3])
        return f"load average {one:.1f} / {five:.1f}"
    except (OSError, ValueError):
        return "load unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_test_set_arguments(parser)
    parser.set_defaults(augment=4)
    parser.add_argument("--margins", type=int, nargs="+", default=list(MARGINS))
    parser.add_argument("--inpaint-checkpoint", default="default", help="an inpaint-mode model")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per latency row")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the app's: 2)")
    parser.add_argument("--no-realism", action="store_true", help="skip the C2ST (minutes)")
    parser.add_argument(
        "--parts", nargs="+", default=["quality", "crossover", "edits"],
        choices=["quality", "crossover", "edits"],
    )  # fmt: skip
    args = parser.parse_args(argv)
    import torch

    from gan.synthesizer import Synthesizer

    _threads(args.threads)
    try:
        synthesizer = Synthesizer(args.inpaint_checkpoint, device="cpu", mode="inpaint")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return 1
    result = {
        "hardware": f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "precision": "bf16" if synthesizer.cpu_bf16 else "fp32",
        "model": synthesizer.sha256,
        "load": _load(),
    }
    if "quality" in args.parts:
        if not (Path(args.data) / "images").is_dir():
            print(f"error: no data folder at {args.data}")
            return 1
        result["quality"] = quality(
            synthesizer, args.data, args.ids, args.augment, args.margins, not args.no_realism
        )
    if "crossover" in args.parts:
        result["crossover"] = crossover(synthesizer, args.repeats)
    if "edits" in args.parts:
        result["edits"] = edits(synthesizer, args.repeats)
    result["load_after"] = _load()
    text = format_tables(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "inpaint_window.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "inpaint_window.md").write_text(text + "\n")
    print(text)
    print(f"JSON in {args.out / 'inpaint_window.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
