"""Checkpoints and generator exports.

A checkpoint is a plain dict saved with ``torch.save``::

    {"format": "ct-lesion-studio-checkpoint", "format_version": 1,
     "config": <ModelConfig as JSON text>, "generator": state_dict,
     "discriminator": state_dict | absent, ...anything the trainer adds (optimizers, RNG, step)}

It is read with ``torch.load(weights_only=True)``; keys and shapes are checked strictly against the
config's networks. An export is the generator alone: ``NAME.safetensors`` (the config as JSON in
its metadata, fp16 or fp32 tensors) plus ``NAME.json`` beside it with the config and SHA-256.
Every failure raises :class:`CheckpointError` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from gan.config import ModelConfig
from gan.fsutil import atomic_path, atomic_write_text
from gan.messages import error_line

FORMAT = "ct-lesion-studio-checkpoint"
FORMAT_VERSION = 1
EXPORT_FORMAT = "ct-lesion-studio-generator"


class CheckpointError(ValueError):
    """A checkpoint or export is missing, truncated, foreign or does not match its networks."""


def save_checkpoint(path: str | os.PathLike, config: ModelConfig, **parts: Any) -> None:
    """Write ``{format, version, config, **parts}`` atomically (temp file + rename)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(config.to_dict()),
        **parts,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read and check a checkpoint; returns the dict with ``config`` parsed into a ModelConfig."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, UnpicklingError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in first:
            # torch's own text: several lines of advice to load it unsafely, in terminal colours
            first = "it holds Python objects besides weights, refused unread (they could run code)"
        first = "".join(c for c in first if c.isprintable())
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or not a PyTorch file: {first[:160]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a CT Lesion Studio checkpoint (foreign file)")
    payload = migrate(payload, path)
    if "config" not in payload:
        raise CheckpointError(f"{path}: checkpoint holds no model config")
    payload["config"] = _parse_config(payload["config"], path)
    return payload


def migrate(payload: dict, path: Path) -> dict:
    """Bring an older checkpoint up to :data:`FORMAT_VERSION` (the one place that knows history)."""
    version = payload.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: checkpoint has no format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is newer than this program reads ({FORMAT_VERSION}); "
            "update CT Lesion Studio"
        )
    return payload


#: Largest whole number a config field may hold, and a layer count: a damaged or hostile file
#: must not make the loader build a network of millions of layers (a hang) before its weights are
#: compared (widths cost nothing: that comparison runs on the meta device).
MAX_CONFIG_INT = 4096
MAX_CONFIG_COUNT = 64
COUNT_FIELDS = {"n_downsample", "n_blocks", "n_blocks_local", "n_layers", "num_d"}


