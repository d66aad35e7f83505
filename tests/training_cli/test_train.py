"""Training: every stage takes steps, resume is exact (after --max-steps and after SIGINT), loader
workers do not change a run, a non-finite loss stops it cleanly. DDP: test_train_ddp.py."""

import inspect
import json
import math
import random
import signal

import cv2
import numpy as np
import pytest
import torch

from gan.checkpoint import load_checkpoint, load_generator
from tests.training_cli.conftest import (
    TINY,
    assert_same_training_state,
    cli,
    logged_losses,
    metrics,
    train_here,
)
from training_cli import train as train_module
from training_cli.train import lr_factor

LOSS_KEYS = ("d_real_fake", "g_adv", "g_fm", "g_total", "lr", "global_step", "stage")


def test_lr_is_constant_for_half_the_epochs_then_decays_linearly_to_zero():
    assert lr_factor(0, 0, 10, 20) == 1.0
    assert lr_factor(9, 9, 10, 20) == 1.0
    assert lr_factor(10, 0, 10, 20) == 1.0
    assert lr_factor(15, 0, 10, 20) == pytest.approx(0.5)
    assert lr_factor(19, 5, 10, 20) == pytest.approx(0.05)
    assert lr_factor(20, 0, 10, 20) == 0.0


def test_all_three_stages_train_and_leave_a_run_a_person_can_read(phantom_npz, tmp_path):
    run = tmp_path / "run"
    result = cli("train", *TINY, "--data", phantom_npz, "--out", run, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    log = metrics(run)
    assert [r["stage"] for r in log] == ["global"] * 4 + ["local"] * 4 + ["joint"] * 4
    for r in log:
        assert {
            "d_real_fake",
            "g_adv",
            "g_fm",
            "g_total",
            "lr",
            "images_per_s",
            "gpu_mem_gb",
        } <= set(r)
    options = json.loads((run / "training_options.json").read_text())
    assert (
        options["model_config"]["preset"] == "tiny"
        and len(options["data"]["fingerprint_sha256"]) == 64
    )
    assert options["options"]["lr"] == 2e-4 and options["options"]["beta1"] == 0.5
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "global_e001.png",
        "joint_e001.png",
        "local_e001.png",
    ]
    curves = cv2.imread(str(run / "losses.png"))
    assert curves is not None and curves.shape[1] == 1200 and curves.std() > 10  # drawn, not blank
    final = load_checkpoint(run / "checkpoints" / "final.pt")
    assert final["stages_trained"] == ["global", "local", "joint"]
    assert len(list((run / "checkpoints").glob("step-*.pt"))) <= 3  # keep-last default
    generator, config = load_generator(run / "checkpoints" / "final.pt")
    assert config.generator.size == 64


