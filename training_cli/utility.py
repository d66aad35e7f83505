"""``utility``: does synthetic data help segmentation? The paper's Tables III/IV as one command.

Protocol (identical for every arm; only the training set differs):

* the split is the model's: its training slices feed synthesis and segmenter training, its test
  slices are used for testing only (the command refuses a model whose recorded training slices
  include a test slice);
* synthetic slices come from the batch exporter (``gan.batch.run_batch``), of one or more kinds
  (``--synthesis``): ``whole-lung`` (augmented label maps of the training slices, synthesized and
  composited into the real non-lung area; the default), ``inpaint`` (the training slices' lesions
  edited, the changed region inpainted) and ``procedural`` (the same edits, a non-learned texture
  fitted on the training slices: the control). Every kind runs the same arms with the same seeds
  and shares the 0 % arm; the report compares their paired changes (``synthesis.png``);
* ``replace f``: round(f * N) of the N real training slices are swapped for as many synthetic ones;
  ``add f``: round(f * N) synthetic slices are added to the N real ones. Subsets are nested (the
  synthetic slices of 10 % are among those of 20 %) and chosen with ``--seed``; the 0 % arm is the
  same in both experiments and is trained once;
* a MONAI U-Net per arm and segmenter seed, same epochs, batch, learning rate and augmentation;
* every arm is tested on the same augmented real test slices, split into disjoint folds; scores
  are mean +- 95 % CI over folds (as the paper) and over segmenter seeds.

Each finished (arm, seed) is saved under ``REPORT_DIR/arms/``; a rerun with the same protocol
skips it, so an interrupted run loses at most the arm in progress.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import platform
from pathlib import Path

import numpy as np

HELP = (
    "Train a U-Net on real and on real + synthetic slices and compare them on the real test "
    "slices (the paper's Tables III/IV)."
)
DEFAULT_FRACTIONS = "0,0.1,0.2,0.3,0.4,0.5"
NOT_THE_PAPERS_DATA = (
    "These numbers come from this run's data, model and resolution, not the paper's "
    "(which used 10,220 test images of its own dataset at 512x512 and its own trained model); "
    "compare the trend across fractions, not the absolute values."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training_cli.segmenter import SegmenterOptions

    d = SegmenterOptions()
    p.add_argument("--data", required=True, help="data folder in the medseg-ct100 layout")
    p.add_argument(
        "--checkpoint",
        default="default",
        help="whole-lung generator (label mode): checkpoint, export, or 'default'",
    )
    p.add_argument(
        "--synthesis",
        default="whole-lung",
        help="kinds of synthetic slices, comma-separated, each run through the same arms (the 0 %% "
        "arm and the seeds shared): whole-lung (the paper's, default), inpaint (lesions edited, "
        "the changed region inpainted into the real slice), procedural (the same edits, a "
        "non-learned texture: does the GAN matter?)",
    )
    p.add_argument(
        "--inpaint-checkpoint",
        default="default",
        help="inpaint generator: checkpoint, export, or 'default'",
    )
    p.add_argument(
        "--procedural-fit-slices",
        type=int,
        default=32,
        help="procedural: fit the texture on this many training slices (default 32)",
    )
    p.add_argument(
        "--experiment",
        choices=["replace", "add", "both"],
        default="both",
        help="replace: N slices, a fraction synthetic (Table III); add: N real + a fraction "
        "of N synthetic (Table IV); both (default)",
    )
    p.add_argument(
        "--fractions",
        default=DEFAULT_FRACTIONS,
        help=f"synthetic fractions, comma-separated (default {DEFAULT_FRACTIONS})",
    )
    p.add_argument("--folds", type=int, default=10, help="disjoint test folds (default 10)")
    p.add_argument(
        "--seeds",
        default="0,1,2",
        help="segmenter seeds, comma-separated; one U-Net per arm and seed (default 0,1,2)",
    )
    p.add_argument(
        "--split",
        help="folder with train.txt and test.txt (default: the split the model was trained on, "
        "else resources/splits)",
    )
    p.add_argument(
        "--size",
        type=int,
        help="segmenter resolution (default 512 on a GPU, 128 on the CPU)",
    )
    p.add_argument(
        "--test-augment",
        type=int,
        default=20,
        help="augmented copies of each test slice (default 20: 16 slices -> 320 test images)",
    )
    p.add_argument(
        "--epochs", type=int, default=d.epochs, help=f"segmenter epochs (default {d.epochs})"
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    p.add_argument(
        "--channels",
        default=",".join(map(str, d.channels)),
        help="U-Net channels per level (default %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="synthesis and subset-selection seed (default 0)"
    )
    p.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    p.add_argument("--out", required=True, help="report folder (a rerun resumes finished arms)")
    p.add_argument("--cache-dir", help="data-folder cache location")
    p.add_argument("--no-progress", action="store_true")


def parse_fractions(text: str, experiment: str) -> list[float]:
    try:
        values = sorted({round(float(v), 6) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"--fractions: not a comma-separated list of numbers: {text!r}") from None
    if not values:
        raise ValueError("--fractions is empty")
    if values[0] < 0:
        raise ValueError("--fractions must be >= 0")
    if experiment in ("replace", "both") and values[-1] > 1:
        raise ValueError("replace fractions must be <= 1 (all real slices replaced)")
    return values


def parse_int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what}: not a comma-separated list of integers: {text!r}") from None
    if not values:
        raise ValueError(f"{what} is empty")
    return values


def parse_synthesis(text: str) -> list[str]:
    """``--synthesis``: the kinds, in the order given, each once."""
    from gan.batch import SYNTHESIS_KINDS

    kinds = list(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in SYNTHESIS_KINDS]
    if unknown or not kinds:
        raise ValueError(
            f"--synthesis: unknown kind(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SYNTHESIS_KINDS)}"
        )
    return kinds


def model_training_ids(weights: Path) -> tuple[list[str] | None, str | None]:
    """The slice ids a generator was trained on, from its export sidecar or checkpoint options:
    (ids, split file) or (None, None) where the model does not record them."""
    options: dict = {}
    sidecar = weights.with_suffix(".json")
    if weights.suffix == ".safetensors" and sidecar.is_file():
        try:
            options = json.loads(sidecar.read_text()).get("training", {}).get("options", {})
        except (OSError, json.JSONDecodeError, AttributeError):
            options = {}
    elif weights.suffix == ".pt":
        from gan.checkpoint import load_checkpoint

        try:
            options = json.loads(load_checkpoint(weights).get("options") or "{}")
        except (TypeError, json.JSONDecodeError):
            options = {}
    ids_file = options.get("ids") if isinstance(options, dict) else None
    if not ids_file:
        return None, None
    from gan.data import read_split_file
    from gan.paths import resources_dir

    for base in (Path.cwd(), resources_dir().parent):
        path = base / ids_file
        if path.is_file():
            return read_split_file(path), str(path)
    return None, str(ids_file)


def resolve_split(split: str | None, weights: Path | None) -> dict:
    """Train and test ids and where they came from; refuses overlap with the model's slices
    (``weights`` None: no learned model, the procedural generator alone)."""
    from gan.data import read_split_file
    from gan.paths import resources_dir

    model_ids, model_ids_file = model_training_ids(weights) if weights else (None, None)
    if split:
        folder = Path(split)
    elif model_ids_file and (Path(model_ids_file).parent / "test.txt").is_file():
        folder = Path(model_ids_file).parent
    else:
        folder = resources_dir() / "splits"
    for name in ("train.txt", "test.txt"):
        if not (folder / name).is_file():
            raise ValueError(f"{folder}: no {name} (give --split DIR with train.txt and test.txt)")
    train, test = read_split_file(folder / "train.txt"), read_split_file(folder / "test.txt")
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise ValueError(f"{folder}: train and test share slices: {', '.join(overlap[:5])}")
    if model_ids is not None:
        seen = sorted(set(model_ids) & set(test))
        if seen:
            raise ValueError(
                f"the generator was trained on test slices ({', '.join(seen[:5])}); its synthetic "
                "slices would leak them into segmenter training: use a split it was not trained on"
            )
    return {
        "folder": str(folder),
        "train": train,
        "test": test,
        "model_training_ids": model_ids_file,
        "model_training_ids_known": model_ids is not None,
    }


def arm_composition(
    n_real: int, n_synthetic: int, experiment: str, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(real indices, synthetic indices) of one arm. Nested across fractions for one seed."""
    k = int(round(fraction * n_real))
    if k > n_synthetic:
        raise ValueError(
            f"{experiment} {fraction:g} needs {k} synthetic slices; {n_synthetic} made"
        )
    rng = np.random.default_rng(seed)
    real_order = rng.permutation(n_real)
    synthetic_order = rng.permutation(n_synthetic)
    if experiment == "replace":
        return np.sort(real_order[: n_real - k]), np.sort(synthetic_order[:k])
    if experiment == "add":
        return np.arange(n_real), np.sort(synthetic_order[:k])
    raise ValueError(f"unknown experiment {experiment!r}")