def _parse_config(text: str, path: Path) -> ModelConfig:
    try:
        config = ModelConfig.from_dict(json.loads(text))
    except (json.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: bad model config ({error_line(exc, 160)})") from None
    for part in (config.generator, config.discriminator, config.loss):
        for field in dataclasses.fields(part):
            value, default = getattr(part, field.name), field.default
            # JSON gives any type to any field; the networks need each as its default's type
            if default is None or default is dataclasses.MISSING:
                continue  # no type to hold it to
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                top = MAX_CONFIG_COUNT if field.name in COUNT_FIELDS else MAX_CONFIG_INT
                ok = type(value) is int and 0 <= value <= top
            elif isinstance(default, float):
                ok = type(value) in (int, float) and math.isfinite(value)
            else:
                ok = isinstance(value, type(default))
            if not ok:
                raise CheckpointError(
                    f"{path}: bad model config ({type(part).__name__}.{field.name} = "
                    f"{str(value)[:40]!s})"
                )
    return config


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` with a readable one-line report of what does not match."""
    expected = module.state_dict()
    check_state(expected, state, what)
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def check_state(expected: dict[str, torch.Tensor], state: Any, what: str) -> None:
    """CheckpointError unless ``state`` holds finite tensors of ``expected``'s names and shapes
    (``expected`` may live on the meta device: only names and shapes are read from it)."""
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{what} weights are not a table of named tensors (damaged file)")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if mismatched:
        problems.append(f"{len(mismatched)} of other shape (e.g. {mismatched[0]})")
    if problems:
        raise CheckpointError(f"{what} weights do not match the network: " + "; ".join(problems))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(
            f"{what} weights hold NaN or infinite values ({len(bad)} tensors, e.g. {bad[0]}; "
            "damaged file)"
        )


def expand_input_channels(
    state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``state`` fitted to ``target``'s shapes where a conv weight has fewer input channels (dim 1)
    than the target: the extra channels get zero weights, so they do not change the output until
    trained. Noise-input scales (``*.scale``) that ``state`` lacks (a generator without noise
    inputs warm-starting one with them) come as zeros, which leave the output unchanged too.
    Every other tensor is returned as is (a mismatch there still fails on load)."""
    out = {
        key: torch.zeros_like(value)
        for key, value in target.items()
        if key not in state and key.endswith(".scale")
    }
    for key, value in state.items():
        want = target.get(key)
        if (
            want is not None
            and value.ndim == 4
            and want.ndim == 4
            and value.shape[0] == want.shape[0]
            and value.shape[2:] == want.shape[2:]
            and value.shape[1] < want.shape[1]
        ):
            grown = torch.zeros(want.shape, dtype=value.dtype)
            grown[:, : value.shape[1]] = value
            value = grown
        out[key] = value
    return out


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_generator(
    generator: torch.nn.Module,
    config: ModelConfig,
    path: str | os.PathLike,
    half: bool = True,
    extra: dict[str, Any] | None = None,
    stages_trained: list[str] | None = None,
) -> dict[str, Any]:
    """Write the generator as safetensors (+ JSON sidecar); returns the sidecar's content."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"export path must end in .safetensors, got {path.name}")
    dtype = torch.float16 if half else torch.float32
    tensors = {
        k: v.detach().to("cpu", dtype).contiguous() for k, v in generator.state_dict().items()
    }
    config_json = json.dumps(config.to_dict())
    metadata = {
        "format": EXPORT_FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": config_json,
        "stages_trained": json.dumps(stages_trained or []),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    sidecar = {
        "format": EXPORT_FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": path.name,
        "sha256": sha256_file(path),
        "dtype": str(dtype).removeprefix("torch."),
        "parameters": int(sum(t.numel() for t in tensors.values())),
        "stages_trained": stages_trained or [],
        "inference_stage": inference_stage(stages_trained or []),
        "config": config.to_dict(),
        **(extra or {}),
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def load_exported_generator(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read an export's config and tensors (checked for format, not yet against the network)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated? {error_line(exc, 160)})"
        ) from None
    if metadata.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path}: not a CT Lesion Studio generator export (foreign file)")
    version = str(metadata.get("format_version", "0"))
    if not version.isdigit():
        raise CheckpointError(f"{path}: export has no format version (got {version[:20]!r})")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: export format is newer than this program reads; update it")
    return _parse_config(metadata.get("config", "{}"), path), tensors


def resolve_weights(spec: str | os.PathLike, mode: str = "label") -> Path:
    """A checkpoint path as given, or for ``"default"`` the shipped default of ``mode`` listed in
    ``resources/models/index.json``."""
    if str(spec) != "default":
        return Path(spec)
    from gan.paths import resources_dir

    index_path = resources_dir() / "models" / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{index_path}: default-model index unreadable ({exc})") from None
    entry = index.get("defaults", {}).get(mode)
    if not entry:
        raise CheckpointError(
            f"no default {mode!r} model is shipped yet ({index_path}); train one with "
            f"`python -m training_cli train --mode {mode}` and pass its checkpoint or export path "
            "instead"
        )
    path = index_path.parent / entry["weights"]
    if not path.is_file():
        raise CheckpointError(
            f"default {mode!r} weights listed in {index_path} are missing: {path}"
        )
    expected = entry.get("sha256")
    if expected and _cached_sha256(path) != expected:
        raise CheckpointError(
            f"default {mode!r} weights {path} do not match the SHA-256 in {index_path} "
            "(truncated or modified); restore them from the repository or a release"
        )
    return path


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _cached_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered while its size and modification time stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def trained_stages(path: str | os.PathLike) -> list[str]:
    """Stages a checkpoint or export went through (empty where it does not say)."""
    from gan.models.generator import STAGES

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                stages = json.loads((fh.metadata() or {}).get("stages_trained", "[]"))
        except (SafetensorError, OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise CheckpointError(
                f"{path}: not a readable safetensors file (truncated? {error_line(exc, 160)})"
            ) from None
    else:
        payload = load_checkpoint(path)
        stages = payload.get("stages_trained", [])
        if isinstance(stages, list | tuple):
            stages = list(stages)
            current = stage_in_progress(payload)
            if current and current not in stages:
                # stopped part-way through a stage: its weights are that stage's
                stages.append(current)
    if not isinstance(stages, list) or not all(isinstance(s, str) and s in STAGES for s in stages):
        raise CheckpointError(
            f"{path}: stages_trained {str(stages)[:60]} is not a list of {', '.join(STAGES)}"
        )
    return stages


def stage_in_progress(payload: dict) -> str | None:
    """The stage a training checkpoint was written in the middle of (None at a boundary)."""
    from gan.models.generator import STAGES

    progress = payload.get("progress") or {}
    if not isinstance(progress, dict) or not (progress.get("epoch") or progress.get("step")):
        return None
    try:
        options = json.loads(payload.get("options") or "{}")
        order = list(STAGES) if options.get("stage", "all") == "all" else [options.get("stage")]
        index = int(progress.get("stage_index", len(order)))
    except (TypeError, ValueError, AttributeError):  # a damaged or foreign file: it does not say
        return None
    stage = order[index] if 0 <= index < len(order) else None
    return stage if stage in STAGES else None


def inference_stage(stages: list[str]) -> str:
    """The generator path to run: joint once trained jointly (or if unknown), else the last stage."""
    if not stages or "joint" in stages:
        return "joint"
    return stages[-1]


def load_generator(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Build the generator a checkpoint (``.pt``) or export (``.safetensors``) describes; from a
    checkpoint of a run with ``--ema``, its moving average of G's weights (what gets exported)."""
    from gan.models import GlobalLocalGenerator

    path = Path(path)
    if path.suffix == ".safetensors":
        config, state = load_exported_generator(path)
    else:
        payload = load_checkpoint(path, map_location)
        config = payload["config"]
        if "generator" not in payload:
            raise CheckpointError(f"{path}: checkpoint holds no generator weights")
        ema = payload.get("generator_ema")
        state = payload["generator"] if ema is None or (isinstance(ema, dict) and not ema) else ema
    # names and shapes first, on the meta device (no memory): a config that claims a huge network
    # fails here, against the file's weights, instead of allocating it
    try:
        with torch.device("meta"):
            skeleton = GlobalLocalGenerator(config.generator)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its model config describes no buildable network ({error_line(exc, 160)})"
        ) from None
    check_state(skeleton.state_dict(), state, f"{path.name}: generator")
    generator = GlobalLocalGenerator(config.generator)
    load_state_strict(generator, state, f"{path.name}: generator")
    return generator.to(map_location), config
