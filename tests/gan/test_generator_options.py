"""The realism recipe's options, each off in ``paper``: resize-conv upsampling (no transposed-conv
grid), seeded noise inputs (texture sampled per seed, a warm start begins exactly where the model
without noise was), DiffAugment (labels and image move together) and the EMA of G's weights."""

import dataclasses

import numpy as np
import pytest
import torch

from gan.config import GeneratorConfig, ModelConfig, get_preset
from gan.labels import one_hot_torch
from gan.models import GlobalLocalGenerator
from tests.conftest import phantom


def _tiny(**changes) -> GeneratorConfig:
    return dataclasses.replace(get_preset("tiny").generator, **changes)


def _input(size: int = 64, batch: int = 1) -> torch.Tensor:
    _, labels = phantom(size)
    return one_hot_torch(torch.from_numpy(labels.astype(np.int64))[None].repeat(batch, 1, 1))


def _with_noise_scales(generator, value: float = 0.3):
    with torch.no_grad():
        for name, p in generator.named_parameters():
            if name.endswith(".scale"):
                p.fill_(value)
    return generator


def test_presets_keep_the_paper_network_and_name_the_options():
    assert get_preset("paper").generator.upsample == "transposed"
    assert not get_preset("paper").generator.noise and not get_preset("lite").generator.noise
    texture = get_preset("lite-texture").generator
    assert texture.upsample == "resize" and texture.noise
    assert (
        dataclasses.replace(texture, upsample="transposed", noise=False)
        == get_preset("lite").generator
    )
    # a config written before the options existed reads as the paper's network
    old = get_preset("lite").to_dict()
    del old["generator"]["upsample"], old["generator"]["noise"]
    assert ModelConfig.from_dict(old) == get_preset("lite")
    with pytest.raises(ValueError, match="upsample"):
        _tiny(upsample="bilinear").validate()


def test_noise_off_keeps_every_weight_name_and_shape():
    plain = GlobalLocalGenerator(_tiny()).state_dict()
    noisy = GlobalLocalGenerator(_tiny(noise=True)).state_dict()
    assert {k: v.shape for k, v in plain.items()} == {
        k: v.shape for k, v in noisy.items() if not k.endswith(".scale")
    }
    scales = [k for k in noisy if k.endswith(".scale")]
    # after each residual block and each upsampling block, in G1 and in G2
    cfg = _tiny()
    assert len(scales) == cfg.n_blocks + cfg.n_downsample + cfg.n_blocks_local + 1


def test_noise_inputs_start_at_zero_so_a_warm_start_begins_at_the_old_output():
    from gan.checkpoint import expand_input_channels

    torch.manual_seed(0)
    plain = GlobalLocalGenerator(_tiny()).eval()
    noisy = GlobalLocalGenerator(_tiny(noise=True)).eval()
    noisy.load_state_dict(expand_input_channels(plain.state_dict(), noisy.state_dict()))
    x = _input()
    with torch.no_grad():
        np.testing.assert_array_equal(noisy(x, noise_seeds=[3]).numpy(), plain(x).numpy())


def test_a_seed_fixes_the_texture_whatever_the_batch():
    torch.manual_seed(0)
    g = _with_noise_scales(GlobalLocalGenerator(_tiny(noise=True)).eval())
    x = _input(batch=2)
    with torch.no_grad():
        a = g(x[:1], noise_seeds=[5])
        again = g(x[:1], noise_seeds=[5])
        batch = g(x, noise_seeds=[5, 6])
        other = g(x[:1], noise_seeds=[6])
    torch.testing.assert_close(a, again, rtol=0, atol=0)
    torch.testing.assert_close(batch[:1], a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batch[1:], other, rtol=1e-5, atol=1e-6)
    assert (a - other).abs().mean() > 1e-3  # another seed, another texture
    with pytest.raises(ValueError, match="2 noise seeds for a batch of 1"):
        g(x[:1], noise_seeds=[1, 2])


def test_the_synthesizer_passes_the_seed(tmp_path):
    from gan.checkpoint import export_generator
    from gan.synthesizer import Synthesizer

    torch.manual_seed(0)
    cfg = get_preset("tiny-texture")
    export_generator(
        _with_noise_scales(GlobalLocalGenerator(cfg.generator)), cfg, tmp_path / "n.safetensors"
    )
    s = Synthesizer(tmp_path / "n.safetensors", device="cpu")
    _, labels = phantom(64)
    a, b = s.synthesize(labels, seed=1), s.synthesize(labels, seed=2)
    np.testing.assert_array_equal(a, s.synthesize(labels, seed=1))
    assert np.abs(a - b).mean() > 1e-3
    np.testing.assert_array_equal(
        s.synthesize_batch(np.stack([labels, labels]), seeds=[2, 1])[1], a
    )


def test_resize_upsampling_draws_no_transposed_conv_grid_in_a_uniform_lung():
    """Untrained, over a lung of one label: transposed convs print a periodic grid there (a peak
    far above its ring in the power spectrum); nearest-neighbour resize + conv does not."""
    from training_cli.realism import mean_power_spectrum, peak_ratio, valid_corners

    _, labels = phantom(256)
    labels[labels > 1] = 1
    x = _input(256) * 0 + one_hot_torch(torch.from_numpy(labels.astype(np.int64))[None])
    corners = valid_corners(labels == 1, 32, 1.0)[::50]
    ratios = {}
    for upsample in ("transposed", "resize"):
        cfg = dataclasses.replace(get_preset("lite").generator, size=256, upsample=upsample)
        torch.manual_seed(1)
        with torch.no_grad():
            y = GlobalLocalGenerator(cfg).eval()(x)[0, 0].numpy()
        windows = np.stack([y[r : r + 32, c : c + 32] for r, c in corners])
        ratios[upsample] = peak_ratio(mean_power_spectrum(windows))
    assert ratios["transposed"] > 3 * ratios["resize"], ratios


def test_diffaugment_moves_labels_and_image_together_and_lets_gradients_through():
    from gan.diffaugment import diff_augment, parse_policy

    cond = torch.zeros(2, 4, 32, 32)
    cond[:, 0] = 1
    cond[:, 0, 10, 12], cond[:, 3, 10, 12] = 0, 1  # one consolidation pixel
    image = torch.full((2, 1, 32, 32), -0.5, requires_grad=True)
    marked = image + 0  # the same pixel bright in the image
    marked = marked + torch.nn.functional.pad(torch.ones(2, 1, 1, 1), (12, 19, 10, 21))
    c, img = diff_augment(cond, marked, ("translation",), torch.Generator().manual_seed(3))
    for i in range(2):
        where_label = torch.nonzero(c[i, 3])
        where_bright = torch.nonzero(img[i, 0] > 0)
        assert torch.equal(where_label, where_bright) and len(where_label) <= 1
    assert torch.allclose(c.sum(1), torch.ones(2, 32, 32))  # uncovered pixels are background
    c2, img2 = diff_augment(cond, marked, ("translation",), torch.Generator().manual_seed(3))
    assert torch.equal(c, c2) and torch.equal(img, img2)  # seeded
    _, cut = diff_augment(cond, image, ("cutout",), torch.Generator().manual_seed(0))
    assert (cut == 0).float().mean() == pytest.approx(0.25)  # a half-side square
    _, coloured = diff_augment(cond, image, ("color",), torch.Generator().manual_seed(0))
    assert not torch.allclose(coloured, image)
    coloured.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert parse_policy("translation, color") == ("translation", "color") and parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown DiffAugment part 'flip'"):
        parse_policy("flip")
