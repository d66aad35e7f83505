"""Batch export scaled out with torchrun: two gloo processes on the CPU take disjoint shards of the
inputs, and with one thread per process in both runs (OMP_NUM_THREADS=1, as torchrun sets) the
merged export is byte-identical to a one-process export with the same seed (manifest, labels,
images, regions); a rank killed mid-sample loses no finished sample, and a rerun completes it."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tiny_weights, write_phantom_folder

TORCHRUN = Path(sys.executable).parent / "torchrun"
pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not in the environment")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def one_process(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training_cli", "batch", *map(str, args)],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def two_processes(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "training_cli", "batch"]
        + [str(a) for a in args],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def export_files(root: Path) -> dict:
    """Every file of an export but the shard record, by path: its bytes."""
    return {
        p.relative_to(root): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "shards.json"
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    return {
        "data": write_phantom_folder(root / "data", n=4),
        "weights": make_tiny_weights(root / "inpaint.safetensors", mode="inpaint"),
    }


@pytest.mark.parametrize("synthesis", ["inpaint", "procedural"])
def test_two_processes_shard_the_inputs_and_write_the_one_process_export(
    setup, tmp_path, synthesis
):
    args = ["--synthesis", synthesis, "--data", setup["data"], "--per-input", "2", "--seed", "5"]
    args += ["--no-progress"]
    if synthesis == "inpaint":
        args += ["--inpaint-checkpoint", setup["weights"]]
    single = one_process(*args, "--out", tmp_path / "one")
    assert single.returncode == 0, single.stderr[-3000:]
    double = two_processes(*args, "--out", tmp_path / "two", "--layout", "flat")
    assert double.returncode == 0, double.stderr[-3000:]
    assert double.stdout.count("Wrote 8 samples (0 already there) by 2 processes") == 1
    one, two = export_files(tmp_path / "one"), export_files(tmp_path / "two")
    assert len(one) == 8 * 3 + 2  # image, labels and region per sample; manifest, dataset.json
    assert one.keys() == two.keys()
    for path in one:
        assert one[path] == two[path], path
    shards = json.loads((tmp_path / "two" / "shards.json").read_text())
    ranks = shards["written_by_rank"]
    assert shards["world_size"] == 2 and set(ranks) == {"rank0-of-2", "rank1-of-2"}
    assert set(ranks["rank0-of-2"]).isdisjoint(ranks["rank1-of-2"])
    # round robin over the inputs: rank 0 the even ones, rank 1 the odd ones
    assert sorted(ranks["rank0-of-2"]) == [f"{i:04d}_v{v:02d}" for i in (0, 2) for v in (0, 1)]
    assert sorted(ranks["rank1-of-2"]) == [f"{i:04d}_v{v:02d}" for i in (1, 3) for v in (0, 1)]
    assert not (tmp_path / "two" / "parts").exists()


KILLED_RANK = """
import os, sys
from pathlib import Path
import gan.batch as batch
from gan.synthesizer import Synthesizer

data, weights, out = map(Path, sys.argv[1:4])
labels_written = {"n": 0}
write_png = batch.write_png

def dying_write_png(path, *args, **kwargs):
    # the second sample's region and image are on disk, its label map not yet: killed here
    labels_written["n"] += 1
    if labels_written["n"] == 2:
        os._exit(9)
    return write_png(path, *args, **kwargs)

batch.write_png = dying_write_png
batch.run_batch(
    batch.folder_inputs(data, shard=(1, 2)), Synthesizer(weights), out, per_input=2, seed=5,
    shard=(1, 2),
)
"""


def test_a_killed_rank_loses_no_finished_sample_and_a_rerun_completes(setup, tmp_path):
    args = ["--inpaint-checkpoint", setup["weights"], "--data", setup["data"]]
    args += ["--per-input", "2", "--seed", "5", "--no-progress"]
    single = one_process(*args, "--out", tmp_path / "one")
    assert single.returncode == 0, single.stderr[-3000:]
    out = tmp_path / "two"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RANK, str(setup["data"]), str(setup["weights"]), str(out)],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == 9, killed.stderr[-3000:]
    with open(out / "parts" / "manifest-rank1-of-2.csv", newline="") as fh:
        finished = [row["name"] for row in csv.DictReader(fh)]
    assert finished == ["0001_v00"]  # the one sample rank 1 finished before it was killed
    assert (out / "images" / "0001_v01.png").exists()  # written, but its sample is not finished
    assert not (out / "labels" / "0001_v01.png").exists()
    stamp = (out / "images" / "0001_v00.png").stat().st_mtime_ns
    rerun = two_processes(*args, "--out", out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Wrote 7 samples (1 already there) by 2 processes" in rerun.stdout
    assert (out / "images" / "0001_v00.png").stat().st_mtime_ns == stamp  # not made again
    one, two = export_files(tmp_path / "one"), export_files(out)
    assert one.keys() == two.keys()
    for path in one:
        assert one[path] == two[path], path
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary file left
