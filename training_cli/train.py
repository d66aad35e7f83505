"""``train``: the global-local cGAN in the paper's three stages, on CPU, one GPU or several (DDP).

Run layout (``--out RUN_DIR``)::

    training_options.json   full config, data fingerprint, git commit, world size, hardware
    metrics.jsonl           one line per logged step: losses per term, LR, images/s, GPU memory
    losses.png              the loss curves, one panel per term, stages marked (after every epoch)
    samples/STAGE_eNNN.png  label | real | synthetic for a few fixed slices, after every epoch
    checkpoints/step-NNNNNNNN.pt   periodic / interrupt checkpoints (the last K kept)
    checkpoints/final.pt    after the last stage

Everything a resumed run needs is in each checkpoint: G, D, both optimizers, stage / epoch / step
(which fix the LR schedule and the data order), and the RNG states.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import torch

from gan.checkpoint import CheckpointError, load_checkpoint, load_generator, save_checkpoint
from gan.config import (
    DISCRIMINATOR_KINDS,
    GENERATOR_MODES,
    PRESETS,
    LossConfig,
    ModelConfig,
    get_preset,
)
from gan.ctio import unit_to_uint8, write_png
from gan.data import AugmentedSlices, sample_seed
from gan.fsutil import atomic_write_text
from gan.labels import LABEL_MAP_CONVENTION, colorize, one_hot_torch
from gan.models import GlobalLocalGenerator, build_discriminator
from gan.models.generator import STAGES
from gan.resample import resize_image
from gan.synthesizer import autocast_context, cpu_has_native_bf16, resolve_device
from gan.training import PAPER_BETAS, PAPER_LR, StepLosses, make_optimizers, train_step
from training_cli.data_source import load_slices
from training_cli.distributed import (
    DistInfo,
    all_ranks_agree,
    any_rank_flag,
    barrier,
    cuda_index,
    gather_objects,
    setup_distributed,
    teardown_distributed,
)

EXIT_INTERRUPTED = 130


class TrainingError(RuntimeError):
    """A training run cannot start or continue; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class CliFlag:
    """How a TrainOptions field appears on the ``train`` command line.

    The flag is ``--`` + the field's name with ``-`` for ``_``; its type and default are the
    field's. A ``bool`` field that defaults to False is a switch (``--compile``), one that defaults
    to True is turned off by ``--no-NAME`` (``--no-bf16``; ``help`` says what that flag does), and
    a ``bool | None`` one takes ``on`` or ``off`` (None: not given). ``%(default)s`` in ``help``
    shows the default.
    """

    help: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None


def _option(default, help: str, *, choices=None, metavar: str | None = None):
    """A TrainOptions field that ``train`` sets with a flag (see :class:`CliFlag`)."""
    return dataclasses.field(default=default, metadata={"cli": CliFlag(help, choices, metavar)})


