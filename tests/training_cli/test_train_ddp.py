"""DDP on the CPU: two gloo processes under torchrun train through all three stages (G and D are
re-wrapped in DistributedDataParallel at each stage boundary) with identical replicas, and a
stopped two-process run resumes to bit-identical weights and optimizer states."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO
from tests.training_cli.conftest import (
    TINY,
    assert_same_training_state,
    logged_losses,
    metrics,
)

# 4 samples an epoch over 2 ranks at a global batch of 2: 2 steps a stage, 6 in all
DDP = [*TINY, "--stage", "all", "--epochs", "1", "--samples-per-epoch", "4"]


def torchrun(*args) -> subprocess.CompletedProcess:
    launcher = os.path.join(os.path.dirname(sys.executable), "torchrun")
    return subprocess.run(
        [launcher, "--standalone", "--nproc_per_node", "2", "-m", "training_cli", "train"]
        + [str(a) for a in args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def ddp_whole(phantom_npz, tmp_path_factory):
    """DDP trained start to finish by one two-process launch, and its output."""
    run = tmp_path_factory.mktemp("ddp") / "whole"
    result = torchrun(*DDP, "--data", phantom_npz, "--out", run)
    assert result.returncode == 0, result.stderr[-3000:]
    return run, result


def test_two_process_gloo_ddp_keeps_replicas_identical_across_the_stages(ddp_whole):
    """Every stage takes its steps under DDP, the replicas end identical, and rank 0 alone logs,
    prints and saves."""
    run, result = ddp_whole
    assert [r["stage"] for r in logged_losses(run)] == ["global"] * 2 + ["local"] * 2 + [
        "joint"
    ] * 2
    assert metrics(run)[-1]["ddp_replicas_identical"] is True
    assert json.loads((run / "training_options.json").read_text())["world_size"] == 2
    assert result.stdout.count("Training finished") == 1


def test_a_stopped_two_process_run_resumes_exactly(phantom_npz, tmp_path, ddp_whole):
    """Stopped one step into the local stage (after the global-to-local re-wrap) and resumed by a
    new two-process launch (which re-wraps again for the joint stage), the run logs the same losses
    and ends with the same G, D and optimizer states as the unbroken one, replicas identical."""
    whole, _ = ddp_whole
    parts = tmp_path / "parts"
    stopped = torchrun(*DDP, "--data", phantom_npz, "--out", parts, "--max-steps", "3")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert stopped.stdout.count("Stopped after --max-steps 3") == 1
    assert not (parts / "checkpoints" / "final.pt").exists()
    # each rank's random streams are kept (they were seeded per rank, so they differ)
    from gan.checkpoint import load_checkpoint

    saved = load_checkpoint(parts / "checkpoints" / "step-00000003.pt")["rng_per_rank"]
    assert len(saved) == 2 and not torch.equal(saved[0]["torch"], saved[1]["torch"])
    resumed = torchrun("--resume", parts, "--workers", "0", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert metrics(parts)[-1]["ddp_replicas_identical"] is True
    assert logged_losses(parts) == logged_losses(whole)
    assert_same_training_state(
        parts / "checkpoints" / "final.pt", whole / "checkpoints" / "final.pt"
    )