def arm_list(experiment: str, fractions: list[float]) -> list[tuple[str, float]]:
    """The (experiment, fraction) arms to train; 0 % is one shared arm ("real")."""
    arms: list[tuple[str, float]] = []
    if 0.0 in fractions:
        arms.append(("real", 0.0))
    for exp in ("replace", "add") if experiment == "both" else (experiment,):
        arms += [(exp, f) for f in fractions if f > 0]
    return arms


def hardware_description(device) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {name}, {torch.get_num_threads()} threads"


def synthetic_pool(
    args, generator, train_ids: list[str], per_input: int, size: int, progress, edits=None
):
    """``per_input`` synthetic slices per training slice via the batch exporter (none if 0;
    resumable in ``OUT/synthetic-[KIND-]ID-lungV``), read back at ``size``. ``generator`` sets the
    kind (:func:`gan.batch.synthesis_kind`). Returns (SliceSet, source slice ids)."""
    from gan.batch import folder_inputs, read_manifest, run_batch, synthesis_kind
    from gan.ctio import read_label_image, read_raster
    from gan.data import SliceSet
    from gan.lung import DERIVATION_VERSION

    kind = synthesis_kind(generator)
    identity = generator_identity(generator, kind, edits)
    # keyed by what the slices depend on, so a rerun never mixes slices of another model or lung
    prefix = "" if kind == "whole-lung" else f"{kind}-"
    out = Path(args.out) / f"synthetic-{prefix}{identity[:12]}-lung{DERIVATION_VERSION}"
    if per_input > 0:
        run_batch(
            folder_inputs(Path(args.data), train_ids),
            generator,
            out,
            per_input=per_input,
            seed=args.seed,
            progress=progress,
            edits=edits,
        )
    rows = read_manifest(out / "manifest.csv")
    allowed = {f"{i}_v{v:02d}" for i in train_ids for v in range(max(per_input, 1))}
    column = "generator_params" if kind == "procedural" else "model_sha256"
    made_by = generator.params_json() if kind == "procedural" else generator.sha256
    rows = [r for r in rows if r["name"] in allowed and r[column] == made_by]
    rows.sort(key=lambda r: r["name"])
    if not rows:
        return None, []
    images = np.stack([read_raster(out / r["image"]).to_model_range() for r in rows])
    labels = np.stack([read_label_image(out / r["labels"]) for r in rows])
    pool = SliceSet([r["name"] for r in rows], images.astype(np.float32), labels.astype(np.uint8))
    sources = [r["name"].rsplit("_v", 1)[0] for r in rows]
    return pool.resized(size), sources


