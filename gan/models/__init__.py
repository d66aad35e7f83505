"""Networks: the global-local generator and the multi-resolution patch discriminator."""

from gan.models.discriminator import MultiResolutionPatchDiscriminator, PatchDiscriminator
from gan.models.generator import GlobalGenerator, GlobalLocalGenerator, LocalEnhancer

__all__ = [
    "GlobalGenerator",
    "GlobalLocalGenerator",
    "LocalEnhancer",
    "MultiResolutionPatchDiscriminator",
    "PatchDiscriminator",
]
