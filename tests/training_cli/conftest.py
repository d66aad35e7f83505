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


def train_here(*args) -> int:
    """``python -m training_cli ARGS`` in this process (no interpreter and torch start-up per run):
    the CLI's own ``main``, so errors end as its one-line messages and exit codes."""
    from training_cli.__main__ import main

    return main([str(a) for a in args])


LOSS_KEYS = ("d_real_fake", "g_adv", "g_fm", "g_total", "lr", "global_step", "step", "stage")


def logged_losses(run_dir: Path) -> list[dict]:
    """The per-step lines of ``metrics.jsonl`` without the wall-clock fields (time, images/s)."""
    return [{k: r[k] for k in LOSS_KEYS} for r in metrics(run_dir) if "g_total" in r]


def assert_same_training_state(a: Path, b: Path) -> None:
    """Two checkpoints hold bit-identical G, D and optimizer states (Adam moments and steps)."""
    import torch

    from gan.checkpoint import load_checkpoint

    first, second = load_checkpoint(a), load_checkpoint(b)

    def compare(x, y, where: str) -> None:
        if isinstance(x, dict):
            assert x.keys() == y.keys(), where
            for key in x:
                compare(x[key], y[key], f"{where}.{key}")
        elif isinstance(x, list | tuple):
            assert len(x) == len(y), where
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                compare(u, v, f"{where}[{i}]")
        elif isinstance(x, torch.Tensor):
            assert torch.equal(x, y), where
        else:
            assert x == y, where

    for part in ("generator", "discriminator", "opt_g", "opt_d", "progress"):
        compare(first[part], second[part], part)