def generator_identity(generator, kind: str, edits=None) -> str:
    """What a kind's synthetic slices depend on besides the data and seed, as a SHA-256: the
    model (whole lung), the model and the edits (inpaint), the parameters and the edits."""
    if kind == "whole-lung":
        return generator.sha256
    from gan.batch import EditOptions

    made_by = generator.sha256 if kind == "inpaint" else generator.params_json()
    record = {"generator": made_by, "edits": (edits or EditOptions()).as_dict()}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def generator_description(generator, kind: str) -> dict:
    if kind == "procedural":
        return {"generator": generator.name, "parameters_sha256": generator.sha256,
                "fit_slices": generator.fit_slices}  # fmt: skip
    return {
        "generator": _shown(generator.weights),
        "sha256": generator.sha256,
        "preset": generator.config.preset,
    }


def protocol_key(protocol: dict) -> str:
    return hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:16]


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from gan.lung import DERIVATION_VERSION
    from gan.synthesizer import Synthesizer, resolve_device
    from training_cli.data_source import load_slices_for_ids
    from training_cli.evaluate import evaluation_pairs
    from training_cli.segmenter import (
        SegmenterOptions,
        fold_scores,
        lesion_targets,
        predict,
        split_folds,
        train_segmenter,
    )

    if not Path(args.data).is_dir():
        raise ValueError(f"{args.data}: utility needs a data folder (images/ + lesions/)")
    fractions = parse_fractions(args.fractions, args.experiment)
    seeds = parse_int_list(args.seeds, "--seeds")
    channels = tuple(parse_int_list(args.channels, "--channels"))
    if len(channels) < 2:
        raise ValueError("--channels needs at least two levels")
    device = resolve_device(None if args.device == "auto" else args.device)
    size = args.size or (512 if device.type == "cuda" else 128)
    if size % 2 ** (len(channels) - 1):
        raise ValueError(f"--size {size} must be divisible by {2 ** (len(channels) - 1)}")
    opts = SegmenterOptions(
        channels=channels, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr
    )
    kinds = parse_synthesis(args.synthesis)
    generators: dict = {}
    if "whole-lung" in kinds:
        generators["whole-lung"] = Synthesizer(args.checkpoint, device=str(device), mode="label")
    if "inpaint" in kinds:
        generators["inpaint"] = Synthesizer(
            args.inpaint_checkpoint, device=str(device), mode="inpaint"
        )
    models = list(generators.values())
    split = resolve_split(args.split, models[0].weights if models else None)
    for model in models[1:]:
        resolve_split(split["folder"], model.weights)  # refuses a model trained on test slices
    if "procedural" in kinds:
        import gan.batch

        # its intensities and spectra come from the training slices alone
        fit_ids = gan.batch.spread(split["train"], args.procedural_fit_slices)
        generators["procedural"] = gan.batch.fit_procedural(
            gan.batch.folder_inputs(Path(args.data), fit_ids), args.procedural_fit_slices
        )
    from gan.batch import EditOptions

    edits = EditOptions()
    out = Path(args.out)
    (out / "arms").mkdir(parents=True, exist_ok=True)

    real = load_slices_for_ids(args.data, split["train"], size, args.cache_dir)
    test = load_slices_for_ids(args.data, split["test"], size, args.cache_dir)
    test_ids, test_labels, test_images = evaluation_pairs(test, args.test_augment)
    folds = split_folds(len(test_ids), args.folds)
    test_targets = lesion_targets(test_labels)

    arms = arm_list(args.experiment, fractions)
    needed = max((round(f * len(real)) for _, f in arms), default=0)
    per_input = max(1, math.ceil(needed / len(split["train"])))
    pools: dict = {}
    for kind in kinds:
        with tqdm(
            total=len(split["train"]) * per_input if needed else 0,
            desc=f"synthesis ({kind})",
            unit="slice",
            disable=args.no_progress or not needed,
        ) as bar:
            pool, pool_sources = synthetic_pool(
                args,
                generators[kind],
                split["train"],
                per_input if needed else 0,
                size,
                bar.update,
                edits,
            )
        leaked = sorted(set(pool_sources) & set(split["test"]))
        if leaked:  # cannot happen by construction; a guard against future changes
            raise ValueError(f"test slices reached synthesis: {', '.join(leaked[:5])}")
        pools[kind] = pool

    base = {
        "train": split["train"],
        "test": split["test"],
        "size": size,
        "test_augment": args.test_augment,
        "folds": args.folds,
        "segmenter": opts.as_dict(),
        "selection_seed": args.seed,
        "device_type": device.type,
        "lung_derivation": DERIVATION_VERSION,
    }
    keys = {}
    for kind in kinds:
        pool = pools[kind]
        protocol = {**base, "synthetic": pool.ids if pool is not None else []}
        if kind == "whole-lung":
            protocol["checkpoint_sha256"] = generators[kind].sha256
        else:
            protocol.update(
                synthesis=kind, generator=generator_identity(generators[kind], kind, edits)
            )
        keys[kind] = protocol_key(protocol)
    # the 0 % arm is the same network whatever the kind: trained once, keyed without synthesis
    # (a whole-lung run alone keys it as it always has, so its earlier arms stay valid)
    keys[None] = keys["whole-lung"] if kinds == ["whole-lung"] else protocol_key(base)
    jobs = [(None, e, f) for e, f in arms if e == "real"]
    jobs += [(kind, e, f) for kind in kinds for e, f in arms if e != "real"]
    results: list[dict] = []
    with tqdm(
        total=len(jobs) * len(seeds), desc="arms", unit="arm", disable=args.no_progress
    ) as bar:
        for kind, experiment, fraction in jobs:
            pool = pools[kind] if kind is not None else None
            n_synthetic = len(pool) if pool is not None else 0
            key = keys[kind]
            real_idx, syn_idx = arm_composition(
                len(real),
                n_synthetic,
                "replace" if experiment == "real" else experiment,
                fraction,
                args.seed,
            )
            prefix = "" if kind in (None, "whole-lung") else f"{kind}-"
            what = experiment if kind is None else f"{kind} {experiment}"
            for seed in seeds:
                path = out / "arms" / f"{prefix}{experiment}-{fraction:.2f}-seed{seed}.json"
                cached = _read_json(path)
                if cached and cached.get("protocol_key") == key:
                    results.append({**cached, "synthesis": kind})
                    bar.update(1)
                    continue
                bar.set_postfix_str(f"{what} {fraction:.0%} seed {seed}")
                images = np.concatenate(
                    [real.images[real_idx]] + ([pool.images[syn_idx]] if len(syn_idx) else [])
                )
                labels = np.concatenate(
                    [real.label_maps[real_idx]]
                    + ([pool.label_maps[syn_idx]] if len(syn_idx) else [])
                )

                def on_epoch(done, total, arm=f"{what} {fraction:.0%} seed {seed}"):
                    bar.set_postfix_str(f"{arm}: epoch {done}/{total}")

                net, record = train_segmenter(images, labels, opts, seed, device, on_epoch)
                predictions = predict(net, test_images, device, batch_size=opts.batch_size)
                fold_rows = []
                for k, fold in enumerate(folds):
                    bar.set_postfix_str(f"{what} {fraction:.0%} seed {seed}: fold {k + 1}")
                    fold_rows.append(fold_scores(predictions[fold], test_targets[fold]))
                result = {
                    "protocol_key": key,
                    "synthesis": kind,
                    "experiment": experiment,
                    "fraction": fraction,
                    "seed": seed,
                    "n_real": int(len(real_idx)),
                    "n_synthetic": int(len(syn_idx)),
                    "synthetic_used": [pool.ids[i] for i in syn_idx] if len(syn_idx) else [],
                    "real_used": [real.ids[i] for i in real_idx],
                    "training": record,
                    "folds": fold_rows,
                }
                _write_json(path, result)
                results.append(result)
                del net
                bar.update(1)
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    summary = []
    for kind in kinds:
        rows = summarize([r for r in results if r["synthesis"] in (None, kind)], args.experiment)
        summary += [{"synthesis": kind, **r} for r in rows]
    first = kinds[0]
    described = {kind: generator_description(generators[kind], kind) for kind in kinds}
    lead = next((k for k in kinds if k != "procedural"), None)
    meta = {
        "command": "python -m training_cli utility",
        "data": str(args.data),
        "split": {
            k: _shown(v) if k in ("folder", "model_training_ids") else v
            for k, v in split.items()
            if k not in ("train", "test")
        },
        "n_train_slices": len(split["train"]),
        "n_test_slices": len(split["test"]),
        "n_test_images": len(test_ids),
        "test_augment": args.test_augment,
        "folds": args.folds,
        "fold_size": [len(f) for f in folds],
        "seeds": seeds,
        "selection_seed": args.seed,
        "resolution": size,
        "synthesis": kinds,
        "synthetic": {
            kind: {
                **described[kind],
                "slices_made": len(pools[kind]) if pools[kind] is not None else 0,
                **({"edits": edits.as_dict()} if kind != "whole-lung" else {}),
            }
            for kind in kinds
        },
        # the learned model first named (the whole-lung one where it runs): as reports had it
        "generator": described[lead]["generator"] if lead else described[first]["generator"],
        "generator_sha256": generators[lead].sha256 if lead else generators[first].sha256,
        "generator_preset": described[lead]["preset"] if lead else "procedural",
        "synthetic_slices_made": len(pools[first]) if pools[first] is not None else 0,
        "synthetic_per_training_slice": per_input,
        "lung_derivation": DERIVATION_VERSION,
        "segmenter": opts.as_dict(),
        "hardware": hardware_description(device),
        "segmenter_training_seconds": round(sum(r["training"]["seconds"] for r in results), 1),
        "torch": torch.__version__,
        "monai": _monai_version(),
        "note": NOT_THE_PAPERS_DATA,
        "protocol_key": keys[first],
        "protocol_keys": {str(k): v for k, v in keys.items()},
    }
    write_report(out, meta, summary, results)
    print(format_markdown(meta, summary))
    print(f"report: {out / 'report.md'}  (JSON, CSV and dice.png beside it)")
    return 0