def test_stop_and_resume_gives_the_same_losses_bit_for_bit(phantom_npz, tmp_path):
    args = [*TINY, "--data", phantom_npz, "--epochs", "2"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert cli("train", *args, "--out", whole).returncode == 0
    stopped = cli(
        "train", *args, "--out", parts, "--max-steps", "11"
    )  # mid-epoch, in the local stage
    assert stopped.returncode == 0 and "resume with --resume" in stopped.stdout
    assert not (parts / "checkpoints" / "final.pt").exists()
    resumed = cli("train", "--resume", parts, "--workers", "0", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    a, b = metrics(whole), metrics(parts)
    assert len(a) == len(b) == 24
    for x, y in zip(a, b, strict=True):
        assert {k: x[k] for k in LOSS_KEYS} == {k: y[k] for k in LOSS_KEYS}
    g1, _ = load_generator(whole / "checkpoints" / "final.pt")
    g2, _ = load_generator(parts / "checkpoints" / "final.pt")
    for (name, p1), p2 in zip(g1.state_dict().items(), g2.state_dict().values(), strict=True):
        assert torch.equal(p1, p2), name
    again = cli("train", "--resume", parts)
    assert again.returncode == 1 and "finished" in again.stderr


# global stage, 3 steps an epoch, 2 epochs: the LR decays in the second, so a resume that lost its
# place in the schedule, the data order or the optimizer state shows in the losses
SHORT = [*TINY, "--stage", "global", "--epochs", "2", "--samples-per-epoch", "6"]


@pytest.fixture(scope="module")
def unbroken_run(phantom_npz, tmp_path_factory):
    """The reference: SHORT trained start to finish in one go, with no data-loader workers."""
    run = tmp_path_factory.mktemp("unbroken") / "run"
    assert train_here("train", *SHORT, "--data", phantom_npz, "--out", run) == 0
    return run


def _after_step(n: int, action):
    """A ``train_step`` that calls ``action()`` once step ``n`` (1-based) has been taken."""
    real, calls = train_module.train_step, []

    def step(*args, **kwargs):
        losses = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == n:
            action()
        return losses

    return step


def test_sigint_saves_a_checkpoint_and_the_resumed_run_matches_an_unbroken_one(
    phantom_npz, tmp_path, unbroken_run, monkeypatch, capsys
):
    """Ctrl-C mid-epoch: exit 130 with a checkpoint of the step it stopped at; resuming from it ends
    with the same logged losses and bit-identical G, D and optimizer states as an unbroken run.

    The signal is raised inside the run right after step 2 (``signal.raise_signal`` runs the
    installed handler before it returns), so the stop point is exact, not a race with a timer."""
    parts = tmp_path / "parts"
    monkeypatch.setattr(
        train_module, "train_step", _after_step(2, lambda: signal.raise_signal(signal.SIGINT))
    )
    code = train_here("train", *SHORT, "--data", phantom_npz, "--out", parts)
    out = capsys.readouterr().out
    assert code == 130 and "Interrupted: checkpoint saved" in out
    assert [p.name for p in (parts / "checkpoints").iterdir()] == ["step-00000002.pt"]
    assert [r["global_step"] for r in logged_losses(parts)] == [1, 2]

    monkeypatch.undo()  # the resumed run trains undisturbed
    assert train_here("train", "--resume", parts, "--workers", "0", "--no-progress") == 0
    assert logged_losses(parts) == logged_losses(unbroken_run)
    assert_same_training_state(
        parts / "checkpoints" / "final.pt", unbroken_run / "checkpoints" / "final.pt"
    )


def test_a_resumed_trainer_continues_the_checkpoints_random_streams(unbroken_run, tmp_path):
    """A checkpoint's torch / NumPy / Python RNG states are where a resumed Trainer starts (set after
    its per-rank seeding, which would otherwise reset them). Today's steps draw nothing from these
    global streams, so the loss comparisons cannot see a resume that drops them; this can."""
    from training_cli.distributed import DistInfo

    payload = load_checkpoint(max((unbroken_run / "checkpoints").glob("step-*.pt")))
    options = train_module.TrainOptions.from_dict(json.loads(payload["options"]))
    options.out = str(tmp_path / "resumed")
    train_module.Trainer(options, DistInfo(), resume=payload)
    saved = payload["rng"]
    assert torch.equal(torch.get_rng_state(), saved["torch"])
    keys, pos = np.random.get_state()[1:3]
    assert np.array_equal(keys, saved["numpy_keys"].numpy()) and pos == saved["numpy_pos"]
    assert random.getstate()[1] == tuple(saved["python"][1])


def test_two_loader_workers_give_the_same_run_as_none(phantom_npz, tmp_path, unbroken_run):
    """Each sample is seeded from (seed, epoch, index), not by the worker that makes it (gan.data),
    so --workers 2 trains exactly the run --workers 0 does."""
    run = tmp_path / "workers"
    assert train_here("train", *SHORT, "--data", phantom_npz, "--out", run, "--workers", "2") == 0
    assert json.loads((run / "training_options.json").read_text())["options"]["workers"] == 2
    assert logged_losses(run) == logged_losses(unbroken_run)
    assert_same_training_state(
        run / "checkpoints" / "final.pt", unbroken_run / "checkpoints" / "final.pt"
    )


def test_a_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    phantom_npz, tmp_path, monkeypatch, capsys
):
    """A NaN batch at step 3 makes the losses NaN (and, through the optimizer step, the weights in
    memory): the run ends with exit 1 and a one-line error, writes no checkpoint of that state,
    and the step-2 checkpoint before it is intact and resumes."""
    real = train_module.train_step
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            bound = inspect.signature(real).bind(*args, **kwargs)
            bound.arguments["image"] = torch.full_like(bound.arguments["image"], float("nan"))
            args, kwargs = bound.args, bound.kwargs
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", poisoned)
    run = tmp_path / "nan"
    args = [*SHORT, "--data", phantom_npz, "--out", run, "--checkpoint-every", "1"]
    capsys.readouterr()
    assert train_here("train", *args) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()], err  # one line
    assert err.startswith("error: loss became non-finite at step 2") and "nan" in err
    saved = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert saved == ["step-00000001.pt", "step-00000002.pt"]  # nothing of the NaN step
    payload = load_checkpoint(run / "checkpoints" / saved[-1])
    assert payload["progress"]["global_step"] == 2
    tensors = [
        t
        for part in ("generator", "discriminator")
        for t in payload[part].values()
        if t.is_floating_point()
    ]
    tensors += [
        t
        for opt in ("opt_g", "opt_d")
        for state in payload[opt]["state"].values()
        for t in state.values()
    ]
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors)
    assert [r["global_step"] for r in logged_losses(run)] == [1, 2]  # the NaN step is not logged

    monkeypatch.undo()
    assert (
        train_here("train", "--resume", run, "--max-steps", "3", "--workers", "0", "--no-progress")
        == 0
    )
    last = logged_losses(run)[-1]
    assert last["global_step"] == 3 and all(
        math.isfinite(last[k]) for k in ("d_real_fake", "g_adv", "g_fm", "g_total")
    )


