"""The checkpoint and export loader where mutation testing (``make mutation``) found it unpinned:
the default-model index and its SHA-256 check, the one-line messages, the format checks of a
checkpoint and of an export, the strict weight match, input-channel growth, and which stages a
file says it went through."""

import argparse
import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import save_file

import gan.paths
from gan import checkpoint as C
from gan.checkpoint import CheckpointError
from gan.config import get_preset
from gan.models import GlobalLocalGenerator


def one_line(func, *args, **kwargs) -> str:
    with pytest.raises(CheckpointError) as err:
        func(*args, **kwargs)
    return str(err.value)


# ------------------------------------------------------------------------------ default models
@pytest.fixture()
def resources(tmp_path, monkeypatch):
    """A resources folder holding a default-model index; gan.paths points at it."""
    root = tmp_path / "resources"
    (root / "models").mkdir(parents=True)
    monkeypatch.setattr(gan.paths, "resources_dir", lambda: root)
    return root / "models"


def write_index(models, defaults):
    (models / "index.json").write_text(json.dumps({"defaults": defaults}))
    return models / "index.json"


def weights(models, name, content):
    (models / name).write_bytes(content)
    return {"weights": name, "sha256": hashlib.sha256(content).hexdigest()}


def test_default_resolves_the_listed_weights_of_each_mode(resources):
    write_index(
        resources,
        {
            "label": weights(resources, "l.safetensors", b"label"),
            "inpaint": weights(resources, "i.safetensors", b"inpaint"),
        },
    )
    assert C.resolve_weights("default") == resources / "l.safetensors"
    assert C.resolve_weights("default", "inpaint") == resources / "i.safetensors"
    assert C.resolve_weights("other.pt") == C.resolve_weights(os.fspath("other.pt"))
    assert str(C.resolve_weights("other.pt")) == "other.pt"


def test_an_entry_without_a_digest_is_taken_as_it_is(resources):
    (resources / "l.safetensors").write_bytes(b"x")
    write_index(resources, {"label": {"weights": "l.safetensors"}})
    assert C.resolve_weights("default") == resources / "l.safetensors"


def test_an_unreadable_index_names_itself(resources):
    index = resources / "index.json"
    assert one_line(C.resolve_weights, "default").startswith(
        f"{index}: default-model index unreadable ("
    )
    index.write_text("{not json")
    assert one_line(C.resolve_weights, "default").startswith(
        f"{index}: default-model index unreadable ("
    )


def test_a_mode_without_a_default_says_how_to_get_one(resources):
    index = write_index(resources, {"label": weights(resources, "l.safetensors", b"label")})
    assert one_line(C.resolve_weights, "default", "inpaint") == (
        f"no default 'inpaint' model is shipped yet ({index}); train one with "
        "`python -m training_cli train --mode inpaint` and pass its checkpoint or export path "
        "instead"
    )
    (resources / "index.json").write_text(json.dumps({}))
    assert one_line(C.resolve_weights, "default").startswith("no default 'label' model")


def test_missing_or_modified_default_weights_are_refused(resources):
    index = write_index(resources, {"label": weights(resources, "l.safetensors", b"label")})
    path = resources / "l.safetensors"
    path.write_bytes(b"LABEL")  # same size, other content
    assert one_line(C.resolve_weights, "default") == (
        f"default 'label' weights {path} do not match the SHA-256 in {index} "
        "(truncated or modified); restore them from the repository or a release"
    )
    path.unlink()
    assert one_line(C.resolve_weights, "default") == (
        f"default 'label' weights listed in {index} are missing: {path}"
    )