def _shown(path) -> str | None:
    """A path as a reader of the report wants it: relative to the working folder where it lies
    below it (the repository, usually), else as given."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _monai_version() -> str:
    import monai

    return monai.__version__


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, value) -> None:
    from gan.fsutil import atomic_write_text
    from training_cli.evaluate import json_safe

    atomic_write_text(path, json.dumps(json_safe(value), indent=1) + "\n")


def summarize(results: list[dict], experiment: str) -> list[dict]:
    """One row per (experiment, fraction, class, metric): mean over seeds and folds, the 95 % CI
    over folds (each fold averaged over seeds: the paper's +-) and over seeds (each seed averaged
    over folds), and the change against the 0 % arm paired by seed (same seed, same test folds:
    the seed's own effect on the network cancels) with its 95 % CI over seeds. The shared 0 % arm
    is listed under every experiment."""
    from training_cli.segmenter import CLASSES, METRICS, confidence_interval

    def per_seed_means(group, cls, metric) -> dict[int, float]:
        out = {}
        for r in group:
            values = np.array([_nan(f[cls][metric]) for f in r["folds"]], np.float64)
            out[r["seed"]] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
        return out

    experiments = ("replace", "add") if experiment == "both" else (experiment,)
    base = [r for r in results if r["fraction"] == 0.0]
    rows = []
    for exp in experiments:
        arms = sorted({r["fraction"] for r in results if r["experiment"] in (exp, "real")})
        for fraction in arms:
            group = [
                r for r in results if r["fraction"] == fraction and r["experiment"] in (exp, "real")
            ]
            for cls in CLASSES:
                for metric in METRICS:
                    grid = np.array(
                        [[_nan(f[cls][metric]) for f in r["folds"]] for r in group], np.float64
                    )  # (seeds, folds)
                    with np.errstate(all="ignore"):
                        per_fold = np.nanmean(grid, axis=0)
                    mean, ci_folds, n_folds = confidence_interval(per_fold)
                    seeds = per_seed_means(group, cls, metric)
                    _, ci_seeds, n_seeds = confidence_interval(list(seeds.values()))
                    reference = per_seed_means(base, cls, metric)
                    paired = [seeds[k] - reference[k] for k in seeds if k in reference]
                    delta, ci_delta, n_paired = confidence_interval(paired)
                    rows.append(
                        {
                            "experiment": exp,
                            "fraction": fraction,
                            "n_real": group[0]["n_real"],
                            "n_synthetic": group[0]["n_synthetic"],
                            "class": cls,
                            "metric": metric,
                            "mean": mean,
                            "ci95_folds": ci_folds,
                            "ci95_seeds": ci_seeds,
                            "per_seed": {str(k): v for k, v in sorted(seeds.items())},
                            "change_vs_0": delta if n_paired else float("nan"),
                            "change_ci95_seeds": ci_delta,
                            "n_folds": n_folds,
                            "n_seeds": n_seeds,
                        }
                    )
    return rows


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.2f}"


KIND_TEXT = {
    "whole-lung": "the whole lung synthesized from augmented label maps of the training slices "
    "and composited into their real non-lung area (the paper's)",
    "inpaint": "the training slices' lesions edited, only the changed region (plus a margin) "
    "regenerated by the inpainting model in the real slice",
    "procedural": "the same lesion edits, the changed region rendered by a non-learned texture "
    "(per-class Gaussian noise fitted on the training slices, after Hu et al.): the control",
}


def _generator_lines(meta: dict) -> list[str]:
    kinds = meta.get("synthesis") or ["whole-lung"]
    if kinds == ["whole-lung"]:
        return [
            f"- Generator: `{meta['generator']}` ({meta['generator_preset']}, SHA-256 "
            f"{meta['generator_sha256'][:12]}...); {meta['synthetic_slices_made']} synthetic "
            "slices from augmented label maps of the training slices (batch exporter)."
        ]
    lines = []
    for kind in kinds:
        made = meta["synthetic"][kind]
        if kind == "procedural":
            by = (
                f"{made['generator']} fitted on {made['fit_slices']} training slices "
                f"(parameters SHA-256 {made['parameters_sha256'][:12]}...)"
            )
        else:
            by = f"`{made['generator']}` ({made['preset']}, SHA-256 {made['sha256'][:12]}...)"
        lines.append(
            f"- Synthesis {kind}: {KIND_TEXT[kind]}; {by}; {made['slices_made']} slices "
            "(batch exporter)."
        )
    return lines


def comparison(summary: list[dict]) -> list[dict]:
    """Which kind helps: one row per (kind, experiment, fraction > 0) with the paired change in
    Dice per class against the shared 0 % arm, its 95 % CI over seeds, and the verdict."""
    from training_cli.segmenter import CLASSES

    rows = []
    dice = [r for r in summary if r["metric"] == "dice" and r["fraction"] > 0]
    kinds = list(dict.fromkeys(r.get("synthesis", "whole-lung") for r in summary))
    keys = sorted(
        {(r.get("synthesis", "whole-lung"), r["experiment"], r["fraction"]) for r in dice},
        key=lambda k: (k[1], k[2], kinds.index(k[0])),
    )
    for kind, exp, fraction in keys:
        cells = {
            r["class"]: r
            for r in dice
            if (r.get("synthesis", "whole-lung"), r["experiment"], r["fraction"])
            == (kind, exp, fraction)
        }
        row = {"synthesis": kind, "experiment": exp, "fraction": fraction}
        for cls in CLASSES:
            r = cells[cls]
            row[cls] = {
                "dice": r["mean"],
                "change_vs_0": r["change_vs_0"],
                "change_ci95_seeds": r["change_ci95_seeds"],
                "verdict": verdict(r),
            }
        rows.append(row)
    return rows


def comparison_markdown(rows: list[dict]) -> list[str]:
    from training_cli.segmenter import CLASSES

    names = {"ggo": "GGO", "consolidation": "Consolidation", "infection": "Infection"}
    lines = [
        "## Which kind of synthetic data helps?",
        "",
        "Change in Dice (points) against the shared real-only arm, paired by seed, ± the 95 % CI "
        "over seeds; better / worse only where that CI excludes zero.",
        "",
        "| Experiment | Synthetic | Kind | "
        + " | ".join(f"{names[c]} change" for c in CLASSES)
        + " | Infection verdict |",
        "|---|---|---|" + "---|" * len(CLASSES) + "---|",
    ]
    for row in rows:
        cells = [row["experiment"], f"{row['fraction']:.0%}", row["synthesis"]]
        cells += [_change(row[c]) for c in CLASSES]
        cells.append(row["infection"]["verdict"])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def format_markdown(meta: dict, summary: list[dict]) -> str:
    from training_cli.segmenter import CLASSES, METRICS

    names = {"ggo": "GGO", "consolidation": "Consolidation", "infection": "Infection"}
    titles = {
        "replace": "Replacing real slices with synthetic ones (cf. the paper's Table III)",
        "add": "Adding synthetic slices to all real ones (cf. the paper's Table IV)",
    }
    lines = [
        "# Does synthetic data help segmentation?",
        "",
        f"- Data: `{meta['data']}`, split `{meta['split']['folder']}`: "
        f"{meta['n_train_slices']} training slices (synthesis and segmenter training only), "
        f"{meta['n_test_slices']} test slices x {meta['test_augment']} augmentations = "
        f"{meta['n_test_images']} test images in {meta['folds']} disjoint folds.",
        *_generator_lines(meta),
        f"- Segmenter: MONAI U-Net {meta['segmenter']['channels']}, {meta['segmenter']['epochs']} "
        f"epochs, batch {meta['segmenter']['batch_size']}, Adam {meta['segmenter']['lr']}, "
        f"the paper's augmentation; at {meta['resolution']}x{meta['resolution']}; seeds "
        f"{', '.join(map(str, meta['seeds']))}, identical across arms.",
        f"- Hardware: {meta['hardware']}; torch {meta['torch']}, MONAI {meta['monai']}; "
        f"{meta.get('segmenter_training_seconds', 0) / 60:.0f} min of segmenter training in all "
        f"({len(meta['seeds'])} seeds per arm).",
        f"- {meta['note']}",
        "- Cells: mean over seeds and folds, +- the 95 % CI over folds (the paper's +-). "
        "Dice is pooled over a fold's pixels.",
    ]
    kinds = meta.get("synthesis") or ["whole-lung"]
    several = len(kinds) > 1
    if several:
        lines += ["", *comparison_markdown(comparison(summary))]
    for kind, exp in ((k, e) for k in kinds for e in ("replace", "add")):
        rows = [
            r
            for r in summary
            if r["experiment"] == exp and r.get("synthesis", "whole-lung") == kind
        ]
        if not rows:
            continue
        table = {(r["fraction"], r["class"], r["metric"]): r for r in rows}
        fractions = sorted({r["fraction"] for r in rows})
        lines += ["", f"## {titles[exp]}" + (f": {kind} synthetic slices" if several else ""), ""]
        head = ["Synthetic", "Real + synth"] + [
            f"{names[c]} {m[:4].title() if m != 'dice' else 'Dice'} (%)"
            for c in CLASSES
            for m in METRICS
        ]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for f in fractions:
            first = table[(f, "ggo", "dice")]
            cells = [f"{f:.0%}", f"{first['n_real']} + {first['n_synthetic']}"]
            for c in CLASSES:
                for m in METRICS:
                    r = table[(f, c, m)]
                    ci = (
                        "" if not np.isfinite(r["ci95_folds"]) else f" ±{100 * r['ci95_folds']:.2f}"
                    )
                    cells.append(f"{_pct(r['mean'])}{ci}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "Dice (%) per seed, and its change against 0 % paired by seed (the same seed's "
            "real-only network) ± the 95 % CI over seeds:",
            "",
        ]
        lines.append(
            "| Synthetic | GGO per seed | GGO change | Consolidation per seed | "
            "Consolidation change | Infection per seed | Infection change |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for f in fractions:
            cells = [f"{f:.0%}"]
            for c in CLASSES:
                r = table[(f, c, "dice")]
                cells.append(" / ".join(_pct(v) for v in r["per_seed"].values()))
                cells.append("—" if f == 0 else _change(r))
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", finding(rows)]
    return "\n".join(lines) + "\n"


def _change(r: dict) -> str:
    delta, ci = r["change_vs_0"], r["change_ci95_seeds"]
    if delta is None or not np.isfinite(delta):
        return "n/a"
    return f"{100 * delta:+.2f}" + (
        f" ±{100 * ci:.2f}" if ci is not None and np.isfinite(ci) else ""
    )


def verdict(r: dict) -> str:
    """ "better" / "worse" where the paired 95 % CI over seeds excludes zero, else "not resolved"."""
    delta, ci = r["change_vs_0"], r["change_ci95_seeds"]
    if delta is None or ci is None or not (np.isfinite(delta) and np.isfinite(ci)):
        return "not resolved (too few seeds)"
    if abs(delta) <= ci:
        return "not resolved"
    return "better" if delta > 0 else "worse"


def finding(rows: list[dict]) -> str:
    """One plain sentence per experiment: the paired change in Dice per class and fraction, and
    whether its 95 % CI over seeds excludes zero."""
    names = {"ggo": "GGO", "consolidation": "consolidation", "infection": "infection"}
    if not any(r["fraction"] == 0.0 for r in rows):
        return "No 0 % arm was run (--fractions without 0), so there is no change to report."
    parts = []
    for cls in names:
        dice = {
            r["fraction"]: r
            for r in rows
            if r["class"] == cls and r["metric"] == "dice" and r["fraction"] > 0
        }
        resolved = [
            f"{f:.0%} {verdict(r)} ({_change(r)} points)"
            for f, r in sorted(dice.items())
            if verdict(r) in ("better", "worse")
        ]
        parts.append(f"{names[cls]}: " + (", ".join(resolved) or "no fraction resolved"))
    return (
        "Against the real-only arm, paired by seed (a change counts as better or worse only where "
        "its 95 % CI over seeds excludes zero): " + "; ".join(parts) + "."
    )


def write_report(out: Path, meta: dict, summary: list[dict], results: list[dict]) -> None:
    from gan.fsutil import atomic_write_text
    from training_cli.segmenter import CLASSES, METRICS

    kinds = meta.get("synthesis") or ["whole-lung"]
    atomic_write_text(out / "report.md", format_markdown(meta, summary))
    _write_json(
        out / "report.json", {**meta, "summary": summary, "comparison": comparison(summary)}
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["experiment", "fraction", "seed", "n_real", "n_synthetic", "fold", "class", *METRICS]
        + ["synthesis"]
    )
    for r in results:
        for k, fold in enumerate(r["folds"]):
            for cls in CLASSES:
                writer.writerow(
                    [r["experiment"], r["fraction"], r["seed"], r["n_real"], r["n_synthetic"], k]
                    + [cls]
                    + [_fmt(fold[cls][m]) for m in METRICS]
                    # the shared real-only arm belongs to every kind
                    + [r.get("synthesis") or "shared"]
                )
    atomic_write_text(out / "report.csv", buffer.getvalue())
    for i, kind in enumerate(kinds):
        rows = [r for r in summary if r.get("synthesis", "whole-lung") == kind]
        plot_dice(rows, out / ("dice.png" if i == 0 else f"dice-{kind}.png"))
    if len(kinds) > 1:
        plot_comparison(comparison(summary), out / "synthesis.png")


def plot_comparison(rows: list[dict], out: Path, width: int = 1100) -> Path:
    """The paired change in infection Dice against the synthetic fraction, one line per kind of
    synthetic data with its 95 % CI over seeds as bars, one panel per experiment; zero marked.
    Drawn with OpenCV, like the other figures."""
    import cv2

    from gan.fsutil import atomic_write_bytes

    colours = [(200, 80, 20), (40, 150, 40), (130, 40, 130), (20, 120, 200)]
    experiments = [e for e in ("replace", "add") if any(r["experiment"] == e for r in rows)]
    kinds = list(dict.fromkeys(r["synthesis"] for r in rows))
    pw, ph = width // max(1, len(experiments)), 440
    canvas = np.full((ph, pw * max(1, len(experiments)), 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    values = [0.0]
    for r in rows:
        d, ci = _z(r["infection"]["change_vs_0"]), _z(r["infection"]["change_ci95_seeds"])
        values += [d - ci, d + ci]
    lo, hi = min(values) - 0.01, max(values) + 0.01
    left, right, top, bottom = 60, pw - 40, 40, ph - 60
    for k, exp in enumerate(experiments):
        panel = canvas[:, k * pw : (k + 1) * pw]
        fractions = sorted({r["fraction"] for r in rows if r["experiment"] == exp})
        x1 = max(fractions[-1], 0.1)

        def px(f, v, x1=x1):
            x = left + f / x1 * (right - left)
            y = bottom - (min(max(v, lo), hi) - lo) / (hi - lo) * (bottom - top)
            return int(round(x)), int(round(y))

        cv2.rectangle(panel, (left, top), (right, bottom), (150, 150, 150), 1)
        for v in np.linspace(lo, hi, 5):
            y = px(0, v)[1]
            cv2.line(panel, (left, y), (right, y), (235, 235, 235), 1)
            cv2.putText(panel, f"{100 * v:+.1f}", (8, y + 4), font, 0.4, (60, 60, 60), 1)
        y0 = px(0, 0.0)[1]
        cv2.line(panel, (left, y0), (right, y0), (120, 120, 120), 1)
        for f in fractions:
            x = px(f, lo)[0]
            cv2.putText(panel, f"{f:.0%}", (x - 12, bottom + 18), font, 0.4, (60, 60, 60), 1)
        title = "replace real with synthetic" if exp == "replace" else "add synthetic to real"
        cv2.putText(panel, f"Infection Dice change (points) vs 0 %: {title}", (left, 25), font,
                    0.5, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
        for j, kind in enumerate(kinds):
            colour = colours[j % len(colours)]
            mine = sorted(
                (r for r in rows if r["experiment"] == exp and r["synthesis"] == kind),
                key=lambda r: r["fraction"],
            )
            pts = []
            for r in mine:
                d = r["infection"]["change_vs_0"]
                if d is None or not np.isfinite(d):
                    continue
                # kinds side by side at one fraction, so their bars do not hide each other
                x, y = px(r["fraction"], d)
                x = int(round(x + 6 * (j - (len(kinds) - 1) / 2)))
                ci = r["infection"]["change_ci95_seeds"]
                if ci is not None and np.isfinite(ci):
                    cv2.line(panel, (x, px(0, d - ci)[1]), (x, px(0, d + ci)[1]), colour, 1)
                cv2.circle(panel, (x, y), 4, colour, -1, cv2.LINE_AA)
                pts.append((x, y))
            if len(pts) > 1:
                cv2.polylines(panel, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
            cv2.putText(panel, kind, (left + 10 + 130 * j, ph - 30), font, 0.45, colour, 1,
                        cv2.LINE_AA)  # fmt: skip
        cv2.putText(panel, "bars: 95 % CI over seeds (paired by seed)", (left, ph - 10), font,
                    0.4, (90, 90, 90), 1, cv2.LINE_AA)  # fmt: skip
    ok, data = cv2.imencode(".png", canvas)
    if not ok:
        raise OSError(f"{out}: PNG encoding failed")
    atomic_write_bytes(out, data.tobytes())
    return out


def _fmt(value) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.6f}"


def plot_dice(summary: list[dict], out: Path, width: int = 1100) -> Path:
    """Dice against the synthetic fraction, one panel per experiment and class colour: a thin line
    per segmenter seed (seeds are paired across fractions) and a thick line for their mean.
    Drawn with OpenCV, like the training curves."""
    import cv2

    from gan.fsutil import atomic_write_bytes
    from training_cli.segmenter import CLASSES

    colours = {"ggo": (200, 80, 20), "consolidation": (40, 150, 40), "infection": (130, 40, 130)}
    experiments = [e for e in ("replace", "add") if any(r["experiment"] == e for r in summary)]
    pw, ph = width // max(1, len(experiments)), 440
    canvas = np.full((ph, pw * max(1, len(experiments)), 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    rows = [r for r in summary if r["metric"] == "dice"]
    values = [
        v
        for r in rows
        for v in [r["mean"], *r["per_seed"].values()]
        if v is not None and np.isfinite(v)
    ]
    lo = max(0.0, min(values, default=0.0) - 0.02)
    hi = min(1.0, max(values, default=1.0) + 0.02)
    if hi - lo < 0.05:
        lo, hi = max(0.0, lo - 0.025), min(1.0, hi + 0.025)
    left, right, top, bottom = 50, pw - 40, 40, ph - 60
    for k, exp in enumerate(experiments):
        panel = canvas[:, k * pw : (k + 1) * pw]
        fractions = sorted({r["fraction"] for r in rows if r["experiment"] == exp})
        x0, x1 = 0.0, max(fractions[-1], 0.1)

        def px(f, v, x0=x0, x1=x1):
            x = left + (f - x0) / (x1 - x0) * (right - left)
            y = bottom - (min(max(v, lo), hi) - lo) / (hi - lo) * (bottom - top)
            return int(round(x)), int(round(y))

        cv2.rectangle(panel, (left, top), (right, bottom), (150, 150, 150), 1)
        for v in np.linspace(lo, hi, 5):
            y = px(x0, v)[1]
            cv2.line(panel, (left, y), (right, y), (235, 235, 235), 1)
            cv2.putText(panel, f"{100 * v:.0f}", (12, y + 4), font, 0.4, (60, 60, 60), 1)
        for f in fractions:
            x = px(f, lo)[0]
            cv2.putText(panel, f"{f:.0%}", (x - 12, bottom + 18), font, 0.4, (60, 60, 60), 1)
        title = "replace real with synthetic" if exp == "replace" else "add synthetic to real"
        cv2.putText(panel, f"Dice (%) vs synthetic fraction: {title}", (left, 25), font, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
        for j, cls in enumerate(CLASSES):
            arm = {r["fraction"]: r for r in rows if r["experiment"] == exp and r["class"] == cls}
            light = tuple(int(c + (255 - c) * 0.55) for c in colours[cls])
            for seed in arm[fractions[0]]["per_seed"]:
                pts = [
                    px(f, arm[f]["per_seed"][seed])
                    for f in fractions
                    if np.isfinite(_z(arm[f]["per_seed"].get(seed)))
                ]
                if len(pts) > 1:
                    cv2.polylines(panel, [np.array(pts, np.int32)], False, light, 1, cv2.LINE_AA)
            pts = [px(f, arm[f]["mean"]) for f in fractions if np.isfinite(arm[f]["mean"])]
            for p in pts:
                cv2.circle(panel, p, 3, colours[cls], -1, cv2.LINE_AA)
            if len(pts) > 1:
                cv2.polylines(panel, [np.array(pts, np.int32)], False, colours[cls], 2, cv2.LINE_AA)
            cv2.putText(panel, cls, (left + 10 + 120 * j, ph - 30), font, 0.45, colours[cls], 1,
                        cv2.LINE_AA)  # fmt: skip
        cv2.putText(panel, "thick: mean over seeds; thin: one segmenter seed", (left, ph - 10),
                    font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)  # fmt: skip
    ok, data = cv2.imencode(".png", canvas)
    if not ok:
        raise OSError(f"{out}: PNG encoding failed")
    atomic_write_bytes(out, data.tobytes())
    return out


def _z(value) -> float:
    return float(value) if value is not None and np.isfinite(value) else 0.0
