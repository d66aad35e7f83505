"""``figure``: label | real | synthetic | composite for a few slices, one row each, as one PNG.

Rows are spread evenly over the given ids (the same rows every time), at a reduced tile size so the
figure stays small enough for a README.

With ``--inpaint-checkpoint`` the figure shows an edit instead: each row's label map gets seeded new
lesions (what a radiologist would paint), and the columns are edited labels | real | the paper's
whole-lung composite | the inpainted slice (only the edited region, outlined, regenerated).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HELP = "A figure of label | real | synthetic | composite rows for some slices (PNG)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint, .safetensors export, or 'default'"
    )
    p.add_argument("--data", required=True, help="data folder (medseg-ct100 layout) or .npz cache")
    p.add_argument("--ids", help="split file: the slices to draw from (the test split)")
    p.add_argument("--rows", type=int, default=6, help="slices shown (default 6)")
    p.add_argument("--tile", type=int, default=256, help="tile size in pixels (default 256)")
    p.add_argument(
        "--feather", type=float, default=3.0, help="composite feather width in px (default 3)"
    )
    p.add_argument(
        "--stage", choices=["joint", "global", "local"], help="generator path (default: trained)"
    )
    p.add_argument(
        "--inpaint-checkpoint",
        help="an inpaint-mode model ('default': the shipped one): show seeded lesion edits, the "
        "whole-lung composite of --checkpoint beside the inpainted slice",
    )
    p.add_argument(
        "--margin-mm",
        type=float,
        default=5.0,
        help="--inpaint-checkpoint: margin around each edit that is regenerated (default 5 mm)",
    )
    p.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument(
        "--cache-dir", help="data-folder cache location (default ~/.cache/ct-lesion-studio)"
    )


def pick_rows(n_slices: int, rows: int) -> list[int]:
    """``rows`` indices spread evenly over ``n_slices`` (all of them if there are fewer)."""
    if rows >= n_slices:
        return list(range(n_slices))
    return [int(round(i)) for i in np.linspace(0, n_slices - 1, rows)]


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = tile.copy()
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    (w, h), base = cv2.getTextSize(text, font, scale, 1)
    # white on a darkened band: readable on a bright CT window too. (A thick black copy under the
    # text as an outline does not work: OpenCV 5 draws a proportional font whose glyph widths
    # change with the thickness, so the two copies drift apart.)
    band = out[: min(out.shape[0], h + base + 10), : min(out.shape[1], w + 12)]
    band[...] = (band.astype(np.float32) * 0.35).astype(out.dtype)
    cv2.putText(out, text, (6, h + 5), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def compose_figure(
    ids: list[str],
    label_maps: np.ndarray,
    real: np.ndarray,
    synthetic: np.ndarray,
    feather_px: float,
    tile: int,
) -> np.ndarray:
    """(rows * tile, 4 * tile, 3) uint8 RGB; images in [-1, 1], label maps 0..3."""
    import cv2

    from gan.compose import Compositor
    from gan.labels import colorize

    compositor = Compositor()

    def gray(x):
        g = np.clip(np.round((np.asarray(x) + 1) * 127.5), 0, 255).astype(np.uint8)
        return np.repeat(cv2.resize(g, (tile, tile), interpolation=cv2.INTER_AREA)[..., None], 3, 2)

    rows = []
    for k, slice_id in enumerate(ids):
        composite = compositor.compose_arrays(
            synthetic[k], real[k], label_maps[k], feather_px=feather_px
        ).composite
        labels = cv2.resize(colorize(label_maps[k]), (tile, tile), interpolation=cv2.INTER_NEAREST)
        tiles = [labels, gray(real[k]), gray(synthetic[k]), gray(composite)]
        names = [f"{slice_id}: labels", "real", "synthetic", "composite"]
        rows.append(np.hstack([_label(t, n) for t, n in zip(tiles, names, strict=True)]))
    return np.vstack(rows)


def seeded_edits(label_maps: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each label map with two new lesions in its healthy lung (seeded per row): an edit."""
    from gan.labels import GGO
    from gan.lesions import default_lesion_bank, random_lesions

    bank = default_lesion_bank()
    edited = []
    for k, m in enumerate(np.asarray(label_maps)):
        lung = int((m > 0).sum())
        involvement = (int((m >= GGO).sum()) + 0.06 * lung) / max(lung, 1)
        edited.append(random_lesions(m, 2, 0.6, involvement, seed=seed + k, bank=bank))
    return np.stack(edited)