def test_the_digest_cache_notices_a_changed_file_and_tells_files_apart(resources):
    entry = weights(resources, "l.safetensors", b"label")
    write_index(
        resources, {"label": entry, "inpaint": weights(resources, "i.safetensors", b"LABEL")}
    )
    stamp = (1_700_000_000, 1_700_000_000)
    for name in ("l.safetensors", "i.safetensors"):  # same size, same time: only the path differs
        os.utime(resources / name, stamp)
    assert C.resolve_weights("default") == resources / "l.safetensors"
    assert C.resolve_weights("default", "inpaint") == resources / "i.safetensors"
    (resources / "l.safetensors").write_bytes(b"label, but modified")
    with pytest.raises(CheckpointError, match="do not match the SHA-256"):
        C.resolve_weights("default")


def test_sha256_file_hashes_every_chunk(tmp_path):
    content = os.urandom((2 << 20) + 17)  # more than two 1 MiB chunks
    (tmp_path / "big").write_bytes(content)
    assert C.sha256_file(tmp_path / "big") == hashlib.sha256(content).hexdigest()


# ------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def cfg():
    return get_preset("tiny")


@pytest.fixture(scope="module")
def generator(cfg):
    torch.manual_seed(0)
    return GlobalLocalGenerator(cfg.generator)


def test_a_checkpoint_holding_arbitrary_objects_is_refused(tmp_path, cfg):
    """weights_only: a pickled object other than tensors and plain data does not load."""
    path = tmp_path / "evil.pt"
    torch.save(
        {
            "format": C.FORMAT,
            "format_version": 1,
            "config": json.dumps(cfg.to_dict()),
            "x": argparse.Namespace(a=1),
        },
        path,
    )
    assert one_line(C.load_checkpoint, path).startswith(
        f"{path}: not a readable checkpoint (truncated or not a PyTorch file: "
    )


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (RuntimeError("  first line\nsecond line"), "first line"),
        (RuntimeError(), "RuntimeError"),
        (EOFError("x" * 300), "x" * 160),
    ],
)
def test_an_unreadable_checkpoint_shows_the_first_line_of_the_error(
    tmp_path, monkeypatch, error, shown
):
    path = tmp_path / "c.pt"
    path.write_bytes(b"anything")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "load", fail)
    assert one_line(C.load_checkpoint, path) == (
        f"{path}: not a readable checkpoint (truncated or not a PyTorch file: {shown})"
    )


def test_foreign_unversioned_and_newer_checkpoints_name_the_file(tmp_path, cfg):
    path = tmp_path / "c.pt"
    torch.save([1, 2], path)
    assert one_line(C.load_checkpoint, path) == (
        f"{path}: not a CT Lesion Studio checkpoint (foreign file)"
    )
    for version in (None, "1"):
        payload = {"format": C.FORMAT, "config": json.dumps(cfg.to_dict())}
        if version is not None:
            payload["format_version"] = version
        torch.save(payload, path)
        assert one_line(C.load_checkpoint, path) == f"{path}: checkpoint has no format version"
    torch.save({"format": C.FORMAT, "format_version": 2, "config": "{}"}, path)
    assert one_line(C.load_checkpoint, path) == (
        f"{path}: checkpoint format 2 is newer than this program reads (1); update CT Lesion Studio"
    )
    torch.save({"format": C.FORMAT, "format_version": 1, "config": "{bad"}, path)
    assert one_line(C.load_checkpoint, path).startswith(f"{path}: bad model config (")


def test_a_checkpoint_without_generator_weights_is_refused(tmp_path, cfg):
    path = tmp_path / "c.pt"
    C.save_checkpoint(path, cfg)
    assert one_line(C.load_generator, path) == f"{path}: checkpoint holds no generator weights"


def test_the_strict_match_reports_each_kind_of_difference_once(tmp_path, cfg, generator):
    state = dict(generator.state_dict())
    missing = next(k for k in state if k.endswith("head.1.bias"))
    shaped = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
    del state[missing]
    state["extra.weight"] = torch.zeros(1)
    state[shaped] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "c.pt"
    C.save_checkpoint(path, cfg, generator=state)
    expected_shape = tuple(generator.state_dict()[shaped].shape)
    assert one_line(C.load_generator, path) == (
        "c.pt: generator weights do not match the network: "
        f"1 missing (e.g. {missing}); 1 unexpected (e.g. extra.weight); "
        f"1 of other shape (e.g. {shaped} (1, 1, 1, 1) vs {expected_shape})"
    )


