"""``train``'s command line is built from TrainOptions' fields (one list), old runs' options still
parse, and the Trainer's optimizers come from gan.training.make_optimizers."""

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
import torch

from tests.training_cli.conftest import TINY, train_here
from training_cli import train as train_module
from training_cli.__main__ import build_parser, train_options_from_args
from training_cli.train import TrainOptions

# training_options.json of runs/label-realism, a run started by the code before the CLI was built
# from the dataclass (commit a023b9d); `train --resume` must still read what it stored
LABEL_REALISM = Path(__file__).parent / "data" / "label_realism_training_options.json"


def train_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a.choices, dict))
    return sub.choices["train"]


def parse(*argv) -> TrainOptions:
    return train_options_from_args(build_parser().parse_args(["train", *map(str, argv)]))


def flag_of(field: dataclasses.Field) -> str:
    """The documented spelling: --NAME with dashes; a bool that defaults to True is --no-NAME."""
    name = field.name.replace("_", "-")
    return f"--no-{name}" if field.default is True else f"--{name}"


def argv_for(options: TrainOptions) -> list[str]:
    """The ``train`` flags that ask for ``options`` (every field that differs from its default)."""
    argv = []
    for field in dataclasses.fields(TrainOptions):
        value = getattr(options, field.name)
        if value == field.default:
            continue
        if isinstance(value, bool) and isinstance(field.default, bool):
            argv.append(flag_of(field))  # a switch
        elif isinstance(value, bool):  # bool | None
            argv += [flag_of(field), "on" if value else "off"]
        else:
            argv += [flag_of(field), str(value)]
    return argv


def test_every_train_option_has_a_flag_with_help():
    """Each TrainOptions field is a `train` flag of the documented spelling that sets that field
    and has help, unless the field is explicitly marked internal (with a reason): a field added
    without a flag fails here."""
    parser = train_parser()
    actions = {s: a for a in parser._actions for s in a.option_strings}
    text = parser.format_help()
    for field in dataclasses.fields(TrainOptions):
        if "cli" in field.metadata and field.metadata["cli"] is None:
            assert field.metadata.get("why"), f"{field.name}: internal, but says not why"
            continue
        flag = flag_of(field)
        assert flag in actions, f"TrainOptions.{field.name} has no flag {flag}"
        assert actions[flag].dest == field.name, flag
        assert actions[flag].help and flag in text, f"{flag} has no help"


def test_no_flags_give_the_dataclass_defaults_which_are_the_papers():
    """`train` with no flags is TrainOptions(), whose defaults are the paper's (§IV-A, Table I):
    Adam lr 2e-4 with betas 0.5 / 0.999, batch 16, 20 epochs of 12,000 samples per stage,
    lambda_FM 10, the BCE loss, all three stages, G from the label map; the additions off."""
    from gan.training import make_optimizers

    parsed = parse()
    assert parsed == TrainOptions()
    paper = {
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "batch_size": 16,
        "samples_per_epoch": 12000,
        "epochs_global": 20,
        "epochs_local": 20,
        "epochs_joint": 20,
        "lambda_fm": 10.0,
        "gan_loss": "bce",
        "stage": "all",
        "mode": "label",
        "lambda_l1": 0.0,
        "ema": 0.0,
        "diffaugment": "",
    }
    assert {k: getattr(parsed, k) for k in paper} == paper
    # the factory's defaults (the tests' and benchmarks') are the CLI's
    signature = inspect.signature(make_optimizers).parameters
    assert signature["lr"].default == parsed.lr
    assert signature["betas"].default == (parsed.beta1, parsed.beta2)


def _another_value(field: dataclasses.Field):
    """A value of the field's type and choices other than its default."""
    choices = getattr(field.metadata.get("cli"), "choices", None)
    if choices:
        return next(c for c in choices if c != field.default)
    hint = field.type.replace(" | None", "")
    if hint == "bool":
        return True if field.default is None else not field.default
    if hint == "str":
        return f"x-{field.name}"
    number = {"int": 3, "float": 0.25}[hint]
    return number if field.default is None else field.default + number


def test_every_field_goes_through_the_command_line_and_epochs_sets_all_three_stages():
    """A TrainOptions with every field off its default comes back from its flags unchanged (so
    each flag's type and name are right); --epochs N overrides each --epochs-STAGE; on / off."""
    changed = TrainOptions(**{f.name: _another_value(f) for f in dataclasses.fields(TrainOptions)})
    assert all(getattr(changed, f.name) != f.default for f in dataclasses.fields(TrainOptions)), (
        "the test must change every field"
    )
    assert parse(*argv_for(changed)) == changed
    both = parse("--epochs", 3, "--epochs-local", 5, "--noise", "off")
    assert (both.epochs_global, both.epochs_local, both.epochs_joint) == (3, 3, 3)
    assert both.noise is False and parse("--noise", "on").noise is True


