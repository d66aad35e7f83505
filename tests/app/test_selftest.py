"""``python -m app --self-test`` passes on a working install and names the step that fails."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, make_tiny_weights


@pytest.fixture
def resources(tmp_path, monkeypatch):
    """A copy of resources/ whose default models are tiny generators (fast on any CPU)."""
    root = tmp_path / "resources"
    shutil.copytree(REPO / "resources" / "sample", root / "sample")
    (root / "models").mkdir()
    make_tiny_weights(root / "models" / "tiny.safetensors")
    make_tiny_weights(root / "models" / "tiny-inpaint.safetensors", mode="inpaint")
    defaults = {"label": "tiny.safetensors", "inpaint": "tiny-inpaint.safetensors"}
    index = {"format_version": 1, "defaults": {m: {"weights": w} for m, w in defaults.items()}}
    (root / "models" / "index.json").write_text(json.dumps(index))
    monkeypatch.setattr("gan.paths.resources_dir", lambda: root)
    return root


def test_self_test_passes_and_reports_each_step(qapp, resources):
    from app.selftest import run_self_test

    lines: list[str] = []
    assert run_self_test(timeout_s=120, out=lines.append) == 0
    text = "\n".join(lines)
    steps = ("model:", "inpainting model:", "opened medseg-0085.png", "painted", "synthesized")
    for step in (*steps, "inpainted", "exported"):
        assert step in text
    assert lines[-1] == "self-test passed"


def test_self_test_names_the_failing_step(qapp, resources, capsys):
    from app.selftest import run_self_test

    (resources / "models" / "tiny.safetensors").write_bytes(b"truncated")
    assert run_self_test(timeout_s=60, out=lambda _: None) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("self-test failed at load the default model:")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_lesion_disc_stays_inside_the_lung():
    from app.selftest import SelfTestError, lesion_disc

    labels = np.zeros((64, 64), np.uint8)
    labels[10:50, 8:30] = 1
    disc = lesion_disc(labels, radius=6)
    assert disc.sum() > 50 and (labels[disc] == 1).all()
    with pytest.raises(SelfTestError):
        lesion_disc(np.zeros((8, 8), np.uint8))


def test_version_matches_pyproject():
    import tomllib

    from app import __version__

    project = tomllib.loads(Path(REPO / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]
