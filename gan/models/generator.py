"""Global-local generator (paper §III-A, Fig. 3-4), in the pix2pixHD lineage."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from gan.config import GeneratorConfig

Stage = Literal["global", "local", "joint"]
STAGES: tuple[Stage, ...] = ("global", "local", "joint")


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    if kernel == 7:
        return [
            nn.ReflectionPad2d(3),
            nn.Conv2d(c_in, c_out, 7),
            nn.InstanceNorm2d(c_out),
            nn.ReLU(True),
        ]
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1),
        nn.InstanceNorm2d(c_out),
        nn.ReLU(True),
    ]


def _up_block(c_in: int, c_out: int, cfg: GeneratorConfig) -> list[nn.Module]:
    """x2 upsampling: the paper's transposed conv, or nearest-neighbour resize then a 3x3 conv.

    With noise inputs the block's ReLU adds them (:class:`NoisyReLU`): the layer indices, and so
    the weight names, stay those of a generator without noise."""
    if cfg.upsample == "resize":
        layers = [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReflectionPad2d(1),
            nn.Conv2d(c_in, c_out, 3),
        ]
    else:
        layers = [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)]
    return [*layers, nn.InstanceNorm2d(c_out), NoisyReLU(c_out) if cfg.noise else nn.ReLU(True)]


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise, one map per image shared by the channels, times a learned
    per-channel scale that starts at zero (StyleGAN's noise inputs): a warm start from a network
    without noise begins from that network's output exactly.

    The noise comes from ``sources`` (one seeded ``torch.Generator`` per batch element, set by
    :class:`GlobalLocalGenerator` for the length of a forward pass), so a seed fixes the texture
    of each image whatever else is in its batch; without sources, from the global RNG."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.sources: list[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.sources is None:
            noise = torch.randn((b, 1, h, w), device=x.device)
        else:
            if len(self.sources) != b:
                raise ValueError(f"{len(self.sources)} noise seeds for a batch of {b}")
            noise = torch.cat([torch.randn((1, 1, h, w), generator=g) for g in self.sources])
            noise = noise.to(x.device)
        return x + self.scale.to(x.dtype) * noise.to(x.dtype)


class NoisyReLU(NoiseInjection):
    """ReLU, then noise inputs: the last layer of an upsampling block with ``noise``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.relu(x))


def _image_head(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c_in, c_out, 7), nn.Tanh())


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convs with instance norm; identity shortcut; with ``noise``,
    noise inputs added to the sum (:class:`NoiseInjection`)."""

    def __init__(self, channels: int, noise: bool = False) -> None:
        super().__init__()
        self.noise = NoiseInjection(channels) if noise else None
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.body(x)
        return x if self.noise is None else self.noise(x)


class GlobalGenerator(nn.Module):
    """G1: works at half resolution; has its own image head so it can run alone."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        layers = _conv_block(cfg.in_channels, cfg.ngf, 7)
        width = cfg.ngf
        for _ in range(cfg.n_downsample):  # 256 -> 32 in the paper preset
            layers += _conv_block(width, width * 2, 3, stride=2)
            width *= 2
        layers += [ResidualBlock(width, cfg.noise) for _ in range(cfg.n_blocks)]
        for _ in range(cfg.n_downsample):
            layers += _up_block(width, width // 2, cfg)
            width //= 2
        self.features = nn.Sequential(*layers)
        self.head = _image_head(cfg.ngf, cfg.out_channels)

    def forward_features(self, labels_half: torch.Tensor) -> torch.Tensor:
        # (B, C_in, S/2, S/2) -> (B, ngf, S/2, S/2)
        return self.features(labels_half)

    def forward(self, labels_half: torch.Tensor) -> torch.Tensor:
        # (B, C_in, S/2, S/2) -> (B, 1, S/2, S/2)
        return self.head(self.forward_features(labels_half))


class LocalEnhancer(nn.Module):
    """G2: full resolution; its upsampling branch may take G1's features added to its own."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        width = 2 * cfg.ngf_local
        self.down = nn.Sequential(
            *_conv_block(cfg.in_channels, cfg.ngf_local, 7),
            *_conv_block(cfg.ngf_local, width, 3, 2),
        )
        self.up = nn.Sequential(
            *[ResidualBlock(width, cfg.noise) for _ in range(cfg.n_blocks_local)],
            *_up_block(width, cfg.ngf_local, cfg),
        )
        self.head = _image_head(cfg.ngf_local, cfg.out_channels)

    def forward(
        self, labels: torch.Tensor, global_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        # (B, C_in, S, S) -> (B, 2*ngf_local, S/2, S/2)
        h = self.down(labels)
        if global_features is not None:
            h = h + global_features  # the paper's element-wise sum of G1's and G2's features
        # (B, 2*ngf_local, S/2, S/2) -> (B, 1, S, S)
        return self.head(self.up(h))


def downsample_labels(labels: torch.Tensor) -> torch.Tensor:
    """Halve a one-hot map by 2x2 averaging (soft class fractions at the edges)."""
    return F.avg_pool2d(labels, 2)


class GlobalLocalGenerator(nn.Module):
    """G1 + G2 and the three training stages of the paper.

    * ``global``: G1 alone on the half-resolution map; output at S/2.
    * ``local``: G2 alone; output at S.
    * ``joint``: G2 with G1's last feature map added before its upsampling branch; output at S.
    """

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.global_generator = GlobalGenerator(cfg)
        self.local_enhancer = LocalEnhancer(cfg)
        # found once, not on every forward (the app's hot path); a plain list, not submodules
        self._noise_layers = [m for m in self.modules() if isinstance(m, NoiseInjection)]

    def forward(
        self,
        labels: torch.Tensor,
        stage: Stage = "joint",
        noise_seeds: list[int] | None = None,
    ) -> torch.Tensor:
        """labels: (B, C_in, S, S) one-hot (⊕ image and mask in inpaint mode).

        ``noise_seeds`` (one int per batch element) fix the noise inputs of a ``noise`` generator
        (the same labels and seed give the same image); None draws them from the global RNG. A
        generator without noise inputs ignores them."""
        noise_layers = self._noise_layers
        if noise_layers and noise_seeds is not None:
            seeds = [int(s) for s in noise_seeds]
            # one stream per image, shared by the layers in a fixed order: reproducible per image
            sources = [torch.Generator().manual_seed(s) for s in seeds]
            for layer in noise_layers:
                layer.sources = sources
        try:
            return self._forward(labels, stage)
        finally:
            for layer in noise_layers:
                layer.sources = None

    def _forward(self, labels: torch.Tensor, stage: Stage) -> torch.Tensor:
        if stage == "global":
            return self.global_generator(downsample_labels(labels))
        if stage == "local":
            return self.local_enhancer(labels)
        if stage == "joint":
            features = self.global_generator.forward_features(downsample_labels(labels))
            return self.local_enhancer(labels, features)
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