def test_a_half_precision_export_loads_into_the_network(tmp_path, cfg, generator):
    path = tmp_path / "g.safetensors"
    C.export_generator(generator, cfg, path, half=True, stages_trained=["global", "local"])
    loaded, config = C.load_generator(path)
    assert config == cfg
    for key, value in loaded.state_dict().items():
        assert value.dtype == generator.state_dict()[key].dtype
        torch.testing.assert_close(value, generator.state_dict()[key].half().float())
    assert C.trained_stages(path) == ["global", "local"]


def _export(path, generator, cfg, **metadata):
    tensors = {k: v.contiguous() for k, v in generator.state_dict().items()}
    meta = {"format": C.EXPORT_FORMAT, "config": json.dumps(cfg.to_dict()), **metadata}
    save_file(tensors, str(path), metadata={k: v for k, v in meta.items() if v is not None})
    return path


def test_export_format_checks_name_the_file(tmp_path, cfg, generator):
    missing = tmp_path / "none.safetensors"
    assert one_line(C.load_exported_generator, missing) == f"{missing}: no such weights file"
    foreign = _export(tmp_path / "f.safetensors", generator, cfg, format="other")
    assert one_line(C.load_exported_generator, foreign) == (
        f"{foreign}: not a CT Lesion Studio generator export (foreign file)"
    )
    newer = _export(tmp_path / "n.safetensors", generator, cfg, format_version="2")
    assert one_line(C.load_exported_generator, newer) == (
        f"{newer}: export format is newer than this program reads; update it"
    )
    no_config = _export(tmp_path / "c.safetensors", generator, cfg, config=None)
    assert one_line(C.load_exported_generator, no_config).startswith(
        f"{no_config}: bad model config (invalid model config: "
    )


def test_an_export_without_version_or_stages_loads_as_version_0_with_no_stages(
    tmp_path, cfg, generator
):
    path = _export(tmp_path / "old.safetensors", generator, cfg)
    config, tensors = C.load_exported_generator(path)
    assert config == cfg and set(tensors) == set(generator.state_dict())
    assert C.trained_stages(path) == []


# ------------------------------------------------------------------------------ input channels
def test_input_channels_grow_with_zeros_in_the_weights_dtype():
    value = torch.ones(8, 4, 3, 3, dtype=torch.float16)
    out = C.expand_input_channels({"w": value}, {"w": torch.empty(8, 6, 3, 3)})["w"]
    assert out.shape == (8, 6, 3, 3) and out.dtype == torch.float16
    assert out[:, :4].eq(1).all() and out[:, 4:].eq(0).all()


@pytest.mark.parametrize(
    "target",
    [(16, 6, 3, 3), (8, 6, 5, 5), (8, 2, 3, 3), (8, 6)],
    ids=["other-outputs", "other-kernel", "fewer-inputs", "not-a-conv"],
)
def test_only_conv_weights_short_of_input_channels_grow(target):
    value = torch.ones(8, 4, 3, 3)
    out = C.expand_input_channels({"w": value}, {"w": torch.empty(target)})["w"]
    assert out is value


# ------------------------------------------------------------------------------ stages
def test_the_inference_stage_is_joint_once_trained_jointly_else_the_last_stage():
    assert C.inference_stage([]) == "joint"
    assert C.inference_stage(["joint", "local"]) == "joint"
    assert C.inference_stage(["global"]) == "global"
    assert C.inference_stage(["global", "local"]) == "local"
    assert C.inference_stage(["local"]) == "local"


def _payload(progress=None, stage="all", options=None, **extra):
    payload = dict(extra)
    if progress is not None:
        payload["progress"] = progress
    payload["options"] = json.dumps({"stage": stage}) if options is None else options
    return payload


