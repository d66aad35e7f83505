"""Training with the realism recipe's options: resize-conv + noise inputs (preset tiny-texture),
DiffAugment and an EMA of G. All three stages run, a stopped run resumes bit for bit (noise and
augmentation are seeded per step, the EMA is in the checkpoint), and the export is the EMA."""

import torch

from tests.training_cli.conftest import (
    TINY,
    assert_same_training_state,
    logged_losses,
    train_here,
)

RECIPE = [
    *TINY,
    "--preset",
    "tiny-texture",
    "--stage",
    "all",
    "--epochs",
    "1",
    "--samples-per-epoch",
    "4",
    "--diffaugment",
    "translation,cutout,color",
    "--ema",
    "0.9",
]


def test_the_recipe_trains_resumes_exactly_and_exports_its_ema(phantom_npz, tmp_path):
    from gan.checkpoint import load_checkpoint, load_generator

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_here("train", *RECIPE, "--data", phantom_npz, "--out", whole) == 0
    assert (
        train_here("train", *RECIPE, "--data", phantom_npz, "--out", parts, "--max-steps", "3") == 0
    )
    assert train_here("train", "--resume", parts, "--workers", "0", "--no-progress") == 0
    assert logged_losses(parts) == logged_losses(whole)
    final = whole / "checkpoints" / "final.pt"
    assert_same_training_state(parts / "checkpoints" / "final.pt", final)
    payload = load_checkpoint(final)
    ema, raw = payload["generator_ema"], payload["generator"]
    assert payload["config"].generator.noise and payload["config"].generator.upsample == "resize"
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)  # an average, not a copy
    for key in raw:
        torch.testing.assert_close(
            load_checkpoint(parts / "checkpoints" / "final.pt")["generator_ema"][key], ema[key]
        )
    generator, _ = load_generator(final)  # what export and evaluate read
    for key, value in generator.state_dict().items():
        assert torch.equal(value, ema[key]), key
    assert any(k.endswith(".scale") and raw[k].abs().sum() > 0 for k in raw)  # noise in use


def test_the_ema_is_the_moving_average_of_gs_weights(phantom_npz, tmp_path):
    """ema <- decay * ema + (1 - decay) * G after every step, the decay warming up as
    min(0.9, (1 + n) / (10 + n)) at global step n (here n = 1 for the second step)."""
    from gan.checkpoint import load_checkpoint

    args = [*RECIPE, "--data", phantom_npz, "--checkpoint-every", "1", "--keep-last", "5"]
    assert train_here("train", *args, "--out", tmp_path / "r", "--max-steps", "2") == 0
    one = load_checkpoint(tmp_path / "r" / "checkpoints" / "step-00000001.pt")
    two = load_checkpoint(tmp_path / "r" / "checkpoints" / "step-00000002.pt")
    for key, ema in two["generator_ema"].items():
        decay = min(0.9, (1 + 1) / (10 + 1))
        expected = torch.lerp(one["generator_ema"][key], two["generator"][key], 1 - decay)
        torch.testing.assert_close(ema, expected, rtol=1e-6, atol=1e-7)


def test_bad_recipe_options_end_in_one_line(phantom_npz, tmp_path, capsys):
    for option, value, says in (
        ("--diffaugment", "flip", "unknown DiffAugment part 'flip'"),
        ("--ema", "1.5", "--ema must be in [0, 1)"),
    ):
        code = train_here(
            "train", *TINY, "--data", phantom_npz, "--out", tmp_path / option, option, value
        )
        err = capsys.readouterr().err
        assert code != 0 and says in err and "Traceback" not in err


def test_upsample_and_noise_override_the_presets_generator(phantom_npz, tmp_path):
    """--upsample resize --noise on turn the tiny preset into tiny-texture's generator (what the
    ablation's single-change arms rely on), and --noise off takes tiny-texture's noise away."""
    from gan.checkpoint import load_generator

    def trained(name, *options):
        out = tmp_path / name
        code = train_here(
            "train", *TINY, "--data", phantom_npz, "--out", out, "--stage", "global",
            "--epochs", "1", "--samples-per-epoch", "2", *options,
        )  # fmt: skip
        assert code == 0
        return load_generator(out / "checkpoints" / "final.pt")[1].generator

    plain = trained("plain")
    assert (plain.upsample, plain.noise) == ("transposed", False)
    both = trained("both", "--upsample", "resize", "--noise", "on")
    assert (both.upsample, both.noise) == ("resize", True)
    quiet = trained("quiet", "--preset", "tiny-texture", "--noise", "off")
    assert (quiet.upsample, quiet.noise) == ("resize", False)


def test_unknown_upsampling_or_discriminator_in_saved_options_is_a_training_error():
    """Options read back from a run folder bypass the CLI's choices; the configs' own validation
    still refuses an unknown upsampling or discriminator kind, as a TrainingError."""
    import pytest

    from training_cli.train import TrainingError, TrainOptions

    for options in (TrainOptions(upsample="bicubic"), TrainOptions(discriminator="stylegan")):
        with pytest.raises(TrainingError, match="bicubic|stylegan"):
            options.model_config()
