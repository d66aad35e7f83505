"""Batch export's three kinds: inpaint (the default) regenerates only the edited region of the
real slice with the inpainting model, procedural renders it with the non-learned texture and names
that generator in place of a model, and whole lung writes exactly what it wrote before the other
two existed."""

import csv
import hashlib
import io
import json

import numpy as np
import pytest

from gan.batch import (
    EditOptions,
    augment_label_map,
    edit_label_map,
    fit_procedural,
    folder_inputs,
    nifti_inputs,
    run_batch,
)
from gan.compose import Compositor
from gan.ctio import read_label_image, read_png_text, read_raster, write_nifti, write_png
from gan.export import Provenance, display_uint8, export_png
from gan.inpaint import changed_region, margin_px
from gan.labels import LABEL_MAP_CONVENTION, LABEL_MAP_CONVENTION_TEXT
from gan.lesions import default_lesion_bank
from gan.synthesizer import Synthesizer
from tests.conftest import make_tiny_weights, phantom, write_phantom_folder
from tests.training_cli.conftest import cli


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    label = make_tiny_weights(root / "label.safetensors")
    inpaint = make_tiny_weights(root / "inpaint.safetensors", mode="inpaint")
    return {"label": label, "inpaint": inpaint}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_phantom_folder(tmp_path_factory.mktemp("data") / "data", n=3)


