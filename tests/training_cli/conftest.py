import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan.data import SliceSet
from tests.conftest import REPO, phantom


@pytest.fixture(scope="session")
def phantom_npz(tmp_path_factory) -> Path:
    """Four phantom slices at 64^2 as a slice cache: training data that needs no shared folder."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for _ in range(4):
        image, label_map = phantom(64)
        images.append(np.clip(image + rng.normal(0, 0.05, image.shape), -1, 1).astype(np.float32))
        labels.append(label_map)
    path = tmp_path_factory.mktemp("data") / "phantoms.npz"
    SliceSet([f"p{i}" for i in range(4)], np.stack(images), np.stack(labels)).save(path)
    return path


TINY = [
    "--preset",
    "tiny",
    "--size",
    "64",
    "--samples-per-epoch",
    "8",
    "--batch-size",
    "2",
    "--workers",
    "0",
    "--log-every",
    "1",
    "--no-progress",
]


def cli(*args, timeout=300, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "training_cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def metrics(run_dir: Path) -> list[dict]:
    return [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