def test_bad_inputs_end_in_one_line_errors(tmp_path):
    for args, words in (
        (["train", "--data", tmp_path / "absent", "--out", tmp_path / "r"], "no such data folder"),
        (["train", "--resume", tmp_path / "nothing"], "no checkpoint to resume"),
        (["train", "--out", tmp_path / "r"], "needs --data"),
    ):
        result = cli(*args)
        assert (
            result.returncode != 0 and words in result.stderr and "Traceback" not in result.stderr
        )


@pytest.mark.data
def test_tiny_trains_each_stage_on_four_shared_slices(medseg_dir, tmp_path):
    split = tmp_path / "four.txt"
    split.write_text("0001\n0003\n0038\n0085\n")
    run = tmp_path / "run"
    result = cli(
        "train",
        *TINY,
        "--data",
        medseg_dir,
        "--ids",
        split,
        "--out",
        run,
        "--epochs",
        "1",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert result.returncode == 0, result.stderr
    options = json.loads((run / "training_options.json").read_text())
    assert options["data"]["ids"] == ["0001", "0003", "0038", "0085"]
    assert {r["stage"] for r in metrics(run)} == {"global", "local", "joint"}


def test_resume_from_a_stage_boundary_checkpoint(phantom_npz, tmp_path):
    """The checkpoint written when a stage ends holds that stage's optimizers; the next stage must
    start fresh from it, as an unbroken run does (a crash right after a boundary resumes from it)."""
    args = [*TINY, "--data", phantom_npz, "--epochs", "1"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert cli("train", *args, "--out", whole).returncode == 0
    assert cli("train", *args, "--out", parts, "--max-steps", "5").returncode == 0
    (parts / "checkpoints" / "step-00000005.pt").unlink()  # as if killed before the next checkpoint
    resumed = cli("train", "--resume", parts, "--workers", "0", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    a, b = metrics(whole), metrics(parts)
    assert [{k: r[k] for k in LOSS_KEYS} for r in a] == [{k: r[k] for k in LOSS_KEYS} for r in b]


def test_an_existing_run_folder_is_not_overwritten_and_odd_sizes_are_refused(phantom_npz, tmp_path):
    run = tmp_path / "run"
    assert (
        cli(
            "train",
            *TINY,
            "--data",
            phantom_npz,
            "--out",
            run,
            "--epochs",
            "1",
            "--stage",
            "global",
        ).returncode
        == 0
    )
    again = cli("train", *TINY, "--data", phantom_npz, "--out", run, "--epochs", "1")
    assert again.returncode == 1 and "already holds a run" in again.stderr
    odd = cli(
        "train",
        *TINY[:2],
        "--size",
        "65",
        *TINY[4:],
        "--data",
        phantom_npz,
        "--out",
        tmp_path / "odd",
    )
    assert odd.returncode == 1 and "multiple of" in odd.stderr and "Traceback" not in odd.stderr
    gpu = cli("train", *TINY, "--data", phantom_npz, "--out", tmp_path / "gpu", "--device", "cuda")
    if not torch.cuda.is_available():
        assert (
            gpu.returncode == 1
            and "CUDA was requested" in gpu.stderr
            and "Traceback" not in gpu.stderr
        )


def test_an_export_remembers_its_stages(phantom_npz, tmp_path):
    from gan.synthesizer import Synthesizer

    run = tmp_path / "g1"
    assert (
        cli(
            "train",
            *TINY,
            "--data",
            phantom_npz,
            "--out",
            run,
            "--epochs",
            "1",
            "--stage",
            "global",
        ).returncode
        == 0
    )
    out = tmp_path / "g1.safetensors"
    assert (
        cli("export", "--checkpoint", run / "checkpoints" / "final.pt", "--out", out).returncode
        == 0
    )
    assert Synthesizer(out, device="cpu").stage == "global"  # G1 alone, not the untrained G2


def test_loss_plot_marks_stages_and_survives_a_cut_line(tmp_path):
    from training_cli.curves import plot_metrics, smooth

    assert np.allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])
    lines = [
        json.dumps({"stage": s, "global_step": i, "d_real_fake": 0.7 - i / 100, "g_adv": 0.7,
                    "g_fm": 1 / (i + 1), "g_total": 7.0})
        for i, s in enumerate(["global"] * 10 + ["joint"] * 10)
    ]  # fmt: skip
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(lines) + '\n{"stage": "joint", "glob')  # a crash mid-line
    out = plot_metrics(path, tmp_path / "losses.png")
    image = cv2.imread(str(out))
    assert image.shape == (720, 1200, 3)
    # the two stage bands are drawn in their own colours
    colours = {tuple(int(c) for c in px) for px in image.reshape(-1, 3)}
    assert (235, 225, 210) in colours and (215, 215, 240) in colours
    # a run trained with an L1 term gets a third row for it
    l1 = [json.dumps({"stage": "joint", "global_step": i, "g_l1": 0.2 - i / 100, "g_total": 7.0})
          for i in range(10)]  # fmt: skip
    path.write_text("\n".join(l1))
    assert cv2.imread(str(plot_metrics(path, tmp_path / "l1.png"))).shape == (1080, 1200, 3)
    path.write_text("")
    with pytest.raises(ValueError, match="no logged steps"):
        plot_metrics(path, tmp_path / "empty.png")


