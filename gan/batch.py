"""Batch synthesis for dataset curators (no Qt): K augmented label maps per input slice, each
synthesized, composited into the real non-lung area, and written with its label map and a manifest.

A sample is complete once its row is in ``manifest.csv``; every file is written atomically, so a
cancelled or crashed run leaves no half-written file, and a rerun skips what is complete.

An input slice whose derived lung is implausible (``gan.lung.lung_problem``: none found, or most of
the body) is skipped: it gets no manifest row, and ``skipped_inputs.csv`` records it with the reason.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from gan.ctio import (
    CTSlice,
    read_label_image,
    read_nifti_volume,
    read_raster,
    write_png,
)
from gan.export import LICENCE, Provenance, export_png
from gan.fsutil import atomic_write_text
from gan.labels import (
    LABEL_MAP_CONVENTION,
    LABEL_MAP_CONVENTION_TEXT,
    validate_lesion_mask,
)
from gan.lung import labels_for_slice

MANIFEST_FIELDS = [
    "name",
    "source",
    "source_slice",
    "variant",
    "seed",
    "augmentation",
    "image",
    "labels",
    "model_sha256",
    "label_convention",
    "licence",
]
SKIPPED_FIELDS = ["name", "source", "source_slice", "reason"]


@dataclasses.dataclass
class BatchInput:
    source_id: str
    source: str
    slice_index: int | None
    ct: CTSlice
    label_map: np.ndarray
    #: why the derived lung is implausible (the input is skipped), or None
    lung_problem: str | None = None


def folder_inputs(folder: Path, ids: list[str] | None = None) -> Iterator[BatchInput]:
    """Slices of a folder in the medseg-ct100 layout, as label maps (lung derived)."""
    from gan.data import folder_ids

    for slice_id in ids or folder_ids(folder):
        ct = read_raster(folder / "images" / f"{slice_id}.png")
        lesions = validate_lesion_mask(
            read_label_image(folder / "lesions" / f"{slice_id}.png"), what=f"lesions/{slice_id}.png"
        )
        yield BatchInput(
            slice_id,
            f"{folder.name}/images/{slice_id}.png",
            None,
            ct,
            *labels_for_slice(ct, lesions),
        )


def nifti_inputs(pairs: list[tuple[Path, Path]]) -> Iterator[BatchInput]:
    """Slices with lesions of paired CT (HU) and lesion-label NIfTI volumes."""
    for image_path, label_path in pairs:
        volume, spacing, affine = read_nifti_volume(image_path)
        lesions, _, _ = read_nifti_volume(label_path)
        if volume.shape != lesions.shape:
            raise ValueError(
                f"{image_path.name}: CT {volume.shape} and labels {lesions.shape} differ"
            )
        stem = image_path.name.removesuffix(".gz").removesuffix(".nii")
        for k in range(volume.shape[2]):
            lesion = validate_lesion_mask(
                np.asarray(lesions[:, :, k]), what=f"{label_path.name} slice {k}"
            )
            if not lesion.any():
                continue
            ct = CTSlice(
                volume[:, :, k].astype(np.float32),
                "hu",
                spacing=spacing,
                source=image_path,
                slice_index=k,
                affine=affine,
            )
            yield BatchInput(
                f"{stem}_{k:04d}", image_path.name, k, ct, *labels_for_slice(ct, lesion)
            )


def augment_label_map(
    label_map: np.ndarray, seed: int, spacing_mm: float | None = None
) -> tuple[np.ndarray, dict]:
    """One seeded augmentation: the paper's (rotation, scale, elastic of the lesion layer) and, for
    half of the seeds, an edit of one lesion as in the editor (grow, shrink or mirror)."""
    from gan import lesions as L

    rng = np.random.default_rng(seed)
    out = L.augment_lesions(label_map, seed=int(rng.integers(2**31)))
    params: dict = {"paper_augmentation_seed": int(seed)}
    lesion_pixels = np.argwhere(out >= 2)
    if len(lesion_pixels) and rng.random() < 0.5:
        r, c = lesion_pixels[rng.integers(len(lesion_pixels))]
        selection = L.lesion_at(out, int(r), int(c))
        op = str(rng.choice(["grow", "shrink", "mirror"]))
        if op == "mirror":
            out = L.mirror_lesion(out, selection)
        else:
            margin = float(rng.uniform(1.0, 4.0))
            out = L.resize_lesion(out, selection, margin if op == "grow" else -margin, spacing_mm)
            params["margin_mm"] = round(margin, 2)
            params["spacing_mm"] = spacing_mm or f"unknown ({L.ASSUMED_SPACING_MM} assumed)"
        params["lesion_edit"] = op
    return out, params


def read_manifest(path: Path) -> list[dict]:
    """The rows of a batch run's ``manifest.csv`` (none if it does not exist yet)."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_manifest(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def run_batch(
    inputs: Iterator[BatchInput],
    synthesizer,
    out: Path,
    per_input: int = 4,
    seed: int = 0,
    layout: str = "flat",
    feather_px: float = 0.0,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] = lambda n: None,
    note: Callable[[str], None] = lambda line: None,
) -> dict:
    """Write ``per_input`` synthetic samples per input; returns counts. ``layout`` is "flat"
    (``images/``, ``labels/``) or "nnunet" (``imagesTr/NAME_0000.png``, ``labelsTr/NAME.png``).
    An input with a ``lung_problem`` is skipped: ``note`` gets one line for it, and
    ``skipped_inputs.csv`` lists it."""
    from gan.compose import Compositor

    if layout not in ("flat", "nnunet"):
        raise ValueError(f"unknown layout {layout!r}; flat or nnunet")
    image_dir, label_dir = ("images", "labels") if layout == "flat" else ("imagesTr", "labelsTr")
    out = Path(out)
    (out / image_dir).mkdir(parents=True, exist_ok=True)
    (out / label_dir).mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.csv"
    rows = read_manifest(manifest)
    done = {row["name"] for row in rows}
    written = skipped = 0
    implausible: list[dict] = []
    compositor = Compositor()  # an input's variants share its lung: the feather weights are kept
    for index, item in enumerate(inputs):
        if item.lung_problem is not None:
            # synthesizing from it would fill the lung region with a grey patch, or the body
            where = "" if item.slice_index is None else f" slice {item.slice_index}"
            note(f"note: skipped {item.source}{where}: {item.lung_problem}")
            implausible.append(
                {
                    "name": item.source_id,
                    "source": item.source,
                    "source_slice": "" if item.slice_index is None else item.slice_index,
                    "reason": item.lung_problem,
                }
            )
            progress(per_input)
            continue
        for variant in range(per_input):
            if cancelled():
                _finish(out, rows, layout, implausible)
                return {"written": written, "skipped": skipped, "cancelled": True}
            name = f"{item.source_id}_v{variant:02d}"
            if name in done:
                skipped += 1
                progress(1)
                continue
            sample_seed = seed * 1_000_003 + index * 1_009 + variant
            spacing = item.ct.spacing[1] if item.ct.spacing else None
            labels, params = augment_label_map(item.label_map, sample_seed, spacing)
            output = synthesizer.synthesize(labels, seed=sample_seed)  # its texture, too
            composed = compositor.compose(item.ct, output, labels, feather_px=feather_px)
            image_name = f"{name}_0000.png" if layout == "nnunet" else f"{name}.png"
            # written as the app exports a composite: the same window and provenance text
            export_png(
                out / image_dir / image_name,
                composed.composite,
                item.ct,
                Provenance(synthesizer.sha256, sample_seed, "composite"),
            )
            write_png(
                out / label_dir / f"{name}.png",
                labels,
                text={"LabelConvention": LABEL_MAP_CONVENTION_TEXT},
            )
            rows.append(
                {
                    "name": name,
                    "source": item.source,
                    "source_slice": "" if item.slice_index is None else item.slice_index,
                    "variant": variant,
                    "seed": sample_seed,
                    "augmentation": json.dumps(params, sort_keys=True),
                    "image": f"{image_dir}/{image_name}",
                    "labels": f"{label_dir}/{name}.png",
                    "model_sha256": synthesizer.sha256,
                    "label_convention": LABEL_MAP_CONVENTION_TEXT,
                    "licence": LICENCE,
                }
            )
            _write_manifest(manifest, rows)  # the row lands only after both files are complete
            written += 1
            progress(1)
    _finish(out, rows, layout, implausible)
    return {"written": written, "skipped": skipped, "cancelled": False}


def _finish(out: Path, rows: list[dict], layout: str, implausible: list[dict]) -> None:
    skipped_path = out / "skipped_inputs.csv"
    if implausible:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=SKIPPED_FIELDS)
        writer.writeheader()
        writer.writerows(implausible)
        atomic_write_text(skipped_path, buffer.getvalue())
    else:
        skipped_path.unlink(missing_ok=True)  # a list from an earlier run over other inputs
    record = {
        "name": "CT Lesion Studio synthetic slices",
        "description": "Synthetic CT slices (synthetic lung composited into the real non-lung area); not for diagnosis",
        "licence": LICENCE,
        "label_convention": LABEL_MAP_CONVENTION,
        "numTraining": len(rows),
    }
    if layout == "nnunet":
        record.update(
            {
                "channel_names": {"0": "CT"},
                # nnU-Net's form of the convention: name -> value
                "labels": {v: int(k) for k, v in LABEL_MAP_CONVENTION["values"].items()},
                "file_ending": ".png",
            }
        )
    atomic_write_text(out / "dataset.json", json.dumps(record, indent=2) + "\n")