@dataclasses.dataclass
class TrainOptions:
    """Everything that defines a run. Defaults follow the paper (§IV-A, Table I).

    This is the one list of ``train``'s options: each field's metadata holds its flag's help text
    (and choices), from which :func:`add_train_arguments` builds the parser, in this order. A
    run's ``training_options.json`` and checkpoints store these fields by name
    (:meth:`from_dict`), so renaming one breaks resuming old runs.
    """

    data: str = _option("", "data folder (medseg-ct100 layout) or a .npz cache from `prepare`")
    ids: str | None = _option(None, "split file: the slice ids to train on, one per line")
    out: str = _option("runs/lite", "run folder (default %(default)s)")
    preset: str = _option(
        "lite",
        "network: paper (46 M G params), lite (half widths, 11.5 M), lite-texture (lite "
        "with resize-conv upsampling and noise inputs, for texture), tiny (tests)",
        choices=tuple(PRESETS),
    )
    mode: str = _option(
        "label",
        "label: G sees the label map only (the paper); inpaint: label map + the real image "
        "with an edit-shaped region blanked + its mask, and regenerates that region only",
        choices=GENERATOR_MODES,
    )
    stage: str = _option(
        "all",
        "all = the paper's schedule: G1 alone at 256^2, then G2 alone at 512^2, then jointly",
        choices=(*STAGES, "all"),
    )
    epochs_global: int = _option(20, "epochs of the global stage (default %(default)s)")
    epochs_local: int = _option(20, "epochs of the local stage (default %(default)s)")
    epochs_joint: int = _option(20, "epochs of the joint stage (default %(default)s)")
    samples_per_epoch: int = _option(12000, "augmented samples per epoch (paper Table I: 12,000)")
    batch_size: int = _option(16, "global batch, split over processes (paper: 16)")
    lr: float = _option(
        PAPER_LR,
        "Adam learning rate (paper: 2e-4; constant for the first half of each stage's epochs, "
        "then linear decay to zero)",
    )
    beta1: float = _option(PAPER_BETAS[0], "Adam beta1 (paper: 0.5)")
    beta2: float = _option(PAPER_BETAS[1], "Adam beta2 (paper: 0.999)")
    lambda_fm: float = _option(10.0, "feature-matching weight (paper: 10)")
    lambda_l1: float = _option(
        0.0,
        "weight of an L1 term (not in the paper) over the pixels the composite takes from G: "
        "inside the mask for --mode inpaint, the lung for --mode label (default 0: off)",
    )
    diffaugment: str = _option(
        "",
        "DiffAugment on everything D sees, real and synthetic alike (not in the paper): "
        "comma-separated translation, cutout, color (default: off)",
        metavar="PARTS",
    )
    ema: float = _option(
        0.0,
        "keep an exponential moving average of G's weights with this decay (e.g. 0.999) and "
        "export it instead of G (not in the paper; default 0: off)",
    )
    gan_loss: str = _option("bce", "cGAN loss (paper: bce, eq. 2)", choices=("bce", "hinge"))
    size: int | None = _option(
        None, "model resolution (default: the preset's, 512 for paper and lite)"
    )
    upsample: str | None = _option(
        None,
        "override the preset's upsampling: transposed convs (the paper's) or "
        "nearest-neighbour resize + conv (no checkerboard)",
        choices=("transposed", "resize"),
    )
    noise: bool | None = _option(
        None,
        "override the preset's per-pixel noise inputs (a source of texture; off in the paper)",
    )
    discriminator: str | None = _option(
        None,
        "override the preset's discriminator: the multi-resolution 70x70 PatchGAN (the "
        "paper's) or OASIS's per-pixel segmenter of the image (fake or one of the 4 classes)",
        choices=DISCRIMINATOR_KINDS,
    )
    seed: int = _option(
        0, "seed of the initial weights, the data order and the augmentation (default %(default)s)"
    )
    workers: int = _option(2, "data-loader processes per GPU")
    device: str = _option("auto", "auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    bf16: bool = _option(True, "fp32 on CUDA instead of bf16 autocast")
    cpu_bf16: bool = _option(
        False, "bf16 autocast on the CPU too (faster on CPUs with native bf16)"
    )
    tf32: bool = _option(True, "disable TF32 matmuls on CUDA")
    channels_last: bool = _option(False, "channels-last memory format")
    compile: bool = _option(False, "torch.compile G and D")
    checkpoint_every: int = _option(500, "steps between checkpoints")
    keep_last: int = _option(3, "periodic checkpoints to keep")
    log_every: int = _option(10, "steps between metrics-log lines")
    max_steps: int | None = _option(None, "stop (with a checkpoint) after this many steps in all")
    init_generator: str | None = _option(
        None,
        "warm-start G from a checkpoint, an exported .safetensors or 'default' (the shipped "
        "label model); a label generator can start an inpaint one (new input channels start at 0)",
    )
    cache_dir: str | None = _option(
        None, "where data-folder caches go (default ~/.cache/ct-lesion-studio)"
    )
    progress: bool = _option(True, "no progress bar")

    def stages(self) -> list[str]:
        if self.stage == "all":
            return list(STAGES)
        if self.stage not in STAGES:
            raise TrainingError(f"unknown stage {self.stage!r}; choose global, local, joint or all")
        return [self.stage]

    def epochs(self, stage: str) -> int:
        return int(getattr(self, f"epochs_{stage}"))

    def model_config(self) -> ModelConfig:
        base = get_preset(self.preset)
        config = dataclasses.replace(
            base, loss=LossConfig(self.gan_loss, self.lambda_fm, self.lambda_l1)
        )
        config = config.replace_generator(mode=self.mode)
        if self.lambda_l1 < 0:
            raise TrainingError("--lambda-l1 must be 0 or more")
        if not 0 <= self.ema < 1:
            raise TrainingError(f"--ema must be in [0, 1), not {self.ema}")
        from gan.diffaugment import parse_policy

        try:
            parse_policy(self.diffaugment)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        if self.size is not None:
            config = config.replace_generator(size=int(self.size))
        if self.upsample is not None:
            config = config.replace_generator(upsample=self.upsample)
        if self.noise is not None:
            config = config.replace_generator(noise=bool(self.noise))
        if self.discriminator is not None:
            config = config.replace_discriminator(kind=self.discriminator)
        try:  # an unknown upsampling or discriminator kind too
            config.generator.validate()
            config.discriminator.validate()
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        return config

    @classmethod
    def from_dict(cls, data: dict) -> TrainOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


#: train's flags that are not TrainOptions fields, each shown in --help before the field named
_EXTRA_FLAGS = {
    "preset": (
        "--resume",
        {"metavar": "RUN_DIR", "help": "continue a run exactly where its last checkpoint left it"},
    ),
    "epochs_global": (
        "--epochs",
        {"type": int, "help": "epochs of every stage, in place of the three below (paper: 20)"},
    ),
}


def _is_on_off(field: dataclasses.Field) -> bool:
    """A ``bool | None`` field: its flag takes ``on`` or ``off``."""
    hint = typing.get_type_hints(TrainOptions)[field.name]
    return hint is not bool and bool in typing.get_args(hint)


def _flag_arguments(field: dataclasses.Field) -> tuple[str, dict]:
    """The flag and ``add_argument`` keywords of a TrainOptions field (see :class:`CliFlag`)."""
    flag: CliFlag = field.metadata["cli"]
    hint = typing.get_type_hints(TrainOptions)[field.name]
    name = "--" + field.name.replace("_", "-")
    kwargs: dict = {"dest": field.name, "default": field.default, "help": flag.help}
    if hint is bool:
        if field.default:
            name = "--no-" + field.name.replace("_", "-")
        kwargs["action"] = "store_false" if field.default else "store_true"
    elif _is_on_off(field):
        kwargs["choices"] = ["on", "off"]
    else:  # int, float or str, maybe | None
        kwargs["type"] = next(t for t in (*typing.get_args(hint), hint) if t is not type(None))
        if flag.choices is not None:
            kwargs["choices"] = list(flag.choices)
        if flag.metavar is not None:
            kwargs["metavar"] = flag.metavar
    return name, kwargs


def cli_fields() -> list[dataclasses.Field]:
    """The TrainOptions fields that ``train`` has a flag for, in --help order."""
    return [f for f in dataclasses.fields(TrainOptions) if f.metadata.get("cli") is not None]


def add_train_arguments(parser) -> None:
    """``train``'s flags: one per TrainOptions field (:func:`cli_fields`), and --resume, --epochs."""
    for field in cli_fields():
        if field.name in _EXTRA_FLAGS:
            extra, kwargs = _EXTRA_FLAGS[field.name]
            parser.add_argument(extra, **kwargs)
        name, kwargs = _flag_arguments(field)
        parser.add_argument(name, **kwargs)


def train_options_from_args(args) -> TrainOptions:
    """The TrainOptions that parsed ``train`` flags ask for (``--epochs N`` sets every stage's)."""
    values = {}
    for field in cli_fields():
        value = getattr(args, field.name)
        values[field.name] = value == "on" if _is_on_off(field) and value is not None else value
    if args.epochs is not None:
        values.update({f"epochs_{stage}": args.epochs for stage in STAGES})
    return TrainOptions(**values)


@dataclasses.dataclass
class Progress:
    stage_index: int = 0
    epoch: int = 0
    step: int = 0  # batches done in this epoch
    global_step: int = 0
    stages_done: list[str] = dataclasses.field(default_factory=list)


def lr_factor(epoch: int, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Constant for the first half of the epochs, then linear decay to zero (paper §IV-A)."""
    t = epoch + step / max(steps_per_epoch, 1)
    half = epochs / 2
    if t < half:
        return 1.0
    return max(0.0, (epochs - t) / (epochs - half))


def trainable_parameters(generator: GlobalLocalGenerator, stage: str) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` for what this stage trains; return those parameters.

    global: G1 (features + its image head); local: G2; joint: G1's features and G2 (G1's own head
    is not used when G2 renders the image).
    """
    for p in generator.parameters():
        p.requires_grad_(False)
    if stage == "global":
        modules = [generator.global_generator]
    elif stage == "local":
        modules = [generator.local_enhancer]
    else:
        modules = [generator.global_generator.features, generator.local_enhancer]
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    return params


class ResumableSampler(torch.utils.data.distributed.DistributedSampler):
    """DistributedSampler (shuffled per epoch by ``set_epoch``) that can start part-way through an
    epoch, so a resumed run draws exactly the batches an unbroken run would have."""

    def __init__(self, dataset, info: DistInfo, seed: int) -> None:
        super().__init__(
            dataset,
            num_replicas=info.world_size,
            rank=info.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self.start = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return super().__len__() - self.start


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("step-*.pt"))
    return found[-1] if found else None


class _StopFlag:
    """SIGINT / SIGTERM set a flag; the loop saves a checkpoint at the next step and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, _frame) -> None:
        self.signal = signum


class Trainer:
    def __init__(self, options: TrainOptions, info: DistInfo, resume: dict | None = None) -> None:
        self.options = options
        self.info = info
        self.run_dir = Path(options.out)
        self.device = resolve_device(options.device)
        if self.device.type == "cuda" and info.enabled:
            self.device = torch.device("cuda", cuda_index(info))
        if self.device.type == "cuda" and options.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if options.batch_size % info.world_size:
            raise TrainingError(
                f"batch size {options.batch_size} is not divisible by {info.world_size} processes"
            )
        self.batch_per_rank = options.batch_size // info.world_size
        self.config = options.model_config()
        self.stages = options.stages()

        torch.manual_seed(options.seed)  # identical initial weights on every rank
        self.generator = GlobalLocalGenerator(self.config.generator)
        # the patch D (label map + image) or, with --discriminator oasis, OASIS's segmenter
        self.discriminator = build_discriminator(self.config.discriminator)
        if options.init_generator and resume is None:
            self._warm_start(options.init_generator)
        #: the moving average of G's weights (``--ema``), or None
        self.ema = None
        if options.ema > 0:
            self.ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self.progress = Progress()
        torch.manual_seed(
            options.seed * info.world_size + info.rank
        )  # per-rank streams from here on
        if resume is not None:
            self._load_state(resume)  # restores the RNG states too, after the per-rank seeding
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        if self.ema is not None:
            self.ema.to(self.device)
        if options.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)

        self.slices = load_slices(
            options.data, options.ids, self.config.generator.size, options.cache_dir
        )
        self.dataset = AugmentedSlices(
            self.slices, options.samples_per_epoch, seed=options.seed, mode=options.mode
        )
        self.sampler = ResumableSampler(self.dataset, info, seed=options.seed)
        self.steps_per_epoch = len(self.sampler) // self.batch_per_rank
        if self.steps_per_epoch == 0:
            raise TrainingError(
                f"{options.samples_per_epoch} samples per epoch give no full batch of {options.batch_size}"
            )
        self._resume_opt_state = resume
        self._opt_stage_index = self.progress.stage_index
        from gan.diffaugment import parse_policy

        self.diffaugment = parse_policy(options.diffaugment)
        self.stop = _StopFlag()

    # ------------------------------------------------------------------ state
    def _warm_start(self, path: str) -> None:
        """G's weights from another run or export of the same preset. A ``label`` generator may
        start an ``inpaint`` one: its first convs gain zero-initialised input channels for the
        masked image and the mask, so training begins from the label model's output exactly."""
        from gan.checkpoint import expand_input_channels, resolve_weights

        try:
            warm, warm_config = load_generator(resolve_weights(path, "label"))
        except CheckpointError as exc:
            raise TrainingError(str(exc)) from None
        ours = self.config.generator
        # the mode and noise inputs may be added (both start from the warm model's output)
        noise = ours.noise if not warm_config.generator.noise else warm_config.generator.noise
        if dataclasses.replace(warm_config.generator, mode=ours.mode, noise=noise) != ours:
            raise TrainingError(
                f"{path}: its generator config differs from preset {self.options.preset}"
            )
        if warm_config.generator.mode not in (ours.mode, "label"):
            raise TrainingError(
                f"{path}: a {warm_config.generator.mode!r} generator cannot start a {ours.mode!r} one"
            )
        state = expand_input_channels(warm.state_dict(), self.generator.state_dict())
        self.generator.load_state_dict(state)

    def _load_state(self, payload: dict) -> None:
        from gan.checkpoint import load_state_strict

        load_state_strict(self.generator, payload["generator"], "generator")
        load_state_strict(self.discriminator, payload["discriminator"], "discriminator")
        if self.ema is not None:
            # a run that gains --ema on resume starts its average from the current G
            load_state_strict(self.ema, payload.get("generator_ema") or payload["generator"], "EMA")
        self.progress = Progress(**payload["progress"])
        # each rank its own streams; a checkpoint from another world size (or an older one, which
        # kept rank 0's alone) gives every rank rank 0's
        per_rank = payload.get("rng_per_rank") or []
        own = len(per_rank) == self.info.world_size
        _set_rng_state(per_rank[self.info.rank] if own else payload["rng"])

    def _checkpoint_payload(self, opt_g, opt_d, rng_per_rank: list) -> dict:
        return {
            "generator": self.generator.state_dict(),
            **({"generator_ema": self.ema.state_dict()} if self.ema is not None else {}),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            # the stage whose optimizers these are: at a stage boundary the next stage starts fresh
            "opt_stage_index": self._opt_stage_index,
            "progress": dataclasses.asdict(self.progress),
            "stages_trained": list(self.progress.stages_done),
            "rng": rng_per_rank[0],
            "rng_per_rank": rng_per_rank,
            "options": json.dumps(dataclasses.asdict(self.options)),
        }

    def save(self, opt_g, opt_d, name: str | None = None) -> Path | None:
        """Rank 0 writes the checkpoint; every rank must call this (they send their RNG states)."""
        rng_per_rank = gather_objects(_rng_state())
        if not self.info.is_main:
            return None
        folder = self.run_dir / "checkpoints"
        path = folder / (name or f"step-{self.progress.global_step:08d}.pt")
        save_checkpoint(path, self.config, **self._checkpoint_payload(opt_g, opt_d, rng_per_rank))
        if name is None:
            for old in sorted(folder.glob("step-*.pt"))[: -self.options.keep_last]:
                old.unlink(missing_ok=True)
        return path

    # ------------------------------------------------------------------ logging
    def write_options(self) -> None:
        if not self.info.is_main:
            return
        path = self.run_dir / "training_options.json"
        record = {
            "options": dataclasses.asdict(self.options),
            "model_config": self.config.to_dict(),
            "data": {
                "fingerprint_sha256": self.slices.fingerprint(),
                "n_slices": len(self.slices),
                "ids": self.slices.ids,
                "resolution": self.slices.size,
            },
            "label_convention": dict(LABEL_MAP_CONVENTION["values"]),
            "git_commit": git_commit(),
            "world_size": self.info.world_size,
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else "cpu",
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "steps_per_epoch": self.steps_per_epoch,
            "paper_mapping": "Adam lr 2e-4 betas (0.5, 0.999); LR constant for the first half of each "
            "stage's epochs, then linear to zero; 20 epochs x 12,000 augmented samples; batch 16; lambda_FM 10",
        }
        if path.exists():
            previous = json.loads(path.read_text())
            record["resumed"] = previous.get("resumed", []) + [
                {
                    "at_global_step": self.progress.global_step,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            ]
        atomic_write_text(path, json.dumps(record, indent=2) + "\n")

    def _trim_metrics(self) -> None:
        """On resume, drop log lines past the checkpoint (a crash may have logged beyond it), and a
        line that a crash cut short mid-write (it cannot be parsed, and it was never complete)."""
        path = self.run_dir / "metrics.jsonl"
        if not self.info.is_main or not path.exists():
            return
        kept, damaged = [], 0
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                damaged += 1
                continue
            if (
                isinstance(record, dict)
                and record.get("global_step", 0) <= self.progress.global_step
            ):
                kept.append(line)
        if damaged:
            print(
                f"note: dropped {damaged} incomplete line(s) from {path} (cut short by a crash)",
                file=sys.stderr,
            )
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    def log(self, record: dict) -> None:
        if not self.info.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def plot_curves(self) -> None:
        """``losses.png`` from ``metrics.jsonl`` (a plot that fails costs a warning, not the run)."""
        path = self.run_dir / "metrics.jsonl"
        if not self.info.is_main or not path.exists():
            return
        from training_cli.curves import plot_metrics

        try:
            plot_metrics(path, self.run_dir / "losses.png")
        except (OSError, ValueError) as exc:
            print(f"warning: loss plot not written: {exc}", file=sys.stderr)

    def sample_grid(self, stage: str, epoch: int) -> None:
        """label | real | synthetic for up to 4 fixed (unaugmented) slices."""
        if not self.info.is_main:
            return
        n = min(4, len(self.slices))
        labels = torch.from_numpy(self.slices.label_maps[:n].astype(np.int64)).to(self.device)
        g_input = one_hot_torch(labels)
        shown = [self.slices.images[:n]]
        if self.options.mode == "inpaint":  # label | real | real with the mask blanked | composite
            from gan.inpaint import inpaint_condition, random_edit_mask

            masks = np.stack(
                [
                    random_edit_mask(self.slices.label_maps[i], np.random.default_rng(i))
                    for i in range(n)
                ]
            ).astype(np.float32)
            shown.append(self.slices.images[:n] * (1 - masks) - masks)  # blanked shown black
            mask_t = torch.from_numpy(masks[:, None]).to(self.device)
            image_t = torch.from_numpy(self.slices.images[:n, None]).to(self.device)
            g_input = inpaint_condition(g_input, image_t, mask_t)
        shown_g = self.ema if self.ema is not None else self.generator
        with torch.no_grad(), autocast_context(self.device, self.options.bf16):
            fake = shown_g(g_input, stage=stage, noise_seeds=list(range(n))).float()
        size = self.slices.size
        fake = resize_image(fake, (size, size))[:, 0].cpu().numpy()
        if self.options.mode == "inpaint":
            fake = masks * fake + (1 - masks) * self.slices.images[:n]
        shown.append(fake)
        rows = []
        for i in range(n):
            gray = [np.repeat(unit_to_uint8(x[i])[..., None], 3, axis=2) for x in shown]
            rows.append(np.concatenate([colorize(self.slices.label_maps[i]), *gray], axis=1))
        write_png(
            self.run_dir / "samples" / f"{stage}_e{epoch + 1:03d}.png", np.concatenate(rows, axis=0)
        )

    # ------------------------------------------------------------------ loop
    def _wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.options.compile:
            module = torch.compile(module)
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)
        return module

    def run(self) -> int:
        """Train to the end (0), or until stopped by a signal (130) or ``max_steps`` (0)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.write_options()
        if self._resume_opt_state is not None:
            self._trim_metrics()
        self.stop.install()
        try:
            return self._run_stages()
        finally:
            self.stop.restore()

    def _run_stages(self) -> int:
        opts = self.options
        loader_kwargs = {
            "num_workers": opts.workers,
            "pin_memory": self.device.type == "cuda",
            "drop_last": True,
        }
        if opts.workers > 0:
            loader_kwargs["persistent_workers"] = False
        while self.progress.stage_index < len(self.stages):
            stage = self.stages[self.progress.stage_index]
            opt_g, opt_d = make_optimizers(
                trainable_parameters(self.generator, stage),  # this stage's share of G only
                self.discriminator,
                lr=opts.lr,
                betas=(opts.beta1, opts.beta2),
            )
            self._opt_stage_index = self.progress.stage_index
            resume = self._resume_opt_state
            if resume is not None and resume.get("opt_stage_index") == self.progress.stage_index:
                opt_g.load_state_dict(resume["opt_g"])
                opt_d.load_state_dict(resume["opt_d"])
            self._resume_opt_state = None
            generator = discriminator = None  # release the previous stage's DDP wrappers first
            generator, discriminator = self._wrap(self.generator), self._wrap(self.discriminator)
            epochs = opts.epochs(stage)
            while self.progress.epoch < epochs:
                stopped = self._run_epoch(
                    stage, epochs, generator, discriminator, opt_g, opt_d, loader_kwargs
                )
                if stopped is not None:
                    return stopped
            self.progress.stages_done.append(stage)
            self.progress.stage_index += 1
            self.progress.epoch = 0
            self.save(opt_g, opt_d)
        self._check_replicas_in_sync()
        path = self.save(opt_g, opt_d, name="final.pt")
        if self.info.is_main:
            print(
                f"Training finished: {path}. Export it with: python -m training_cli export --checkpoint {path} --out model.safetensors"
            )
        return 0

    def _run_epoch(
        self, stage, epochs, generator, discriminator, opt_g, opt_d, loader_kwargs
    ) -> int | None:
        from tqdm import tqdm

        opts = self.options
        epoch_key = (
            self.progress.stage_index * 10_000 + self.progress.epoch
        )  # data order differs per stage
        self.sampler.set_epoch(epoch_key)
        self.dataset.set_epoch(epoch_key)
        self.sampler.start = self.progress.step * self.batch_per_rank
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_per_rank, sampler=self.sampler, **loader_kwargs
        )
        autocast = self._autocast()
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.progress.step,
            desc=f"{stage} {self.progress.epoch + 1}/{epochs}",
            unit="batch",
            disable=not (self.info.is_main and opts.progress),
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        window_start, window_images = time.perf_counter(), 0
        try:
            for batch in loader:
                if self.progress.step >= self.steps_per_epoch:
                    break
                labels, image = batch[0], batch[1]
                mask = batch[2].to(self.device, non_blocking=True) if len(batch) > 2 else None
                lr = opts.lr * lr_factor(
                    self.progress.epoch, self.progress.step, self.steps_per_epoch, epochs
                )
                for group in (*opt_g.param_groups, *opt_d.param_groups):
                    group["lr"] = lr
                labels = one_hot_torch(labels.to(self.device, non_blocking=True))
                image = image.to(self.device, non_blocking=True)
                if opts.channels_last:
                    labels = labels.contiguous(memory_format=torch.channels_last)
                    image = image.contiguous(memory_format=torch.channels_last)
                seed = sample_seed(opts.seed, self.progress.global_step, self.info.rank) % (
                    2**31 - 2
                )
                losses: StepLosses = train_step(
                    generator,
                    discriminator,
                    opt_g,
                    opt_d,
                    labels,
                    image,
                    stage,
                    self.config.loss,
                    seed,
                    autocast,
                    mask=mask,
                    diffaugment=self.diffaugment,
                )
                self._update_ema()
                finite = all(math.isfinite(v) for v in losses.as_dict().values())
                if any_rank_flag(not finite, self.device):  # every rank stops together, none hangs
                    raise TrainingError(
                        f"loss became non-finite at step {self.progress.global_step}: {losses}"
                    )
                self.progress.step += 1
                self.progress.global_step += 1
                window_images += labels.shape[0] * self.info.world_size
                bar.update(1)
                if (
                    self.progress.global_step % opts.log_every == 0
                    or self.progress.step == self.steps_per_epoch
                ):
                    elapsed = time.perf_counter() - window_start
                    rate = window_images / elapsed if elapsed > 0 else float("nan")
                    record = {
                        "stage": stage,
                        "epoch": self.progress.epoch + 1,
                        "step": self.progress.step,
                        "global_step": self.progress.global_step,
                        "lr": lr,
                        **losses.as_dict(),
                        "images_per_s": rate,
                        "gpu_mem_gb": torch.cuda.max_memory_allocated(self.device) / 2**30
                        if self.device.type == "cuda"
                        else None,
                        "time": time.time(),
                    }
                    self.log(record)
                    bar.set_postfix(
                        img_s=f"{rate:.1f}",
                        d=f"{losses.d_real_fake:.3f}",
                        g=f"{losses.g_total:.3f}",
                    )
                    window_start, window_images = time.perf_counter(), 0
                if self.progress.global_step % opts.checkpoint_every == 0:
                    self.save(opt_g, opt_d)
                if any_rank_flag(self.stop.signal is not None, self.device):
                    path = self.save(opt_g, opt_d)
                    if self.info.is_main:
                        print(
                            f"\nInterrupted: checkpoint saved to {path}; resume with --resume {self.run_dir}"
                        )
                    return EXIT_INTERRUPTED
                if opts.max_steps is not None and self.progress.global_step >= opts.max_steps:
                    self._check_replicas_in_sync()
                    path = self.save(opt_g, opt_d)
                    if self.info.is_main:
                        print(
                            f"\nStopped after --max-steps {opts.max_steps}: {path}; resume with --resume {self.run_dir}"
                        )
                    return 0
        finally:
            bar.close()
        self.sample_grid(stage, self.progress.epoch)
        self.plot_curves()
        self.progress.epoch += 1
        self.progress.step = 0
        self.save(opt_g, opt_d)
        return None

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * G, after every step (the weights G was trained to).

        The decay warms up, min(--ema, (1 + n) / (10 + n)) at global step n, so that a short run's
        average is not mostly its starting weights (0.999^300 = 0.74 of them without)."""
        if self.ema is None:
            return
        n = self.progress.global_step
        decay = min(self.options.ema, (1 + n) / (10 + n))
        for average, current in zip(
            self.ema.parameters(), self.generator.parameters(), strict=True
        ):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.ema.buffers(), self.generator.buffers(), strict=True):
            average.copy_(current)

    def _autocast(self):
        """bf16 autocast on CUDA (default) and, with ``--cpu-bf16``, on the CPU; else None."""
        opts = self.options
        cuda, cpu = (
            self.device.type == "cuda" and opts.bf16,
            self.device.type == "cpu" and opts.cpu_bf16,
        )
        if cpu and not cpu_has_native_bf16():
            # without AVX512-BF16/AMX, PyTorch falls back to a reference bf16 convolution that
            # runs about 300x slower than fp32 (measured on an AVX2-only EPYC): never what was meant
            if self.info.is_main and not getattr(self, "_bf16_warned", False):
                print(
                    "warning: --cpu-bf16 ignored: this CPU has no native bf16 "
                    "(AVX512-BF16 or AMX); training in fp32",
                    file=sys.stderr,
                )
            self._bf16_warned, cpu = True, False
        return (lambda: autocast_context(self.device, opts.bf16, cpu=cpu)) if cuda or cpu else None

    def _check_replicas_in_sync(self) -> None:
        if not self.info.enabled:
            return
        digest = float(sum(p.detach().double().sum().item() for p in self.generator.parameters()))
        digest += float(
            sum(p.detach().double().sum().item() for p in self.discriminator.parameters())
        )
        same = all_ranks_agree(digest)
        self.log(
            {
                "global_step": self.progress.global_step,
                "ddp_replicas_identical": same,
                "weight_digest": digest,
            }
        )
        if not same:
            raise TrainingError("DDP replicas diverged: ranks hold different weights")


def run_training(options: TrainOptions, resume_dir: str | None = None) -> int:
    """Entry used by the CLI: set up DDP if launched by torchrun, train, tear down."""
    device = resolve_device(options.device)
    info = setup_distributed(device.type)
    try:
        payload = None
        if resume_dir is not None:
            run_dir = Path(resume_dir)
            if (run_dir / "checkpoints" / "final.pt").exists():
                raise TrainingError(
                    f"{run_dir}: this run has finished (checkpoints/final.pt exists)"
                )
            latest = latest_checkpoint(run_dir)
            if latest is None:
                raise TrainingError(
                    f"{run_dir}: no checkpoint to resume from (checkpoints/step-*.pt)"
                )
            try:
                payload = load_checkpoint(latest)
            except CheckpointError as exc:
                raise TrainingError(str(exc)) from None
            stored = TrainOptions.from_dict(json.loads(payload["options"]))
            stored.out = str(run_dir)
            stored.max_steps = options.max_steps
            stored.workers = options.workers
            stored.progress = options.progress
            options = stored
            if info.is_main:
                print(
                    f"Resuming {run_dir} from {latest.name} (global step {payload['progress']['global_step']})"
                )
        else:
            out = Path(options.out)
            used = (out / "metrics.jsonl").exists() or any((out / "checkpoints").glob("*.pt"))
            if used:
                raise TrainingError(
                    f"{out} already holds a run; continue it with --resume {out}, or pick another --out"
                )
        trainer = Trainer(options, info, resume=payload)
        code = trainer.run()
        barrier()
        return code
    finally:
        teardown_distributed()