def edit_figure(ids, label_maps, real, synthesizer, inpainter, args) -> np.ndarray:
    """edited labels | real | whole-lung composite (paper) | inpainted, one row per slice."""
    import cv2

    from gan.compose import Compositor
    from gan.inpaint import changed_region, margin_px
    from gan.labels import colorize

    edited = seeded_edits(label_maps)
    margin = margin_px(None, args.margin_mm)
    regions = np.stack(
        [changed_region(a, b, margin) for a, b in zip(label_maps, edited, strict=True)]
    )
    seeds = list(range(len(edited)))  # each image its own noise (models with noise inputs)
    whole = synthesizer.synthesize_batch(edited, stage=args.stage, seeds=seeds)
    generated = inpainter.synthesize_batch(
        edited, stage=args.stage, images=real, masks=regions, seeds=seeds
    )
    tile = args.tile

    def gray(x, outline=None):
        g = np.clip(np.round((np.asarray(x) + 1) * 127.5), 0, 255).astype(np.uint8)
        rgb = np.repeat(cv2.resize(g, (tile, tile), interpolation=cv2.INTER_AREA)[..., None], 3, 2)
        if outline is not None:
            small = cv2.resize(
                outline.astype(np.uint8), (tile, tile), interpolation=cv2.INTER_NEAREST
            )
            contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(rgb, contours, -1, (255, 220, 0), 1)
        return rgb

    compositor = Compositor()
    rows = []
    for k, slice_id in enumerate(ids):
        # the two modes side by side, each composed as the app composes it
        composite = compositor.compose_arrays(
            whole[k], real[k], edited[k], feather_px=args.feather
        ).composite
        inpainted = compositor.compose_arrays(
            generated[k], real[k], edited[k], regions[k]
        ).composite
        labels = cv2.resize(colorize(edited[k]), (tile, tile), interpolation=cv2.INTER_NEAREST)
        tiles = [labels, gray(real[k]), gray(composite), gray(inpainted, regions[k])]
        names = [
            f"{slice_id}: edited labels",
            "real",
            "whole lung (paper)",
            "inpainted (edit outlined)",
        ]
        rows.append(np.hstack([_label(t, n) for t, n in zip(tiles, names, strict=True)]))
    return np.vstack(rows)


def run(args: argparse.Namespace) -> int:
    import cv2

    from gan.fsutil import atomic_write_bytes
    from gan.synthesizer import Synthesizer
    from training_cli.data_source import load_slices

    if args.rows < 1 or args.tile < 32:
        raise ValueError("--rows must be >= 1 and --tile >= 32")
    device = None if args.device == "auto" else args.device
    synthesizer = Synthesizer(args.checkpoint, device=device, mode="label")
    slices = load_slices(args.data, args.ids, synthesizer.size, args.cache_dir)
    chosen = pick_rows(len(slices), args.rows)
    label_maps = slices.label_maps[chosen]
    ids = [slices.ids[i] for i in chosen]
    if args.inpaint_checkpoint:
        inpainter = Synthesizer(args.inpaint_checkpoint, device=device, mode="inpaint")
        figure = edit_figure(ids, label_maps, slices.images[chosen], synthesizer, inpainter, args)
    else:
        synthetic = synthesizer.synthesize_batch(
            label_maps, stage=args.stage, seeds=list(range(len(label_maps)))
        )
        figure = compose_figure(
            ids, label_maps, slices.images[chosen], synthetic, args.feather, args.tile
        )
    ok, data = cv2.imencode(".png", cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{args.out}: PNG encoding failed")
    atomic_write_bytes(Path(args.out), data.tobytes())
    print(f"wrote {args.out}: {len(chosen)} rows ({', '.join(slices.ids[i] for i in chosen)})")
    return 0