@pytest.mark.parametrize(
    ("payload", "stage"),
    [
        (_payload(), None),  # no progress: at a boundary
        (_payload({"epoch": 0, "step": 0, "stage_index": 1}), None),  # nothing done yet
        (_payload({"epoch": 1, "stage_index": 0}), "global"),
        (_payload({"step": 3, "stage_index": 1}), "local"),
        (_payload({"epoch": 2, "stage_index": 2}), "joint"),
        (_payload({"epoch": 2, "stage_index": 3}), None),  # every stage done
        (_payload({"epoch": 2, "stage_index": -1}), None),
        (_payload({"epoch": 2}), None),  # no stage index: past the last stage
        (_payload({"epoch": 2, "stage_index": 0}, stage="local"), "local"),  # one stage trained
        (_payload({"epoch": 2, "stage_index": 1}, stage="local"), None),
        (_payload({"epoch": 2, "stage_index": 1}, options=""), "local"),  # options unsaid: all
        (_payload({"epoch": 2, "stage_index": 1}, options="{bad"), None),
        (_payload({"epoch": 2, "stage_index": 1}, options=5), None),
    ],
)
def test_the_stage_in_progress_comes_from_progress_and_options(payload, stage):
    assert C.stage_in_progress(payload) == stage


@pytest.mark.parametrize(
    ("done", "progress", "expected"),
    [
        (["global"], None, ["global"]),
        (["global"], {"epoch": 1, "stage_index": 1}, ["global", "local"]),
        (["global", "local"], {"epoch": 1, "stage_index": 1}, ["global", "local"]),
        (None, {"epoch": 1, "stage_index": 0}, ["global"]),
    ],
)
def test_a_checkpoint_lists_its_finished_stages_and_the_one_it_stopped_in(
    tmp_path, cfg, done, progress, expected
):
    parts = {} if done is None else {"stages_trained": done}
    if progress is not None:
        parts["progress"] = progress
    path = tmp_path / "c.pt"
    C.save_checkpoint(path, cfg, options=json.dumps({"stage": "all"}), **parts)
    assert C.trained_stages(path) == expected


def test_tensors_and_the_generator_come_back_on_the_requested_device(tmp_path, cfg, generator):
    """map_location: a checkpoint written on a GPU machine loads on this one ("meta" stands in for
    another device here, so the test runs without a GPU)."""
    path = tmp_path / "c.pt"
    C.save_checkpoint(path, cfg, generator=generator.state_dict())
    payload = C.load_checkpoint(path, map_location="meta")
    assert {t.device.type for t in payload["generator"].values()} == {"meta"}
    export = tmp_path / "g.safetensors"
    C.export_generator(generator, cfg, export, half=False)
    loaded, _ = C.load_generator(export, map_location="meta")
    assert {p.device.type for p in loaded.parameters()} == {"meta"}


def test_missing_noise_scales_come_as_zeros_and_nothing_else_is_made_up():
    state = {"conv.weight": torch.ones(2, 2, 3, 3), "kept.scale": torch.ones(1, 2, 1, 1)}
    target = {
        "conv.weight": torch.empty(2, 2, 3, 3),
        "kept.scale": torch.empty(1, 2, 1, 1),
        "new.scale": torch.empty(1, 3, 1, 1),
        "other.bias": torch.empty(3),
    }
    out = C.expand_input_channels(state, target)
    assert set(out) == {"conv.weight", "kept.scale", "new.scale"}
    assert out["kept.scale"] is state["kept.scale"]
    assert out["new.scale"].shape == (1, 3, 1, 1) and out["new.scale"].eq(0).all()


def test_a_checkpoint_with_a_moving_average_loads_the_average(tmp_path, cfg, generator):
    average = {k: v + 1 if v.is_floating_point() else v for k, v in generator.state_dict().items()}
    path = tmp_path / "ema.pt"
    C.save_checkpoint(path, cfg, generator=generator.state_dict(), generator_ema=average)
    loaded, _ = C.load_generator(path)
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, average[key])