def test_the_options_of_a_run_started_by_the_previous_code_parse_the_same():
    """runs/label-realism's stored options (written before the CLI was built from the dataclass)
    give a TrainOptions with exactly those values, nothing dropped or renamed; the flags that ask
    for them give the same options; and they pass the configs' validation."""
    stored = json.loads(LABEL_REALISM.read_text())["options"]
    options = TrainOptions.from_dict(stored)
    fields = {f.name: f for f in dataclasses.fields(TrainOptions)}
    assert set(stored) <= set(fields), f"unknown to TrainOptions: {set(stored) - set(fields)}"
    as_dict = dataclasses.asdict(options)
    assert {k: as_dict[k] for k in stored} == stored
    assert all(as_dict[k] == fields[k].default for k in set(fields) - set(stored))
    assert parse(*argv_for(options)) == options
    config = options.model_config()
    assert (config.preset, config.loss.lambda_fm) == ("lite", 2.0)


def test_a_run_started_by_the_previous_code_resumes_with_its_options(phantom_npz, tmp_path):
    """A checkpoint whose stored options are label-realism's (the model, data and batch swapped
    for tiny ones) resumes: the run goes on with those options, e.g. its EMA, DiffAugment,
    lambda_FM and 10 joint epochs, and stops at the new --max-steps."""
    run = tmp_path / "run"
    assert train_here("train", *TINY, "--data", phantom_npz, "--out", run, "--stage", "joint",
                      "--max-steps", 1) == 0  # fmt: skip
    tiny = {
        "data": str(phantom_npz),
        "ids": None,
        "preset": "tiny",
        "size": 64,
        "samples_per_epoch": 8,
        "batch_size": 2,
        "device": "cpu",
        "out": str(run),
    }
    stored = {**json.loads(LABEL_REALISM.read_text())["options"], **tiny}
    checkpoint = run / "checkpoints" / "step-00000001.pt"
    payload = torch.load(checkpoint, weights_only=True)
    payload["options"] = json.dumps(stored)
    torch.save(payload, checkpoint)

    assert train_here("train", "--resume", run, "--max-steps", 3, "--workers", 0,
                      "--no-progress") == 0  # fmt: skip
    resumed = json.loads((run / "training_options.json").read_text())["options"]
    expected = {**stored, "max_steps": 3, "workers": 0, "progress": False}
    assert {k: resumed[k] for k in stored} == expected
    assert (resumed["ema"], resumed["diffaugment"], resumed["epochs_joint"]) == (
        0.999,
        "translation,cutout",
        10,
    )
    assert (run / "checkpoints" / "step-00000003.pt").exists()


def test_the_trainer_builds_its_optimizers_with_the_one_factory(phantom_npz, tmp_path, monkeypatch):
    """Every stage's Adam pair comes from gan.training.make_optimizers, with the run's lr and
    betas, G's parameters of that stage alone (G1 alone in the global stage) in
    trainable_parameters' order and all of D's; the checkpoint's optimizer state says the same."""
    from gan.checkpoint import load_checkpoint
    from training_cli.distributed import DistInfo

    real, calls = train_module.make_optimizers, []

    def spy(generator, discriminator, **kwargs):
        generator = list(generator)
        if isinstance(discriminator, torch.nn.Module):
            discriminator = list(discriminator.parameters())
        calls.append((generator, discriminator, kwargs))
        return real(generator, discriminator, **kwargs)

    monkeypatch.setattr(train_module, "make_optimizers", spy)
    options = TrainOptions(
        data=str(phantom_npz),
        out=str(tmp_path / "r"),
        preset="tiny",
        size=64,
        epochs_global=1,
        epochs_local=1,
        epochs_joint=1,
        samples_per_epoch=2,
        batch_size=2,
        lr=1e-3,
        beta1=0.3,
        beta2=0.9,
        workers=0,
        progress=False,
    )
    trainer = train_module.Trainer(options, DistInfo())
    assert trainer.run() == 0
    assert len(calls) == 3
    for stage, (g_params, d_params, kwargs) in zip(
        ("global", "local", "joint"), calls, strict=True
    ):
        assert kwargs == {"lr": 1e-3, "betas": (0.3, 0.9)}, stage
        expected = train_module.trainable_parameters(trainer.generator, stage)
        assert [id(p) for p in g_params] == [id(p) for p in expected], stage
        assert [id(p) for p in d_params] == [id(p) for p in trainer.discriminator.parameters()]
    # the joint stage's optimizers, as a checkpoint keeps them: one group each, the run's betas
    final = load_checkpoint(tmp_path / "r" / "checkpoints" / "final.pt")
    for name, count in (("opt_g", len(calls[-1][0])), ("opt_d", len(calls[-1][1]))):
        (group,) = final[name]["param_groups"]
        assert tuple(group["betas"]) == (0.3, 0.9) and len(group["params"]) == count, name


@pytest.mark.parametrize("argv", [["--beta1", "x"], ["--preset", "huge"], ["--noise", "yes"]])
def test_a_bad_flag_value_is_refused_by_the_parser(argv, capsys):
    """Flag types and choices come from the dataclass: a wrong one exits 2 with argparse's line."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["train", *argv])
    assert exc.value.code == 2 and argv[0] in capsys.readouterr().err
