"""Networks: the global-local generator, the multi-resolution patch discriminator and the OASIS
per-pixel segmentation discriminator."""

from gan.config import DiscriminatorConfig
from gan.labels import NUM_CLASSES
from gan.models.discriminator import MultiResolutionPatchDiscriminator, PatchDiscriminator
from gan.models.generator import GlobalGenerator, GlobalLocalGenerator, LocalEnhancer
from gan.models.oasis import OasisDiscriminator


def build_discriminator(cfg: DiscriminatorConfig, num_classes: int = NUM_CLASSES):
    """The discriminator ``cfg.kind`` names: the patch D (fed label map ⊕ image) or OASIS's."""
    if cfg.kind == "oasis":
        return OasisDiscriminator(cfg, num_classes)
    if cfg.kind == "patch":
        return MultiResolutionPatchDiscriminator(cfg, label_channels=num_classes)
    raise ValueError(f"unknown discriminator kind {cfg.kind!r}")


__all__ = [
    "GlobalGenerator",
    "GlobalLocalGenerator",
    "LocalEnhancer",
    "MultiResolutionPatchDiscriminator",
    "OasisDiscriminator",
    "PatchDiscriminator",
    "build_discriminator",
]
