"""Model configuration: frozen dataclasses and the named presets ``paper``, ``lite`` and ``tiny``.

The config travels with every checkpoint and export as JSON (:meth:`ModelConfig.to_dict`), so a
file always says what network it holds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from gan.labels import NUM_CLASSES

GeneratorMode = Literal["label", "inpaint"]
#: Generator modes this version can build. "label": input is the one-hot label map alone (the
#: paper). "inpaint": one-hot label map ⊕ the real image with a region blanked ⊕ that region's mask;
#: only the region is regenerated (gan/inpaint.py).
GENERATOR_MODES = ("label", "inpaint")
#: Input channels besides the one-hot label map, per mode.
EXTRA_INPUT_CHANNELS = {"label": 0, "inpaint": 2}


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Global-local generator (paper Fig. 3-4; pix2pixHD topology).

    G1 (global) runs at ``size // 2``: a 7x7 conv to ``ngf`` channels, ``n_downsample`` stride-2
    convs doubling the width each time (64->128->256->512 in ``paper``: 256^2 -> 32^2),
    ``n_blocks`` residual blocks, and transposed convs back up. G2 (local) runs at ``size``:
    7x7 conv to ``ngf_local`` channels, one stride-2 conv to ``2 * ngf_local`` (which must equal
    ``ngf``, so that G1's last feature map can be added element-wise), ``n_blocks_local`` residual
    blocks, one transposed conv up, a 7x7 conv to the image. Instance norm, reflection padding, tanh.

    Options beyond the paper (off in ``paper`` and ``lite``):

    * ``upsample="resize"``: nearest-neighbour x2 then a 3x3 conv in place of each transposed conv;
      a transposed conv turns a uniform input region (the lung label) into a fixed repeating grid
      (the checkerboard of Odena et al., Distill 2016).
    * ``noise=True``: per-pixel Gaussian noise after every residual block and upsampling block of
      G1 and G2, scaled by a learned per-channel weight that starts at zero (StyleGAN's noise
      inputs), so that fine texture is sampled, not fixed by the label map; a seed picks it.
    """

    mode: GeneratorMode = "label"
    size: int = 512
    ngf: int = 64
    n_downsample: int = 3
    n_blocks: int = 9
    ngf_local: int = 32
    n_blocks_local: int = 3
    out_channels: int = 1
    upsample: Literal["transposed", "resize"] = "transposed"
    noise: bool = False

    @property
    def in_channels(self) -> int:
        return NUM_CLASSES + EXTRA_INPUT_CHANNELS.get(self.mode, 0)

    @property
    def global_size(self) -> int:
        return self.size // 2

    def validate(self) -> None:
        if self.mode not in GENERATOR_MODES:
            raise ValueError(f"generator mode {self.mode!r} is not one of {GENERATOR_MODES}")
        if self.upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample {self.upsample!r} is not 'transposed' or 'resize'")
        if 2 * self.ngf_local != self.ngf:
            raise ValueError(f"2 * ngf_local ({2 * self.ngf_local}) must equal ngf ({self.ngf})")
        step = 2 ** (self.n_downsample + 1)
        if self.size % step:
            raise ValueError(
                f"size {self.size} must be a multiple of {step} (2 x 2^{self.n_downsample} downsamplings)"
            )


DiscriminatorKind = Literal["patch", "oasis"]
DISCRIMINATOR_KINDS = ("patch", "oasis")


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-resolution patch discriminator (paper Fig. 5): D1 at full, D2 at half resolution.

    Each is a PatchGAN with ``n_layers`` stride-2 convs (``n_layers=3``: 70x70 receptive field)
    fed ``patches_per_image`` random ``patch_size`` crops of (one-hot label map ⊕ image).

    ``kind="oasis"`` (not the paper's; gan/models/oasis.py): a U-Net that sees the image alone and
    labels every pixel "fake" or one of the label map's classes (OASIS, Schönfeld et al. 2021);
    it uses ``ndf`` (widths ndf .. 8 ndf) and none of the patch fields.
    """

    ndf: int = 64
    n_layers: int = 3
    num_d: int = 2
    patch_size: int = 70
    patches_per_image: int = 8
    kind: DiscriminatorKind = "patch"

    def validate(self) -> None:
        if self.kind not in DISCRIMINATOR_KINDS:
            raise ValueError(
                f"discriminator kind {self.kind!r} is not one of {DISCRIMINATOR_KINDS}"
            )


@dataclasses.dataclass(frozen=True)
class LossConfig:
    gan_loss: Literal["bce", "hinge"] = "bce"
    lambda_fm: float = 10.0
    #: inpaint mode only: weight of an L1 term between synthetic and real inside the mask (0 = off)
    lambda_l1: float = 0.0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    preset: str
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    loss: LossConfig = LossConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from JSON data; unknown keys are an error (a foreign or newer file)."""
        try:
            config = cls(
                preset=str(data["preset"]),
                generator=_build(GeneratorConfig, data["generator"]),
                discriminator=_build(DiscriminatorConfig, data["discriminator"]),
                loss=_build(LossConfig, data.get("loss", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"invalid model config: {exc}") from None
        config.generator.validate()
        config.discriminator.validate()
        return config

    def replace_generator(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, generator=dataclasses.replace(self.generator, **changes))

    def replace_discriminator(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(
            self, discriminator=dataclasses.replace(self.discriminator, **changes)
        )


def _build(kind, data: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(data) - names
    if unknown:
        raise TypeError(f"unknown {kind.__name__} fields {sorted(unknown)}")
    return kind(**data)


PRESETS: dict[str, ModelConfig] = {
    # The paper's widths: G1 64->128->256->512 at 256^2 -> 32^2, 9 residual blocks.
    "paper": ModelConfig("paper", GeneratorConfig(), DiscriminatorConfig()),
    # Half widths everywhere: about a quarter of the parameters; the default shipped model.
    "lite": ModelConfig("lite", GeneratorConfig(ngf=32, ngf_local=16), DiscriminatorConfig(ndf=32)),
    # lite for texture (issue: the transposed convs' dot grid, and a label map carries no texture):
    # resize-conv upsampling and noise inputs. Not the paper's network; measured beside it.
    "lite-texture": ModelConfig(
        "lite-texture",
        GeneratorConfig(ngf=32, ngf_local=16, upsample="resize", noise=True),
        DiscriminatorConfig(ndf=32),
    ),
    # For tests: small and shallow, seconds on a CPU.
    "tiny": ModelConfig(
        "tiny",
        GeneratorConfig(size=64, ngf=8, n_downsample=2, n_blocks=2, ngf_local=4, n_blocks_local=1),
        DiscriminatorConfig(ndf=8, n_layers=2, patch_size=16, patches_per_image=2),
    ),
    "tiny-texture": ModelConfig(
        "tiny-texture",
        GeneratorConfig(
            size=64,
            ngf=8,
            n_downsample=2,
            n_blocks=2,
            ngf_local=4,
            n_blocks_local=1,
            upsample="resize",
            noise=True,
        ),
        DiscriminatorConfig(ndf=8, n_layers=2, patch_size=16, patches_per_image=2),
    ),
}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
