"""The prepared GPU check runs end to end on a CPU as a dry run, saying what it skipped."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_gpu_check_dry_run_passes_and_writes_every_step(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "gpu_check.json").read_text())
    steps = ("environment", "bf16", "synthesizer", "latency", "ddp", "train")
    assert all(results[s]["status"] in ("ok", "skipped") for s in steps), results
    assert "dry run" in results["synthesizer"]["reason"]  # says what it skipped and why
    assert results["ddp"]["steps"] == 4 and results["train"]["steps"] >= 1
    assert (out / "lite-texture-label.safetensors").stat().st_size > 0
    assert "all checks passed" in done.stdout


def test_gpu_check_without_a_gpu_says_so_in_one_line(tmp_path):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the real check would run, not the refusal")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "error: no CUDA GPU here (use --dry-run" in done.stdout
    assert "Traceback" not in done.stderr
