"""The generator's forward pieces, where mutation testing (``make mutation``) found them
unpinned: the residual block's identity shortcut, and the noise inputs (seeded per image, reset
after each pass, added where the config says)."""

import pytest
import torch

from gan.config import get_preset
from gan.models import GlobalLocalGenerator
from gan.models.generator import NoiseInjection, NoisyReLU, ResidualBlock


def test_a_residual_block_adds_its_body_to_the_input():
    torch.manual_seed(0)
    block = ResidualBlock(4).eval()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        body = block.body(x)
        assert body.abs().max() > 0.1  # the body contributes, so the sign of the sum shows
        torch.testing.assert_close(block(x), x + body)


def seeded_noise(seed, shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_noise_inputs_add_scaled_seeded_noise_after_the_relu():
    layer = NoisyReLU(3)
    with torch.no_grad():
        layer.scale.fill_(0.5)
    x = torch.linspace(-1, 1, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    layer.sources = [torch.Generator().manual_seed(s) for s in (7, 8)]
    out = layer(x)
    noise = torch.cat([seeded_noise(7, (1, 1, 4, 5)), seeded_noise(8, (1, 1, 4, 5))])
    torch.testing.assert_close(out, torch.relu(x) + 0.5 * noise)
    layer.sources = [torch.Generator().manual_seed(7)]
    with pytest.raises(ValueError, match="^1 noise seeds for a batch of 2$"):
        layer(x)


def test_a_residual_block_with_noise_adds_it_to_the_sum():
    torch.manual_seed(0)
    block = ResidualBlock(4, noise=True).eval()
    with torch.no_grad():
        block.noise.scale.fill_(1.0)
        x = torch.randn(1, 4, 8, 8)
        block.noise.sources = [torch.Generator().manual_seed(3)]
        expected = x + block.body(x) + seeded_noise(3, (1, 1, 8, 8))
        torch.testing.assert_close(block(x), expected)


@pytest.fixture(scope="module")
def noisy():
    torch.manual_seed(0)
    generator = GlobalLocalGenerator(get_preset("tiny").replace_generator(noise=True).generator)
    with torch.no_grad():
        for m in generator.modules():
            if isinstance(m, NoiseInjection):
                m.scale.fill_(0.3)  # trained scales: the noise shows in the output
    return generator.eval()


@pytest.mark.parametrize("stage", ["global", "local", "joint"])
def test_a_seed_fixes_each_images_noise_whatever_its_batch(noisy, stage):
    labels = torch.zeros(2, 4, 64, 64)
    labels[:, 1] = 1
    with torch.no_grad():
        torch.manual_seed(1)
        pair = noisy(labels, stage, noise_seeds=[5, 6])
        torch.manual_seed(2)  # the global RNG does not matter once seeded
        alone = noisy(labels[:1], stage, noise_seeds=[5])
        other = noisy(labels[:1], stage, noise_seeds=[6])
    torch.testing.assert_close(pair[:1], alone)
    torch.testing.assert_close(pair[1:], other)
    assert not torch.allclose(alone, other)


def test_the_seeds_last_one_pass_and_unseeded_passes_draw_fresh_noise(noisy):
    labels = torch.zeros(1, 4, 64, 64)
    labels[:, 1] = 1
    with torch.no_grad():
        noisy(labels, noise_seeds=[5])
        layers = [m for m in noisy.modules() if isinstance(m, NoiseInjection)]
        assert layers and all(m.sources is None for m in layers)
        first, second = noisy(labels), noisy(labels)
    assert not torch.allclose(first, second)


def test_noise_keeps_the_activations_dtype_under_bf16():
    """Under bf16 autocast the activations are bf16: the float32 scale and noise are cast to
    them, so the layer does not silently promote the rest of the network to float32."""
    layer = NoiseInjection(2)
    with torch.no_grad():
        layer.scale.fill_(0.5)
        x = torch.ones(1, 2, 4, 4, dtype=torch.bfloat16)
        assert layer(x).dtype == torch.bfloat16
        layer.sources = [torch.Generator().manual_seed(1)]
        assert layer(x).dtype == torch.bfloat16
