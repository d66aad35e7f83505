"""How much of the labelled GGO and consolidation falls inside the derived lung (before lesion
pixels are forced in), on a folder in the medseg-ct100 layout; with and without the pleural hull.

    python -m benchmarks.lung_coverage [--data ../shared/data/medseg-ct100] [--out benchmarks/results]

Prints a table, writes ``lung_coverage.json`` and an overlay PNG of a few slices (lung red, GGO
blue, consolidation green; labelled lesion pixels the derived lung misses in yellow).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gan.ctio import read_label_image, read_raster, write_png
from gan.data import folder_ids
from gan.labels import (
    LESION_CONSOLIDATION,
    LESION_GGO,
    label_map_from_lesions,
    overlay,
    validate_lesion_mask,
)
from gan.lung import derive_lung_mask

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "medseg-ct100"
OVERLAY_IDS = ("0001", "0007", "0041", "0072", "0085", "0098")


def measure_coverage(
    data: Path, ids=None, overlay_dir: Path | None = None, n_overlays: int = 6
) -> dict:
    ids = ids or folder_ids(data)
    inside = {True: np.zeros(2), False: np.zeros(2)}
    totals = np.zeros(2)
    tiles = []
    start = time.perf_counter()
    wanted_overlays = [i for i in OVERLAY_IDS if i in ids][:n_overlays]
    for slice_id in ids:
        ct = read_raster(data / "images" / f"{slice_id}.png")
        lesions = validate_lesion_mask(read_label_image(data / "lesions" / f"{slice_id}.png"))
        classes = (lesions == LESION_GGO, lesions == LESION_CONSOLIDATION)
        totals += [c.sum() for c in classes]
        for hull in (True, False):
            lung = derive_lung_mask(ct, pleural_hull=hull)
            inside[hull] += [(lung & c).sum() for c in classes]
            if hull and slice_id in wanted_overlays:
                rgb = overlay(ct.to_uint8(), label_map_from_lesions(lesions, lung), 0.45)
                rgb[(lesions > 0) & ~lung] = (255, 255, 0)
                tiles.append((slice_id, rgb))
    seconds = time.perf_counter() - start

    def fractions(counts):
        return {
            "ggo": float(counts[0] / totals[0]),
            "consolidation": float(counts[1] / totals[1]),
            "overall": float(counts.sum() / totals.sum()),
        }

    result = {
        "data": str(data),
        "slices": len(ids),
        "lesion_pixels": {"ggo": int(totals[0]), "consolidation": int(totals[1])},
        "coverage": fractions(inside[True]),
        "coverage_without_hull": fractions(inside[False]),
        "seconds_per_slice_both_variants": seconds / len(ids),
    }
    if overlay_dir is not None and tiles:
        overlay_dir = Path(overlay_dir)
        for slice_id, rgb in tiles:
            write_png(overlay_dir / f"lung_overlay_{slice_id}.png", rgb)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"error: no data folder at {args.data}")
        return 1
    result = measure_coverage(args.data, overlay_dir=args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lung_coverage.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'lesion pixels inside derived lung':<36}{'GGO':>8}{'consol.':>9}{'overall':>9}")
    for name, key in (
        ("threshold + components + holes", "coverage_without_hull"),
        ("... + pleural hull (default)", "coverage"),
    ):
        c = result[key]
        print(f"{name:<36}{c['ggo']:>8.3f}{c['consolidation']:>9.3f}{c['overall']:>9.3f}")
    print(f"{result['slices']} slices; JSON and overlays in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
