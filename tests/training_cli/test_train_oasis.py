"""Training with ``--discriminator oasis``: the tiny preset trains all three stages with OASIS's
per-pixel D (and DiffAugment), its losses are finite, the checkpoint holds that D, and a stopped
run resumes bit for bit (the resumed Trainer rebuilds the OASIS D from the stored options)."""

import math

from tests.training_cli.conftest import (
    TINY,
    assert_same_training_state,
    logged_losses,
    metrics,
    train_here,
)

OASIS = [
    *TINY,
    "--discriminator",
    "oasis",
    "--stage",
    "all",
    "--epochs",
    "1",
    "--samples-per-epoch",
    "4",
    "--diffaugment",
    "translation,cutout",
]


def test_an_oasis_run_trains_finitely_and_resumes_exactly(phantom_npz, tmp_path):
    from gan.checkpoint import load_checkpoint

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_here("train", *OASIS, "--data", phantom_npz, "--out", whole) == 0
    assert (
        train_here("train", *OASIS, "--data", phantom_npz, "--out", parts, "--max-steps", "3") == 0
    )
    assert train_here("train", "--resume", parts, "--workers", "0", "--no-progress") == 0
    steps = logged_losses(whole)
    assert [r["stage"] for r in steps] == ["global"] * 2 + ["local"] * 2 + ["joint"] * 2
    assert all(math.isfinite(r[k]) for r in steps for k in ("d_real_fake", "g_adv", "g_fm"))
    # OASIS's losses, not the patch D's: an untrained 5-class segmenter starts near ln 5 for G
    assert abs(steps[0]["g_adv"] - math.log(5)) < 0.5
    assert logged_losses(parts) == steps
    final = whole / "checkpoints" / "final.pt"
    assert_same_training_state(parts / "checkpoints" / "final.pt", final)
    payload = load_checkpoint(final)
    assert payload["config"].discriminator.kind == "oasis"
    assert payload["discriminator"]["head.parametrizations.weight.original"].shape[0] == 5
    assert all("images_per_s" in r for r in metrics(whole) if "g_total" in r)


def test_the_discriminator_option_overrides_the_preset(phantom_npz, tmp_path):
    """Without the option a run keeps its preset's patch D; --discriminator patch is that too."""
    from gan.checkpoint import load_checkpoint

    def kind(name, *options):
        out = tmp_path / name
        code = train_here(
            "train", *TINY, "--data", phantom_npz, "--out", out, "--stage", "global",
            "--epochs", "1", "--samples-per-epoch", "2", *options,
        )  # fmt: skip
        assert code == 0
        payload = load_checkpoint(out / "checkpoints" / "final.pt")
        return payload["config"].discriminator.kind, set(payload["discriminator"])

    default, default_keys = kind("default")
    patch, patch_keys = kind("patch", "--discriminator", "patch")
    assert default == patch == "patch" and default_keys == patch_keys
    assert any(k.startswith("discriminators.") for k in patch_keys)
