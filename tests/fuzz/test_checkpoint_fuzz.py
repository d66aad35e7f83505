"""Checkpoints (.pt) and generator exports (.safetensors), damaged byte-wise and field-wise, through
every loader a user's file reaches; and a pickle payload that would run code, which must not."""

from __future__ import annotations

import io
import json
import os
import pathlib
import pickle
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gan.checkpoint import (
    EXPORT_FORMAT,
    FORMAT,
    CheckpointError,
    export_generator,
    load_checkpoint,
    load_exported_generator,
    load_generator,
    save_checkpoint,
    stage_in_progress,
    trained_stages,
)
from gan.config import get_preset
from gan.models import GlobalLocalGenerator
from tests.fuzz._support import damaged, fuzz, outcome

pytestmark = pytest.mark.timeout(180)

CONFIG = get_preset("tiny")
torch.manual_seed(0)
STATE = GlobalLocalGenerator(CONFIG.generator).state_dict()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("checkpoint-fuzz")


@pytest.fixture(scope="module")
def checkpoint_bytes(folder) -> bytes:
    path = folder / "good.pt"
    save_checkpoint(
        path,
        CONFIG,
        generator=STATE,
        progress={"epoch": 1, "step": 3, "stage_index": 1},
        options=json.dumps({"stage": "all"}),
        stages_trained=["global"],
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def export_bytes(folder) -> bytes:
    path = folder / "good.safetensors"
    generator = GlobalLocalGenerator(CONFIG.generator)
    export_generator(generator, CONFIG, path, half=True, stages_trained=["global", "local"])
    return path.read_bytes()


def _check_loaders(name: str, path: Path) -> None:
    """Every loader of a weights file: a result or one CheckpointError naming the file."""
    loaded = outcome(
        f"{name}: load_generator", lambda: load_generator(path), path, (CheckpointError,)
    )
    if loaded is not None:
        generator, config = loaded
        assert isinstance(generator, GlobalLocalGenerator) and config.generator == CONFIG.generator
    stages = outcome(
        f"{name}: trained_stages", lambda: trained_stages(path), path, (CheckpointError,)
    )
    if stages is not None:
        assert all(s in ("global", "local", "joint") for s in stages), stages
    if path.suffix == ".pt":
        payload = outcome(
            f"{name}: load_checkpoint", lambda: load_checkpoint(path), path, (CheckpointError,)
        )
        if payload is not None:
            assert stage_in_progress(payload) in (None, "global", "local", "joint")
    else:
        outcome(
            f"{name}: load_exported_generator",
            lambda: load_exported_generator(path),
            path,
            (CheckpointError,),
        )


@st.composite
def tail_damaged(draw, data: bytes) -> bytes:
    """Bytes changed in the last KiB (a zip's central directory, where torch finds its records)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        out[len(out) - 1 - draw(st.integers(0, min(1023, len(out) - 1)))] = draw(
            st.integers(0, 255)
        )
    return bytes(out)


@fuzz(100)
@given(data=st.data())
def test_a_damaged_checkpoint_loads_or_fails_in_one_clear_line(folder, checkpoint_bytes, data):
    """A checkpoint mutated (at its start: the pickle; or at its end: the zip directory) or cut
    at any length: each loader returns a usable result or one CheckpointError."""
    mutated = data.draw(damaged(checkpoint_bytes, header=4096) | tail_damaged(checkpoint_bytes))
    path = folder / "damaged.pt"
    path.write_bytes(mutated)
    _check_loaders("checkpoint bytes", path)


@fuzz(80)
@given(data=st.data())
def test_a_damaged_export_loads_or_fails_in_one_clear_line(folder, export_bytes, data):
    """A .safetensors export mutated (its JSON header first) or truncated: a usable generator or
    one CheckpointError from every loader."""
    path = folder / "damaged.safetensors"
    path.write_bytes(data.draw(damaged(export_bytes, header=3072)))
    _check_loaders("export bytes", path)


# ---------------------------------------------------------------------------------- field-wise

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def config_text(draw) -> object:
    """The model config as stored: valid, with one field of any JSON value (huge, negative, of
    another type), not JSON at all, or not text."""
    kind = draw(st.sampled_from(["valid", "field", "field", "garbage", "any"]))
    config = CONFIG.to_dict()
    if kind == "field":
        part = draw(st.sampled_from(["generator", "discriminator", "loss"]))
        key = draw(st.sampled_from(sorted(config[part])))
        config[part][key] = draw(
            st.integers(-5, 10**7) | st.sampled_from([2**31, 4096, 4097, 0]) | json_values
        )
    elif kind == "garbage":
        return draw(st.text(max_size=40))
    elif kind == "any":
        return draw(json_values)
    return json.dumps(config)


@st.composite
def state_dict(draw) -> object:
    """Generator weights: the right ones, one tensor dropped, reshaped, of NaN, of another dtype,
    or something that is no table of tensors at all."""
    kind = draw(st.sampled_from(["valid", "drop", "shape", "nan", "int", "any", "tensor"]))
    state = {k: v.clone() for k, v in STATE.items()}
    key = draw(st.sampled_from(sorted(state)))
    if kind == "drop":
        del state[key]
    elif kind == "shape":
        state[key] = torch.zeros(draw(st.lists(st.integers(0, 3), max_size=4)))
    elif kind == "nan":
        state[key] = state[key].float().fill_(draw(st.sampled_from([float("nan"), float("inf")])))
    elif kind == "int":
        state[key] = state[key].to(torch.int64)
    elif kind == "any":
        return draw(json_values)
    elif kind == "tensor":
        return torch.zeros(3)
    return state


@st.composite
def checkpoint_payload(draw) -> dict:
    payload = {
        "format": draw(st.sampled_from([FORMAT, FORMAT, FORMAT, "other", None])),
        "format_version": draw(st.sampled_from([1, 1, 0, 2, True, "1", None, 1.0])),
        "config": draw(config_text()),
        "generator": draw(state_dict()),
    }
    optional = {
        "generator_ema": state_dict(),
        "progress": json_values
        | st.fixed_dictionaries(
            {"epoch": json_values, "step": json_values, "stage_index": json_values}
        ),
        "options": json_values
        | st.sampled_from(['{"stage": "all"}', '{"stage": "x"}', "{", "[1]"]),
        "stages_trained": json_values | st.sampled_from([["global"], ["joint", "x"], "global"]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            payload[key] = draw(strategy)
    for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=2)):
        payload.pop(key, None)
    return payload


@fuzz(100)
@given(payload=checkpoint_payload())
def test_a_checkpoint_of_any_fields_loads_or_fails_in_one_clear_line(folder, payload):
    """A checkpoint torch can read whose fields hold anything (configs naming huge or negative
    networks, weights of other names, shapes, dtypes or NaN, progress of any type): one
    CheckpointError or a usable result, never a TypeError/KeyError, an allocation of gigabytes or
    a network of millions of layers."""
    path = folder / "fields.pt"
    torch.save(payload, path)
    _check_loaders("checkpoint fields", path)


@fuzz(60)
@given(
    metadata=st.fixed_dictionaries(
        {
            "format": st.sampled_from([EXPORT_FORMAT, EXPORT_FORMAT, "other", ""]),
            "format_version": st.sampled_from(["1", "1", "0", "2", "abc", "", "1.0", "٣"]),
            "config": config_text().map(lambda c: c if isinstance(c, str) else json.dumps(c)),
            "stages_trained": st.sampled_from(['["global"]', "[]", "[", "5", '["x"]', "[1]"]),
        }
    ),
    absent=st.lists(st.sampled_from(["format", "format_version", "config", "stages_trained"])),
    state=state_dict(),
)
def test_an_export_of_any_metadata_loads_or_fails_in_one_clear_line(
    folder, metadata, absent, state
):
    """A valid safetensors file whose metadata (format, version, config, stages) and tensors hold
    anything: one CheckpointError or a usable generator."""
    from safetensors.torch import save_file

    path = folder / "fields.safetensors"
    tensors = state if isinstance(state, dict) else {}
    if not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        tensors = {"x": torch.zeros(2)}  # safetensors holds tensors alone
    metadata = {k: v for k, v in metadata.items() if k not in absent}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    _check_loaders("export fields", path)


# ---------------------------------------------------------------------------------- no code run


class RunsCode:
    """Unpickled without weights_only, this calls ``action(*args)``: here, creating a file."""

    def __init__(self, action, args):
        self.action, self.args = action, args

    def __reduce__(self):
        return self.action, self.args


ACTIONS = {
    "open": lambda marker: (open, (str(marker), "w")),
    "mkdir": lambda marker: (os.mkdir, (str(marker),)),
    "touch": lambda marker: (pathlib.Path.touch, (pathlib.Path(marker),)),
}


@fuzz(24)
@given(
    action=st.sampled_from(sorted(ACTIONS)),
    container=st.sampled_from(["top", "config", "generator", "nested"]),
    writer=st.sampled_from(["torch.save", "pickle"]),
    suffix=st.sampled_from([".pt", ".ckpt", ".safetensors"]),
)
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(
    folder, action, container, writer, suffix
):
    """A weights file holding a pickle whose __reduce__ creates a marker file (anywhere in the
    payload, written by torch.save or as a bare pickle, under any suffix): every loader ends in
    one CheckpointError and the marker never appears (checkpoints load with weights_only=True)."""
    marker = folder / f"marker-{action}-{container}-{writer}{suffix}"
    evil = RunsCode(*ACTIONS[action](marker))
    payload = {"format": FORMAT, "format_version": 1, "config": json.dumps(CONFIG.to_dict())}
    if container == "top":
        payload = evil
    elif container == "nested":
        payload["progress"] = {"epoch": [1, {"deep": evil}]}
    else:
        payload[container] = evil
    path = folder / f"evil{suffix}"
    buffer = io.BytesIO()
    torch.save(payload, buffer) if writer == "torch.save" else pickle.dump(payload, buffer)
    path.write_bytes(buffer.getvalue())
    loaders = [load_generator, trained_stages]
    loaders += [load_checkpoint] if suffix != ".safetensors" else [load_exported_generator]
    for loader in loaders:
        result = outcome(
            f"pickle payload: {loader.__name__}", lambda f=loader: f(path), path, (CheckpointError,)
        )
        assert result is None, f"{loader.__name__} accepted a pickle with code in it"
        assert not marker.exists(), f"{loader.__name__} ran the pickle's code: {marker} was created"