def test_a_checkpoint_stopped_inside_the_joint_stage_runs_the_joint_path(phantom_npz, tmp_path):
    """4 steps per stage: --max-steps 10 stops two steps into joint; export must say joint."""
    from gan.checkpoint import load_checkpoint, trained_stages

    run = tmp_path / "cut"
    result = cli("train", *TINY, "--data", phantom_npz, "--out", run, "--epochs", "1",
                 "--max-steps", "10")  # fmt: skip
    assert result.returncode == 0, result.stderr
    checkpoint = max((run / "checkpoints").glob("step-*.pt"))
    assert load_checkpoint(checkpoint)["stages_trained"] == ["global", "local"]
    assert trained_stages(checkpoint) == ["global", "local", "joint"]
    out = tmp_path / "cut.safetensors"
    assert cli("export", "--checkpoint", checkpoint, "--out", out).returncode == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["inference_stage"] == "joint"
    assert sidecar["training"]["stopped_in_stage"]["stage"] == "joint"
    assert sidecar["training"]["stages"]["joint"]["samples"] == 2 * 2  # two steps of batch 2


def test_each_rank_resumes_its_own_random_streams(phantom_npz, tmp_path):
    """A checkpoint keeps every rank's RNG states; rank r of the same world size gets its own
    back, and a checkpoint from another world size gives rank 0's to all."""
    import dataclasses

    from training_cli.distributed import DistInfo
    from training_cli.train import Trainer, TrainOptions, _rng_state

    options = TrainOptions(
        data=str(phantom_npz),
        out=str(tmp_path / "r"),
        preset="tiny",
        size=64,
        samples_per_epoch=8,
        batch_size=2,
        workers=0,
        progress=False,
    )
    states = []
    for seed in (11, 22):
        torch.manual_seed(seed)
        states.append(_rng_state())
    trainer = Trainer(options, DistInfo())
    payload = {
        "generator": trainer.generator.state_dict(),
        "discriminator": trainer.discriminator.state_dict(),
        "progress": dataclasses.asdict(trainer.progress),
        "rng": states[0],
        "rng_per_rank": states,
    }
    for rank, expected in ((0, 0), (1, 1)):
        Trainer(options, DistInfo(rank=rank, world_size=2), resume=payload)
        assert torch.equal(torch.get_rng_state(), states[expected]["torch"]), rank
    torch.manual_seed(33)
    three = {**payload, "rng_per_rank": [*states, _rng_state()]}  # saved by three processes
    Trainer(options, DistInfo(rank=1, world_size=2), resume=three)
    assert torch.equal(torch.get_rng_state(), states[0]["torch"])
