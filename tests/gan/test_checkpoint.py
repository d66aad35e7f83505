import json

import pytest
import torch

from gan.checkpoint import (
    CheckpointError,
    export_generator,
    load_checkpoint,
    load_exported_generator,
    load_generator,
    save_checkpoint,
    sha256_file,
)
from gan.config import ModelConfig, get_preset
from gan.models import GlobalLocalGenerator, MultiResolutionPatchDiscriminator


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    return (
        cfg,
        GlobalLocalGenerator(cfg.generator),
        MultiResolutionPatchDiscriminator(cfg.discriminator, 4),
    )


def test_round_trip_restores_weights_and_config(tiny, tmp_path):
    cfg, g, d = tiny
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, cfg, generator=g.state_dict(), discriminator=d.state_dict(), step=7)
    payload = load_checkpoint(path)
    assert payload["config"] == cfg and payload["step"] == 7
    g2, cfg2 = load_generator(path)
    assert cfg2 == cfg
    for (k, a), b in zip(g.state_dict().items(), g2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob(".ckpt.pt*"))  # no temporary file left behind


def test_config_json_round_trip_and_unknown_fields():
    for name in ("paper", "lite", "tiny"):
        cfg = get_preset(name)
        assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    data = get_preset("tiny").to_dict()
    data["generator"]["wings"] = 2
    with pytest.raises(ValueError, match="wings"):
        ModelConfig.from_dict(data)


def test_truncated_foreign_and_missing_files_are_refused(tiny, tmp_path):
    cfg, g, _ = tiny
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, cfg, generator=g.state_dict())
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"state_dict": g.state_dict()}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "absent.pt")


def test_newer_format_is_refused(tiny, tmp_path):
    cfg, g, _ = tiny
    path = tmp_path / "new.pt"
    save_checkpoint(path, cfg, generator=g.state_dict())
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)


def test_mismatched_weights_name_what_differs(tiny, tmp_path):
    cfg, g, _ = tiny
    lite_state = GlobalLocalGenerator(get_preset("lite").generator).state_dict()
    path = tmp_path / "mismatch.pt"
    save_checkpoint(path, cfg, generator=lite_state)  # tiny config, lite weights
    with pytest.raises(CheckpointError, match="do not match.*(missing|unexpected|other shape)"):
        load_generator(path)
    state = dict(g.state_dict())
    state.pop(next(iter(state)))
    save_checkpoint(path, cfg, generator=state)
    with pytest.raises(CheckpointError, match="1 missing"):
        load_generator(path)


def test_export_is_safetensors_with_config_and_hash(tiny, tmp_path):
    cfg, g, _ = tiny
    path = tmp_path / "model.safetensors"
    sidecar = export_generator(g, cfg, path, half=True)
    assert sidecar["sha256"] == sha256_file(path)
    on_disk = json.loads(path.with_suffix(".json").read_text())
    assert on_disk["config"] == cfg.to_dict() and on_disk["dtype"] == "float16"
    cfg2, tensors = load_exported_generator(path)
    assert cfg2 == cfg and all(t.dtype == torch.float16 for t in tensors.values())
    g2, _ = load_generator(path)
    for a, b in zip(g.state_dict().values(), g2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-2)  # fp16 storage
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_generator(path)