def rows_of(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def todays_whole_lung_export(folder, synthesizer, out, per_input, seed, layout, feather):
    """The whole-lung export written from the primitives, as batch export wrote it before the
    inpaint and procedural kinds existed: the same seeds, files, manifest and dataset.json."""
    image_dir, label_dir = ("images", "labels") if layout == "flat" else ("imagesTr", "labelsTr")
    fields = ["name", "source", "source_slice", "variant", "seed", "augmentation", "image"]
    fields += ["labels", "model_sha256", "label_convention", "licence"]
    from gan.export import LICENCE

    rows, compositor = [], Compositor()
    for index, item in enumerate(folder_inputs(folder)):
        for variant in range(per_input):
            name = f"{item.source_id}_v{variant:02d}"
            sample_seed = seed * 1_000_003 + index * 1_009 + variant
            labels, params = augment_label_map(item.label_map, sample_seed, item.ct.spacing)
            output = synthesizer.synthesize(labels, seed=sample_seed)
            composed = compositor.compose(item.ct, output, labels, feather_px=feather)
            image = f"{name}_0000.png" if layout == "nnunet" else f"{name}.png"
            export_png(
                out / image_dir / image,
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
                [name, item.source, "", variant, sample_seed, json.dumps(params, sort_keys=True)]
                + [f"{image_dir}/{image}", f"{label_dir}/{name}.png", synthesizer.sha256]
                + [LABEL_MAP_CONVENTION_TEXT, LICENCE]
            )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    writer.writerows(rows)
    (out / "manifest.csv").write_bytes(buffer.getvalue().encode())
    record = {
        "name": "CT Lesion Studio synthetic slices",
        "description": "Synthetic CT slices (synthetic lung composited into the real non-lung "
        "area); not for diagnosis",
        "licence": LICENCE,
        "label_convention": LABEL_MAP_CONVENTION,
        "numTraining": len(rows),
    }
    if layout == "nnunet":
        record.update(
            channel_names={"0": "CT"},
            labels={"background": 0, "lung": 1, "GGO": 2, "consolidation": 3},
            file_ending=".png",
        )
    (out / "dataset.json").write_text(json.dumps(record, indent=2) + "\n")


def files_of(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout", ["flat", "nnunet"])
def test_whole_lung_export_is_byte_identical_to_todays(folder, models, tmp_path, layout):
    synthesizer = Synthesizer(models["label"], device="cpu")
    new, old = tmp_path / "new", tmp_path / "old"
    run_batch(folder_inputs(folder), synthesizer, new, 2, 4, layout, feather_px=2.0)
    todays_whole_lung_export(folder, synthesizer, old, 2, 4, layout, 2.0)
    written, expected = files_of(new), files_of(old)
    assert written.keys() == expected.keys() and len(written) == 2 * 6 + 2
    for path in expected:
        assert written[path] == expected[path], path


def test_inpaint_export_regenerates_only_the_edited_region(folder, models, tmp_path):
    """Every sample: its label map is the seeded edit of the real one, its region the changed
    pixels plus the margin, its image the inpainting model's output in that region and the real
    slice, unchanged, everywhere else; the manifest and the PNG say what was done and by what."""
    synthesizer = Synthesizer(models["inpaint"], device="cpu")
    out = tmp_path / "inpaint"
    result = run_batch(folder_inputs(folder), synthesizer, out, per_input=2, seed=1)
    assert result == {"written": 6, "skipped": 0, "cancelled": False}
    rows = rows_of(out / "manifest.csv")
    bank, sha = default_lesion_bank(), hashlib.sha256(models["inpaint"].read_bytes()).hexdigest()
    inputs = {item.source_id: item for item in folder_inputs(folder)}
    assert [r["name"] for r in rows] == [f"{i:04d}_v{v:02d}" for i in range(3) for v in range(2)]
    for row in rows:
        item, seed = inputs[row["name"][:4]], int(row["seed"])
        edited, ops = edit_label_map(item.label_map, seed, None, EditOptions(), bank)
        labels = read_label_image(out / row["labels"])
        assert np.array_equal(labels, edited) and not np.array_equal(labels, item.label_map)
        assert json.loads(row["operations"]) == ops
        region = changed_region(item.label_map, edited, margin_px(None, 5.0))
        written_region = read_label_image(out / row["region"]) == 255
        assert np.array_equal(written_region, region) and int(row["region_px"]) == region.sum()
        image = read_raster(out / row["image"]).pixels
        real = item.ct.pixels
        assert np.array_equal(image[~region], real[~region])
        output = synthesizer.synthesize(
            edited, image=item.ct.to_model_range(), mask=region, seed=seed
        )
        composed = Compositor().compose(item.ct, output, edited, mask=region)
        assert np.array_equal(image, display_uint8(composed.composite, item.ct))
        assert (image[region] != real[region]).any()
        assert row["synthesis"] == "inpaint" and row["model_sha256"] == sha
        assert "inpaint.safetensors" in row["generator"] and row["margin_mm"] == "5.0"
        assert row["label_convention"] == LABEL_MAP_CONVENTION_TEXT
        text = read_png_text(out / row["image"])
        assert text["ModelSHA256"] == sha and text["Seed"] == row["seed"]
        assert f"{region.sum()} px of the real slice regenerated" in text["Synthetic"]
    assert json.loads((out / "dataset.json").read_text())["synthesis"] == "inpaint"


def test_procedural_export_names_its_generator_in_place_of_a_model(folder, tmp_path):
    texture = fit_procedural(folder_inputs(folder), 32)
    out = tmp_path / "procedural"
    run_batch(folder_inputs(folder), texture, out, per_input=2, seed=2, layout="nnunet")
    rows = rows_of(out / "manifest.csv")
    assert len(rows) == 6 and not any(p.name.endswith("region.png") for p in out.glob("*Tr/*"))
    inputs = {item.source_id: item for item in folder_inputs(folder)}
    for row in rows:
        assert row["synthesis"] == "procedural" and row["model_sha256"] == ""
        assert row["generator"] == "procedural-texture v1"
        assert row["generator_params"] == texture.params_json()
        text = read_png_text(out / row["image"])
        assert "ModelSHA256" not in text and text["Generator"] == "procedural-texture v1"
        assert json.loads(text["GeneratorParameters"]) == texture.params()
        item = inputs[row["name"][:4]]
        region = read_label_image(out / row["region"]) == 255
        image = read_raster(out / row["image"]).pixels
        assert int(row["region_px"]) == region.sum() > 0
        assert np.array_equal(image[~region], item.ct.pixels[~region])
        assert (image[region] != item.ct.pixels[region]).any()
    record = json.loads((out / "dataset.json").read_text())
    assert record["synthesis"] == "procedural" and record["generator"] == texture.params()
    assert record["labels"]["GGO"] == 2 and record["numTraining"] == 6


def test_an_export_folder_takes_one_kind_and_one_generator(folder, models, tmp_path):
    out = tmp_path / "out"
    run_batch(folder_inputs(folder), Synthesizer(models["label"], device="cpu"), out, 1)
    with pytest.raises(ValueError, match="holds a whole-lung export"):
        run_batch(folder_inputs(folder), Synthesizer(models["inpaint"], device="cpu"), out, 1)
    other = make_tiny_weights(tmp_path / "other.safetensors", seed=3)
    with pytest.raises(ValueError, match="other model"):
        run_batch(folder_inputs(folder), Synthesizer(other, device="cpu"), out, 2)


def test_nifti_inputs_pass_row_and_column_spacing(tmp_path, models):
    """Anisotropic NIfTI pixels: the whole-lung augmentation gets the slice's (row, column)
    spacing, not one of its two sizes."""
    image, labels = phantom(64)
    hu = (image + 1) / 2 * 1500 - 1350
    lesions = np.where(labels >= 2, labels - 1, 0).astype(np.uint8)
    affine = np.diag([0.6, 1.5, 5.0, 1.0])
    write_nifti(tmp_path / "ct.nii.gz", np.stack([hu, hu], axis=2).astype(np.float32), affine)
    write_nifti(tmp_path / "labels.nii.gz", np.stack([lesions, lesions], axis=2), affine)
    pairs = [(tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz")]
    spacing = next(nifti_inputs(pairs)).ct.spacing
    assert spacing[0] != spacing[1]
    out = tmp_path / "out"
    run_batch(nifti_inputs(pairs), Synthesizer(models["label"], device="cpu"), out, 6)
    recorded = [
        json.loads(r["augmentation"]).get("spacing_mm") for r in rows_of(out / "manifest.csv")
    ]
    recorded = [s for s in recorded if s is not None]
    assert recorded and all(s == pytest.approx(list(spacing)) for s in recorded)


def test_cli_defaults_to_inpaint_and_refuses_a_stray_checkpoint(folder, models, tmp_path):
    out = tmp_path / "cli"
    base = ["batch", "--data", folder, "--out", out, "--per-input", "1", "--no-progress"]
    result = cli(*base, "--inpaint-checkpoint", models["inpaint"], "--layout", "nnunet")
    assert result.returncode == 0, result.stderr
    assert "Wrote 3 samples" in result.stdout and "(inpaint)" in result.stdout
    rows = rows_of(out / "manifest.csv")
    assert {r["synthesis"] for r in rows} == {"inpaint"} and len(rows) == 3
    assert all((out / r["region"]).is_file() and r["image"].startswith("imagesTr/") for r in rows)
    refused = cli(*base, "--checkpoint", models["label"])
    assert refused.returncode == 1 and "--checkpoint is the whole-lung model" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_one_process_rerun_takes_over_a_stopped_sharded_run(folder, models, tmp_path):
    """Rank 1 of 2 stopped after one sample: a plain one-process rerun keeps that sample, makes
    the rest, merges the part into the manifest in input order and removes it."""
    synthesizer = Synthesizer(models["inpaint"], device="cpu")
    fresh, out = tmp_path / "fresh", tmp_path / "out"
    run_batch(folder_inputs(folder), synthesizer, fresh, 2, seed=3)
    calls = {"n": 0}

    def after_one():
        calls["n"] += 1
        return calls["n"] > 1

    stopped = run_batch(
        folder_inputs(folder, shard=(1, 2)), synthesizer, out, 2, seed=3, shard=(1, 2),
        cancelled=after_one,
    )  # fmt: skip
    assert stopped == {"written": 1, "skipped": 0, "cancelled": True}
    assert rows_of(out / "parts" / "manifest-rank1-of-2.csv")[0]["name"] == "0001_v00"
    assert not (out / "manifest.csv").exists()  # only rank 0 writes it, when all are done
    rest = run_batch(folder_inputs(folder), synthesizer, out, 2, seed=3)
    assert rest == {"written": 5, "skipped": 1, "cancelled": False}
    assert (out / "manifest.csv").read_bytes() == (fresh / "manifest.csv").read_bytes()
    assert files_of(out) == files_of(fresh) and not (out / "parts").exists()
